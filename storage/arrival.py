"""What an update needs to know about its sender, read in one round trip: the resident, their
staff roles, a ban, and the dialogue draft."""

from __future__ import annotations

import json
from dataclasses import dataclass

from storage.backend import Connection
from storage.bans import Ban
from storage.models import Draft, Resident
from storage.staff import ADMIN, MODERATOR, StaffMember
from storage.times import from_db


@dataclass(frozen=True)
class Arrival:
    resident: Resident | None
    staff: StaffMember | None
    ban: Ban | None
    draft: Draft | None
    seen: bool  # the update's event id is recorded already: a redelivery


class ArrivalRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def read(
        self, platform: str, user_id: str, identity: str, event_id: str | None = None
    ) -> Arrival:
        """One row per staff role of the sender (at least one row, all of it NULL for a
        stranger); the resident, ban, draft and whether `event_id` was seen repeat on each."""
        rows = await self._conn.fetchall(
            "SELECT r.id, r.chat_id, r.display_name, r.consent_at, r.consent_version,"
            " s.role, s.settlement, b.reason, b.notified, b.identity,"
            " d.step, d.data, d.updated_at, r.community,"
            " EXISTS (SELECT 1 FROM processed_events e"
            "  WHERE e.platform = k.platform AND e.event_id = k.event_id)"
            " FROM (SELECT CAST(? AS TEXT) AS platform, CAST(? AS TEXT) AS user_id,"
            " CAST(? AS TEXT) AS identity, CAST(? AS TEXT) AS event_id) AS k"
            " LEFT JOIN residents r ON r.platform = k.platform AND r.user_id = k.user_id"
            " LEFT JOIN staff s ON s.identity = k.identity"
            " LEFT JOIN bans b ON b.identity = k.identity"
            " LEFT JOIN drafts d ON d.platform = k.platform AND d.user_id = k.user_id",
            (platform, user_id, identity, event_id),
        )
        first = rows[0]
        resident = None
        if first[0] is not None:
            resident = Resident(
                id=first[0],
                platform=platform,
                user_id=user_id,
                chat_id=first[1],
                display_name=first[2],
                consent_at=from_db(first[3]) if first[3] else None,
                consent_version=first[4],
                community=first[13],
            )
        staff = None
        if first[5] is not None:
            staff = StaffMember(
                identity=identity,
                moderator=any(row[5] == MODERATOR for row in rows),
                settlements=frozenset(row[6] for row in rows if row[5] == ADMIN),
            )
        ban = Ban(identity, first[7], bool(first[8])) if first[9] is not None else None
        draft = None
        if first[10] is not None:
            draft = Draft(step=first[10], data=json.loads(first[11]), updated_at=from_db(first[12]))
        return Arrival(resident, staff, ban, draft, bool(first[14]))
