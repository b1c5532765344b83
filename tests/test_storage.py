"""The storage layer on a real SQLite file: pragmas, migrations, transactions, repositories,
verbatim text and durability across a close and reopen (SPEC §7)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

import storage
from storage.appeals import AppealRepository
from storage.db import Database, Store, Tx
from storage.migrate import _NAME, available_migrations
from storage.models import Draft, Photo, Resident, Status
from storage.sqlite import SqliteConnection
from storage.times import to_db
from tests.conftest import open_test_store

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
INTEGRITY_ERRORS = (sqlite3.IntegrityError, psycopg.IntegrityError)
NEWEST = len(available_migrations())

# Text a resident may well type, and text an attacker may type: all must come back as given.
TRICKY_TEXTS = [
    "'); DROP TABLE appeals; --",
    'Robert"); DELETE FROM residents WHERE ("1"="1',
    "1' OR '1'='1",
    "%_\\ LIKE wildcards and a backslash \\n (not a newline)",
    "Кавычки «ёлочки» и „лапки“, апостроф ’ и '",
    "Эмодзи 🕳️🚧👷‍♀️ и флаг 🇷🇺",
    "عربي: شارع مكسور",
    "עברית: הכביש שבור",
    "mixed ‏RTL‎ marks and zero\u200dwidth\u200bspaces",
    "combining: е\u0301 and a very long line " + "я" * 3000,
]


def raw(path: Path) -> sqlite3.Connection:
    """A second, plain sqlite3 connection to the same file (what another process would see)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


def raw_scalar(path: Path, sql: str, params: tuple[object, ...] = ()) -> object:
    conn = raw(path)
    try:
        row = conn.execute(sql, params).fetchone()
    finally:
        conn.close()
    return row[0] if row is not None else None


def schema_of(path: Path) -> list[tuple[str, str, str]]:
    """Every table, index and trigger definition in the file, in a stable order."""
    conn = raw(path)
    try:
        rows = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name"
        ).fetchall()
    finally:
        conn.close()
    return [(row[0], row[1], row[2]) for row in rows]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "appeals.db"


@pytest.fixture
async def db(storage_url: str) -> AsyncIterator[Store]:
    """The database of the test's backend: SQLite at db_path, or a PostgreSQL schema."""
    database = await open_test_store(storage_url)
    yield database
    await database.close()


async def make_resident(tx: Tx, user_id: str = "1001", platform: str = "vk") -> Resident:
    return await tx.residents.get_or_create(platform, user_id, f"chat-{user_id}", NOW)


async def make_appeal(
    tx: Tx,
    resident: Resident,
    *,
    text: str = "Яма на дороге",
    photos: tuple[Photo, ...] = (),
    contact_name: str | None = None,
    contact_phone: str | None = None,
    place: str | None = None,
    created_at: datetime = NOW,
) -> int:
    appeal = await tx.appeals.create(
        resident_id=resident.id,
        category="roads",
        settlement="sergino",
        text=text,
        place=place,
        latitude=None,
        longitude=None,
        photos=photos,
        contact_name=contact_name,
        contact_phone=contact_phone,
        platform=resident.platform,
        chat_id=resident.chat_id,
        created_at=created_at,
        deadline_at=created_at + timedelta(hours=24),
    )
    return appeal.number


async def resident_then_crash(db: Database) -> None:
    """A transaction that writes a resident and then fails."""
    async with db.transaction() as tx:
        await make_resident(tx)
        raise ValueError("crash")


# --- opening and pragmas -------------------------------------------------------------------


async def test_open_sets_the_pragmas_of_spec_7(db: Database, db_path: Path) -> None:
    assert await db.pragma("journal_mode") == "wal"
    assert await db.pragma("synchronous") == "2"  # FULL
    assert await db.pragma("foreign_keys") == "1"
    # Another process's write lock is waited for in aiosqlite's thread, not on the loop.
    assert await db.pragma("busy_timeout") == "5000"
    assert await db.pragma("user_version") == str(NEWEST)


async def test_no_statement_runs_on_the_event_loop(db: Database, db_path: Path) -> None:
    """aiosqlite is the only way to the database (SPEC §2): every statement of an update,
    its transaction control and its COMMIT run in aiosqlite's thread."""
    threads: set[int] = set()
    await db._conn.aio.set_trace_callback(lambda _sql: threads.add(threading.get_ident()))
    async with db.transaction() as tx:
        await tx.arrive("vk", "1", "vk:1")
        await tx.drafts.save("vk", "1", Draft(step="category"), NOW)
    async with db.read() as view:
        await view.appeals.figures(NOW - timedelta(days=1), NOW)
    await db._conn.aio.set_trace_callback(None)
    assert threads and threading.get_ident() not in threads


async def test_posted_writes_ride_in_the_next_statements_trip(tmp_path: Path) -> None:
    """Posted writes cost no trip of their own: they run, in order, in the trip of the next
    statement that answers (or of the flush). The first failing one raises its error there,
    and nothing posted after it runs."""
    conn = await SqliteConnection.connect(str(tmp_path / "trips.db"))
    try:
        await conn.execute("CREATE TABLE t (a INTEGER UNIQUE)")
        trips = conn.round_trips
        conn.post("INSERT INTO t VALUES (?)", (1,))
        conn.post("INSERT INTO t VALUES (?)", (2,))
        assert conn.round_trips == trips  # nothing has gone anywhere yet
        rows = await conn.fetchall("SELECT a FROM t ORDER BY a")
        assert [row[0] for row in rows] == [1, 2]
        assert conn.round_trips == trips + 1
        conn.post("INSERT INTO t VALUES (?)", (1,))  # breaks UNIQUE
        conn.post("INSERT INTO t VALUES (?)", (3,))
        with pytest.raises(sqlite3.IntegrityError):
            await conn.fetchall("SELECT a FROM t")
        assert [row[0] for row in await conn.fetchall("SELECT a FROM t ORDER BY a")] == [1, 2]
        conn.post("INSERT INTO t VALUES (?)", (4,))
        conn.discard()  # a failing unit's writes that never ran are forgotten
        await conn.flush()
        assert [row[0] for row in await conn.fetchall("SELECT a FROM t ORDER BY a")] == [1, 2]
    finally:
        await conn.close()


async def test_another_writer_is_waited_for_without_stopping_the_loop(
    db: Database, db_path: Path
) -> None:
    """Another process holds the write lock for a while (a manual sqlite3 session, say): an
    update waits for it, and meanwhile the event loop keeps serving everything else."""
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def update() -> None:
        async with db.transaction() as tx:
            await tx.drafts.save("vk", "waited", Draft(step="category"), NOW)

    ticking = asyncio.create_task(ticker())
    waiting = asyncio.create_task(update())
    await asyncio.sleep(0.3)
    assert not waiting.done()
    assert ticks >= 10  # the loop ran while the update waited for the lock
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(waiting, 5)
    ticking.cancel()
    assert raw_scalar(db_path, "SELECT count(*) FROM drafts WHERE user_id = 'waited'") == 1


async def test_wal_mode_is_stored_in_the_file(db: Database, db_path: Path) -> None:
    # journal_mode=WAL is persistent: another connection to the file sees it too.
    assert raw_scalar(db_path, "PRAGMA journal_mode") == "wal"


async def test_foreign_keys_are_enforced(db: Database) -> None:
    with pytest.raises(INTEGRITY_ERRORS):
        async with db.transaction() as tx:
            await tx.thread.add(999, kind="note", author="resident", now=NOW, text="orphan")


# --- migrations ----------------------------------------------------------------------------


def test_migrations_are_numbered_one_to_n() -> None:
    migrations = available_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations, "there is at least the initial migration"
    for migration in migrations:
        assert migration.name.startswith(f"{migration.version:04d}_")
        assert migration.sql.strip()


def test_no_migration_file_is_silently_ignored() -> None:
    # A file named e.g. 0003_Add-Column.sql would not match the pattern and never be applied.
    folder = Path(storage.__file__).parent / "migrations"
    sql_files = sorted(p.name for p in folder.glob("*.sql"))
    assert sql_files == sorted(m.name for m in available_migrations())
    assert all(_NAME.match(name) for name in sql_files)


@pytest.fixture
def empty_file(db_path: Path) -> Path:
    """A zero-byte file, as `touch appeals.db` leaves it."""
    db_path.write_bytes(b"")
    return db_path


async def test_empty_file_comes_up_to_date(empty_file: Path) -> None:
    db_path = empty_file
    assert db_path.stat().st_size == 0
    database = await Database.open(db_path)
    try:
        assert await database.pragma("user_version") == str(NEWEST)
        async with database.transaction() as tx:
            await make_resident(tx)
    finally:
        await database.close()
    assert raw_scalar(db_path, "PRAGMA user_version") == NEWEST


@pytest.mark.parametrize("start", range(NEWEST))
async def test_older_file_is_upgraded_and_keeps_its_rows(tmp_path: Path, start: int) -> None:
    path = tmp_path / "old.db"
    old = await Database.open(path, migrate_to=start)
    try:
        assert await old.pragma("user_version") == str(start)
    finally:
        await old.close()
    if start >= 1:
        # A resident written by the version-1 program, with plain SQL of that version.
        conn = raw(path)
        conn.execute(
            "INSERT INTO residents (platform, user_id, chat_id, created_at)"
            " VALUES ('vk', '77', '77', '2025-01-01T00:00:00.000000Z')"
        )
        conn.close()

    upgraded = await Database.open(path)
    try:
        assert await upgraded.pragma("user_version") == str(NEWEST)
        async with upgraded.transaction() as tx:
            kept = await tx.residents.find("vk", "77")
            # The upgraded schema is usable, not only present.
            fresh = await make_resident(tx, "78")
            await make_appeal(tx, fresh)
    finally:
        await upgraded.close()
    if start >= 1:
        assert kept is not None and kept.chat_id == "77"
    else:
        assert kept is None

    # An upgraded file ends with exactly the schema of a file created new.
    new_path = tmp_path / "new.db"
    new = await Database.open(new_path)
    await new.close()
    assert schema_of(path) == schema_of(new_path)


async def test_version_one_rows_survive_every_later_migration(db_path: Path) -> None:
    first = await Database.open(db_path, migrate_to=1)
    await first.close()
    conn = raw(db_path)
    conn.execute(
        "INSERT INTO residents (platform, user_id, chat_id, display_name, created_at)"
        " VALUES ('tg', '5', '5', 'Анна', '2025-01-01T00:00:00.000000Z')"
    )
    conn.execute(
        "INSERT INTO appeals (resident_id, category, settlement, text, platform, chat_id,"
        " created_at, deadline_at, updated_at) VALUES (1, 'roads', 'sergino', 'старое',"
        " 'tg', '5', '2025-01-01T00:00:00.000000Z', '2025-01-02T00:00:00.000000Z',"
        " '2025-01-01T00:00:00.000000Z')"
    )
    conn.close()
    database = await Database.open(db_path)
    try:
        async with database.transaction() as tx:
            resident = await tx.residents.find("tg", "5")
            appeal = await tx.appeals.get(1)
    finally:
        await database.close()
    assert resident is not None and resident.display_name == "Анна"
    assert appeal is not None and appeal.text == "старое" and appeal.status is Status.NEW


async def test_newer_schema_than_the_program_is_refused(db_path: Path) -> None:
    database = await Database.open(db_path)
    async with database.transaction() as tx:
        await make_resident(tx)
    await database.close()
    conn = raw(db_path)
    conn.execute(f"PRAGMA user_version = {NEWEST + 1}")
    conn.close()

    with pytest.raises(RuntimeError, match=r"newer than this program knows"):
        await Database.open(db_path)
    # Refusing changed nothing in the file.
    assert raw_scalar(db_path, "PRAGMA user_version") == NEWEST + 1
    assert raw_scalar(db_path, "SELECT count(*) FROM residents") == 1


async def test_opening_twice_does_not_migrate_again(db_path: Path) -> None:
    first = await Database.open(db_path)
    async with first.transaction() as tx:
        await make_resident(tx)
    await first.close()
    second = await Database.open(db_path)
    try:
        assert await second.pragma("user_version") == str(NEWEST)
        async with second.transaction() as tx:
            assert await tx.residents.find("vk", "1001") is not None
    finally:
        await second.close()


# --- transactions --------------------------------------------------------------------------


async def test_exception_in_transaction_rolls_everything_back(db: Database) -> None:
    async def write_then_fail() -> None:
        async with db.transaction() as tx:
            resident = await make_resident(tx)
            await make_appeal(tx, resident)
            await tx.drafts.save("vk", "1001", Draft(step="category"), NOW)
            await tx.outbox.add("vk", "1001", {"text": "hi"}, NOW)
            await tx.events.record_once("vk", "e1", NOW)
            await tx.audit.add("vk:1", "test", NOW)
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await write_then_fail()

    async with db.transaction() as tx:
        assert await tx.residents.find("vk", "1001") is None
        assert await tx.appeals.get(1) is None
        assert await tx.drafts.get("vk", "1001") is None
        assert await tx.outbox.count("pending") == 0
        assert await tx.audit.entries() == []
        # The event was not recorded, so a redelivery would be processed.
        assert await tx.events.record_once("vk", "e1", NOW) is True


async def test_database_is_usable_after_a_rollback(db: Database) -> None:
    with pytest.raises(ValueError, match="crash"):
        await resident_then_crash(db)
    async with db.transaction() as tx:
        await make_resident(tx, "2002")
    async with db.transaction() as tx:
        assert await tx.residents.find("vk", "2002") is not None
        assert await tx.residents.find("vk", "1001") is None


async def test_concurrent_transactions_do_not_interleave(db: Database, db_path: Path) -> None:
    """SQLite's one writer runs updates one after another (PostgreSQL runs them side by
    side, each in its own transaction)."""
    log: list[str] = []

    async def writer(name: str) -> int:
        async with db.transaction() as tx:
            log.append(f"{name}:begin")
            for i in range(3):
                await tx.outbox.add("vk", name, {"text": f"{name}{i}"}, NOW)
                await asyncio.sleep(0.001)  # give the other task every chance to cut in
            await tx.drafts.save("vk", name, Draft(step=name), NOW)
            seen = await tx.outbox.count("pending")
            own = await tx.drafts.get("vk", name)
            assert own is not None and own.step == name
            log.append(f"{name}:end")
        return seen

    seen = await asyncio.gather(writer("a"), writer("b"))
    # One ran entirely before the other: the second saw the first one's committed rows.
    assert log in (
        ["a:begin", "a:end", "b:begin", "b:end"],
        ["b:begin", "b:end", "a:begin", "a:end"],
    )
    assert sorted(seen) == [3, 6]
    async with db.transaction() as tx:
        assert await tx.outbox.count("pending") == 6
        assert await tx.drafts.get("vk", "a") is not None
        assert await tx.drafts.get("vk", "b") is not None


async def test_one_failing_concurrent_transaction_does_not_spoil_the_other(db: Database) -> None:
    async def good() -> None:
        async with db.transaction() as tx:
            await tx.outbox.add("vk", "good", {"text": "ok"}, NOW)
            await asyncio.sleep(0.001)

    async def bad() -> None:
        async with db.transaction() as tx:
            await tx.outbox.add("vk", "bad", {"text": "no"}, NOW)
            await asyncio.sleep(0.001)
            raise ValueError("bad")

    results = await asyncio.gather(bad(), good(), return_exceptions=True)
    assert isinstance(results[0], ValueError) and results[1] is None
    async with db.transaction() as tx:
        rows = await tx.outbox.due_heads(NOW, ["vk"], 10)
    assert [row.chat_id for row in rows] == ["good"]


def poison_commits(db_path: Path) -> None:
    """A real way to make COMMIT (not a statement) fail: a deferred foreign key, checked only
    at commit, filled by a trigger when an audit entry with the action «poison» is written."""
    conn = raw(db_path)
    conn.executescript(
        "CREATE TABLE commit_guard (appeal_id INTEGER"
        " REFERENCES appeals (id) DEFERRABLE INITIALLY DEFERRED);"
        "CREATE TRIGGER audit_guard AFTER INSERT ON audit_log WHEN NEW.action = 'poison'"
        " BEGIN INSERT INTO commit_guard VALUES (424242); END;"
    )
    conn.close()


async def test_database_recovers_after_a_failed_commit(db: Database, db_path: Path) -> None:
    """When COMMIT itself fails (a deferred constraint, a full disk, an I/O error) the shared
    connection must leave the failed transaction, or every later BEGIN would fail."""
    poison_commits(db_path)

    async def poisoned() -> None:
        async with db.transaction() as tx:
            await make_resident(tx)
            await tx.audit.add("vk:1", "poison", NOW)

    with pytest.raises(sqlite3.IntegrityError):
        await poisoned()

    # The failed transaction left nothing behind and the next one works.
    async with db.transaction() as tx:
        assert await tx.residents.find("vk", "1001") is None
        await make_resident(tx, "2002")
    assert raw_scalar(db_path, "SELECT count(*) FROM residents") == 1


async def test_cancelled_while_opening_a_transaction_leaves_the_database_usable(
    db: Database,
) -> None:
    holding = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with db.transaction() as tx:
            await tx.drafts.save("vk", "holder", Draft(step="category"), NOW)
            holding.set()
            await release.wait()

    async def writer() -> None:
        async with db.transaction() as tx:
            await tx.drafts.save("vk", "cancelled", Draft(step="category"), NOW)

    held = asyncio.create_task(holder())
    await holding.wait()
    task = asyncio.create_task(writer())
    await asyncio.sleep(0)  # the task now waits for its turn on the connection
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    await held

    async with db.transaction() as tx:
        await tx.drafts.save("vk", "next", Draft(step="category"), NOW)
    async with db.transaction() as tx:
        assert await tx.drafts.get("vk", "next") is not None
        assert await tx.drafts.get("vk", "holder") is not None
        assert await tx.drafts.get("vk", "cancelled") is None


async def test_cancelled_at_commit_the_unit_is_kept_and_the_database_usable(
    db: Database, db_path: Path
) -> None:
    """A cancellation that arrives while COMMIT runs in the worker thread waits for it: the
    unit is durable, the caller hears of the cancellation, the connection is clean."""

    async def writer() -> None:
        async with db.transaction() as tx:
            await tx.drafts.save("vk", "late", Draft(step="category"), NOW)

    loop = asyncio.get_running_loop()
    committing = asyncio.Event()

    def hold_commit(sql: str) -> None:  # runs in aiosqlite's thread, before the statement
        if sql == "COMMIT":
            loop.call_soon_threadsafe(committing.set)
            time.sleep(0.2)

    await db._conn.aio.set_trace_callback(hold_commit)
    task = asyncio.create_task(writer())
    await asyncio.wait_for(committing.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await db._conn.aio.set_trace_callback(None)
    assert raw_scalar(db_path, "SELECT count(*) FROM drafts WHERE user_id = 'late'") == 1
    async with db.transaction() as tx:
        await tx.drafts.save("vk", "next", Draft(step="category"), NOW)
    assert raw_scalar(db_path, "SELECT count(*) FROM drafts") == 2


# --- repositories --------------------------------------------------------------------------


async def test_residents_get_or_create_consent_and_withdrawal(db: Database) -> None:
    async with db.transaction() as tx:
        first = await tx.residents.get_or_create("vk", "1001", "1001", NOW)
        again = await tx.residents.get_or_create("vk", "1001", "1001", NOW + timedelta(hours=1))
        moved = await tx.residents.get_or_create("vk", "1001", "chat-2", NOW)
        other = await tx.residents.get_or_create("tg", "1001", "1001", NOW)
    assert first.id == again.id == moved.id
    assert moved.chat_id == "chat-2"
    assert other.id != first.id
    assert first.consent_at is None and first.display_name is None

    async with db.transaction() as tx:
        await tx.residents.give_consent(
            first.id, version="2026-01", text_hash="abc", display_name="Иван", now=NOW
        )
        consented = await tx.residents.get(first.id)
    assert consented is not None
    assert (consented.consent_at, consented.consent_version) == (NOW, "2026-01")
    assert consented.display_name == "Иван"

    async with db.transaction() as tx:
        await tx.residents.withdraw_consent(first.id)
        withdrawn = await tx.residents.get(first.id)
        missing = await tx.residents.get(9999)
    assert withdrawn is not None
    assert (withdrawn.consent_at, withdrawn.consent_version, withdrawn.display_name) == (
        None,
        None,
        None,
    )
    assert withdrawn.chat_id == "chat-2"  # the identity row stays
    assert missing is None


async def test_appeal_numbers_are_sequential_and_never_reused(db: Database, db_path: Path) -> None:
    async with db.transaction() as tx:
        resident = await make_resident(tx)
        numbers = [await make_appeal(tx, resident) for _ in range(3)]
    assert numbers == [1, 2, 3]

    # Delete the newest appeal from outside (nothing refers to it, so foreign keys allow it).
    conn = raw(db_path)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("DELETE FROM appeals WHERE id = 3")
    conn.close()

    async with db.transaction() as tx:
        assert await tx.appeals.get(3) is None
        following = await make_appeal(tx, resident)
    assert following == 4  # №3 is never given to anyone else


async def test_appeal_numbers_survive_a_rolled_back_creation(db: Database) -> None:
    async with db.transaction() as tx:
        resident = await make_resident(tx)
        assert await make_appeal(tx, resident) == 1

    async def create_then_abort() -> None:
        async with db.transaction() as tx:
            assert await make_appeal(tx, resident) == 2
            raise ValueError("abort")

    with pytest.raises(ValueError, match="abort"):
        await create_then_abort()
    async with db.transaction() as tx:
        # A number that was never committed is free again; what matters is no gap in what
        # residents were told and no reuse of a committed number.
        assert await make_appeal(tx, resident) == 2


async def test_appeal_round_trips_every_field(db: Database) -> None:
    photos = (
        Photo("vk", "photo-1_2", "https://vk.example/1.jpg"),
        Photo("tg", "AgACAgIAAxkBAAIB", None),
    )
    async with db.transaction() as tx:
        resident = await make_resident(tx)
        number = await tx.appeals.create(
            resident_id=resident.id,
            category="roads",
            settlement="sergino",
            text="Яма",
            place="ул. Центральная, 5",
            latitude=62.4536,
            longitude=65.0489,
            photos=photos,
            contact_name="Иван Петров",
            contact_phone="+79123456789",
            platform="vk",
            chat_id="chat-1001",
            created_at=NOW,
            deadline_at=NOW + timedelta(hours=24),
        )
        stored = await tx.appeals.get(number.number)
    assert stored == number
    assert stored is not None
    assert stored.photos == photos
    assert (stored.latitude, stored.longitude) == (62.4536, 65.0489)
    assert stored.status is Status.NEW
    assert stored.created_at == NOW and stored.created_at.tzinfo is not None
    assert stored.deadline_at == NOW + timedelta(hours=24)


async def test_status_changes_and_open_only_filter(db: Database) -> None:
    async with db.transaction() as tx:
        resident = await make_resident(tx)
        neighbour = await make_resident(tx, "2002")
        numbers = {status: await make_appeal(tx, resident) for status in Status}
        neighbours = await make_appeal(tx, neighbour)
        for status, number in numbers.items():
            await tx.appeals.set_status(number, status, NOW)
        await tx.thread.add(
            numbers[Status.CLOSED], kind="status", author="vk:9", now=NOW, status=Status.CLOSED
        )

    async with db.transaction() as tx:
        open_ones = await tx.appeals.of_resident(resident.id, limit=10, open_only=True)
        everything = await tx.appeals.of_resident(resident.id, limit=10)
        two = await tx.appeals.of_resident(resident.id, limit=2)
        thread = await tx.thread.of_appeal(numbers[Status.CLOSED])

    assert [a.status for a in open_ones] == [Status.ANSWERED, Status.IN_PROGRESS, Status.NEW]
    assert [a.number for a in everything] == sorted(numbers.values(), reverse=True)
    assert neighbours not in [a.number for a in everything]
    assert [a.number for a in two] == [a.number for a in everything[:2]]
    assert [(e.kind, e.status) for e in thread] == [("status", Status.CLOSED)]


async def test_status_outside_the_list_is_refused(db: Database) -> None:
    async with db.transaction() as tx:
        number = await make_appeal(tx, await make_resident(tx))
    with pytest.raises(INTEGRITY_ERRORS):
        async with db.transaction() as tx:
            await tx.appeals.set_status(number, "lost", NOW)  # type: ignore[arg-type]


async def test_thread_keeps_order_kinds_and_photos(db: Database) -> None:
    photo = Photo("ok", "ok-photo-7", "https://ok.example/7.jpg")
    async with db.transaction() as tx:
        number = await make_appeal(tx, await make_resident(tx))
        await tx.thread.add(number, kind="created", author="resident", now=NOW, text="Яма")
        await tx.thread.add(
            number,
            kind="addition",
            author="resident",
            now=NOW + timedelta(minutes=1),
            photos=(photo,),
        )
        await tx.thread.add(
            number, kind="answer", author="vk:9", now=NOW + timedelta(hours=1), text="Засыпали"
        )
        whole = await tx.thread.of_appeal(number)
        answers = await tx.thread.of_appeal(number, kinds=("answer",))
    assert [e.kind for e in whole] == ["created", "addition", "answer"]
    assert whole[1].photos == (photo,) and whole[1].text is None
    assert [e.created_at for e in whole] == [
        NOW,
        NOW + timedelta(minutes=1),
        NOW + timedelta(hours=1),
    ]
    assert [(e.author, e.text) for e in answers] == [("vk:9", "Засыпали")]


async def test_erase_contacts_of_resident(db: Database) -> None:
    async with db.transaction() as tx:
        resident = await make_resident(tx)
        neighbour = await make_resident(tx, "2002")
        named = await make_appeal(tx, resident, contact_name="Иван", contact_phone="+79120000000")
        phone_only = await make_appeal(tx, resident, contact_phone="+79121111111")
        anonymous = await make_appeal(tx, resident)
        neighbours = await make_appeal(
            tx, neighbour, contact_name="Пётр", contact_phone="+79122222222"
        )

    async with db.transaction() as tx:
        erased = await tx.appeals.erase_contacts_of_resident(resident.id)
        again = await tx.appeals.erase_contacts_of_resident(resident.id)
        after = [await tx.appeals.get(n) for n in (named, phone_only, anonymous)]
        kept = await tx.appeals.get(neighbours)
    assert (erased, again) == (2, 0)
    for appeal in after:
        assert appeal is not None
        assert (appeal.contact_name, appeal.contact_phone) == (None, None)
        assert appeal.text == "Яма на дороге"  # the appeal itself stays
    assert kept is not None and (kept.contact_name, kept.contact_phone) == (
        "Пётр",
        "+79122222222",
    )


async def test_forget_finds_the_messages_of_every_chat_a_person_had(db: Database) -> None:
    """On OK a person's chat id differs from group to group, and the resident row keeps only
    the latest: the name sent to the first group's chat is still found and erased."""
    async with db.transaction() as tx:
        first = await tx.residents.get_or_create("ok", "u1", "chat-a", NOW, community="g1")
        await tx.residents.give_consent(
            first.id, version="1", text_hash="h", display_name="Иван Петров", now=NOW
        )
        await tx.outbox.add("ok", "chat-a", {"text": "Иван Петров, проверьте"}, NOW, community="g1")
    async with db.transaction() as tx:
        known = await tx.residents.find("ok", "u1")
        moved = await tx.residents.get_or_create(
            "ok", "u1", "chat-b", NOW, known=known, community="g2"
        )
        assert (moved.id, moved.chat_id) == (first.id, "chat-b")
        await tx.outbox.add("ok", "chat-b", {"text": "Иван Петров, ещё"}, NOW, community="g2")
        await tx.outbox.add("ok", "chat-c", {"text": "Иван Петров — другой"}, NOW)
    async with db.transaction() as tx:
        assert await tx.retention.erase_person_from_outbox(first.id) == 2
    async with db.transaction() as tx:
        bodies = {row.chat_id: row.body for row in await tx.outbox.due_heads(NOW, ["ok"], 10)}
    assert "Иван Петров" not in bodies["chat-a"] and "Иван Петров" not in bodies["chat-b"]
    assert "Иван Петров" in bodies["chat-c"]  # somebody else's chat: not theirs to erase


async def test_forget_finds_the_chat_of_a_commenter_who_then_wrote_in_private(
    db: Database,
) -> None:
    """Written down by a comment (no private chat recorded), then writing in private to
    the same community: the current chat is theirs too."""
    async with db.transaction() as tx:
        author = await tx.residents.get_or_create(
            "vk", "501", "501", NOW, community="g1", keep_chat=True
        )
    async with db.transaction() as tx:
        known = await tx.residents.find("vk", "501")
        same = await tx.residents.get_or_create(
            "vk", "501", "501", NOW, known=known, community="g1"
        )
        assert same.id == author.id
        await tx.residents.give_consent(
            author.id, version="1", text_hash="h", display_name="Иван Петров", now=NOW
        )
        await tx.outbox.add("vk", "501", {"text": "Иван Петров, проверьте"}, NOW, community="g1")
    async with db.transaction() as tx:
        assert await tx.retention.erase_person_from_outbox(author.id) == 1


async def test_drafts_save_get_update_delete_and_purge(db: Database) -> None:
    data = {"category": "roads", "photos": [{"platform": "vk", "ref": "p1", "url": None}], "n": 2}
    async with db.transaction() as tx:
        assert await tx.drafts.get("vk", "1001") is None
        await tx.drafts.save("vk", "1001", Draft(step="category", data=data), NOW)
        await tx.drafts.save("tg", "1001", Draft(step="consent"), NOW)
        first = await tx.drafts.get("vk", "1001")
    assert first is not None
    assert (first.step, first.data, first.updated_at) == ("category", data, NOW)

    later = NOW + timedelta(minutes=5)
    async with db.transaction() as tx:
        await tx.drafts.save("vk", "1001", Draft(step="settlement", data={"x": "ё"}), later)
        updated = await tx.drafts.get("vk", "1001")
        other_platform = await tx.drafts.get("tg", "1001")
    assert updated is not None
    assert (updated.step, updated.data, updated.updated_at) == ("settlement", {"x": "ё"}, later)
    assert other_platform is not None and other_platform.step == "consent"

    async with db.transaction() as tx:
        await tx.drafts.delete("vk", "1001")
        await tx.drafts.delete("vk", "never-existed")
        assert await tx.drafts.get("vk", "1001") is None
        assert await tx.drafts.get("tg", "1001") is not None

    async with db.transaction() as tx:
        await tx.drafts.save("vk", "old", Draft(step="category"), NOW - timedelta(days=8))
        await tx.drafts.save("vk", "edge", Draft(step="category"), NOW - timedelta(days=7))
        await tx.drafts.save("vk", "new", Draft(step="category"), NOW)
        purged = await tx.drafts.purge_older_than(NOW - timedelta(days=7))
        left = {
            user: await tx.drafts.get("vk", user) is not None for user in ("old", "edge", "new")
        }
    assert purged == 1
    assert left == {"old": False, "edge": True, "new": True}


async def test_processed_events_are_recorded_once(db: Database) -> None:
    async with db.transaction() as tx:
        assert await tx.events.record_once("vk", "e1", NOW) is True
        assert await tx.events.record_once("vk", "e1", NOW) is False
        # The same id from another platform is another event.
        assert await tx.events.record_once("tg", "e1", NOW) is True
    async with db.transaction() as tx:
        assert await tx.events.record_once("vk", "e1", NOW + timedelta(days=1)) is False
        assert await tx.events.record_once("vk", "e2", NOW) is True


async def test_outbox_lifecycle(db: Database) -> None:
    later = NOW + timedelta(seconds=5)
    async with db.transaction() as tx:
        number = await make_appeal(tx, await make_resident(tx))
        first = await tx.outbox.add("vk", "c1", {"text": "one"}, NOW, appeal_number=number)
        second = await tx.outbox.add("vk", "c2", {"text": "two"}, later)
        third = await tx.outbox.add("tg", "c1", {"text": "three"}, NOW - timedelta(seconds=5))
        fourth = await tx.outbox.add("vk", "c1", {"text": "four"}, NOW)
    assert first < second < third < fourth

    async with db.transaction() as tx:
        due_now = await tx.outbox.due_heads(NOW, ["vk", "tg"], 10)
        due_later = await tx.outbox.due_heads(later, ["vk", "tg"], 10)
        only_tg = await tx.outbox.due_heads(later, ["tg"], 10)
        limited = await tx.outbox.due_heads(later, ["vk", "tg"], 1)
        no_platform = await tx.outbox.due_heads(later, [], 10)
        waiting = await tx.outbox.platforms_waiting()
    # Only the oldest row of each chat, once it is due, oldest first; c1's second row waits.
    assert [row.id for row in due_now] == [first, third]
    assert [row.id for row in due_later] == [first, second, third]
    assert [row.id for row in only_tg] == [third]
    assert [row.id for row in limited] == [first]
    assert no_platform == []
    assert sorted(waiting) == ["tg", "vk"]
    row = due_now[0]
    assert (row.platform, row.chat_id, row.appeal_number, row.attempts) == ("vk", "c1", number, 0)
    assert json.loads(row.body) == {"text": "one"}

    async with db.transaction() as tx:
        await tx.outbox.mark_sent(row, ["m1", "m2"], NOW)
        await tx.outbox.mark_retry(second, "HTTP 502", NOW + timedelta(seconds=30))
        await tx.outbox.mark_failed(third, "chat blocked")
        counts = {s: await tx.outbox.count(s) for s in ("pending", "sent", "failed")}
        heads_after = await tx.outbox.due_heads(NOW + timedelta(seconds=29), ["vk", "tg"], 10)
        heads_retry = await tx.outbox.due_heads(NOW + timedelta(seconds=30), ["vk", "tg"], 10)
        waiting_after = await tx.outbox.platforms_waiting()
        by_first = await tx.outbox.appeal_of_message("vk", "c1", "m1")
        by_second = await tx.outbox.appeal_of_message("vk", "c1", "m2")
        other_chat = await tx.outbox.appeal_of_message("vk", "c2", "m1")
        other_platform = await tx.outbox.appeal_of_message("tg", "c1", "m1")
        unknown = await tx.outbox.appeal_of_message("vk", "c1", "m9")
    assert counts == {"pending": 2, "sent": 1, "failed": 1}
    # c1's next row is now its head; c2 waits for its retry time.
    assert [r.id for r in heads_after] == [fourth]
    assert [(r.id, r.attempts) for r in heads_retry] == [(second, 1), (fourth, 0)]
    assert waiting_after == ["vk"]
    assert (by_first, by_second) == (number, number)
    assert (other_chat, other_platform, unknown) == (None, None, None)


async def test_sent_message_without_appeal_maps_to_none(db: Database) -> None:
    async with db.transaction() as tx:
        await tx.outbox.add("vk", "c1", {"text": "menu"}, NOW)
        [row] = await tx.outbox.due_heads(NOW, ["vk"], 10)
        await tx.outbox.mark_sent(row, ["m1"], NOW)
        assert await tx.outbox.appeal_of_message("vk", "c1", "m1") is None
        assert await tx.outbox.count("sent") == 1


async def test_outbox_rows_keep_their_state(db: Database, db_path: Path) -> None:
    async with db.transaction() as tx:
        row_id = await tx.outbox.add("vk", "c1", {"text": "x"}, NOW)
        await tx.outbox.mark_retry(row_id, "timeout", NOW + timedelta(seconds=1))
        await tx.outbox.mark_retry(row_id, "HTTP 503", NOW + timedelta(seconds=3))
        await tx.outbox.mark_failed(row_id, "gave up")
    conn = raw(db_path)
    stored = conn.execute(
        "SELECT status, attempts, last_error, sent_at FROM outbox WHERE id = ?", (row_id,)
    ).fetchone()
    conn.close()
    assert tuple(stored) == ("failed", 3, "gave up", None)


async def test_audit_entries(db: Database) -> None:
    async with db.transaction() as tx:
        number = await make_appeal(tx, await make_resident(tx))
        await tx.audit.add("vk:9", "take", NOW, appeal_number=number)
        await tx.audit.add("vk:1001", "consent_withdrawn", NOW, details="appeals anonymised: 1")
        await tx.audit.add("tg:7", "reply", NOW, appeal_number=number, details="text")
        everything = await tx.audit.entries()
        of_appeal = await tx.audit.entries(number)
        of_other = await tx.audit.entries(number + 1)
    assert everything == [
        ("vk:9", "take", number),
        ("vk:1001", "consent_withdrawn", None),
        ("tg:7", "reply", number),
    ]
    assert of_appeal == [("vk:9", "take", number), ("tg:7", "reply", number)]
    assert of_other == []


async def test_naive_datetimes_are_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="naive"):
        async with db.transaction() as tx:
            await tx.events.record_once("vk", "e1", datetime(2026, 3, 2, 6, 0))
    async with db.transaction() as tx:
        assert await tx.events.record_once("vk", "e1", NOW) is True


# --- text stored verbatim ------------------------------------------------------------------


@pytest.mark.parametrize("text", TRICKY_TEXTS)
async def test_text_is_stored_verbatim(db: Database, text: str) -> None:
    async with db.transaction() as tx:
        resident = await make_resident(tx, text[:64])
        number = await make_appeal(
            tx, resident, text=text, place=text, contact_name=text, contact_phone=None
        )
        await tx.thread.add(number, kind="addition", author="resident", now=NOW, text=text)
        await tx.drafts.save("vk", text, Draft(step="description", data={"description": text}), NOW)
        await tx.outbox.add("vk", text, {"text": text}, NOW, appeal_number=number)

    async with db.transaction() as tx:
        appeal = await tx.appeals.get(number)
        found = await tx.residents.find("vk", text[:64])
        thread = await tx.thread.of_appeal(number)
        draft = await tx.drafts.get("vk", text)
        [row] = await tx.outbox.due_heads(NOW, ["vk"], 10)
    assert appeal is not None
    assert appeal.text == text and appeal.place == text and appeal.contact_name == text
    assert found is not None and found.user_id == text[:64]
    assert [e.text for e in thread] == [text]
    assert draft is not None and draft.data == {"description": text}
    assert (row.chat_id, json.loads(row.body)) == (text, {"text": text})
    # And nothing was executed: every table is still there.
    async with db.transaction() as tx:
        assert await tx.appeals.get(number) is not None
        assert await tx.outbox.count("pending") == 1


# --- durability ----------------------------------------------------------------------------


async def test_committed_data_survives_close_and_reopen(db_path: Path) -> None:
    database = await Database.open(db_path)
    async with database.transaction() as tx:
        resident = await make_resident(tx)
        number = await make_appeal(tx, resident, text="Не горит фонарь", contact_name="Анна")
        await tx.thread.add(number, kind="created", author="resident", now=NOW, text="x")
        await tx.drafts.save("vk", "2002", Draft(step="place", data={"description": "d"}), NOW)
        await tx.events.record_once("vk", "e1", NOW)
        await tx.outbox.add("vk", resident.chat_id, {"text": "№1"}, NOW, appeal_number=number)
        await tx.audit.add("vk:1001", "created", NOW, appeal_number=number)
    # Committed means visible to anyone else at once, before any close.
    assert raw_scalar(db_path, "SELECT text FROM appeals WHERE id = ?", (number,)) == (
        "Не горит фонарь"
    )
    await database.close()

    reopened = await Database.open(db_path)
    try:
        async with reopened.transaction() as tx:
            appeal = await tx.appeals.get(number)
            draft = await tx.drafts.get("vk", "2002")
            seen_again = await tx.events.record_once("vk", "e1", NOW)
            pending = await tx.outbox.due_heads(NOW, ["vk"], 10)
            thread = await tx.thread.of_appeal(number)
            audit = await tx.audit.entries(number)
            next_number = await make_appeal(tx, resident)
    finally:
        await reopened.close()
    assert appeal is not None and appeal.text == "Не горит фонарь" and appeal.contact_name == "Анна"
    assert draft is not None and draft.step == "place" and draft.data == {"description": "d"}
    assert seen_again is False
    assert [(json.loads(r.body), r.appeal_number) for r in pending] == [({"text": "№1"}, number)]
    assert [e.kind for e in thread] == ["created"]
    assert audit == [("vk:1001", "created", number)]
    assert next_number == number + 1


async def test_rolled_back_data_is_absent_after_reopen(db_path: Path) -> None:
    database = await Database.open(db_path)
    with pytest.raises(ValueError, match="crash"):
        await resident_then_crash(database)
    await database.close()
    reopened = await Database.open(db_path)
    try:
        async with reopened.transaction() as tx:
            assert await tx.residents.find("vk", "1001") is None
    finally:
        await reopened.close()


# --- group commit --------------------------------------------------------------------------


async def test_updates_that_come_together_share_one_commit_and_each_is_durable_on_return(
    db: Database, db_path: Path
) -> None:
    """Twenty updates at once: fewer COMMITs than updates, and every update, the moment its
    block has returned, is on disk for any other connection to read."""
    seen_on_return: dict[str, int] = {}

    async def update(user: str) -> None:
        async with db.transaction() as tx:
            await tx.drafts.save("vk", user, Draft(step="category"), NOW)
        seen_on_return[user] = raw_scalar(
            db_path, f"SELECT count(*) FROM drafts WHERE user_id = '{user}'"
        )

    before = db.commits
    await asyncio.gather(*(update(f"u{n}") for n in range(20)))
    assert seen_on_return == {f"u{n}": 1 for n in range(20)}
    assert 1 <= db.commits - before < 20


async def test_a_failing_update_in_a_group_rolls_back_alone(db: Database, db_path: Path) -> None:
    async def update(user: str) -> None:
        async with db.transaction() as tx:
            await tx.drafts.save("vk", user, Draft(step="category"), NOW)
            if user == "u3":
                raise ValueError("bad")

    results = await asyncio.gather(*(update(f"u{n}") for n in range(8)), return_exceptions=True)
    assert [type(r).__name__ for r in results].count("ValueError") == 1
    users = {row[0] for row in raw(db_path).execute("SELECT user_id FROM drafts")}
    assert users == {f"u{n}" for n in range(8)} - {"u3"}


async def test_a_failed_group_commit_fails_every_update_of_the_group(
    db: Database, db_path: Path
) -> None:
    """COMMIT fails (a deferred foreign key): the updates that shared it all hear of it,
    none of them is half there, and the next update works."""
    poison_commits(db_path)

    async def update(n: int) -> None:
        async with db.transaction() as tx:
            await tx.drafts.save("vk", f"u{n}", Draft(step="category"), NOW)
            if n == 2:
                await tx.audit.add("vk:1", "poison", NOW)

    results = await asyncio.gather(*(update(n) for n in range(5)), return_exceptions=True)
    failed = [n for n, r in enumerate(results) if isinstance(r, sqlite3.IntegrityError)]
    assert 2 in failed
    assert raw_scalar(db_path, "SELECT count(*) FROM drafts") == 5 - len(failed)
    async with db.transaction() as tx:
        await tx.drafts.save("vk", "after", Draft(step="category"), NOW)
    assert raw_scalar(db_path, "SELECT count(*) FROM drafts WHERE user_id = 'after'") == 1


async def test_a_unit_that_swallows_a_whole_rollback_does_not_strand_the_group(
    db: Database, db_path: Path
) -> None:
    """SQLite ends the whole transaction on some errors (here an interrupt). If the unit that
    hit it carries on regardless, the earlier unit sharing its group must hear of the lost
    COMMIT, not wait for ever; and the database goes on working."""

    async def first() -> None:
        async with db.transaction() as tx:
            await tx.drafts.save("vk", "first", Draft(step="category"), NOW)
            await asyncio.sleep(0.05)  # the second queues meanwhile: the commit is shared

    async def second() -> None:
        await asyncio.sleep(0.01)
        async with db.transaction() as tx:
            await tx.arrive("vk", "second", "vk:second")  # the unit's SAVEPOINT runs
            aio = db._conn.aio  # the one way to interrupt a statement
            await aio.set_progress_handler(lambda: 1, 1)
            try:
                await tx.drafts.save("vk", "second", Draft(step="category"), NOW)
                await tx.arrive("vk", "second", "vk:second")  # the posted write runs first
            except sqlite3.OperationalError:
                pass  # swallowed: the unit goes on as if nothing happened
            finally:
                await aio.set_progress_handler(None, 1)

    results = await asyncio.wait_for(asyncio.gather(first(), second(), return_exceptions=True), 5)
    assert all(isinstance(r, sqlite3.OperationalError) for r in results)
    assert raw_scalar(db_path, "SELECT count(*) FROM drafts WHERE user_id = 'first'") == 0
    async with db.transaction() as tx:
        await tx.drafts.save("vk", "after", Draft(step="category"), NOW)
    assert raw_scalar(db_path, "SELECT count(*) FROM drafts WHERE user_id = 'after'") == 1


async def test_a_cancelled_flusher_does_not_strand_the_group(db: Database, db_path: Path) -> None:
    """The first unit leaves its COMMIT to the flusher (another waits); the flusher is
    cancelled (as at the loop's teardown) and the other unit fails: a new flusher still
    commits the first, which must not wait for ever."""
    b_waiting, b_inside, release_b = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with db.transaction() as tx:
            await tx.drafts.save("vk", "first", Draft(step="category"), NOW)
            await b_waiting.wait()

    async def second() -> None:
        b_waiting.set()
        async with db.transaction():
            b_inside.set()
            await release_b.wait()
            raise ValueError("second fails")

    task_a, task_b = asyncio.create_task(first()), asyncio.create_task(second())
    await b_inside.wait()
    assert db._flusher is not None  # queued behind the second
    db._flusher.cancel()
    release_b.set()
    with pytest.raises(ValueError, match="second fails"):
        await task_b
    await asyncio.wait_for(task_a, 5)
    assert raw_scalar(db_path, "SELECT count(*) FROM drafts WHERE user_id = 'first'") == 1


async def test_a_closed_database_refuses_new_units_clearly(db_path: Path) -> None:
    database = await Database.open(db_path)
    await database.close()
    for _ in range(2):  # the second would hang if the first had kept the lock
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            async with database.transaction():
                pass


# --- staff listings: keyset pages from index ranges (issue 14, items 16 and 17) -----------


async def make_listed(
    tx: Tx, resident: Resident, count: int, *, settlement: str, status: Status, start: int = 0
) -> list[int]:
    numbers = []
    for i in range(count):
        created = NOW + timedelta(minutes=start + i)
        appeal = await tx.appeals.create(
            resident_id=resident.id,
            category="roads",
            settlement=settlement,
            text="Яма",
            place=None,
            latitude=None,
            longitude=None,
            photos=(),
            contact_name=None,
            contact_phone=None,
            platform="vk",
            chat_id=resident.chat_id,
            created_at=created,
            deadline_at=created + timedelta(hours=24),
        )
        if status is not Status.NEW:
            await tx.appeals.set_status(appeal.number, status, created)
        numbers.append(appeal.number)
    return numbers


async def pages(tx: Tx, **query: object) -> list[list[int]]:
    """Every page of a listing, following `after` from page to page."""
    result: list[list[int]] = []
    after = None
    while True:
        page = await tx.appeals.listing(after=after, limit=7, **query)  # type: ignore[arg-type]
        result.append([appeal.number for appeal, _ in page.rows])
        if not page.more:
            return result
        after = page.rows[-1][0].number


async def test_listing_pages_merge_statuses_and_settlements_in_deadline_order(
    db: Database,
) -> None:
    async with db.transaction() as tx:
        resident = await make_resident(tx)
        # Interleaved deadlines across two settlements and two statuses.
        a = await make_listed(tx, resident, 10, settlement="sergino", status=Status.NEW)
        b = await make_listed(
            tx, resident, 10, settlement="andra", status=Status.IN_PROGRESS, start=5
        )
        c = await make_listed(tx, resident, 4, settlement="talinka", status=Status.NEW, start=2)
        closed = await make_listed(tx, resident, 3, settlement="sergino", status=Status.CLOSED)
    waiting = (Status.NEW, Status.IN_PROGRESS)
    async with db.transaction() as tx:
        everything = await pages(tx, statuses=waiting, settlements=None)
        admin = await pages(tx, statuses=waiting, settlements=["sergino", "andra"])
        latest = await pages(tx, statuses=tuple(Status), settlements=None, newest_first=True)
        overdue = await pages(
            tx,
            statuses=waiting,
            settlements=None,
            due_before=NOW + timedelta(hours=24, minutes=6),
        )
        counted = await tx.appeals.count(statuses=waiting, settlements=None, up_to=1000)
        capped = await tx.appeals.count(statuses=waiting, settlements=["andra"], up_to=4)

    def by_deadline(numbers: list[int]) -> list[int]:
        minute = {n: i for i, n in enumerate(a)} | {n: i + 5 for i, n in enumerate(b)}
        minute |= {n: i + 2 for i, n in enumerate(c)} | {n: i for i, n in enumerate(closed)}
        return sorted(numbers, key=lambda n: (minute[n], n))

    assert [n for page in everything for n in page] == by_deadline(a + b + c)
    assert [len(page) for page in everything] == [7, 7, 7, 3]
    assert [n for page in admin for n in page] == by_deadline(a + b)
    assert [n for page in latest for n in page] == by_deadline(a + b + c + closed)[::-1]
    assert [n for page in overdue for n in page] == by_deadline(a[:6] + b[:1] + c)
    assert (counted, capped) == (24, 4)


async def test_the_page_after_a_number_starts_where_that_appeal_stands(db: Database) -> None:
    async with db.transaction() as tx:
        resident = await make_resident(tx)
        numbers = await make_listed(tx, resident, 5, settlement="sergino", status=Status.NEW)
        await tx.appeals.set_status(numbers[1], Status.CLOSED, NOW)  # no longer listed
    async with db.transaction() as tx:
        page = await tx.appeals.listing(
            statuses=(Status.NEW,), settlements=None, after=numbers[1], limit=10
        )
        nowhere = await tx.appeals.listing(
            statuses=(Status.NEW,), settlements=None, after=99_999, limit=10
        )
    assert [appeal.number for appeal, _ in page.rows] == numbers[2:]
    assert (nowhere.rows, nowhere.more) == ([], False)


async def test_the_text_search_ignores_the_case_of_cyrillic(db: Database) -> None:
    """The dashboard's search (SPEC §16): «яма» finds «Яма на дороге» and «ЯМА во дворе»;
    LIKE's wildcards typed by the moderator are plain characters."""
    async with db.transaction() as tx:
        resident = await make_resident(tx)
        pothole = await make_appeal(tx, resident, text="Яма на дороге у школы")
        yard = await make_appeal(tx, resident, text="ЯМА во дворе, 100% опасно")
        lamp = await make_appeal(tx, resident, text="Сломан фонарь у дома")

    async def found(text: str) -> list[int]:
        async with db.transaction() as tx:
            page = await tx.appeals.listing(
                statuses=(Status.NEW,), settlements=None, limit=10, text=text
            )
        return sorted(appeal.number for appeal, _ in page.rows)

    assert await found("яма") == [pothole, yard]
    assert await found("Яма на дороге") == [pothole]
    assert await found("ФОНАРЬ") == [lamp]
    assert await found("100%") == [yard]
    assert await found("%") == [yard]  # a percent sign, not "anything"
    assert await found("_") == []


async def test_one_deadline_for_every_list(db: Database) -> None:
    """A reopened appeal is due `answer_within_hours` after «Вопрос не решён», in the
    listings, /overdue and the deadline notices alike; a new answer ends that."""
    async with db.transaction() as tx:
        resident = await make_resident(tx)
        [number] = await make_listed(tx, resident, 1, settlement="sergino", status=Status.NEW)
        await tx.appeals.record_answer(number, NOW + timedelta(hours=1))
        rated = NOW + timedelta(hours=30)
        await tx.appeals.set_rating(
            number, "unresolved", rated, renewed_deadline=rated + timedelta(hours=24)
        )
        await tx.appeals.set_status(number, Status.IN_PROGRESS, rated)
    due = rated + timedelta(hours=24)
    async with db.transaction() as tx:
        before = await tx.appeals.overdue(due - timedelta(seconds=1), limit=10)
        after = await tx.appeals.overdue(due + timedelta(seconds=1), limit=10)
        notices = await tx.appeals.due_for_notice(
            "escalation", due_before=due + timedelta(seconds=1), limit=10
        )
        listed = await tx.appeals.listing(
            statuses=(Status.IN_PROGRESS,), settlements=["sergino"], limit=10
        )
        await tx.appeals.record_answer(number, due)
        answered = await tx.appeals.listing(statuses=(Status.ANSWERED,), settlements=None, limit=10)
    assert before.rows == []
    assert [(appeal.number, at) for appeal, at in after.rows] == [(number, due)]
    assert [(appeal.number, at) for appeal, at in notices] == [(number, due)]
    assert [at for _, at in listed.rows] == [due]
    assert [at for _, at in answered.rows] == [NOW + timedelta(hours=24)]  # registration's


async def test_migration_6_keeps_the_deadline_of_reopened_appeals(db_path: Path) -> None:
    """An appeal reopened before migration 6 keeps the deadline the scheduler computed for
    it then (the notices recorded about it still match, so none is sent again)."""
    old = await Database.open(db_path, migrate_to=5)
    await old.close()
    # Written in the columns of schema 5 (today's repositories write today's).
    rated = NOW + timedelta(hours=30, microseconds=123456)
    conn = raw(db_path)
    conn.execute(
        "INSERT INTO residents (id, platform, user_id, chat_id, created_at)"
        " VALUES (1, 'vk', '1001', 'chat-1001', ?)",
        (to_db(NOW),),
    )
    number = conn.execute(
        "INSERT INTO appeals (resident_id, status, category, settlement, text, platform, chat_id,"
        " created_at, deadline_at, updated_at, rating, first_answer_at)"
        " VALUES (1, 'in_progress', 'roads', 'sergino', 'Яма', 'vk', 'chat-1001', ?, ?, ?,"
        " 'unresolved', ?) RETURNING id",
        (to_db(NOW), to_db(NOW + timedelta(hours=24)), to_db(rated), to_db(NOW)),
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO appeal_events (appeal_id, kind, author, text, created_at)"
        " VALUES (?, 'rating', 'resident', 'unresolved', ?)",
        (number, to_db(rated)),
    )
    conn.commit()
    conn.close()
    database = await Database.open(db_path)
    try:
        async with database.transaction() as tx:
            [(appeal, due)] = (await tx.appeals.overdue(NOW + timedelta(days=30), limit=5)).rows
    finally:
        await database.close()
    assert appeal.number == number and due == rated + timedelta(hours=24)


async def test_listing_statements_read_index_ranges(db_path: Path) -> None:
    """Every statement a listing runs is a search of an index, never a scan of the table
    nor a sort of it: at a million appeals none may hold the event loop (bench/listings.py
    measures it)."""
    database = await Database.open(db_path)
    async with database.transaction() as tx:
        resident = await make_resident(tx)
        for status in Status:
            await make_listed(tx, resident, 3, settlement="sergino", status=status)
        await make_listed(tx, resident, 3, settlement="andra", status=Status.NEW)
    await database.close()

    statements: list[str] = []
    conn = await SqliteConnection.connect(str(db_path))
    await conn.aio.set_trace_callback(statements.append)
    repository = AppealRepository(conn)
    waiting = (Status.NEW, Status.IN_PROGRESS)
    try:
        for settlements in (None, ["sergino", "andra"]):
            for newest_first in (False, True):
                await repository.listing(
                    statuses=tuple(Status),
                    settlements=settlements,
                    newest_first=newest_first,
                    after=2,
                    limit=5,
                )
            await repository.count(statuses=waiting, settlements=settlements, up_to=1001)
        await repository.overdue(NOW + timedelta(days=2), after=1, limit=5)
        await repository.due_for_notice("reminder", due_before=NOW + timedelta(days=2), limit=5)
        await repository.of_resident(resident.id, limit=11, before=10)
        await repository.of_resident(resident.id, limit=3, open_only=True)
        await repository.count_of_resident(resident.id, newer_than=5)
    finally:
        await conn.aio.set_trace_callback(None)
        await conn.close()

    explain = raw(db_path)
    try:
        for sql in statements:
            plan = [row[3] for row in explain.execute(f"EXPLAIN QUERY PLAN {sql}")]
            assert not any(
                step.startswith("SCAN appeals") or "TEMP B-TREE" in step for step in plan
            ), (sql, plan)
    finally:
        explain.close()
    assert len(statements) > 20


async def test_migration_7_keeps_the_quote_pairs_of_the_main_community(db_path: Path) -> None:
    """Rows written before communities existed belong to the main section ('') after
    migration 7: a quoted notification still finds its appeal, a queued message still goes
    out through the main community, and nothing is a comment."""
    old = await Database.open(db_path, migrate_to=6)
    await old.close()
    conn = raw(db_path)
    conn.execute(
        "INSERT INTO residents (id, platform, user_id, chat_id, created_at)"
        " VALUES (1, 'vk', '1001', '1001', ?)",
        (to_db(NOW),),
    )
    conn.execute(
        "INSERT INTO appeals (id, resident_id, category, settlement, text, platform, chat_id,"
        " created_at, deadline_at, updated_at) VALUES (7, 1, 'roads', 'sergino', 'Яма', 'vk',"
        " '1001', ?, ?, ?)",
        (to_db(NOW), to_db(NOW + timedelta(hours=24)), to_db(NOW)),
    )
    conn.execute(
        "INSERT INTO outbox (id, platform, chat_id, body, appeal_id, status, next_attempt_at,"
        " created_at, send_key) VALUES (1, 'vk', '600', ?, 7, 'sent', ?, ?, 5),"
        " (2, 'vk', '600', ?, NULL, 'pending', ?, ?, 6)",
        ('{"text": "card"}', to_db(NOW), to_db(NOW), '{"text": "later"}', to_db(NOW), to_db(NOW)),
    )
    conn.execute(
        "INSERT INTO sent_messages (platform, chat_id, message_id, outbox_id, appeal_id)"
        " VALUES ('vk', '600', '55', 1, 7)"
    )
    conn.close()
    database = await Database.open(db_path)
    try:
        async with database.transaction() as tx:
            found = await tx.outbox.appeal_of_message("vk", "600", "55")
            other = await tx.outbox.appeal_of_message("vk", "600", "55", community="888")
            [pending] = await tx.outbox.due_heads(NOW, ["vk"], 10)
            appeal = await tx.appeals.get(7)
            resident = await tx.residents.find("vk", "1001")
    finally:
        await database.close()
    assert found == 7 and other is None
    assert (pending.id, pending.community) == (2, "")
    assert appeal is not None and not appeal.is_comment and appeal.community == ""
    assert resident is not None and resident.community == ""
