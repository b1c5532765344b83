"""The outbox: outgoing messages waiting for delivery, their attempts, and what carried them."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.backend import Connection
from storage.models import OutboxRow
from storage.times import from_db, to_db

_ROW = "o.id, o.platform, o.chat_id, o.body, o.appeal_id, o.attempts, o.send_key, o.community"
SEND_KEY_BITS = 52  # VK's random_id is this key * 1024 + chunk + 1: below 2**62, an int64


def new_send_key() -> int:
    """A random key per outbox row. Derived from nothing in the database, it stays unique
    when a database is restored from a backup and row ids are handed out again."""
    return secrets.randbits(SEND_KEY_BITS) + 1


@dataclass(frozen=True)
class _Dialect:
    """Where the dialects differ (the one place in this repository)."""

    pending: str  # SQLite is told the index of pending rows; PostgreSQL plans by statistics
    # Several instances share a PostgreSQL outbox: rows are claimed before they are sent
    # (None: SQLite serves one instance, which has every row to itself).
    claim: str | None
    release: str  # a retried row's claim ends with the attempt
    give_back: str | None  # claims given back unused
    unclaimed: str  # a chat whose head row another instance holds is not offered


_DIALECTS = {
    "sqlite": _Dialect(
        pending=" INDEXED BY outbox_pending",
        claim=None,
        release="",
        give_back=None,
        unclaimed="",
    ),
    "postgresql": _Dialect(
        pending="",
        claim="UPDATE outbox SET claimed_until = ? WHERE id IN (SELECT id FROM outbox"
        " WHERE id = ANY(?) AND status = 'pending' AND (claimed_until IS NULL"
        " OR claimed_until <= ?) FOR UPDATE SKIP LOCKED) RETURNING id",
        release=", claimed_until = NULL",
        give_back="UPDATE outbox SET claimed_until = NULL WHERE id = ANY(?)",
        unclaimed=" AND (o.claimed_until IS NULL OR o.claimed_until <= ?)",
    ),
}


def _outbox_row(row: Any) -> OutboxRow:
    return OutboxRow(
        id=row[0],
        platform=row[1],
        chat_id=row[2],
        body=row[3],
        appeal_number=row[4],
        attempts=row[5],
        send_key=row[6],
        community=row[7],
    )


_INSERT = (
    "INSERT INTO outbox (platform, community, chat_id, body, appeal_id, next_attempt_at,"
    " created_at, send_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _values(
    platform: str,
    chat_id: str,
    body: dict[str, Any],
    now: datetime,
    appeal_number: int | None,
    community: str,
) -> tuple[Any, ...]:
    moment = to_db(now)
    text = json.dumps(body, ensure_ascii=False)
    return (platform, community, chat_id, text, appeal_number, moment, moment, new_send_key())


class OutboxRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._sql = _DIALECTS[conn.dialect]

    async def add(
        self,
        platform: str,
        chat_id: str,
        body: dict[str, Any],
        now: datetime,
        *,
        appeal_number: int | None = None,
        community: str = "",
    ) -> int:
        """Queue a message to `chat_id` of `platform`, through its `community` ('' for the
        platform's main one)."""
        row = await self._conn.fetchone(
            f"{_INSERT} RETURNING id",
            _values(platform, chat_id, body, now, appeal_number, community),
        )
        assert row is not None
        return int(row[0])

    async def queue(
        self,
        platform: str,
        chat_id: str,
        body: dict[str, Any],
        now: datetime,
        *,
        appeal_number: int | None = None,
        community: str = "",
    ) -> None:
        """As `add`, when nobody needs the row's id: it goes with the update's other writes."""
        self._conn.post(_INSERT, _values(platform, chat_id, body, now, appeal_number, community))

    async def due_heads(
        self, now: datetime, platforms: Sequence[str], limit: int
    ) -> list[OutboxRow]:
        """The oldest pending row of each chat on the given platforms, if it is due.

        Only a chat's oldest row is ever offered, so messages to one chat keep their order,
        and a chat waiting for a retry holds up nobody else. A chat is a chat of one
        community: the same person in two communities has two. Several instances on one
        database: a chat whose head another instance has claimed is its own for now (not
        read again and again here, each pass trying to claim it in vain).
        """
        if not platforms:
            return []
        marks = ", ".join("?" for _ in platforms)
        moment = to_db(now)
        unclaimed = (moment,) if self._sql.unclaimed else ()
        return [
            _outbox_row(row)
            for row in await self._conn.fetchall(
                f"SELECT {_ROW} FROM outbox o"
                " JOIN (SELECT min(id) AS id FROM outbox WHERE status = 'pending'"
                f" AND platform IN ({marks}) GROUP BY platform, community, chat_id) AS head"
                f" ON o.id = head.id WHERE o.next_attempt_at <= ?{self._sql.unclaimed}"
                " ORDER BY o.id LIMIT ?",
                (*platforms, moment, *unclaimed, limit),
            )
        ]

    async def due_in_chats(
        self, chats: Sequence[tuple[str, str, str]], now: datetime, limit: int
    ) -> dict[tuple[str, str, str], list[OutboxRow]]:
        """The pending, due rows of these (platform, community, chat id) chats, each chat's
        in order."""
        if not chats:
            return {}
        triples = ", ".join("(?, ?, ?)" for _ in chats)
        found: dict[tuple[str, str, str], list[OutboxRow]] = {}
        for raw in await self._conn.fetchall(
            f"WITH c (platform, community, chat_id) AS (VALUES {triples})"
            f" SELECT {_ROW} FROM c JOIN outbox o ON o.platform = c.platform"
            " AND o.community = c.community AND o.chat_id = c.chat_id"  # pending rows by chat
            " WHERE o.status = 'pending' AND o.next_attempt_at <= ? ORDER BY o.id LIMIT ?",
            (*(value for chat in chats for value in chat), to_db(now), limit),
        ):
            row = _outbox_row(raw)
            found.setdefault((row.platform, row.community, row.chat_id), []).append(row)
        return found

    async def platforms_waiting(self) -> list[str]:
        """Platforms that have pending rows."""
        return [
            row[0]
            for row in await self._conn.fetchall(
                "SELECT DISTINCT platform FROM outbox WHERE status = 'pending'"
            )
        ]

    async def count(self, status: str = "pending") -> int:
        row = await self._conn.fetchone("SELECT count(*) FROM outbox WHERE status = ?", (status,))
        return int(row[0]) if row else 0

    async def oldest_pending_at(self) -> datetime | None:
        """When the oldest row still waiting to be sent was queued; None if none waits (for
        /metrics). Its id comes from the pending rows' partial index, named: left to itself,
        SQLite would walk the table from its first row, past every sent row kept."""
        row = await self._conn.fetchone(
            "SELECT created_at FROM outbox WHERE id = (SELECT min(id) FROM outbox"
            f"{self._sql.pending} WHERE status = 'pending')"
        )
        return from_db(row[0]) if row else None

    async def mark_sent(self, row: OutboxRow, message_ids: Sequence[str], now: datetime) -> None:
        """The row was delivered; remember which platform messages carried it."""
        await self.mark_sent_many([(row, message_ids)], now)

    async def mark_sent_many(
        self, delivered: Sequence[tuple[OutboxRow, Sequence[str]]], now: datetime
    ) -> None:
        """Rows delivered, each with the platform messages that carried it."""
        await self._conn.executemany(
            "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1,"
            " last_error = NULL WHERE id = ? AND status = 'pending'",
            [(to_db(now), row.id) for row, _ in delivered],
        )
        await self._conn.executemany(
            "INSERT INTO sent_messages (platform, community, chat_id, message_id, outbox_id,"
            " appeal_id) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (platform, community, chat_id, message_id) DO UPDATE"
            " SET outbox_id = excluded.outbox_id, appeal_id = excluded.appeal_id",
            [
                (row.platform, row.community, row.chat_id, mid, row.id, row.appeal_number)
                for row, message_ids in delivered
                for mid in message_ids
            ],
        )

    async def claim(self, ids: Sequence[int], now: datetime, until: datetime) -> set[int]:
        """Take these pending rows for sending until `until`; the ids taken. Rows another
        instance holds (its claim not yet expired, or being claimed right now) are left to
        it. On SQLite, one instance: every row is this one's."""
        if self._sql.claim is None or not ids:
            return set(ids)
        rows = await self._conn.fetchall(self._sql.claim, (to_db(until), list(ids), to_db(now)))
        return {int(row[0]) for row in rows}

    async def release(self, ids: Sequence[int]) -> None:
        """Give back claims this instance will not use now."""
        if self._sql.give_back is not None and ids:
            await self._conn.execute(self._sql.give_back, (list(ids),))

    async def mark_retry(self, row_id: int, error: str, next_attempt_at: datetime) -> None:
        await self._conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
            f"{self._sql.release} WHERE id = ?",
            (error, to_db(next_attempt_at), row_id),
        )

    async def mark_failed(self, row_id: int, error: str) -> None:
        await self._conn.execute(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?"
            " WHERE id = ?",
            (error, row_id),
        )

    async def appeal_of_message(
        self, platform: str, chat_id: str, message_id: str, community: str = ""
    ) -> int | None:
        """The appeal a message sent by the bot (through `community`) was about, for
        quote-replies, if any."""
        row = await self._conn.fetchone(
            "SELECT appeal_id FROM sent_messages WHERE platform = ? AND community = ?"
            " AND chat_id = ? AND message_id = ?",
            (platform, community, chat_id, message_id),
        )
        return int(row[0]) if row and row[0] is not None else None
