"""The SQLite database: one writer connection, its pragmas, and one transaction per update."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from storage.appeals import AppealRepository, ThreadRepository
from storage.arrival import Arrival, ArrivalRepository
from storage.audit import AuditRepository
from storage.backend import Connection
from storage.bans import BanRepository
from storage.channel_state import ChannelStateRepository
from storage.comments import CommentRepository
from storage.dashboard import DashboardRepository
from storage.drafts import DraftRepository
from storage.events import ProcessedEventRepository
from storage.inbox import InboxRepository
from storage.migrate import migrate
from storage.outbox import OutboxRepository
from storage.questions import QuestionRepository
from storage.reports import ReportQueries
from storage.residents import ResidentRepository
from storage.retention import RetentionRepository
from storage.sqlite import SqliteConnection
from storage.staff import StaffRepository

BUSY_TIMEOUT_MS = 5000


class Tx:
    """The repositories bound to one open transaction: everything an update changes."""

    def __init__(self, conn: Connection) -> None:
        self.arrival = ArrivalRepository(conn)
        self.residents = ResidentRepository(conn)
        self.appeals = AppealRepository(conn)
        self.thread = ThreadRepository(conn)
        self.comments = CommentRepository(conn)
        self.drafts = DraftRepository(conn)
        self.events = ProcessedEventRepository(conn)
        self.outbox = OutboxRepository(conn)
        self.audit = AuditRepository(conn)
        self.staff = StaffRepository(conn)
        self.bans = BanRepository(conn)
        self.questions = QuestionRepository(conn)
        self.channel_state = ChannelStateRepository(conn)
        self.inbox = InboxRepository(conn)
        self.retention = RetentionRepository(conn)
        self.dashboard = DashboardRepository(conn)
        self.reports = ReportQueries(conn)

    async def arrive(
        self, platform: str, user_id: str, identity: str, event_id: str | None = None
    ) -> Arrival:
        """What an update needs about its sender, in one round trip; the ban and the draft
        read are remembered for the rest of the update."""
        arrival = await self.arrival.read(platform, user_id, identity, event_id)
        self.bans.know(identity, arrival.ban)
        self.drafts.know(platform, user_id, arrival.draft)
        return arrival


class Store(Protocol):
    """What the bot needs of a database, whichever the backend: storage.db.Database
    (SQLite, the default) or storage.postgres.PostgresDatabase."""

    commits: int
    shared: bool  # several instances may work on it at once (PostgreSQL)

    @property
    def statements(self) -> int: ...

    def transaction(self) -> AbstractAsyncContextManager[Tx]: ...

    def read(self) -> AbstractAsyncContextManager[Tx]: ...

    async def close(self) -> None: ...

    async def exclusively(self, name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `work` (a long-poll receiver, the deadline scheduler, retention) on one
        instance at a time of those sharing the database; the others wait to take over."""


async def open_store(url: str, *, pool_size: int = 10) -> Store:
    """The database `[storage] url` names: sqlite:///PATH or postgresql://…"""
    if url.startswith(("postgresql://", "postgres://")):
        from storage.postgres import PostgresDatabase  # psycopg is loaded only when used

        return await PostgresDatabase.open(url, pool_size=pool_size)
    return await Database.open(url.removeprefix("sqlite:///"))


class Database:
    """One SQLite connection in WAL mode; updates run one after another on it, and those
    that come together share one COMMIT (group commit).

    The first update of a transaction runs in it directly; each later one runs in a
    SAVEPOINT of it, so a failing update rolls back alone. A savepoint whose update succeeded
    is left open (COMMIT releases them all): that saves a round trip per update. The
    update's `transaction()` block returns only once the COMMIT that holds its writes has
    reached the disk: nothing it decided is sent before it is durable. An update whose block
    ends while others wait leaves the COMMIT to the last of them, so one fsync serves them
    all.
    """

    def __init__(self, conn: SqliteConnection, path: str) -> None:
        self._conn = conn
        self._path = path
        self._lock = asyncio.Lock()
        self._waiting = 0  # updates waiting for the lock
        self._batch: asyncio.Future[None] | None = None  # the open transaction's COMMIT
        self._units = 0  # updates in the open transaction
        self._flusher: asyncio.Future[None] | None = None
        self._reader: SqliteConnection | None = None
        self._reader_lock = asyncio.Lock()
        self._closed = False
        self.commits = 0  # COMMITs done (one per group of updates), for tests and benches
        self.shared = False  # one instance: the file is this process's alone

    @property
    def round_trips(self) -> int:
        """Waits for the database so far (both connections): posted writes share one."""
        reader = self._reader.round_trips if self._reader is not None else 0
        return self._conn.round_trips + reader

    @property
    def statements(self) -> int:
        """Round trips to the database so far (both connections), for the benchmark."""
        reader = self._reader.statements if self._reader is not None else 0
        return self._conn.statements + reader

    @classmethod
    async def open(cls, path: str | Path, *, migrate_to: int | None = None) -> Database:
        """Open (creating if needed) the file, set the pragmas and apply pending migrations."""
        conn = await SqliteConnection.connect(str(path))
        try:
            await _set_pragmas(conn)
            await conn.execute("PRAGMA foreign_keys = ON")
            await migrate(conn, migrate_to)
        except BaseException:
            await conn.close()
            raise
        return cls(conn, str(path))

    async def close(self) -> None:
        async with self._lock:
            if self._closed:
                return
            await self._finish()
            self._closed = True
            await self._conn.close()
        async with self._reader_lock:
            if self._reader is not None:
                await self._reader.close()
                self._reader = None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        """The repositories on a second connection, for long reads (figures over a year, a
        whole register): they see the last committed state and hold up no update meanwhile
        (WAL lets one writer and readers work at once). Readers take turns."""
        async with self._reader_lock:
            if self._closed:
                raise sqlite3.ProgrammingError("the database is closed")
            if self._reader is None:
                self._reader = await SqliteConnection.connect(self._path)
                await _set_pragmas(self._reader)
                await self._reader.execute("PRAGMA query_only = 1")
            await self._reader.control("BEGIN")
            try:
                yield Tx(self._reader)
            finally:
                await self._reader.control("ROLLBACK")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """One update's unit of work; rolled back alone if the block raises, and durable
        (committed) when the block has returned."""
        self._waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self._waiting -= 1
        try:
            if self._closed:
                raise sqlite3.ProgrammingError("the database is closed")
            if not self._conn.in_transaction:
                self._settle_batch(_ended())  # a batch whose transaction SQLite ended
                await self._conn.control("BEGIN IMMEDIATE")
                self._units = 0
                self._batch = asyncio.get_running_loop().create_future()
                self._batch.add_done_callback(_observe)
            batch = self._batch
            assert batch is not None
            alone = self._units == 0
            trips = self._conn.round_trips
            if not alone:
                self._conn.post("SAVEPOINT unit")
            try:
                yield Tx(self._conn)
                await self._conn.flush()  # the unit's posted writes, in one round trip
            except BaseException:
                self._conn.discard()
                # A unit that failed before any of its statements went to the database
                # (its SAVEPOINT still among the posted ones) has nothing to roll back.
                if alone or self._conn.round_trips != trips:
                    await self._undo_unit(alone)
                raise
            self._units += 1
            if not self._waiting:
                await self._commit()
        finally:
            try:
                unsettled = not self._closed and (
                    self._conn.in_transaction or self._batch is not None
                )
                if unsettled and self._flusher_idle():
                    # Others wait, or this unit failed: the flusher settles after them.
                    self._flusher = asyncio.ensure_future(self._flush())
            finally:
                self._lock.release()
        await asyncio.shield(batch)

    def _flusher_idle(self) -> bool:
        return self._flusher is None or self._flusher.done()

    async def _undo_unit(self, alone: bool) -> None:
        """Roll back the failed unit only: the whole transaction if it was the first, else
        to its savepoint. If SQLite has already ended the whole transaction (it does on some
        errors), the earlier updates of the batch are lost with it: they are told so, as by
        a failed COMMIT."""
        if not self._conn.in_transaction:
            await self._fail_batch(_ended())
            return
        try:
            if alone:
                await self._conn.control("ROLLBACK")
                self._settle_batch(None)
                return
            await self._conn.control("ROLLBACK TO unit")
            await self._conn.control("RELEASE unit")
        except sqlite3.Error as error:
            await self._fail_batch(error)

    async def _flush(self) -> None:
        """Commit the open transaction once the updates queued before this are done."""
        async with self._lock:
            self._flusher = None
            if not self._closed:
                with contextlib.suppress(sqlite3.Error):  # the batch's updates are told
                    await self._finish()

    async def _finish(self) -> None:
        """Commit the open transaction; if SQLite has ended it already (some errors roll
        back everything), the batch's updates hear so instead of waiting for ever."""
        if self._conn.in_transaction:
            await self._commit()
        else:
            self._settle_batch(_ended())

    async def _commit(self) -> None:
        """COMMIT, then release every update of the batch; if it fails, roll back and fail
        them all."""
        try:
            await self._conn.control("COMMIT")
        except sqlite3.Error as error:
            await self._fail_batch(error)
            raise
        except asyncio.CancelledError:
            # The COMMIT ran to its end all the same: `in_transaction` tells how it went.
            if self._conn.in_transaction:
                await self._fail_batch(sqlite3.OperationalError("COMMIT was cancelled"))
            else:
                self._settle_batch(None)
            raise
        self.commits += 1
        self._settle_batch(None)

    async def _fail_batch(self, error: Exception) -> None:
        try:
            if self._conn.in_transaction:
                await self._conn.control("ROLLBACK")
        finally:  # also if cancelled meanwhile: nobody may wait for this batch for ever
            self._settle_batch(error)

    def _settle_batch(self, error: Exception | None) -> None:
        batch, self._batch = self._batch, None
        self._units = 0
        if batch is None or batch.done():
            return
        if error is None:
            batch.set_result(None)
        else:
            batch.set_exception(error)

    async def exclusively(self, name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """SQLite serves one instance: the work runs here, at once."""
        await work()

    async def pragma(self, name: str) -> str:
        """Read one pragma's value (for tests and diagnostics)."""
        async with self._lock:
            row = await self._conn.fetchone(f"PRAGMA {name}")
        return str(row[0]) if row else ""


async def _set_pragmas(conn: SqliteConnection) -> None:
    # Statements run in aiosqlite's thread: waiting for another process's write lock there
    # holds up no other work of the loop.
    await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    await conn.execute("PRAGMA journal_mode = WAL")
    # FULL: an acknowledged step survives a power cut, not only a crash (SPEC §7).
    await conn.execute("PRAGMA synchronous = FULL")


def _ended() -> sqlite3.OperationalError:
    return sqlite3.OperationalError("the transaction ended without a COMMIT")


def _observe(batch: asyncio.Future[None]) -> None:
    """Retrieve a failed batch's error, so a batch nobody awaits any more (its updates were
    cancelled) does not log "exception was never retrieved"."""
    if not batch.cancelled():
        batch.exception()
