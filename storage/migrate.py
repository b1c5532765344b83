"""Numbered schema migrations (storage/migrations/NNNN_name.sql), applied in order at start-up."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from loguru import logger

from storage.sqlite import SqliteConnection

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """Every SQLite migration shipped with the package, ordered by version."""
    return load_migrations(resources.files("storage") / "migrations")


def load_migrations(folder: Traversable) -> list[Migration]:
    """The migrations of one folder (one per dialect), ordered by version."""
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..N without gaps, found {versions}")
    return found


async def schema_version(conn: SqliteConnection) -> int:
    row = await conn.fetchone("PRAGMA user_version")
    return int(row[0]) if row else 0


async def migrate(conn: SqliteConnection, target: int | None = None) -> int:
    """Bring the schema up to `target` (default: the newest); returns the version reached.

    Each migration runs in its own transaction together with the version bump, so a crash
    leaves the file at the previous version, never half-way.
    """
    current = await schema_version(conn)
    migrations = available_migrations()
    newest = migrations[-1].version if migrations else 0
    target = newest if target is None else target
    if current > newest:
        raise RuntimeError(
            f"database schema version {current} is newer than this program knows ({newest})"
        )
    for migration in migrations:
        if current < migration.version <= target:
            await conn.executescript(
                f"BEGIN IMMEDIATE;\n{migration.sql}\n"
                f"PRAGMA user_version = {migration.version};\nCOMMIT;"
            )
            logger.info("database migrated to version {} ({})", migration.version, migration.name)
            current = migration.version
    return current
