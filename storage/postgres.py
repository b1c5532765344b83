"""The PostgreSQL backend (SPEC §15): the repositories' connection interface
(storage/backend.py) on psycopg 3, and a database of pooled connections (psycopg-pool).

The repositories write `?` (or `:name`) placeholders; here they become psycopg's `%s` (or
`%(name)s`), and a `%` of the SQL itself (in a literal: `LIKE 'a%'`) is doubled, so psycopg
reads it as a character. Literals and quoted names are left as they are otherwise.

Unlike SQLite's single writer, updates run side by side here, each in its own transaction on
its own pooled connection; several instances of the bot may share the database. Prepared
statements are off: regional installations put pgbouncer (transaction mode) in front of
PostgreSQL, where a statement prepared on one server connection is unknown on the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import psycopg
from loguru import logger
from psycopg_pool import AsyncConnectionPool

from storage.backend import Params, Row
from storage.db import Tx
from storage.migrate import Migration, load_migrations

# The key of the advisory lock that lets one instance at a time migrate the schema.
MIGRATION_LOCK = 0x61707065616C73  # "appeals"
DEFAULT_POOL_SIZE = 10
# How often an instance tries to take over work another holds (and checks its own hold).
LEADER_RETRY_SECONDS = 3.0

_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|::|:([A-Za-z_]\w*)|\?|%")


@functools.lru_cache(maxsize=1024)
def to_psycopg(sql: str) -> str:
    """`?` and `:name` placeholders as psycopg's, every other `%` doubled."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token[0] in "'\"":
            return token.replace("%", "%%")
        if token == "::":
            return token
        if match.group(1):
            return f"%({match.group(1)})s"
        return "%s" if token == "?" else "%%"

    return _TOKEN.sub(replace, sql)


class PgRow(tuple[Any, ...]):
    """A row read by index (row[0]), by column name (row["id"]) and unpacked, as sqlite3.Row."""

    _names: dict[str, int]

    def __new__(cls, values: Sequence[Any], names: dict[str, int]) -> PgRow:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(self._names[key])
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor: Any) -> Any:
    names = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: PgRow(values, names)


class PostgresConnection:
    dialect = "postgresql"

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.pg = conn
        self.statements = 0
        self._posted: list[tuple[str, Params]] = []

    def post(self, sql: str, params: Params = ()) -> None:
        """A write whose answer nobody waits for: sent before the next statement, or by
        `flush()` at the end of the unit (its error then fails the unit)."""
        self._posted.append((sql, params))

    async def flush(self) -> None:
        posted, self._posted = self._posted, []
        for sql, params in posted:
            self.statements += 1
            await self.pg.execute(to_psycopg(sql), params)

    async def execute(self, sql: str, params: Params = ()) -> int:
        await self.flush()
        self.statements += 1
        cursor = await self.pg.execute(to_psycopg(sql), params)
        return cursor.rowcount

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        await self.flush()
        self.statements += 1
        cursor = await self.pg.execute(to_psycopg(sql), params)
        return list(await cursor.fetchall()) if cursor.description else []

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        await self.flush()
        self.statements += 1
        async with self.pg.cursor() as cursor:
            await cursor.executemany(to_psycopg(sql), list(rows))

    async def stream(
        self, sql: str, params: Params = (), *, size: int = 1000
    ) -> AsyncGenerator[list[Row], None]:
        await self.flush()
        self.statements += 1
        batch: list[Row] = []
        async with self.pg.cursor() as cursor:
            async for row in cursor.stream(to_psycopg(sql), params, size=size):
                batch.append(row)
                if len(batch) >= size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    async def close(self) -> None:
        await self.pg.close()

    async def executescript(self, script: str) -> None:
        """Several statements, no parameters (a migration): sent as they are."""
        await self.flush()
        self.statements += 1
        await self.pg.execute(script.encode())


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


async def connect(url: str, *, read_only: bool = False) -> PostgresConnection:
    """One connection of its own in autocommit mode (the command line: report, export,
    migrate-db)."""
    conn = await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=_row_factory, prepare_threshold=None
    )
    if read_only:
        await conn.execute("SET default_transaction_read_only = on")
    return PostgresConnection(conn)


def postgres_migrations() -> list[Migration]:
    return load_migrations(resources.files("storage") / "migrations_postgresql")


async def schema_version(conn: PostgresConnection) -> int:
    row = await conn.fetchone("SELECT to_regclass('schema_version') IS NOT NULL")
    if not row or not row[0]:
        return 0
    row = await conn.fetchone("SELECT max(version) FROM schema_version")
    return int(row[0]) if row and row[0] is not None else 0


async def migrate(conn: PostgresConnection, target: int | None = None) -> int:
    """Bring the schema up to `target` (default: the newest). Each migration runs in its own
    transaction with the version bump, under an advisory lock: instances starting together
    apply each migration once."""
    migrations = postgres_migrations()
    newest = migrations[-1].version if migrations else 0
    target = newest if target is None else target
    current = 0
    for migration in [*migrations, None]:
        async with conn.pg.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            current = await schema_version(conn)
            if current > newest:
                raise RuntimeError(
                    f"database schema version {current} is newer than this program knows ({newest})"
                )
            if migration is None or not current < migration.version <= target:
                continue
            await conn.executescript(
                f"{migration.sql}\n"
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);\n"
                f"INSERT INTO schema_version VALUES ({migration.version});"
            )
            logger.info("database migrated to version {} ({})", migration.version, migration.name)
            current = migration.version
    return current


async def _try_lock(conn: PostgresConnection, name: str) -> bool:
    """The session advisory lock `name` of this schema (advisory locks are per database: two
    installations in schemas of one database must not share them)."""
    row = await conn.fetchone(
        "SELECT pg_try_advisory_lock(hashtextextended(current_schema() || ':' || ?, 0))",
        (name,),
    )
    return bool(row and row[0])


class PostgresDatabase:
    """PostgreSQL through a pool of `pool_size` connections: each update takes one, runs in
    one transaction on it and gives it back; `read()` takes one for a read-only transaction.
    The same face as storage.db.Database."""

    def __init__(self, pool: AsyncConnectionPool[Any], url: str) -> None:
        self._pool = pool
        self.url = url
        self.commits = 0
        self.shared = True  # several instances may share it (SPEC §15)
        self._statements = 0

    @property
    def statements(self) -> int:
        return self._statements

    @classmethod
    async def open(
        cls, url: str, *, pool_size: int = DEFAULT_POOL_SIZE, migrate_to: int | None = None
    ) -> PostgresDatabase:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "row_factory": _row_factory, "prepare_threshold": None},
            open=False,
            name="appeals",
        )
        await pool.open(wait=True, timeout=30)
        try:
            async with pool.connection() as conn:
                await migrate(PostgresConnection(conn), migrate_to)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, url)

    async def close(self) -> None:
        await self._pool.close()

    async def exclusively(self, name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `work` while this instance holds the advisory lock `name` on a connection of
        its own; until then, try again every LEADER_RETRY_SECONDS. PostgreSQL releases the
        lock when the holder's connection ends, so when an instance dies (kill -9 closes
        its sockets) another takes the work over within that time. The connection is
        checked as often: a holder that lost it stops the work, since the lock is gone."""
        while True:
            task: asyncio.Task[None] | None = None
            try:
                conn = await connect(self.url)
            except psycopg.Error as error:
                logger.warning("{}: cannot reach the database ({})", name, type(error).__name__)
                await asyncio.sleep(LEADER_RETRY_SECONDS)
                continue
            try:
                held = await _try_lock(conn, name)
                while not held:
                    await asyncio.sleep(LEADER_RETRY_SECONDS)
                    held = await _try_lock(conn, name)
                logger.info("{} runs on this instance", name)
                task = asyncio.create_task(work(), name=name)
                while not task.done():
                    await asyncio.wait([task], timeout=LEADER_RETRY_SECONDS)
                    if not task.done():
                        await conn.execute("SELECT 1")
                return task.result()
            except psycopg.Error as error:
                logger.warning("{}: lost the database lock ({})", name, type(error).__name__)
            finally:
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                with contextlib.suppress(psycopg.Error):
                    await conn.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[PostgresConnection]:
        """A pooled connection in autocommit mode (locks, sessions of their own)."""
        async with self._pool.connection() as conn:
            pg = PostgresConnection(conn)
            try:
                yield pg
            finally:
                self._statements += pg.statements

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """One update's unit of work: rolled back if the block raises, committed when the
        block has returned."""
        async with self.connection() as pg, pg.pg.transaction():
            yield Tx(pg)
            await pg.flush()  # the unit's posted writes, before its COMMIT
        self.commits += 1

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        """A read-only snapshot for long reads; holds up no update."""
        async with self.connection() as pg, pg.pg.transaction():
            await pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield Tx(pg)
