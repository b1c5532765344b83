"""Questions staff asked a resident with /ask: the resident's next message answers them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.backend import Connection
from storage.times import to_db


@dataclass(frozen=True)
class Question:
    id: int
    appeal_number: int
    asker: str


class QuestionRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def ask(self, appeal_number: int, resident_id: int, asker: str, now: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO questions (appeal_id, resident_id, asker, asked_at) VALUES (?, ?, ?, ?)",
            (appeal_number, resident_id, asker, to_db(now)),
        )

    async def open_for(self, resident_id: int) -> Question | None:
        """The oldest unanswered question to this resident."""
        row = await self._conn.fetchone(
            "SELECT id, appeal_id, asker FROM questions"
            " WHERE resident_id = ? AND answered_at IS NULL ORDER BY id LIMIT 1",
            (resident_id,),
        )
        return Question(row[0], row[1], row[2]) if row else None

    async def answered(self, question_id: int, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE questions SET answered_at = ? WHERE id = ?", (to_db(now), question_id)
        )
