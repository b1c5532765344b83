"""An awaitable face on the standard sqlite3 module, for the repositories.

Statements run on the calling (event loop) thread: an update's statements take tens of
microseconds each, far less than a hop to a worker thread and back (aiosqlite's way, which
cost more than the statements themselves, see bench/RESULTS.md). What can block for long
runs in the connection's own worker thread instead, awaited: COMMIT (an fsync), and every
statement of a view made by `in_thread()` (reports over a whole year of appeals).

The caller serializes use (storage.db holds a lock around every transaction), so the
worker thread and the loop never touch the connection at the same time.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")
Params = Sequence[Any] | dict[str, Any]
Row = sqlite3.Row


class Cursor:
    """The result of one statement: rows to fetch, `lastrowid`, `rowcount`."""

    def __init__(self, raw: sqlite3.Cursor, conn: Connection) -> None:
        self._raw = raw
        self._conn = conn

    @property
    def lastrowid(self) -> int | None:
        return self._raw.lastrowid

    @property
    def rowcount(self) -> int:
        return self._raw.rowcount

    async def fetchone(self) -> Any:
        return await self._conn._call(self._raw.fetchone)

    async def fetchall(self) -> list[Any]:
        return await self._conn._call(self._raw.fetchall)

    async def fetchmany(self, size: int) -> list[Any]:
        return await self._conn._call(self._raw.fetchmany, size)

    async def close(self) -> None:
        self._raw.close()


class Statement:
    """`await conn.execute(...)` gives the cursor; `async with conn.execute(...) as cursor`
    closes it afterwards."""

    def __init__(self, conn: Connection, sql: str, params: Params) -> None:
        self._conn = conn
        self._sql = sql
        self._params = params
        self._cursor: Cursor | None = None

    async def _run(self) -> Cursor:
        raw = await self._conn._call(self._conn.raw.execute, self._sql, self._params)
        self._cursor = Cursor(raw, self._conn)
        return self._cursor

    def __await__(self) -> Generator[Any, None, Cursor]:
        return self._run().__await__()

    async def __aenter__(self) -> Cursor:
        return await self._run()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._cursor is not None:
            await self._cursor.close()


class Connection:
    """One sqlite3 connection in autocommit mode (transactions are explicit statements)."""

    def __init__(
        self, raw: sqlite3.Connection, worker: ThreadPoolExecutor, *, threaded: bool = False
    ) -> None:
        self.raw = raw
        self._worker = worker
        self._threaded = threaded

    @classmethod
    async def connect(cls, database: str, *, uri: bool = False) -> Connection:
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        loop = asyncio.get_running_loop()
        try:
            raw = await loop.run_in_executor(
                worker,
                lambda: sqlite3.connect(
                    database, uri=uri, isolation_level=None, check_same_thread=False
                ),
            )
        except BaseException:
            worker.shutdown(wait=False)
            raise
        return cls(raw, worker)

    @property
    def row_factory(self) -> Any:
        return self.raw.row_factory

    @row_factory.setter
    def row_factory(self, factory: Any) -> None:
        self.raw.row_factory = factory

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def in_thread(self) -> Connection:
        """The same connection, its statements run in the worker thread (long reads)."""
        return Connection(self.raw, self._worker, threaded=True)

    def execute(self, sql: str, params: Params = ()) -> Statement:
        return Statement(self, sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> Cursor:
        return Cursor(await self._call(self.raw.executemany, sql, rows), self)

    async def executescript(self, script: str) -> None:
        await self.run_in_thread(self.raw.executescript, script)

    async def run_in_thread(self, function: Callable[..., T], *args: Any) -> T:
        """Run `function(*args)` in the connection's worker thread, to its end even if the
        caller is cancelled meanwhile (the cancellation is raised afterwards), so the
        connection's state is known when the caller hears of it."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._worker, function, *args)
        cancelled = False
        while not future.done():
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                cancelled = True
        result = future.result()
        if cancelled:
            raise asyncio.CancelledError
        return result

    async def close(self) -> None:
        await self.run_in_thread(self.raw.close)
        self._worker.shutdown(wait=True)

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        if self._threaded:
            return await self.run_in_thread(function, *args)
        return function(*args)
