"""`appeals-bot migrate-db` (SPEC §15): an installation filled through the real dialogue, with
appeals in every status, moves from SQLite into PostgreSQL with every row; `report` gives the
same figures before and after; a target that holds anything is refused."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.cli import example_config_path, main
from storage.models import Status
from tests.conftest import Clock, Harness, office_config
from tests.flows import file_appeal

PERIOD = ["--from", "2026-03-01", "--to", "2026-03-31"]


async def cli(*args: str) -> int:
    return await asyncio.to_thread(main, list(args))


async def fill(tmp_path: Path, clock: Clock) -> Path:
    """Appeals in every status, a staff reply, a rating, a question, a draft in progress."""
    office = Harness(office_config(tmp_path), clock, platforms=("vk", "tg"))
    await office.start()
    try:
        admin = office.person("500", "Ольга", platform="tg")
        moderator = office.person("900", "Модератор", platform="tg")
        people = [office.person(str(1001 + i), f"Житель {i}", platform="vk") for i in range(5)]
        numbers = [await file_appeal(person) for person in people]
        clock.advance(hours=2)
        await admin.say(f"/take {numbers[1]}")
        await admin.say(f"/reply {numbers[2]} Засыпали яму.")
        await admin.say(f"/reply {numbers[3]} Сделано.")
        await people[3].press("Вопрос решён")
        await moderator.say(f"/reject {numbers[4]} реклама")
        await admin.say(f"/ask {numbers[0]} Какой номер дома?")
        await people[0].say("Начать")  # a draft in progress
        async with office.app.db.transaction() as tx:
            statuses = {(await tx.appeals.get(n)).status for n in numbers}  # type: ignore[union-attr]
        assert statuses == set(Status)
    finally:
        await office.app.stop()
    return tmp_path / "appeals.db"


async def test_migrate_db_moves_everything_and_report_agrees(
    tmp_path: Path, clock: Clock, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = await fill(tmp_path, clock)
    before_json = tmp_path / "before.json"
    assert (
        await cli(
            "report", "--db", str(db), *PERIOD, "--format", "json", "--output", str(before_json)
        )
        == 0
    )
    capsys.readouterr()

    assert await cli("migrate-db", "--from", f"sqlite:///{db}", "--to", postgres_url) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:-1]}
    for table in (
        "appeals",
        "appeal_events",
        "residents",
        "outbox",
        "staff",
        "drafts",
        "audit_log",
        "questions",
        "inbox",
        "channel_state",
        "bans",
    ):
        assert table in lines, out
        assert lines[table][0] == lines[table][1]
    assert lines["appeals"] == ["5", "5"]
    assert "postgres@" not in out and postgres_url not in out

    config = tmp_path / "pg.toml"
    config.write_text(
        example_config_path()
        .read_text("utf-8")
        .replace('url = "sqlite:///appeals.db"', f'url = "{postgres_url}"'),
        "utf-8",
    )
    after_json = tmp_path / "after.json"
    assert (
        await cli(
            "report",
            "--config",
            str(config),
            *PERIOD,
            "--format",
            "json",
            "--output",
            str(after_json),
        )
        == 0
    )
    before = json.loads(before_json.read_text("utf-8"))
    after = json.loads(after_json.read_text("utf-8"))
    assert before["received"] == 5
    assert after == before

    # Again into the now filled database: refused, nothing touched.
    capsys.readouterr()
    assert await cli("migrate-db", "--from", f"sqlite:///{db}", "--to", postgres_url) == 1
    assert "not empty" in capsys.readouterr().err
