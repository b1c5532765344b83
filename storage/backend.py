"""What the repositories need from a database backend: a small connection interface.

The repositories speak to this, never to a driver: the SQLite backend (storage/sqlite.py, on
aiosqlite) implements it today, and a second backend only has to implement it too. Every
method is one round trip to the database, so the number of calls is the number of round
trips an update costs (`statements` counts them, for the benchmark).

SQL is written once, in the subset both SQLite and PostgreSQL understand (`?` placeholders,
`INSERT … ON CONFLICT`, `RETURNING`); where a repository needs a dialect's own form, it picks
by `dialect`, in one place in that repository.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from typing import Any, Protocol

Params = Sequence[Any] | Mapping[str, Any]
Row = Any  # a row read by index (row[0]) and by column name (row["id"])


class Connection(Protocol):
    dialect: str  # "sqlite" or "postgresql"
    statements: int  # round trips so far

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""

    def post(self, sql: str, params: Params = ()) -> None:
        """Queue a write whose answer nobody waits for; it runs before any statement issued
        after it, and the transaction waits for it (`flush`) and fails with its error."""

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """The first row of one statement's result (write it to return at most one)."""

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Every row of one statement's result."""

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """One statement over many parameter rows, in one round trip."""

    def stream(
        self, sql: str, params: Params = (), *, size: int = 1000
    ) -> AsyncGenerator[list[Row], None]:
        """The result in batches of `size` rows, never all in memory (long reads)."""
