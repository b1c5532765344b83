"""Platform event ids already processed: a redelivered update is recognised and ignored."""

from __future__ import annotations

from datetime import datetime

from storage.backend import Connection
from storage.times import to_db


class ProcessedEventRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def record(self, platform: str, event_id: str, now: datetime) -> None:
        """Record an event the update's arrival read found new (`Arrival.seen`): posted with
        the update's other writes. Updates of one sender are handled one after another, so
        nothing records the same event between that read and this write."""
        self._conn.post(
            "INSERT INTO processed_events (platform, event_id, processed_at) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (platform, event_id, to_db(now)),
        )

    async def record_once(self, platform: str, event_id: str, now: datetime) -> bool:
        """Record the event; False when it had been recorded before (a redelivery)."""
        return (
            await self._conn.execute(
                "INSERT INTO processed_events (platform, event_id, processed_at) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (platform, event_id, to_db(now)),
            )
        ) == 1
