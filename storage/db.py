"""The SQLite database: one writer connection, its pragmas, and one transaction per update."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from storage.appeals import AppealRepository, ThreadRepository
from storage.audit import AuditRepository
from storage.bans import BanRepository
from storage.channel_state import ChannelStateRepository
from storage.drafts import DraftRepository
from storage.events import ProcessedEventRepository
from storage.inbox import InboxRepository
from storage.migrate import migrate
from storage.outbox import OutboxRepository
from storage.questions import QuestionRepository
from storage.residents import ResidentRepository
from storage.retention import RetentionRepository
from storage.sqlite import Connection, Row
from storage.staff import StaffRepository

BUSY_TIMEOUT_MS = 5000


class Tx:
    """The repositories bound to one open transaction: everything an update changes."""

    def __init__(self, conn: Connection) -> None:
        self.residents = ResidentRepository(conn)
        self.appeals = AppealRepository(conn)
        self.thread = ThreadRepository(conn)
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


class Database:
    """One SQLite connection in WAL mode; updates run one after another on it, and those
    that come together share one COMMIT (group commit).

    Each update's statements run in a SAVEPOINT of the open transaction, so a failing update
    rolls back alone. The update's `transaction()` block returns only once the COMMIT that
    holds its writes has reached the disk: nothing it decided is sent before it is durable.
    An update whose block ends while others wait leaves the COMMIT to the last of them, so
    one fsync serves them all.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self._waiting = 0  # updates waiting for the lock
        self._batch: asyncio.Future[None] | None = None  # the open transaction's COMMIT
        self._flusher: asyncio.Future[None] | None = None
        self._closed = False
        self._changes_at_begin = 0
        self.commits = 0  # COMMITs done (one per group of updates), for tests and benches

    @classmethod
    async def open(cls, path: str | Path, *, migrate_to: int | None = None) -> Database:
        """Open (creating if needed) the file, set the pragmas and apply pending migrations."""
        conn = await Connection.connect(str(path))
        conn.row_factory = Row
        try:
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await conn.execute("PRAGMA journal_mode = WAL")
            # FULL: an acknowledged step survives a power cut, not only a crash (SPEC §7).
            await conn.execute("PRAGMA synchronous = FULL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await migrate(conn, migrate_to)
            # From here statements run on the event loop, which must never sleep in SQLite's
            # busy handler: BEGIN IMMEDIATE, the one statement that waits for another
            # process's write lock, tries without waiting and waits in the thread (_begin).
            await conn.execute("PRAGMA busy_timeout = 0")
        except BaseException:
            await conn.close()
            raise
        return cls(conn)

    async def close(self) -> None:
        async with self._lock:
            if self._closed:
                return
            await self._finish()
            self._closed = True
            await self._conn.close()

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
                await self._begin()
                self._changes_at_begin = self._conn.raw.total_changes
                self._batch = asyncio.get_running_loop().create_future()
                self._batch.add_done_callback(_observe)
            batch = self._batch
            assert batch is not None
            await self._control("SAVEPOINT unit")
            try:
                yield Tx(self._conn)
            except BaseException:
                await self._undo_unit()
                raise
            try:
                await self._control("RELEASE unit")
            except sqlite3.Error as error:  # SQLite ended the whole transaction meanwhile
                await self._fail_batch(error)
                raise
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

    async def _begin(self) -> None:
        """BEGIN IMMEDIATE. If another process holds the write lock (a second bot on the
        same file, a manual sqlite3 session), wait for it up to the busy timeout in the
        worker thread, so the loop goes on serving everything else meanwhile."""
        try:
            self._conn.raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            # The primary code: extended ones such as SQLITE_BUSY_RECOVERY are busy too.
            if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            await self._conn.run_in_thread(_begin_waiting, self._conn.raw)

    async def _undo_unit(self) -> None:
        """Roll back the failed unit only. If SQLite has already ended the whole transaction
        (it does on some errors), the earlier updates of the batch are lost with it: they
        are told so, as by a failed COMMIT."""
        if self._conn.in_transaction:
            try:
                await self._control("ROLLBACK TO unit")
                await self._control("RELEASE unit")
                return
            except sqlite3.Error as error:
                await self._fail_batch(error)
                return
        await self._fail_batch(_ended())

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
        """COMMIT in the worker thread (the fsync must not stall the loop), then release
        every update of the batch; if it fails, roll back and fail them all."""
        try:
            await self._control("COMMIT")
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
                await self._control("ROLLBACK")
        finally:  # also if cancelled meanwhile: nobody may wait for this batch for ever
            self._settle_batch(error)

    def _settle_batch(self, error: Exception | None) -> None:
        batch, self._batch = self._batch, None
        if batch is None or batch.done():
            return
        if error is None:
            batch.set_result(None)
        else:
            batch.set_exception(error)

    async def _control(self, statement: str) -> None:
        """BEGIN, SAVEPOINT, RELEASE, COMMIT or ROLLBACK, run to its end even if the caller
        is cancelled meanwhile (`in_transaction` must tell the truth afterwards). A COMMIT
        or ROLLBACK that writes (an fsync) runs in the worker thread; one of a transaction
        that only read is instant and runs here."""
        wrote = self._conn.raw.total_changes != self._changes_at_begin
        if wrote and statement in ("COMMIT", "ROLLBACK"):
            await self._conn.run_in_thread(self._conn.raw.execute, statement)
        else:
            self._conn.raw.execute(statement)

    async def pragma(self, name: str) -> str:
        """Read one pragma's value (for tests and diagnostics)."""
        async with self._lock, self._conn.execute(f"PRAGMA {name}") as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else ""


def _begin_waiting(raw: sqlite3.Connection) -> None:
    raw.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    try:
        raw.execute("BEGIN IMMEDIATE")
    finally:
        raw.execute("PRAGMA busy_timeout = 0")


def _ended() -> sqlite3.OperationalError:
    return sqlite3.OperationalError("the transaction ended without a COMMIT")


def _observe(batch: asyncio.Future[None]) -> None:
    """Retrieve a failed batch's error, so a batch nobody awaits any more (its updates were
    cancelled) does not log "exception was never retrieved"."""
    if not batch.cancelled():
        batch.exception()
