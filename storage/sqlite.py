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

    @classmethod
    async def connect(cls, database: str, *, uri: bool = False) -> SqliteConnection:
        """Open a connection in autocommit mode: transactions are explicit statements."""
        conn = await aiosqlite.connect(database, uri=uri, isolation_level=None)
        conn.row_factory = sqlite3.Row
        return cls(conn)

    @property
    def in_transaction(self) -> bool:
        return self.aio.in_transaction

    async def execute(self, sql: str, params: Params = ()) -> int:
        self.statements += 1
        cursor = await self.aio.execute(sql, params)
        return cursor.rowcount

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        self.statements += 1
        return list(await self.aio.execute_fetchall(sql, params))

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        self.statements += 1
        await self.aio.executemany(sql, rows)

    async def stream(
        self, sql: str, params: Params = (), *, size: int = 1000
    ) -> AsyncGenerator[list[Row], None]:
        self.statements += 1
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
