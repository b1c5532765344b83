"""Retention (SPEC §7, [retention]): what is kept only for a while is pruned, and personal
data is erased where the person asked or the archive term has passed; figures stay."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from storage.backend import Connection
from storage.times import to_db

SWEEP = 5000  # rows removed by one statement: a sweep never holds the database for long
ERASED = "[удалено]"  # what stands in a stored message for erased personal data


class RetentionRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def prune_events(self, before: datetime) -> int:
        """Processed event ids older than `before` (a platform redelivers within hours)."""
        return await self._count(
            "DELETE FROM processed_events WHERE (platform, event_id) IN ("
            "SELECT platform, event_id FROM processed_events WHERE processed_at < ? LIMIT ?)",
            (to_db(before), SWEEP),
        )

    async def prune_inbox(self, before: datetime) -> int:
        """Handled inbox rows older than `before`; unhandled ones are never pruned."""
        return await self._count(
            "DELETE FROM inbox WHERE id IN (SELECT id FROM inbox WHERE done_at < ? LIMIT ?)",
            (to_db(before), SWEEP),
        )

    async def prune_sent(self, before: datetime) -> int:
        """Outbox rows sent before `before`, with the pairs that matched quote-replies to
        them (quoting a notification older than that no longer answers its appeal)."""
        old = "SELECT id FROM outbox WHERE status = 'sent' AND sent_at < ? LIMIT ?"
        params = (to_db(before), SWEEP)
        await self._conn.execute(f"DELETE FROM sent_messages WHERE outbox_id IN ({old})", params)
        return await self._count(f"DELETE FROM outbox WHERE id IN ({old})", params)

    async def erase_archived(self, closed_before: datetime, now: datetime) -> int:
        """Personal data of appeals closed or rejected before `closed_before` (the archive
        term): text, place, photos, name and phone (a comment author's profile link), and the
        thread's texts. Category,
        settlement, messenger, status, times and rating stay for the figures."""
        numbers = [
            int(row[0])
            for row in await self._conn.fetchall(
                "SELECT id FROM appeals WHERE status IN ('closed', 'rejected') AND updated_at < ?"
                " AND erased_at IS NULL LIMIT ?",
                (to_db(closed_before), SWEEP),
            )
        ]
        if not numbers:
            return 0
        marks = ", ".join("?" for _ in numbers)
        await self._conn.execute(
            "UPDATE appeals SET text = '', place = NULL, latitude = NULL, longitude = NULL,"
            " photos = '[]', contact_name = NULL, contact_phone = NULL, erased_at = ?"
            f" WHERE id IN ({marks})",
            (to_db(now), *numbers),
        )
        await self._conn.execute(
            f"UPDATE appeal_events SET text = NULL, photos = '[]' WHERE appeal_id IN ({marks})",
            numbers,
        )
        await self._conn.execute(
            f"UPDATE comments SET author_link = NULL WHERE appeal_id IN ({marks})", numbers
        )
        await self._conn.execute(
            f"UPDATE outbox SET body = '{{}}' WHERE status != 'pending' AND appeal_id IN ({marks})",
            numbers,
        )
        return len(numbers)

    async def erase_person_from_outbox(self, resident_id: int) -> int:
        """A resident withdrew consent (/forget): their name and phone are replaced in every
        stored message about their appeals or to any chat they had (on OK, one per group),
        queued or sent. Call it before
        the appeals' contacts are erased (they say what to look for)."""
        found = await self._conn.fetchall(
            "SELECT contact_name, contact_phone FROM appeals WHERE resident_id = ?"
            " UNION SELECT display_name, NULL FROM residents WHERE id = ?",
            (resident_id, resident_id),
        )
        secrets = sorted(
            {value for row in found for value in row if value and len(value.strip()) > 1},
            key=len,
            reverse=True,  # the longest first: a name inside a longer name goes whole
        )
        if not secrets:
            return 0
        rows = await self._conn.fetchall(
            "SELECT o.id, o.body FROM outbox o WHERE o.appeal_id IN"
            " (SELECT id FROM appeals WHERE resident_id = ?)"
            " OR EXISTS (SELECT 1 FROM residents r WHERE r.id = ? AND r.platform = o.platform"
            " AND r.chat_id = o.chat_id)"
            " OR EXISTS (SELECT 1 FROM residents r JOIN resident_chats c"
            " ON c.resident_id = r.id WHERE r.id = ? AND r.platform = o.platform"
            " AND c.chat_id = o.chat_id)",
            (resident_id, resident_id, resident_id),
        )
        changed = [
            (json.dumps(body, ensure_ascii=False), row_id)
            for row_id, text in rows
            if (body := _redacted(json.loads(text), secrets)) is not None
        ]
        if changed:
            await self._conn.executemany("UPDATE outbox SET body = ? WHERE id = ?", changed)
        return len(changed)

    async def _count(self, sql: str, params: Iterable[Any]) -> int:
        return max((await self._conn.execute(sql, tuple(params))), 0)


def _redacted(body: Any, secrets: list[str]) -> Any | None:
    """The body with every secret replaced in its strings; None if nothing was found."""
    found = False

    def walk(value: Any) -> Any:
        nonlocal found
        if isinstance(value, str):
            for secret in secrets:
                if secret in value:
                    found = True
                    value = value.replace(secret, ERASED)
            return value
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        return value

    result = walk(body)
    return result if found else None
