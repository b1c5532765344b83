"""The SQLite backend: the repositories' connection interface (storage/backend.py) on aiosqlite.

Every statement runs in aiosqlite's thread, so no statement, however long, holds the event
loop. Each method that answers is one hop to that thread and back: a statement and the
reading of its rows go together, never a hop per row or per cursor operation; the writes
posted before it (`post`) ride in the same hop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from typing import TypeVar, cast

import aiosqlite

from storage.backend import Params, Row

T = TypeVar("T")

# aiosqlite logs every statement at DEBUG with its parameters: residents' texts, phones and
# the secrets in webhook bodies. Never, whatever level the standard logging is set to.
logging.getLogger("aiosqlite").setLevel(logging.WARNING)


class _Aio(aiosqlite.Connection):
    """aiosqlite's connection with one more call: several statements in one trip to its
    thread. Every aiosqlite method is a function queued to that thread through `_execute`;
    this queues one function that runs an update's posted writes and then the statement
    that needs an answer, so they cost one hop (one future, one wake-up of the loop, one
    hand-over of the GIL each way) instead of one each (bench/RESULTS.md, issue 13)."""

    async def run(
        self, writes: list[tuple[str, Params]], then: Callable[[sqlite3.Connection], T]
    ) -> T:
        return cast(T, await self._execute(_run, self._conn, writes, then))  # type: ignore[no-untyped-call]


def _run(
    conn: sqlite3.Connection,
    writes: list[tuple[str, Params]],
    then: Callable[[sqlite3.Connection], T],
) -> T:
    """In aiosqlite's thread: the writes in order, then `then`; the first failing write
    raises its error, and nothing after it runs."""
    for sql, params in writes:
        conn.execute(sql, params)
    return then(conn)


def _nothing(_conn: sqlite3.Connection) -> None:
    return None


class SqliteConnection:
    dialect = "sqlite"

    def __init__(self, conn: _Aio) -> None:
        self.aio = conn
        self.statements = 0
        self.round_trips = 0  # waits for aiosqlite's thread: posted writes share one
        self._posted: list[tuple[str, Params]] = []

    @classmethod
    async def connect(cls, database: str, *, uri: bool = False) -> SqliteConnection:
        """Open a connection in autocommit mode: transactions are explicit statements."""
        # What aiosqlite.connect() does, with the subclass above.
        conn = _Aio(
            functools.partial(sqlite3.connect, database, uri=uri, isolation_level=None),
            iter_chunk_size=64,
        )
        await conn
        conn.row_factory = sqlite3.Row
        return cls(conn)

    @property
    def in_transaction(self) -> bool:
        return self.aio.in_transaction

    def post(self, sql: str, params: Params = ()) -> None:
        """Queue a write whose answer nobody waits for: it runs in the same trip as the next
        statement that needs an answer, or at `flush()`, before either; its error is raised
        there. An update's writes so cost no round trip of their own."""
        self.statements += 1
        self._posted.append((sql, params))

    async def flush(self) -> None:
        """Run every posted statement; the first error among them is raised."""
        if self._posted:
            await self._trip(_nothing)

    def discard(self) -> None:
        """Forget the posted statements that have not run: their unit fails anyway."""
        self._posted = []

    async def _trip(self, then: Callable[[sqlite3.Connection], T]) -> T:
        """One hop to aiosqlite's thread: the posted writes, then `then`."""
        writes, self._posted = self._posted, []
        self.round_trips += 1
        return await self.aio.run(writes, then)

    async def execute(self, sql: str, params: Params = ()) -> int:
        self.statements += 1
        return await self._trip(lambda conn: conn.execute(sql, params).rowcount)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        self.statements += 1
        return await self._trip(lambda conn: conn.execute(sql, params).fetchall())

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        self.statements += 1
        await self._trip(lambda conn: conn.executemany(sql, rows))

    async def stream(
        self, sql: str, params: Params = (), *, size: int = 1000
    ) -> AsyncGenerator[list[Row], None]:
        await self.flush()
        self.statements += 1
        self.round_trips += 1
        async with self.aio.execute(sql, params) as cursor:
            while rows := await cursor.fetchmany(size):
                yield list(rows)

    async def executescript(self, script: str) -> None:
        await self.flush()
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
