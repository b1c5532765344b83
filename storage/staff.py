"""Staff: who administers which settlement and who moderates the district.

Rows come from two sources. Config rows are re-applied at every start-up: added if missing,
deleted when no longer in the file. Command rows (/staff add) are kept across restarts.
Where both name the same person and role, the config wins (the row is marked as config).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from storage.backend import Connection
from storage.times import to_db

ADMIN = "admin"
MODERATOR = "moderator"


@dataclass(frozen=True)
class StaffRow:
    identity: str
    role: str
    settlement: str
    source: str


@dataclass(frozen=True)
class StaffMember:
    """A person's staff roles: moderator of the district and/or admin of settlements."""

    identity: str
    moderator: bool
    settlements: frozenset[str]

    def may_act_on(self, settlement: str) -> bool:
        return self.moderator or settlement in self.settlements


# Where the dialects differ (the one place in this repository): on PostgreSQL the scratch
# table lives for one transaction (behind pgbouncer a session is not the client's own).
_SCRATCH = {
    "sqlite": "CREATE TEMP TABLE IF NOT EXISTS wanted_staff"
    " (identity TEXT, role TEXT, settlement TEXT)",
    "postgresql": "CREATE TEMP TABLE IF NOT EXISTS wanted_staff"
    " (identity TEXT, role TEXT, settlement TEXT) ON COMMIT DROP",
}


class StaffRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._scratch = _SCRATCH[conn.dialect]

    async def seed(self, rows: Iterable[tuple[str, str, str]], now: datetime) -> None:
        """Make the config rows (identity, role, settlement) exactly the given ones."""
        wanted = set(rows)
        await self._conn.execute(self._scratch)
        await self._conn.execute("DELETE FROM wanted_staff")
        await self._conn.executemany("INSERT INTO wanted_staff VALUES (?, ?, ?)", wanted)
        await self._conn.execute(
            "DELETE FROM staff WHERE source = 'config' AND (identity, role, settlement) NOT IN"
            " (SELECT identity, role, settlement FROM wanted_staff)"
        )
        await self._conn.execute(
            "INSERT INTO staff (identity, role, settlement, source, added_at)"
            " SELECT identity, role, settlement, 'config', ? FROM wanted_staff WHERE true"
            " ON CONFLICT (identity, role, settlement) DO UPDATE SET source = 'config'",
            (to_db(now),),
        )
        await self._conn.execute("DELETE FROM wanted_staff")

    async def member(self, identity: str) -> StaffMember | None:
        rows = await self._conn.fetchall(
            "SELECT role, settlement FROM staff WHERE identity = ?", (identity,)
        )
        if not rows:
            return None
        return StaffMember(
            identity=identity,
            moderator=any(row[0] == MODERATOR for row in rows),
            settlements=frozenset(row[1] for row in rows if row[0] == ADMIN),
        )

    async def admins_of(self, settlement: str) -> list[str]:
        return [
            row[0]
            for row in await self._conn.fetchall(
                "SELECT identity FROM staff WHERE role = 'admin' AND settlement = ?"
                " ORDER BY identity",
                (settlement,),
            )
        ]

    async def moderators(self) -> list[str]:
        return [
            row[0]
            for row in await self._conn.fetchall(
                "SELECT identity FROM staff WHERE role = 'moderator' ORDER BY identity"
            )
        ]

    async def all(self) -> list[StaffRow]:
        return [
            StaffRow(*row)
            for row in await self._conn.fetchall(
                "SELECT identity, role, settlement, source FROM staff"
                " ORDER BY role DESC, settlement, identity"
            )
        ]

    async def add(
        self, identity: str, role: str, settlement: str, added_by: str, now: datetime
    ) -> bool:
        """Add a role by command; False if the person already had it."""
        return (
            await self._conn.execute(
                "INSERT INTO staff (identity, role, settlement, source, added_by, added_at)"
                " VALUES (?, ?, ?, 'command', ?, ?) ON CONFLICT DO NOTHING",
                (identity, role, settlement, added_by, to_db(now)),
            )
        ) == 1

    async def remove(self, identity: str) -> list[StaffRow]:
        """Remove every role of a person; returns what was removed."""
        return [
            StaffRow(*row)
            for row in await self._conn.fetchall(
                "DELETE FROM staff WHERE identity = ? RETURNING identity, role, settlement, source",
                (identity,),
            )
        ]
