"""Issue 14, the command line and the demo: hostile or mistaken input gets one clear line
(or a clear answer in the chat), never a traceback, and a failed export leaves no copy of
the register behind."""

from __future__ import annotations

import asyncio
import io
import os
import sqlite3
import stat
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import bot.cli
from bench.__main__ import main as bench_main
from bot.channels.console import PHOTO_URL_MAX, ConsoleChannel, photo_url
from bot.cli import BROKEN_PIPE_EXIT, example_config_path, main
from handlers import texts
from handlers.figures.report import PeriodError, Titles, period_bounds, register_row
from storage.db import Database
from storage.reports import RegisterRow
from tests.conftest import Harness, Person

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _keep_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """`main` sets up logging for run and demo: onto this test's captured stderr, which is
    closed after it. Logging is not what these tests are about; it stays as it was."""
    monkeypatch.setattr(bot.cli, "setup_logging", lambda level, **_: None)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("APPEALS_")}


async def fresh_database(path: Path, appeals: int = 0) -> Path:
    """A database of the current schema with `appeals` appeals written straight into it."""
    database = await Database.open(path)
    await database.close()
    if appeals:
        conn = sqlite3.connect(path)
        with conn:
            conn.executemany(
                "INSERT INTO appeals (resident_id, category, settlement, text, place,"
                " contact_name, contact_phone, platform, chat_id, created_at, deadline_at,"
                " updated_at) VALUES (1, 'roads', 'sergino', ?, 'ул. Центральная, 5',"
                " 'Иван Петров', '+79120000000', 'vk', '1', ?, ?, ?)",
                [
                    (
                        f"Яма на дороге возле дома культуры, номер {i}. " * 4,
                        "2026-03-02T06:00:00.000000Z",
                        "2026-03-03T06:00:00.000000Z",
                        "2026-03-02T06:00:00.000000Z",
                    )
                    for i in range(appeals)
                ],
            )
        conn.close()
    return path


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


# --- item 1: dates no calendar of reports covers -------------------------------------------


async def test_stats_with_far_dates_gets_the_date_error(office: Harness) -> None:
    moderator: Person = office.person("900", "Модератор", platform="tg")
    await moderator.say("/stats 01.01.1900 31.12.9999")
    assert "«31.12.9999» вне допустимого диапазона: с 01.01.1900 по 31.12.2999" in moderator.text
    assert texts.USAGE_PREFIX.format(usage=texts.USAGE["stats"]) in moderator.text
    await moderator.say("/stats 0001-01-01")
    assert "«01.01.0001» вне допустимого диапазона" in moderator.text
    await moderator.say("/stats 01.01.1900 31.12.2999")
    assert moderator.text.startswith("Обращения с 01.01.1900 по 31.12.2999: 0")


def test_period_bounds_refuses_days_out_of_range() -> None:
    zone = ZoneInfo("Asia/Yekaterinburg")
    with pytest.raises(PeriodError):
        period_bounds(date(1, 1, 1), date(2026, 1, 1), zone)
    with pytest.raises(PeriodError):
        period_bounds(date(2026, 1, 1), date(9999, 12, 31), zone)
    since, until = period_bounds(date(1900, 1, 1), date(2999, 12, 31), zone)
    assert until - since > timedelta(days=365 * 1000)


@pytest.mark.parametrize(
    "option", [["--from", "0001-01-01"], ["--to", "9999-12-31"], ["--from", "31.12.9999"]]
)
def test_report_with_far_dates_gets_the_date_error(
    tmp_path: Path, option: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    db = asyncio.run(fresh_database(tmp_path / "s.db"))
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--db", str(db), *option])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "is outside the dates reports cover (1900-01-01 to 2999-12-31)" in err
    assert "Traceback" not in err


# --- item 2: export and report outputs -------------------------------------------------------


def test_export_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`appeals-bot export | head -2`: the reader goes away; no traceback, no asyncio noise."""
    db = asyncio.run(fresh_database(tmp_path / "s.db", appeals=3000))  # ~1 MB: over a pipe
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "export", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=clean_env(),
    )
    assert process.stdout is not None and process.stderr is not None
    head = [process.stdout.readline(), process.stdout.readline()]
    process.stdout.close()
    err = process.stderr.read().decode()
    code = process.wait(timeout=60)
    assert head[0].startswith("\ufeffНомер;".encode())
    assert err == ""
    assert code == BROKEN_PIPE_EXIT


def test_export_to_a_directory_is_refused_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = asyncio.run(fresh_database(tmp_path / "s.db", appeals=5))
    reports = tmp_path / "reports"
    reports.mkdir()
    before = set(tmp_path.iterdir())
    assert main(["export", "--db", str(db), "--output", str(reports)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line == f"error: --output {reports}: is a directory; give a file name"
    assert set(tmp_path.iterdir()) == before
    assert list(reports.iterdir()) == []


@pytest.mark.parametrize("command", ["export", "report"])
def test_output_into_a_missing_folder(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = asyncio.run(fresh_database(tmp_path / "s.db"))
    target = tmp_path / "nonexistent" / "x.csv"
    assert main([command, "--db", str(db), "--output", str(target)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line == (f"error: --output {target}: the folder {target.parent} does not exist")


def test_chart_into_a_missing_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bot.cli, "require_matplotlib", lambda: None)  # not what is tested
    db = asyncio.run(fresh_database(tmp_path / "s.db"))
    chart = tmp_path / "nonexistent" / "c.png"
    assert main(["report", "--db", str(db), "--chart", str(chart), "--output", os.devnull]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line == f"error: --chart {chart}: the folder {chart.parent} does not exist"


def test_export_over_the_database_itself_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = asyncio.run(fresh_database(tmp_path / "s.db", appeals=2))
    before = db.read_bytes()
    assert main(["export", "--db", str(db), "--output", str(db)]) == 1
    assert "is the database itself" in one_error_line(capsys.readouterr().err)
    assert db.read_bytes() == before


def test_a_failing_export_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whatever stops an export half-way (a full disk, a bug), the copy of the register
    written so far is removed: it holds names and phones."""
    db = asyncio.run(fresh_database(tmp_path / "s.db", appeals=2500))
    out = tmp_path / "out" / "register.csv"
    out.parent.mkdir()
    rows = 0

    def failing_row(titles: Titles, row: RegisterRow, now: datetime) -> list[str]:
        nonlocal rows
        rows += 1
        if rows > 1500:  # after a batch is on disk
            raise OSError(28, "No space left on device")
        return [str(row.number), row.contact_name or "", row.contact_phone or ""]

    monkeypatch.setattr(bot.cli, "register_row", failing_row)
    assert main(["export", "--db", str(db), "--output", str(out)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line == f"error: {out}: cannot write: No space left on device"
    assert list(out.parent.iterdir()) == []

    def broken_row(titles: Titles, row: RegisterRow, now: datetime) -> list[str]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(bot.cli, "register_row", broken_row)
    with pytest.raises(RuntimeError):
        main(["export", "--db", str(db), "--output", str(out)])
    assert list(out.parent.iterdir()) == []


def test_the_exported_register_is_private_to_its_owner(tmp_path: Path) -> None:
    db = asyncio.run(fresh_database(tmp_path / "s.db", appeals=1))
    out = tmp_path / "register.csv"
    assert main(["export", "--db", str(db), "--output", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) & 0o077 == 0
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


# --- item 3: the database of demo and run; --log-level ---------------------------------------


def test_demo_with_a_database_in_a_missing_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "nonexistent" / "x.db"
    assert main(["demo", "--db", str(db)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line == f"error: {db}: the folder {db.parent} does not exist"


def test_demo_with_a_file_that_is_not_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database, just some text\n" * 200)
    assert main(["demo", "--db", str(garbage)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line == f"error: {garbage}: not an appeals-bot database (file is not a database)"


def test_demo_leaves_another_programs_database_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    assert main(["demo", "--db", str(other)]) == 1
    assert "not an appeals-bot database" in one_error_line(capsys.readouterr().err)
    assert other.read_bytes() == before


def test_a_database_error_at_start_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the check before the start cannot foresee still ends in one line."""
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"x" * 4096)
    monkeypatch.setattr(bot.cli, "database_problem", lambda path: None)
    assert main(["demo", "--db", str(garbage)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {garbage}: cannot use the database (")


def config_with_storage(tmp_path: Path, url: str) -> Path:
    text = example_config_path().read_text("utf-8")
    assert text.count('url = "sqlite:///appeals.db"') == 1
    path = tmp_path / "config.toml"
    path.write_text(text.replace('url = "sqlite:///appeals.db"', f'url = "{url}"'), "utf-8")
    return path


@pytest.mark.parametrize("command", ["run", "check-config"])
def test_storage_in_a_missing_folder(
    tmp_path: Path,
    command: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in list(os.environ):
        if name.upper().startswith("APPEALS_"):
            monkeypatch.delenv(name)
    db = tmp_path / "nonexistent" / "a.db"
    config = config_with_storage(tmp_path, f"sqlite:///{db}")
    extra = ["--console"] if command == "run" else []
    assert main([command, "--config", str(config), *extra]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line == (f"error: {config}: storage.url: {db}: the folder {db.parent} does not exist")


def test_check_config_refuses_a_database_of_another_program(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.upper().startswith("APPEALS_"):
            monkeypatch.delenv(name)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"x" * 4096)
    config = config_with_storage(tmp_path, f"sqlite:///{garbage}")
    assert main(["check-config", "--config", str(config)]) == 1
    assert "storage.url" in one_error_line(capsys.readouterr().err)


def test_log_level_is_checked_and_explained(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--log-level", "LOUD"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --log-level: invalid choice: 'LOUD'" in err
    assert "Traceback" not in err
    assert bot.cli._parser().parse_args(["demo", "--log-level", "debug"]).log_level == "DEBUG"
    for command in ("demo", "run"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert "--log-level LEVEL" in out
        assert "DEBUG, INFO, WARNING, ERROR, CRITICAL" in " ".join(out.split())


# --- item 4: python -m bench --help ----------------------------------------------------------


def test_bench_help_prints_usage_and_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m bench {report|startup|memory|burst|pipeline|")
    assert all(name in out for name in ("pipeline", "listings"))
    assert bench_main(["-h"]) == 0
    assert bench_main(["nonsense"]) == 2
    assert "no benchmark called 'nonsense'" in capsys.readouterr().err


def test_bench_instances_says_why_it_measures_nothing_without_postgres(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("APPEALS_TEST_POSTGRES_URL", raising=False)
    assert bench_main(["instances"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("skipped: no PostgreSQL server to measure on")
    assert "--postgres" in out and "APPEALS_TEST_POSTGRES_URL" in out


# --- item 13 and /photo: the console -------------------------------------------------------


def console(settlements: dict[str, str] | None = None) -> tuple[ConsoleChannel, io.StringIO]:
    out = io.StringIO()
    return ConsoleChannel(stdin=io.StringIO(), stdout=out, settlements=settlements), out


def test_as_an_unknown_settlement_says_so_and_keeps_the_identity() -> None:
    channel, out = console({"sergino": "Сергино", "andra": "Андра"})
    assert channel.translate("/as admin:nowhere") is None
    assert channel.user_id == "resident"
    assert "Поселения «nowhere» нет" in out.getvalue()
    assert "Коды поселений: sergino, andra" in out.getvalue()
    channel.translate("/as admin:сЕргино")  # the title, typed as people type
    assert channel.user_id == "admin-sergino"
    channel.translate("/as admin:andra")
    assert channel.user_id == "admin-andra"


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "ftp://example.ru/a.jpg",
        "https://",
        "https://example.ru/" + "a" * PHOTO_URL_MAX,
        "http://exa\u0000mple.ru/a.jpg",
        "https://[::1/a.jpg",
    ],
)
def test_photo_accepts_web_links_only(url: str) -> None:
    channel, out = console()
    assert photo_url(url) is None
    assert channel.translate(f"/photo {url}") is None
    assert texts.DEMO_PHOTO_BAD.format(limit=PHOTO_URL_MAX) in out.getvalue()


def test_photo_with_a_web_link_is_a_photo() -> None:
    channel, _ = console()
    message = channel.translate("/photo https://example.ru/yama.jpg")
    assert message is not None and message.text == ""
    assert [p.url for p in message.photos] == ["https://example.ru/yama.jpg"]
    assert photo_url("HTTP://example.ru/a.jpg") == "HTTP://example.ru/a.jpg"


def test_five_megabytes_of_photo_link_are_refused() -> None:
    channel, _ = console()
    assert channel.translate("/photo https://example.ru/" + "x" * 5_000_000) is None


def test_demo_as_unknown_settlement_end_to_end() -> None:
    script = "/as admin:nowhere\n/list\n/photo file:///etc/passwd\n"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo"],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=clean_env(),
    )
    assert result.returncode == 0, result.stderr
    assert "Поселения «nowhere» нет, вы по-прежнему пишете как console:resident" in result.stdout
    assert "теперь вы пишете как" not in result.stdout
    assert "Фото прикрепляется ссылкой http:// или https://" in result.stdout


def test_the_demo_does_not_nag_about_messengers_it_does_not_run(tmp_path: Path) -> None:
    """Issue 14: after `/staff add sergino tg:42`, every demo start warned about the
    notifications queued for Telegram, which the demo never runs."""
    db = tmp_path / "demo.db"
    first = (
        "/as moderator\n/staff add sergino tg:42\n/as resident\nПодать обращение\nСогласен\n"
        "Дороги\nСергино\nЯма на дороге возле дома культуры\nПропустить\nПропустить\n"
        "Пропустить\nПропустить\nОтправить\n"
    )
    for script in (first, "Меню\n"):
        result = subprocess.run(
            [sys.executable, "-m", "bot", "demo", "--db", str(db)],
            input=script,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env=clean_env(),
        )
        assert result.returncode == 0, result.stderr
        assert "outbox has messages" not in result.stdout + result.stderr
    assert sqlite_count(db, "platform = 'tg'") >= 1  # the notification waits for Telegram


def sqlite_count(path: Path, where: str) -> int:
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute(f"SELECT count(*) FROM outbox WHERE {where}").fetchone()[0])
    finally:
        connection.close()


# --- item 15: «Ответ в срок» before the deadline -------------------------------------------


def register_of(deadline: datetime, answered: datetime | None, now: datetime) -> str:
    created = deadline - timedelta(hours=24)
    row = RegisterRow(
        number=1,
        created_at=created,
        status="answered" if answered else "new",
        category="roads",
        settlement="sergino",
        platform="vk",
        text="Яма",
        place=None,
        latitude=None,
        longitude=None,
        photos=0,
        contact_name=None,
        contact_phone=None,
        deadline_at=deadline,
        first_answer_at=answered,
        rating=None,
        answer=None,
    )
    titles = Titles(
        name="Администрация",
        timezone=ZoneInfo("Asia/Yekaterinburg"),
        answer_within_hours=24,
        categories={},
        settlements={},
    )
    cells = register_row(titles, row, now)
    return cells[list(texts.REGISTER_HEADER).index("Ответ в срок")]


def test_answered_on_time_is_not_no_before_the_deadline() -> None:
    deadline = datetime(2026, 3, 3, 6, tzinfo=UTC)
    before, after = deadline - timedelta(hours=1), deadline + timedelta(hours=1)
    assert register_of(deadline, None, before) == "срок не истёк"
    assert register_of(deadline, None, after) == "нет"
    assert register_of(deadline, before, after) == "да"
    assert register_of(deadline, after, after + timedelta(hours=1)) == "нет"


def test_export_says_the_deadline_has_not_come(tmp_path: Path) -> None:
    db = asyncio.run(fresh_database(tmp_path / "s.db"))
    soon = (datetime.now(UTC) + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT INTO appeals (resident_id, category, settlement, text, platform, chat_id,"
            " created_at, deadline_at, updated_at) VALUES (1, 'roads', 'sergino', 'Яма', 'vk',"
            " '1', ?, ?, ?)",
            ("2026-03-02T06:00:00.000000Z", soon, "2026-03-02T06:00:00.000000Z"),
        )
    conn.close()
    out = tmp_path / "register.csv"
    assert main(["export", "--db", str(db), "--output", str(out)]) == 0
    header, row = (line.split(";") for line in out.read_text("utf-8-sig").splitlines())
    assert row[header.index("Ответ в срок")] == "срок не истёк"


# --- smaller: the help of --delimiter, the chart hint ---------------------------------------


def test_delimiter_help_reads_well(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    out = capsys.readouterr().out
    assert "{;,,}" not in out
    assert "--delimiter CHAR" in out
    assert "';' (the default" in " ".join(out.split())


# --- item 18: identities in /staff add -------------------------------------------------------


@pytest.mark.parametrize("identity", ["vk:abc", "vk:-5", "tg:0", "ok:05", "vk:1.5"])
async def test_staff_add_refuses_an_identity_no_messenger_has(
    office: Harness, identity: str
) -> None:
    moderator: Person = office.person("900", "Модератор", platform="tg")
    async with office.app.db.transaction() as tx:
        before = await tx.staff.all()
    await moderator.say(f"/staff add andra {identity}")
    refusal = texts.BAD_IDENTITY.format(platforms="vk, tg, ok, console, max")
    assert moderator.text.startswith(refusal)
    async with office.app.db.transaction() as tx:
        assert await tx.staff.all() == before
    await moderator.say("/staff add andra vk:7")
    assert moderator.text == texts.STAFF_ADDED.format(identity="vk:7", role="администратор: Андра")


def test_a_scripted_demo_is_not_flood_limited() -> None:
    """Issue 14, item 14: the demo stopped after 20 lines («Вы отправляете слишком много
    сообщений…»), so three appeals in one piped run registered two. The console is one
    person at a keyboard: the flood limit does not apply to it."""
    walk = [
        "Подать обращение",
        "Согласен",
        "Дороги",
        "Сергино",
        "Яма на дороге возле дома культуры",
        "Пропустить",
        "Пропустить",
        "Пропустить",
        "Пропустить",
        "Отправить",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo"],
        input="\n".join(walk * 3) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=clean_env(),
    )
    assert result.returncode == 0, result.stderr
    assert "Обращение №3 зарегистрировано" in result.stdout
    assert "слишком много сообщений" not in result.stdout
