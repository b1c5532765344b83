"""Comment items (SPEC §14): where each comment is, to answer under it and to follow its
edits and deletion, and who wrote it. The item itself is a row of `appeals` (kind
'comment'), numbered in the one №N sequence."""

from __future__ import annotations

from datetime import datetime

from storage.backend import Connection, Row
from storage.models import Comment
from storage.times import to_db

_COLUMNS = (
    "appeal_id, platform, community, owner_id, post_id, comment_id, author_id, author_link,"
    " link, deleted_at"
)


def _comment(row: Row) -> Comment:
    return Comment(
        number=row["appeal_id"],
        platform=row["platform"],
        community=row["community"],
        owner_id=row["owner_id"],
        post_id=row["post_id"],
        comment_id=row["comment_id"],
        author_id=row["author_id"],
        author_link=row["author_link"],
        link=row["link"],
        deleted=row["deleted_at"] is not None,
    )


class CommentRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add(self, comment: Comment) -> None:
        await self._conn.execute(
            f"INSERT INTO comments ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            (
                comment.number,
                comment.platform,
                comment.community,
                comment.owner_id,
                comment.post_id,
                comment.comment_id,
                comment.author_id,
                comment.author_link,
                comment.link,
            ),
        )

    async def of_item(self, number: int) -> Comment | None:
        row = await self._conn.fetchone(
            f"SELECT {_COLUMNS} FROM comments WHERE appeal_id = ?", (number,)
        )
        return _comment(row) if row else None

    async def find(self, platform: str, community: str, comment_id: str) -> Comment | None:
        """The item of a comment, if it became one."""
        row = await self._conn.fetchone(
            f"SELECT {_COLUMNS} FROM comments WHERE platform = ? AND community = ?"
            " AND comment_id = ?",
            (platform, community, comment_id),
        )
        return _comment(row) if row else None

    async def mark_deleted(self, number: int, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE comments SET deleted_at = coalesce(deleted_at, ?) WHERE appeal_id = ?",
            (to_db(now), number),
        )
