"""`appeals-bot backup --to FILE` (SPEC §17, issue 20): the command line over bot/backup.py.

The acceptance test runs the real `python -m bot run` process against the fake VK server
(in a process of its own, tests/fakes/serve.py, as tests/test_process.py does) while
residents keep filing appeals, and runs `python -m bot backup` beside it: the copy opens,
passes integrity_check and holds every appeal committed before the backup started, and the
bot goes on registering appeals meanwhile. The other tests call bot.cli.main in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import sys
import tomllib
from pathlib import Path

import pytest

from bot.cli import database_problem, example_config_path, main
from storage.migrate import available_migrations
from tests.test_backup import make_appeals_db, numbers_in, pragma
from tests.test_process import (
    FIRST_HALF,
    SECOND_HALF,
    START_WITHIN,
    STOP_WITHIN,
    TOKEN,
    BotProcess,
    FakeServer,
    VkUser,
    database,
    exited,
    spawn,
    toml_text,
    until,
    walk,
    write_config,
)

pytestmark = pytest.mark.timeout(240)

GROUP = 777
WRITERS = 3
SUCCESS = re.compile(
    r"^(?P<target>.+): (?P<appeals>\d+) appeals, (?P<size>\d+) bytes, "
    r"schema version (?P<version>\d+), integrity ok \(\d+\.\d s\)$"
)


def appeal_numbers(db_path: Path) -> set[int]:
    with database(db_path) as db:
        return {row[0] for row in db.execute("SELECT id FROM appeals")}


async def test_backup_of_a_running_bots_database_holds_every_committed_appeal(
    tmp_path: Path,
) -> None:
    fake = FakeServer(tmp_path, "vk")
    bot: BotProcess | None = None
    writers: list[asyncio.Task[int]] = []
    stop = asyncio.Event()
    try:
        await fake.start()
        vk = {"token": TOKEN, "group_id": GROUP, "api_url": fake.info["api_url"]}
        config = write_config(tmp_path, "vk:600", vk=vk)
        db_path = tmp_path / "appeals.db"
        bot = BotProcess(tmp_path, config)
        await bot.start()

        async def polling() -> bool:
            assert bot is not None and bot.running(), bot.log() if bot else ""
            return int((await fake.state())["holding"]) > 0

        await until(polling, START_WITHIN, "the bot's first long poll")

        async def resident_files(first: int) -> int:
            """Fresh residents, one after another, each files a whole appeal."""
            filed = 0
            user = first
            while not stop.is_set():
                await walk(VkUser(fake, user), FIRST_HALF + SECOND_HALF)
                filed += 1
                user += WRITERS
            return filed

        writers = [asyncio.create_task(resident_files(5000 + n)) for n in range(WRITERS)]

        async def some_appeals() -> bool:
            for task in writers:
                if task.done():
                    task.result()  # a writer that failed says why
            return db_path.exists() and len(appeal_numbers(db_path)) >= WRITERS

        await until(some_appeals, 120, "the first appeals")
        committed = appeal_numbers(db_path)  # every appeal committed before the backup
        target = tmp_path / "backups" / "appeals-2026-03-02.db"
        target.parent.mkdir()
        log = tmp_path / "backup.log"
        replies_before = len((await fake.state())["sent"])
        backup = await spawn(
            [sys.executable, "-m", "bot", "backup", "--config", str(config), "--to", str(target)],
            tmp_path,
            log,
        )
        code = await exited(backup, 60)
        output = log.read_text("utf-8")
        assert code == 0, output
        match = SUCCESS.match(output.strip())
        assert match is not None, output
        assert Path(match["target"]) == target
        # The bot answered (and so committed) dialogue steps while the command ran.
        assert len((await fake.state())["sent"]) > replies_before

        # The copy opens, is sound, holds every committed appeal, and nothing else is left.
        assert pragma(target, "integrity_check") == ["ok"]
        assert pragma(target, "user_version") == [len(available_migrations())]
        copied = set(numbers_in(target))
        assert committed <= copied, sorted(committed - copied)
        assert int(match["appeals"]) == len(copied)
        assert int(match["size"]) == target.stat().st_size
        assert sorted(p.name for p in target.parent.iterdir()) == [target.name]
        assert database_problem(target) is None  # the bot would take it as it is (restore)

        # The bot was not held up: it goes on registering appeals after the copy's.
        async def more_appeals() -> bool:
            assert bot is not None and bot.running(), bot.log() if bot else ""
            return len(appeal_numbers(db_path)) > len(copied)

        await until(more_appeals, 120, "appeals registered after the backup")
        stop.set()
        filed = sum(await asyncio.gather(*writers))
        assert filed >= len(copied) + 1
        assert await bot.sigterm(STOP_WITHIN) == 0, bot.log()
        print(f"\nbackup beside a running bot: {len(copied)} appeals copied, {filed} filed")
    finally:
        stop.set()
        for task in writers:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        if bot is not None and bot.running():
            assert bot.process is not None
            bot.process.kill()
            await bot.process.wait()
        await fake.close()


# --- the command line in-process --------------------------------------------------------------


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_backup_by_db_and_by_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "appeals.db"
    await make_appeals_db(source, 7)
    target = tmp_path / "copy.db"
    code, out, err = await asyncio.to_thread(
        run_cli, ["backup", "--db", str(source), "--to", str(target)], capsys
    )
    assert (code, err) == (0, "")
    match = SUCCESS.match(out.strip())
    assert match is not None and match["appeals"] == "7", out
    assert numbers_in(target) == list(range(1, 8))

    # From the configuration, with a relative path resolved in the working directory.
    data = tomllib.loads(example_config_path().read_text("utf-8"))
    data["storage"]["url"] = "sqlite:///appeals.db"
    config = tmp_path / "config.toml"
    config.write_text(toml_text(data), "utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("APPEALS_STORAGE__URL", raising=False)
    code, out, err = await asyncio.to_thread(
        run_cli, ["backup", "--config", str(config), "--to", "again.db"], capsys
    )
    assert (code, err) == (0, "")
    assert out.startswith("again.db: 7 appeals, ")
    assert pragma(tmp_path / "again.db", "integrity_check") == ["ok"]


def test_backup_failures_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.db"
    code, out, err = run_cli(
        ["backup", "--db", str(missing), "--to", str(tmp_path / "c.db")], capsys
    )
    assert code == 1 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err

    not_ours = tmp_path / "other.db"
    sqlite3.connect(not_ours).execute("CREATE TABLE t (x)").connection.close()
    code, _, err = run_cli(
        ["backup", "--db", str(not_ours), "--to", str(tmp_path / "c.db")], capsys
    )
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "c.db").exists()

    with pytest.raises(SystemExit) as refused:  # --config and --db exclude each other
        main(["backup", "--db", "a.db", "--config", "c.toml", "--to", "x.db"])
    assert refused.value.code == 2
    with pytest.raises(SystemExit):  # --to is required
        main(["backup", "--db", "a.db"])
    capsys.readouterr()


@pytest.mark.parametrize("where", ["file", "environment"])
def test_backup_of_a_postgresql_deployment_points_to_pg_dump(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    url = "postgresql://appeals:secret@db:5432/appeals"
    data = tomllib.loads(example_config_path().read_text("utf-8"))
    if where == "file":
        data["storage"]["url"] = url
        monkeypatch.delenv("APPEALS_STORAGE__URL", raising=False)
    else:
        monkeypatch.setenv("APPEALS_STORAGE__URL", url)
    config = tmp_path / "config.toml"
    config.write_text(toml_text(data), "utf-8")
    code, out, err = run_cli(["backup", "--config", str(config), "--to", "x.db"], capsys)
    assert (code, out) == (1, "")
    assert err == (
        "error: backup copies a SQLite database; for PostgreSQL use pg_dump (README, «Deploy»)\n"
    )
    assert "secret" not in err
