"""A comment item (SPEC §14) registered, in one place: from a comment under a post
(handlers/comments.py) or by a moderator by hand for a comment the bot cannot receive
(handlers/staff/actions.py `register_comment`). Its own №N in the appeals' sequence, the
comment's whereabouts, the first thread entry, and the card to the settlement's staff."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from handlers import texts
from handlers.context import Work
from handlers.messages import Outgoing
from handlers.notify import settlement_notice
from storage.models import Appeal, Comment, Kind, Photo


async def register_comment_item(
    work: Work,
    comment: Comment,
    *,
    resident_id: int,
    settlement: str,
    text: str,
    author: str,
    chat_id: str = "",
    name: str | None = None,
    photos: tuple[Photo, ...] = (),
) -> tuple[Appeal, list[Outgoing]]:
    """The item, and the cards to its settlement's staff (or the moderators). `comment` is
    where the comment is (its `number` is filled in here, and a `comment_id` of '' — a
    comment registered by hand — becomes one of the item's own); `author`: who the thread
    names ("resident", or the moderator who registered it)."""
    item = await work.tx.appeals.create(
        resident_id=resident_id,
        category="",
        settlement=settlement,
        text=text,
        place=None,
        latitude=None,
        longitude=None,
        photos=photos,
        contact_name=name,
        contact_phone=None,
        platform=comment.platform,
        chat_id=chat_id,
        created_at=work.now,
        deadline_at=work.now + timedelta(hours=work.settings.answer_within_hours),
        kind=Kind.COMMENT,
        community=comment.community,
    )
    comment_id = comment.comment_id or f"by-hand:{item.number}"
    await work.tx.comments.add(replace(comment, number=item.number, comment_id=comment_id))
    await work.tx.thread.add(
        item.number, kind="created", author=author, now=work.now, text=text, photos=photos
    )
    return item, await settlement_notice(work, item, texts.CARD_NEW)
