"""The SQLite database: one writer connection, its pragmas, and one transaction per update."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from storage.appeals import AppealRepository, ThreadRepository
from storage.audit import AuditRepository
from storage.bans import BanRepository
from storage.channel_state import ChannelStateRepository
from storage.drafts import DraftRepository
from storage.events import ProcessedEventRepository
from storage.migrate import migrate
from storage.outbox import OutboxRepository
from storage.questions import QuestionRepository
from storage.residents import ResidentRepository
from storage.staff import StaffRepository

BUSY_TIMEOUT_MS = 5000


class Tx:
    """The repositories bound to one open transaction: everything an update changes."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
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


class Database:
    """One aiosqlite connection in WAL mode; transactions are serialized by a lock.

    SQLite allows one writer at a time anyway; serializing here keeps each update's
    statements in its own transaction instead of interleaving them on the shared connection.
    """

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path, *, migrate_to: int | None = None) -> Database:
        """Open (creating if needed) the file, set the pragmas and apply pending migrations."""
        conn = await aiosqlite.connect(str(path), isolation_level=None)
        conn.row_factory = aiosqlite.Row
        try:
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await conn.execute("PRAGMA journal_mode = WAL")
            # FULL: an acknowledged step survives a power cut, not only a crash (SPEC §7).
            await conn.execute("PRAGMA synchronous = FULL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await migrate(conn, migrate_to)
        except BaseException:
            await conn.close()
            raise
        return cls(conn)

    async def close(self) -> None:
        async with self._lock:
            await self._conn.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """BEGIN IMMEDIATE … COMMIT around the block; ROLLBACK if it raises."""
        async with self._lock:
            try:
                await self._control("BEGIN IMMEDIATE")
                yield Tx(self._conn)
                await self._control("COMMIT")
            except BaseException:
                # Also after a failed or cancelled BEGIN or COMMIT: the shared connection
                # must leave the transaction, or every later BEGIN would fail.
                if self._conn.in_transaction:
                    await self._control("ROLLBACK")
                raise

    async def _control(self, statement: str) -> None:
        """Run BEGIN, COMMIT or ROLLBACK to its end even if the caller is cancelled meanwhile
        (aiosqlite's thread would run it anyway); the cancellation is raised afterwards, when
        `in_transaction` tells the truth."""
        task = asyncio.ensure_future(self._conn.execute(statement))
        cancelled = False
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                cancelled = True
        task.result()
        if cancelled:
            raise asyncio.CancelledError

    async def pragma(self, name: str) -> str:
        """Read one pragma's value (for tests and diagnostics)."""
        async with self._lock, self._conn.execute(f"PRAGMA {name}") as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else ""
