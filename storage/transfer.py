"""Moving an installation from SQLite to PostgreSQL (`appeals-bot migrate-db`, SPEC §15).

Every table of the SQLite file is copied, row for row and id for id, into a PostgreSQL
database brought to the same schema version by its own migrations, in one PostgreSQL
transaction: a failure leaves the target as empty as it was. A target that holds any row is
refused. The counters go along: the next appeal gets the number after the last one ever given
(SQLite's sqlite_sequence), and every other id continues after the copied ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from storage.backend import Connection
from storage.migrate import available_migrations
from storage.postgres import PostgresConnection, PostgresDatabase, postgres_migrations
from storage.reports import ReportError, connect_read_only

# Parents before children (foreign keys are checked row by row); a table of a later
# migration that is not named here goes after these.
ORDER = (
    "residents",
    "appeals",
    "appeal_events",
    "drafts",
    "processed_events",
    "outbox",
    "sent_messages",
    "audit_log",
    "staff",
    "bans",
    "questions",
    "channel_state",
    "deadline_notices",
    "inbox",
)
BATCH = 1000


class TransferError(Exception):
    """The move cannot be made; the text says why."""


@dataclass(frozen=True)
class TableCount:
    table: str
    source: int
    target: int


async def sqlite_to_postgres(source: Path, target_url: str) -> list[TableCount]:
    """Copy everything; the rows of each table counted on both sides afterwards."""
    try:
        sqlite = await connect_read_only(source)
    except ReportError as error:
        raise TransferError(str(error)) from None
    try:
        row = await sqlite.fetchone("PRAGMA user_version")
        version = int(row[0]) if row else 0
        if version != len(available_migrations()):
            raise TransferError(
                f"{source}: schema version {version}; start this appeals-bot on it once first"
            )
        if version > len(postgres_migrations()):
            raise TransferError(
                f"PostgreSQL migrations go up to {len(postgres_migrations())}, the file is at "
                f"{version}: this appeals-bot cannot hold its newest tables in PostgreSQL yet"
            )
        tables = [
            r[0]
            for r in await sqlite.fetchall(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
            )
        ]
        tables.sort(key=lambda t: (ORDER.index(t) if t in ORDER else len(ORDER), t))
        try:
            database = await PostgresDatabase.open(target_url, pool_size=1)
        except Exception as error:  # psycopg's: never the URL, it may carry a password
            raise TransferError(f"cannot open the PostgreSQL database ({error!s:.200})") from None
        try:
            async with database.connection() as pg:
                async with pg.pg.transaction():
                    await _refuse_non_empty(pg, tables)
                    for table in tables:
                        await _copy(sqlite, pg, table)
                    await _continue_counters(sqlite, pg, tables)
                return [
                    TableCount(table, await _count(sqlite, table), await _count(pg, table))
                    for table in tables
                ]
        finally:
            await database.close()
    finally:
        await sqlite.close()


async def _count(conn: Connection, table: str) -> int:
    row = await conn.fetchone(f'SELECT count(*) FROM "{table}"')
    return int(row[0]) if row else 0


async def _refuse_non_empty(pg: PostgresConnection, tables: list[str]) -> None:
    missing = []
    for table in tables:
        found = await pg.fetchone("SELECT to_regclass(?) IS NOT NULL", (table,))
        if not found or not found[0]:
            missing.append(table)
    if missing:
        raise TransferError(f"the PostgreSQL schema has no table {', '.join(missing)}")
    for table in tables:
        if await pg.fetchone(f'SELECT 1 FROM "{table}" LIMIT 1'):
            raise TransferError(
                f"the PostgreSQL database is not empty (table {table} has rows): "
                "migrate-db moves into an empty database only"
            )


async def _copy(sqlite: Connection, pg: PostgresConnection, table: str) -> None:
    """The table's rows, in batches, under their own column names."""
    async for rows in sqlite.stream(f'SELECT * FROM "{table}"', size=BATCH):
        columns = list(rows[0].keys())
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        await pg.executemany(
            f'INSERT INTO "{table}" ({names}) VALUES ({marks})', [tuple(r) for r in rows]
        )


async def _continue_counters(sqlite: Connection, pg: PostgresConnection, tables: list[str]) -> None:
    """Ids go on after the copied ones; the next appeal number after the last ever given."""
    for table in tables:
        sequence = await pg.fetchone(
            "SELECT pg_get_serial_sequence(?, 'id') FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ? AND column_name = 'id'",
            (table, table),
        )
        if sequence and sequence[0]:
            await pg.execute(
                f'SELECT setval(?, (SELECT coalesce(max(id), 0) + 1 FROM "{table}"), false)',
                (sequence[0],),
            )
    row = await sqlite.fetchone(
        "SELECT max(n) FROM (SELECT max(id) AS n FROM appeals"
        " UNION ALL SELECT seq FROM sqlite_sequence WHERE name = 'appeals')"
    )
    await pg.execute("UPDATE appeal_numbers SET last = ?", (int(row[0] or 0) if row else 0,))
