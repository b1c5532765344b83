"""`bot.backup`: a consistent, verified copy of a live SQLite database (SPEC §17, issue 20).

Real files in tmp_path, a real `storage.db.Database` writing appeals through its repositories
while the backup runs; nothing of ours is mocked.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.backup import BackupError, BackupResult, backup_sqlite, backup_sqlite_sync
from storage.db import Database
from storage.migrate import available_migrations

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
NEWEST = len(available_migrations())
# About 2 KB of text a row, so that a few thousand appeals make a file of several megabytes
# and the copy takes long enough for the writer to commit while it runs.
TEXT = "Яма на дороге возле дома культуры, ул. Центральная, 5. " * 20


async def file_appeals(db: Database, count: int, start: int = 0) -> list[int]:
    """File `count` appeals in one transaction; their numbers, durable once this returns."""
    numbers: list[int] = []
    async with db.transaction() as tx:
        for n in range(start, start + count):
            resident = await tx.residents.get_or_create(
                "vk", str(1000 + n % 50), f"chat-{n % 50}", NOW
            )
            appeal = await tx.appeals.create(
                resident_id=resident.id,
                category="roads",
                settlement="sergino",
                text=f"{n}: {TEXT}",
                place=None,
                latitude=None,
                longitude=None,
                photos=(),
                contact_name=None,
                contact_phone=None,
                platform="vk",
                chat_id=resident.chat_id,
                created_at=NOW,
                deadline_at=NOW + timedelta(hours=24),
            )
            numbers.append(appeal.number)
    return numbers


async def make_appeals_db(path: Path, count: int) -> None:
    db = await Database.open(path)
    try:
        await file_appeals(db, count)
    finally:
        await db.close()


def numbers_in(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT id FROM appeals ORDER BY id")]
    finally:
        conn.close()


def pragma(path: Path, name: str) -> list[object]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute(f"PRAGMA {name}")]
    finally:
        conn.close()


def leftovers(directory: Path, *, keep: set[str]) -> list[str]:
    """Files in `directory` other than those named in `keep` (a partial copy, a journal)."""
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


def assert_good_copy(path: Path, result: BackupResult) -> list[int]:
    """The copy opens, passes integrity_check, is one self-contained file of the newest
    schema, and its figures are the ones reported; returns the appeal numbers in it."""
    assert pragma(path, "integrity_check") == ["ok"]
    assert pragma(path, "journal_mode") == ["delete"]
    assert pragma(path, "user_version") == [NEWEST]
    numbers = numbers_in(path)
    assert result.target == path
    assert result.appeals == len(numbers)
    assert result.schema_version == NEWEST
    assert result.size_bytes == path.stat().st_size > 0
    assert not any(path.with_name(path.name + s).exists() for s in ("-wal", "-shm", "-journal"))
    return numbers


# --- a live database ---------------------------------------------------------------------


async def test_backup_of_a_database_being_written_holds_every_committed_appeal(
    tmp_path: Path,
) -> None:
    source = tmp_path / "appeals.db"
    backups = tmp_path / "backups"
    backups.mkdir()
    target = backups / "appeals-2026-03-02.db"
    target.write_bytes(b"yesterday's backup, to be replaced")

    db = await Database.open(source)
    committed = await file_appeals(db, 3000)
    stop = asyncio.Event()
    under_way = asyncio.Event()

    async def writer() -> None:
        """The running bot: one appeal per transaction, as fast as it can commit."""
        n = len(committed)
        while not stop.is_set():
            committed.extend(await file_appeals(db, 1, start=n))
            n += 1
            if n >= 3020:
                under_way.set()

    writing = asyncio.create_task(writer())
    try:
        await under_way.wait()  # the writer is under way before the backup starts
        before = list(committed)
        result = await backup_sqlite(source, target)
        during = len(committed) - len(before)
        await asyncio.sleep(0.05)
    finally:
        stop.set()
        await writing
    after = list(committed)
    await db.close()

    numbers = assert_good_copy(target, result)
    # Every appeal committed before the backup started is in the copy ...
    assert set(before) <= set(numbers)
    # ... and the copy is one moment of the database: a gapless run of numbers from the
    # first, none that was not committed, and not what came after.
    assert numbers == list(range(1, len(numbers) + 1))
    assert set(numbers) <= set(after)
    assert len(numbers) < len(after)
    # The bot was not held up: it committed while the backup ran.
    assert during > 0, "the writer made no commit while the backup ran"
    assert leftovers(backups, keep={target.name}) == []

    # The copy is a working database for the bot itself (this is what a restore opens).
    restored = await Database.open(target)
    try:
        async with restored.transaction() as tx:
            last = await tx.appeals.get(numbers[-1])
    finally:
        await restored.close()
    assert last is not None and last.text == f"{numbers[-1] - 1}: {TEXT}"


async def test_backup_of_an_idle_database_and_its_open_bot(tmp_path: Path) -> None:
    """The plain case: a database the bot has open (WAL, some rows only in the -wal file)."""
    source = tmp_path / "appeals.db"
    db = await Database.open(source)
    try:
        await file_appeals(db, 25)
        assert source.with_name("appeals.db-wal").stat().st_size > 0
        result = await backup_sqlite(source, tmp_path / "copy.db")
    finally:
        await db.close()
    assert assert_good_copy(tmp_path / "copy.db", result) == list(range(1, 26))


def test_backup_of_a_stopped_bots_database_changes_nothing_beside_it(tmp_path: Path) -> None:
    """No -wal or -shm is left beside a database nobody has open (they would belong to
    whoever ran the backup, perhaps root, and stop the bot from opening its database), and
    the database itself is not changed."""
    source = tmp_path / "appeals.db"
    asyncio.run(make_appeals_db(source, 40))
    before = source.read_bytes()
    backups = tmp_path / "backups"
    backups.mkdir()
    result = backup_sqlite_sync(source, backups / "appeals.db")
    assert assert_good_copy(backups / "appeals.db", result) == list(range(1, 41))
    assert leftovers(tmp_path, keep={"appeals.db", "backups"}) == []
    assert source.read_bytes() == before


def test_rollback_journal_source_copied_in_slices_despite_a_busy_writer(tmp_path: Path) -> None:
    """A database not in WAL mode is copied a few pages at a time with pauses between, in
    which a writer (another connection, as another process would be) gets its turn; writes
    that keep restarting the copy do not keep it from finishing."""
    source = tmp_path / "appeals.db"
    asyncio.run(make_appeals_db(source, 400))
    conn = sqlite3.connect(source, isolation_level=None)
    assert conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0] == "delete"
    conn.close()

    committed: list[int] = numbers_in(source)
    stop = threading.Event()
    failures: list[BaseException] = []

    def writer() -> None:
        db = sqlite3.connect(source, isolation_level=None, timeout=30)
        try:
            while not stop.is_set():
                cursor = db.execute(
                    "INSERT INTO appeals (resident_id, category, settlement, text, photos,"
                    " platform, chat_id, created_at, deadline_at, updated_at)"
                    " SELECT resident_id, category, settlement, text, photos, platform,"
                    " chat_id, created_at, deadline_at, updated_at FROM appeals WHERE id = 1"
                )
                assert cursor.lastrowid is not None
                committed.append(cursor.lastrowid)
                time.sleep(0.002)
        except BaseException as error:
            failures.append(error)
        finally:
            db.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(committed) < 410:
            time.sleep(0.001)
        before = list(committed)
        result = backup_sqlite_sync(source, tmp_path / "copy.db", pages_per_step=4, pause=0.005)
        during = len(committed) - len(before)
    finally:
        stop.set()
        thread.join()
    assert failures == []

    copy = tmp_path / "copy.db"
    assert pragma(copy, "integrity_check") == ["ok"]
    numbers = numbers_in(copy)
    assert result.appeals == len(numbers)
    assert set(before) <= set(numbers)
    assert numbers == list(range(1, len(numbers) + 1))
    assert during > 0, "the writer made no commit while the backup ran"


# --- refusals and failures: a clear error and no file left behind ------------------------


@pytest.fixture
def appeals_db(tmp_path: Path) -> Path:
    source = tmp_path / "appeals.db"
    asyncio.run(make_appeals_db(source, 30))
    return source


def test_missing_target_directory(appeals_db: Path, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="no such directory") as caught:
        backup_sqlite_sync(appeals_db, tmp_path / "nowhere" / "copy.db")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "nowhere").exists()


def test_target_is_a_directory(appeals_db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    with pytest.raises(BackupError, match="is a directory"):
        backup_sqlite_sync(appeals_db, folder)
    assert list(folder.iterdir()) == []


def test_target_is_the_source_itself(appeals_db: Path, tmp_path: Path) -> None:
    before = appeals_db.read_bytes()
    alias = tmp_path / "alias.db"
    alias.symlink_to(appeals_db)
    for target in (appeals_db, tmp_path / "." / "appeals.db", alias):
        with pytest.raises(BackupError, match="is the database itself"):
            backup_sqlite_sync(appeals_db, target)
    with pytest.raises(BackupError, match="database's own files"):
        backup_sqlite_sync(appeals_db, tmp_path / "appeals.db-wal")
    assert appeals_db.read_bytes() == before
    assert leftovers(tmp_path, keep={"appeals.db", "alias.db"}) == []


def test_missing_source(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="no database file here"):
        backup_sqlite_sync(tmp_path / "appeals.db", tmp_path / "copy.db")
    assert list(tmp_path.iterdir()) == []


def _plain_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('not ours')")
    conn.commit()
    conn.close()


def _versioned_without_appeals(path: Path) -> None:
    _plain_sqlite(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 3")
    conn.close()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_plain_sqlite, "not an appeals-bot database .no schema version"),
        (_versioned_without_appeals, "not an appeals-bot database .no appeals table"),
        (lambda p: p.write_text("[bot]\nname = 'a config file, not a database'\n"), "cannot read"),
        (lambda p: p.write_bytes(b""), "not an appeals-bot database"),
    ],
    ids=["other-sqlite-db", "no-appeals-table", "text-file", "empty-file"],
)
def test_source_not_an_appeals_bot_database(
    tmp_path: Path, make: Callable[[Path], object], message: str
) -> None:
    source = tmp_path / "source.db"
    make(source)
    backups = tmp_path / "backups"
    backups.mkdir()
    older = backups / "appeals.db"
    older.write_bytes(b"an older backup")
    with pytest.raises(BackupError, match=message) as caught:
        backup_sqlite_sync(source, older)
    assert "\n" not in str(caught.value)
    assert older.read_bytes() == b"an older backup"  # the old backup is kept as it was
    assert leftovers(backups, keep={"appeals.db"}) == []


def test_a_copy_failing_integrity_check_is_not_kept(tmp_path: Path) -> None:
    """A damaged page in the source (a bad disk) is caught on the copy before anything is
    renamed into place: no new file, the older backup untouched."""
    source = tmp_path / "appeals.db"
    asyncio.run(make_appeals_db(source, 300))
    conn = sqlite3.connect(source)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    (root,) = conn.execute("SELECT rootpage FROM sqlite_schema WHERE name = 'appeals'").fetchone()
    conn.close()
    assert root > 1
    with source.open("r+b") as stream:  # an impossible b-tree page type on the table's root
        stream.seek((root - 1) * page_size)
        stream.write(b"\x07")
    backups = tmp_path / "backups"
    backups.mkdir()
    older = backups / "appeals.db"
    older.write_bytes(b"an older backup")

    with pytest.raises(BackupError, match=r"integrity_check|cannot be read back|cannot read") as e:
        backup_sqlite_sync(source, older)
    assert "\n" not in str(e.value)
    assert older.read_bytes() == b"an older backup"
    assert leftovers(backups, keep={"appeals.db"}) == []
