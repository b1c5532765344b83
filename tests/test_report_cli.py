"""`appeals-bot report` and `appeals-bot export` (SPEC §9, §11) on a database the bot filled
through the real dialogue: every format parses, the register opens with the csv module and
keeps Cyrillic, the chart is a PNG, the command line runs beside a running bot and imports
no messenger library, and its errors are one clear line."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.cli import example_config_path, main
from handlers import texts
from storage.db import Database
from tests.conftest import Clock, Harness, Person, office_config
from tests.flows import file_appeal, to_description

ROOT = Path(__file__).resolve().parent.parent
FORMULA = '=HYPERLINK("http://example.invalid";"Яма") у школы №3'
PERIOD = ["--from", "2026-03-01", "--to", "2026-03-31"]


@pytest.fixture
async def office(tmp_path: Path, clock: Clock) -> AsyncIterator[Harness]:
    """Three appeals of March 2026: one answered on time and rated, one with a phone and a
    description a spreadsheet would take for a formula, one in another settlement."""
    harness = Harness(office_config(tmp_path), clock, platforms=("vk", "tg"))
    await harness.start()
    try:
        ivan: Person = harness.person("1001", "Иван Петров", platform="vk")
        anna: Person = harness.person("1002", "Анна Смирнова", platform="vk")
        admin = harness.person("500", platform="tg")
        answered = await file_appeal(ivan)
        await to_description(anna)
        await anna.say(FORMULA)
        await anna.say("ул. Центральная, 5")
        await anna.press("Пропустить")  # photos
        await anna.press("Оставить как есть")
        await anna.say("8 912 345-67-89")
        await anna.press("Отправить")
        harness.clock.advance(minutes=1)  # under the flood limit of messages a minute
        await file_appeal(anna, "Не вывозят мусор третью неделю подряд", settlement="Андра")
        harness.clock.advance(hours=3, minutes=-1)
        await admin.say(f"/reply {answered} Яму засыпали щебнем.")
        await ivan.press("Вопрос решён")
    except BaseException:
        await harness.app.stop()
        raise
    yield harness
    await harness.app.stop()


def db_of(office: Harness) -> str:
    return str(office.config.storage.sqlite_path)


async def cli(*args: str) -> int:
    """`appeals-bot …` in this process (in a thread: it runs its own event loop)."""
    return await asyncio.to_thread(main, list(args))


async def test_json_report(office: Harness, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    code = await cli(
        "report", "--db", db_of(office), *PERIOD, "--format", "json", "--output", str(out)
    )
    assert code == 0
    report = json.loads(out.read_text("utf-8"))
    assert report["period"] == {
        "from": "2026-03-01",
        "to": "2026-03-31",
        "timezone": "Asia/Yekaterinburg",
        "since_utc": "2026-02-28T19:00:00+00:00",
        "until_utc": "2026-03-31T19:00:00+00:00",
    }
    assert (report["received"], report["residents"], report["answered"]) == (3, 2, 1)
    assert report["answered_on_time"] == {"count": 1, "share": 1 / 3}
    assert report["time_to_first_answer_seconds"] == {"median": 10800, "p90": 10800}
    assert report["ratings"] == {"resolved": 1, "unresolved": 0, "unrated": 0}
    assert report["by_category"] == [{"code": "roads", "title": "Дороги", "count": 3, "share": 1.0}]
    assert report["top_categories"] == report["by_category"]
    assert [(s["title"], s["count"]) for s in report["by_settlement"]] == [
        ("Сергино", 2),
        ("Андра", 1),
    ]
    assert [(s["title"], s["count"]) for s in report["by_status"]] == [
        ("Новое", 2),
        ("Закрыто", 1),
    ]
    assert report["by_platform"][0]["title"] == "ВКонтакте"


async def test_csv_report(office: Harness, tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    code = await cli(
        "report", "--db", db_of(office), *PERIOD, "--format", "csv", "--output", str(out)
    )
    assert code == 0
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    with out.open(encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.reader(stream, delimiter=";"))
    assert rows[0] == list(texts.REPORT_CSV_HEADER)
    values = {(row[0], row[1]): row[3] for row in rows[1:]}
    assert values[("итоги", "received")] == "3"
    assert values[("итоги", "on_time_percent")] == "33,3"
    assert values[("итоги", "median_answer_seconds")] == "10800"
    assert values[("темы", "roads")] == "3"
    assert values[("поселения", "andra")] == "1"
    assert values[("оценки", "resolved")] == "1"
    assert ["поселения", "sergino", "Сергино", "2"] in rows


async def test_text_report_reads_like_the_yearly_paragraph(
    office: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("report", "--db", db_of(office), *PERIOD) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert (
        lines[0]
        == "Администрация Октябрьского района: обращения граждан с 01.03.2026 по 31.03.2026"
    )
    paragraph = lines[2]
    assert paragraph.startswith("За период поступило 3 обращения от 2 жителей.")
    assert "Основные темы: Дороги (100,0\u00a0%)." in paragraph
    assert "дан ответ на 1 обращение — 33,3\u00a0% поступивших" in paragraph
    assert "не позже чем через 3 ч" in paragraph
    assert "  Сергино: 2 (66,7\u00a0%)" in lines


async def test_export_opens_with_the_csv_module_and_keeps_cyrillic(
    office: Harness, tmp_path: Path
) -> None:
    out = tmp_path / "register.csv"
    assert await cli("export", "--db", db_of(office), "--output", str(out)) == 0
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    assert not (tmp_path / "register.csv.partial").exists()
    with out.open(encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.DictReader(stream, delimiter=";"))
    assert list(rows[0]) == list(texts.REGISTER_HEADER)
    assert [row["Номер"] for row in rows] == ["1", "2", "3"]
    first, second, third = rows
    assert (first["Статус"], first["Тема"], first["Поселение"]) == ("Закрыто", "Дороги", "Сергино")
    assert first["Мессенджер"] == "ВКонтакте"
    assert first["Поступило"] == "02.03.2026 11:00" and first["Срок ответа"] == "03.03.2026 11:00"
    assert (first["Первый ответ"], first["Ответ в срок"]) == ("02.03.2026 14:00", "да")
    assert (first["Оценка"], first["Последний ответ"]) == ("решён", "Яму засыпали щебнем.")
    # a spreadsheet must not run what a resident typed, nor turn the phone into a number
    assert second["Текст"] == "'" + FORMULA
    assert second["Телефон"] == "'+79123456789"
    assert (second["Имя"], second["Адрес"]) == ("Анна Смирнова", "ул. Центральная, 5")
    assert (third["Поселение"], third["Ответ в срок"], third["Первый ответ"]) == (
        "Андра",
        "нет",
        "",
    )


async def test_export_with_commas_to_standard_output(
    office: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("export", "--db", db_of(office), "--delimiter", ",") == 0
    out = capsys.readouterr().out
    assert out.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(out.removeprefix("\ufeff"))))
    assert len(rows) == 4 and rows[1][3] == "Дороги"


async def test_config_gives_the_database_and_titles(office: Harness, tmp_path: Path) -> None:
    example = example_config_path().read_text("utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        example.replace(
            'url = "sqlite:///appeals.db"', f'url = "sqlite:///{db_of(office)}"'
        ).replace('title = "Сергино"', 'title = "пгт Сергино"'),
        "utf-8",
    )
    out = tmp_path / "report.json"
    code = await cli(
        "report", "--config", str(config), *PERIOD, "--format", "json", "--output", str(out)
    )
    assert code == 0
    assert json.loads(out.read_text("utf-8"))["by_settlement"][0]["title"] == "пгт Сергино"


async def test_beside_the_running_bot_without_messenger_libraries(office: Harness) -> None:
    """The bot keeps its database open for writing; the report reads it all the same, and
    the command line loads no messenger library (it must start fast and stay small)."""
    probe = (
        "import sys\n"
        "from bot.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules}"
        " & {'vkbottle', 'aiogram', 'aiohttp', 'matplotlib'})\n"
        "print('LOADED', loaded, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPEALS_")}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", probe, "report", "--db", db_of(office), *PERIOD, "--format", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stderr
    assert json.loads(result.stdout)["received"] == 3
    # and the bot still writes
    assert await office.person("1001", platform="vk").say("Мои обращения")


async def test_chart_is_a_png(office: Harness, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    chart = tmp_path / "chart.png"
    period = ["--from", "2026-01-15", "--to", "2026-04-10"]
    code = await cli(
        "report", "--db", db_of(office), *period, "--chart", str(chart), "--output", os.devnull
    )
    assert code == 0
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert chart.stat().st_size > 10_000


def test_chart_without_matplotlib_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    chart = tmp_path / "chart.png"
    assert main(["report", "--db", str(tmp_path / "any.db"), "--chart", str(chart)]) == 1
    error = capsys.readouterr().err
    # installed as the README installs it: from the checkout (issue 14)
    assert error.strip() == (
        "error: a chart needs matplotlib: pip install -e '.[chart]' in the appeals-bot "
        "checkout (or pip install matplotlib)"
    )
    assert not chart.exists()


async def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.db"
    assert await cli("report", "--db", str(missing)) == 1
    assert capsys.readouterr().err == f"error: {missing}: no database file here\n"
    assert not missing.exists()  # read-only: nothing created
    assert await cli("export", "--db", str(missing)) == 1
    assert "no database file here" in capsys.readouterr().err

    for version in (3, 7):  # 7: before the communities and comments the reports count
        old = tmp_path / f"old-{version}.db"
        database = await Database.open(old, migrate_to=version)
        await database.close()
        for command in ("report", "export"):
            assert await cli(command, "--db", str(old)) == 1
            err = capsys.readouterr().err
            assert f"schema version {version} is older than reports need (8)" in err, err

    fresh = tmp_path / "fresh.db"
    database = await Database.open(fresh)
    await database.close()
    assert (
        await cli("report", "--db", str(fresh), "--from", "2026-03-02", "--to", "2026-03-01") == 1
    )
    assert capsys.readouterr().err == "error: --from 2026-03-02 is after --to 2026-03-01\n"
    with pytest.raises(SystemExit):
        main(["report", "--db", str(fresh), "--from", "вчера"])
    assert "is not a date" in capsys.readouterr().err
    assert (
        await cli("report", "--db", str(fresh), "--from", "01.03.2026", "--to", "31.03.2026") == 0
    )
    assert "За период обращений не поступало." in capsys.readouterr().out
