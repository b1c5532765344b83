"""The web dashboard's sign-in (SPEC §16): one-time login links and the sessions they open.

Tokens are random and only their SHA-256 hashes are stored; a link is used once and expires,
a session expires too, and removing a person from the staff ends all of their sessions.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from storage.backend import Connection
from storage.times import to_db


def token_hash(token: str) -> str:
    """What is stored of a token (a random 256-bit value needs no salt or slow hash)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class DashboardRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def issue_login(
        self, token: str, identity: str, now: datetime, expires_at: datetime
    ) -> None:
        await self._conn.execute(
            "INSERT INTO dashboard_logins (token_hash, identity, created_at, expires_at)"
            " VALUES (?, ?, ?, ?)",
            (token_hash(token), identity, to_db(now), to_db(expires_at)),
        )

    async def logins_since(self, identity: str, since: datetime) -> int:
        row = await self._conn.fetchone(
            "SELECT count(*) FROM dashboard_logins WHERE identity = ? AND created_at >= ?",
            (identity, to_db(since)),
        )
        return int(row[0]) if row else 0

    async def login_valid(self, token: str, now: datetime) -> bool:
        """Whether the link would sign in now (unused, not expired); changes nothing."""
        row = await self._conn.fetchone(
            "SELECT 1 FROM dashboard_logins WHERE token_hash = ? AND used_at IS NULL"
            " AND expires_at > ?",
            (token_hash(token), to_db(now)),
        )
        return row is not None

    async def use_login(self, token: str, now: datetime) -> str | None:
        """Mark the link used and return whose it is; None when it is unknown, used or
        expired."""
        rows = await self._conn.fetchall(
            "UPDATE dashboard_logins SET used_at = ? WHERE token_hash = ? AND used_at IS NULL"
            " AND expires_at > ? RETURNING identity",
            (to_db(now), token_hash(token), to_db(now)),
        )
        return str(rows[0][0]) if rows else None

    async def start_session(
        self, token: str, identity: str, now: datetime, expires_at: datetime
    ) -> None:
        await self._conn.execute(
            "INSERT INTO dashboard_sessions (token_hash, identity, created_at, expires_at)"
            " VALUES (?, ?, ?, ?)",
            (token_hash(token), identity, to_db(now), to_db(expires_at)),
        )

    async def session_identity(self, token: str, now: datetime) -> str | None:
        row = await self._conn.fetchone(
            "SELECT identity FROM dashboard_sessions WHERE token_hash = ? AND expires_at > ?",
            (token_hash(token), to_db(now)),
        )
        return str(row[0]) if row else None

    async def end_session(self, token: str) -> None:
        await self._conn.execute(
            "DELETE FROM dashboard_sessions WHERE token_hash = ?", (token_hash(token),)
        )

    async def end_sessions_of(self, identity: str) -> int:
        return await self._conn.execute(
            "DELETE FROM dashboard_sessions WHERE identity = ?", (identity,)
        )

    async def prune(self, now: datetime) -> int:
        """Expired links and sessions."""
        cutoff = (to_db(now),)
        links = await self._conn.execute(
            "DELETE FROM dashboard_logins WHERE expires_at <= ?", cutoff
        )
        sessions = await self._conn.execute(
            "DELETE FROM dashboard_sessions WHERE expires_at <= ?", cutoff
        )
        return links + sessions
