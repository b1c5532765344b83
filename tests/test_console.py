"""The console channel and the CLI as a person uses them: `appeals-bot demo` on a pipe,
`--db` kept between runs, `run --console` stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bot.channels.console import ConsoleChannel
from handlers.messages import Button, Keyboard, Outgoing

ROOT = Path(__file__).resolve().parent.parent

FILING = [
    "Подать обращение",
    "Согласен",
    "Дороги",
    "Сергино",
    "Яма на дороге возле дома культуры, глубокая",
    "ул. Центральная, 5",
    "Пропустить",
    "Оставить как есть",
    "Пропустить",
    "Отправить",
]


def cli(*args: str, stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPEALS_")}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )


def test_demo_files_an_appeal_through_a_pipe() -> None:
    result = cli("demo", stdin="\n".join(FILING) + "\n")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "Обращение №1 зарегистрировано" in result.stdout
    # numbered buttons on choice steps, bracketed labels on free-text steps
    assert "1. Подать обращение" in result.stdout
    assert "[Пропустить] · [Назад] · [Отмена]" in result.stdout


def test_demo_answer_reaches_the_resident() -> None:
    """SPEC §11: one person files an appeal, answers it as the administrator, sees it arrive."""
    script = [
        *FILING,
        "/as admin:sergino",
        "/take 1",
        "/reply №1 Яму засыплем до пятницы.",
        "/as resident",
        "Вопрос решён",
        "Мои обращения",
    ]
    result = cli("demo", stdin="\n".join(script) + "\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    notification = out.index("[→ console:admin-sergino]\nНовое обращение №1")
    answer = out.index(
        "[→ console:resident]\nОтвет на обращение №1\n"
        "Администрация сельского поселения Сергино:\n\nЯму засыплем до пятницы."
    )
    assert notification < answer
    assert "Обращение №1 закрыто как решённое" in out
    assert "№1 от" in out and "· Закрыто" in out
    assert "  Ответ: Яму засыплем до пятницы." in out


def test_demo_keeps_its_database_with_db(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    first = cli("demo", "--db", str(db), stdin="\n".join(FILING) + "\n")
    assert "№1" in first.stdout
    second = cli("demo", "--db", str(db), stdin="Мои обращения\n")
    assert "№1 от" in second.stdout
    assert "Дороги · Сергино · Новое" in second.stdout


def test_demo_photo_and_location_lines(tmp_path: Path) -> None:
    lines = [
        *FILING[:4],
        "Не вывозят мусор с контейнерной площадки",
        "/location 62.4536 65.0489",
        "/photo https://example.org/trash.jpg",
        "Готово",
        "Пропустить",
        "Пропустить",
    ]
    result = cli("demo", stdin="\n".join(lines) + "\n")
    assert "Геопозиция: 62.453600, 65.048900" in result.stdout
    assert "Фото: 1" in result.stdout


def test_run_needs_a_channel(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text((ROOT / "config.example.toml").read_text("utf-8"), "utf-8")
    result = cli("run", "--config", str(config))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "no channel is enabled" in result.stderr


def test_run_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    text = (ROOT / "config.example.toml").read_text("utf-8")
    config.write_text(
        text.replace('url = "sqlite:///appeals.db"', f'url = "sqlite:///{tmp_path}/run.db"'),
        "utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPEALS_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--config", str(config), "--console"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert process.stdin is not None and process.stderr is not None
    process.stdin.write("Начать\n")
    process.stdin.flush()
    deadline = time.monotonic() + 30
    started = (tmp_path / "run.db").exists()
    while not started and time.monotonic() < deadline:
        time.sleep(0.05)
        started = (tmp_path / "run.db").exists()
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "appeals-bot stopped" in err
    assert "канал обратной связи" in out


def test_console_renders_buttons_and_marks_other_chats() -> None:
    out = io.StringIO()
    channel = ConsoleChannel(stdin=io.StringIO(), stdout=out)
    keyboard = Keyboard(rows=((Button("Да", "y"), Button("Нет", "n")),), numbered=True)

    async def send() -> None:
        await channel.send(Outgoing("console", "resident", "Вопрос?", keyboard))
        await channel.send(Outgoing("console", "admin-sergino", "Новое обращение №1"))

    asyncio.run(send())
    assert "Вопрос?\n\n1. Да\n2. Нет" in out.getvalue()
    assert "[→ console:admin-sergino]\nНовое обращение №1" in out.getvalue()


def test_console_translates_lines() -> None:
    channel = ConsoleChannel(stdin=io.StringIO(), stdout=io.StringIO())
    assert channel.translate("   \n") is None
    photo = channel.translate("/photo https://example.org/a.jpg\n")
    assert photo is not None and photo.photos[0].url == "https://example.org/a.jpg"
    place = channel.translate("/location 62,45 65,07")
    assert place is not None and place.location is not None
    assert (place.location.latitude, place.location.longitude) == (62.45, 65.07)
    typed = channel.translate("/location где-то тут")
    assert typed is not None and typed.location is None and typed.text == "/location где-то тут"
