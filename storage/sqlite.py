"""The SQLite backend: the repositories' connection interface (storage/backend.py) on aiosqlite.

Every statement runs in aiosqlite's thread, so no statement, however long, holds the event
loop. Each method is one hop to that thread and back: a statement and the reading of its
rows go together (`execute_fetchall`), never a hop per row or per cursor operation.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncGenerator, Awaitable, Iterable
from typing import TypeVar

import aiosqlite

from storage.backend import Params, Row

T = TypeVar("T")

# aiosqlite logs every statement at DEBUG with its parameters: residents' texts, phones and
# the secrets in webhook bodies. Never, whatever level the standard logging is set to.
logging.getLogger("aiosqlite").setLevel(logging.WARNING)


class SqliteConnection:
    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.aio = conn
        self.statements = 0
        self.round_trips = 0  # waits for aiosqlite's thread: posted writes share one
        self._posted: list[asyncio.Future[None]] = []
        self._unstarted = 0  # posted statements not yet in aiosqlite's queue

    @classmethod
    async def connect(cls, database: str, *, uri: bool = False) -> SqliteConnection:
        """Open a connection in autocommit mode: transactions are explicit statements."""
        conn = await aiosqlite.connect(database, uri=uri, isolation_level=None)
        conn.row_factory = sqlite3.Row
        return cls(conn)

    @property
    def in_transaction(self) -> bool:
        return self.aio.in_transaction

    def post(self, sql: str, params: Params = ()) -> None:
        """Queue a write whose answer nobody waits for: it runs in its turn among this
        connection's statements (before any issued after it), and `flush()` waits for it and
        raises its error. An update's writes so cost one round trip together, not one each."""
        self.statements += 1
        self._unstarted += 1

        async def run() -> None:
            self._unstarted -= 1  # the first step: it puts the statement in the queue
            await self.aio.execute(sql, params)

        self._posted.append(asyncio.ensure_future(run()))

    async def flush(self) -> None:
        """Wait for every posted statement; the first error among them is raised."""
        posted, self._posted = self._posted, []
        if not posted:
            return
        self.round_trips += 1
        # Shielded: a cancelled caller must not cancel a posted statement before it has
        # reached the queue (the next statement would wait for it for ever).
        results = await asyncio.shield(asyncio.gather(*posted, return_exceptions=True))
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def discard(self) -> None:
        """Wait for every posted statement, their errors dropped (the unit fails anyway)."""
        posted, self._posted = self._posted, []
        if posted:
            await asyncio.shield(asyncio.gather(*posted, return_exceptions=True))

    async def _in_turn(self) -> None:
        """Let posted statements that have not reached aiosqlite's queue go first: their
        first steps were scheduled before this yield, so they run before it returns."""
        if self._unstarted:
            await asyncio.sleep(0)

    async def execute(self, sql: str, params: Params = ()) -> int:
        await self._in_turn()
        self.statements += 1
        self.round_trips += 1
        cursor = await self.aio.execute(sql, params)
        return cursor.rowcount

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        await self._in_turn()
        self.statements += 1
        self.round_trips += 1
        return list(await self.aio.execute_fetchall(sql, params))

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        await self._in_turn()
        self.statements += 1
        self.round_trips += 1
        await self.aio.executemany(sql, rows)

    async def stream(
        self, sql: str, params: Params = (), *, size: int = 1000
    ) -> AsyncGenerator[list[Row], None]:
        await self._in_turn()
        self.statements += 1
        self.round_trips += 1
        async with self.aio.execute(sql, params) as cursor:
            while rows := await cursor.fetchmany(size):
                yield list(rows)

    async def executescript(self, script: str) -> None:
        self.statements += 1
        await self.aio.executescript(script)

    async def control(self, statement: str) -> None:
        """BEGIN, SAVEPOINT, RELEASE, COMMIT or ROLLBACK, run to its end even if the caller
        is cancelled meanwhile, so `in_transaction` tells the truth when the caller hears."""
        await to_the_end(self.execute(statement))

    async def close(self) -> None:
        await self.aio.close()


async def to_the_end(work: Awaitable[T]) -> T:
    """Await `work` to its end even if the caller is cancelled meanwhile; the cancellation is
    raised afterwards."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    result = task.result()
    if cancelled:
        raise asyncio.CancelledError
    return result
