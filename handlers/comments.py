"""Comments under a community's posts (SPEC §14): a new comment becomes a *comment item* with
its own №N in the one sequence, and the settlement's staff and the moderators are told as for
an appeal; an edited comment's item follows its text; a deleted one's item is closed with a
note. Staff act on the items with the actions of handlers/staff/actions.py, which answer in
public under the comment.

What is not an item: a comment in a community that does not take comments (`comments =
false`), the community's own comments (the channels drop those: they include the bot's own
answers), comments by staff (the administration speaking for itself), comments by a banned
identity, and comments with nothing to read. A comment holds no consent and no personal data
beyond what its author published: their public name and profile link, erased like a
resident's name (/forget, the archive term).

Nothing here is ever said into the "chat" a comment came from: that would be a public
comment. A flood of comments from one person (over `limits.messages_per_minute`) is told once
to the moderators, and the rest are ignored for a while, as private messages are (SPEC §12).
"""

from __future__ import annotations

from loguru import logger

from handlers import texts
from handlers.appeal_view import FINISHED, community_title
from handlers.context import Context
from handlers.items import register_comment_item
from handlers.messages import COMMENT_DELETE, COMMENT_EDIT, COMMENT_NEW, CommentEvent
from handlers.notify import chat_of, handlers_of, to_staff
from handlers.settings import Community
from handlers.text_input import neutralise_bidi, visible_length
from storage.models import Appeal, Comment, Status

__all__ = ["comment_flood", "handle_comment"]


async def handle_comment(ctx: Context, *, banned: bool = False) -> None:
    """A comment under a post, new, edited or deleted."""
    message = ctx.message
    event = message.comment
    assert event is not None
    community = ctx.settings.community(message.platform, message.community)
    if community is None or not community.comments:
        logger.debug("comment ignored: its community takes none platform={}", message.platform)
        return
    if event.action == COMMENT_NEW:
        await _new(ctx, event, community, banned=banned)
    elif event.action == COMMENT_EDIT:
        await _edited(ctx, event, community)
    elif event.action == COMMENT_DELETE:
        await _deleted(ctx, event, community)


async def comment_flood(ctx: Context) -> None:
    """One person posts comments faster than `limits.messages_per_minute`: the moderators
    hear of it once (with the way to ban), and the comments of the next few minutes are not
    registered. Nothing is said to the author: it would be said in public. A community that
    takes no comments registers none anyway: nobody is told."""
    message = ctx.message
    community = ctx.settings.community(message.platform, message.community)
    if community is None or not community.comments:
        return
    author = neutralise_bidi(message.display_name) or message.identity
    event = message.comment
    if event is not None and event.author_link:
        author = f"{author} ({event.author_link})"
    text = texts.COMMENT_FLOOD_TO_MODERATORS.format(
        author=author,
        identity=message.identity,
        community=community_title(ctx.settings, message.platform, message.community),
    )
    for identity in dict.fromkeys(await ctx.tx.staff.moderators()):
        chat = await chat_of(ctx.tx, identity)
        ctx.outgoing.append(chat.message(text))
    logger.warning(
        "flood: comments ignored for a while platform={} community={}",
        message.platform,
        message.community or "-",
    )


async def _new(ctx: Context, event: CommentEvent, community: Community, *, banned: bool) -> None:
    message = ctx.message
    if ctx.staff is not None:
        logger.info("a staff member's comment is not an item platform={}", message.platform)
        return
    if banned:
        logger.info("comment of a banned identity ignored platform={}", message.platform)
        return
    if not (visible_length(message.text) or message.photos):
        logger.debug("comment with nothing to read ignored platform={}", message.platform)
        return
    known = await ctx.tx.comments.find(message.platform, community.key, event.comment_id)
    if known is not None:
        return  # the same comment again (an event delivered anew with another id)
    limits = ctx.settings.limits
    item, cards = await register_comment_item(
        ctx.work,
        Comment(
            number=0,
            platform=message.platform,
            community=community.key,
            owner_id=event.owner_id,
            post_id=event.post_id,
            comment_id=event.comment_id,
            author_id=message.user_id,
            author_link=event.author_link,
            link=event.link,
        ),
        resident_id=ctx.resident.id,
        settlement=community.settlement,
        text=message.text[: limits.max_description],
        author="resident",
        chat_id=message.chat_id,
        name=message.display_name[:100] or None,
        photos=message.photos[: limits.max_photos],
    )
    ctx.outgoing += cards
    logger.info(
        "comment item №{} registered platform={} community={} settlement={}",
        item.number,
        message.platform,
        community.key or "-",
        item.settlement or "-",
    )


async def _item(ctx: Context, event: CommentEvent, community: Community) -> Appeal | None:
    found = await ctx.tx.comments.find(ctx.message.platform, community.key, event.comment_id)
    if found is None:
        logger.debug("a comment that is no item changed platform={}", ctx.message.platform)
        return None
    return await ctx.tx.appeals.get(found.number)


async def _edited(ctx: Context, event: CommentEvent, community: Community) -> None:
    """The item's text follows the comment; the thread keeps what it said before."""
    item = await _item(ctx, event, community)
    text = ctx.message.text[: ctx.settings.limits.max_description]
    if item is None or not visible_length(text) or text == item.text:
        return
    await ctx.tx.appeals.set_text(item.number, text, ctx.now)
    await ctx.tx.thread.add(item.number, kind="edited", author="resident", now=ctx.now, text=text)
    logger.info("comment item №{} edited platform={}", item.number, ctx.message.platform)


async def _deleted(ctx: Context, event: CommentEvent, community: Community) -> None:
    """The comment is gone: nothing can be answered under it. An open item is closed with a
    note, and those who handle it are told."""
    item = await _item(ctx, event, community)
    if item is None:
        return
    await ctx.tx.comments.mark_deleted(item.number, ctx.now)
    if item.status in FINISHED:
        return
    await ctx.tx.appeals.set_status(item.number, Status.CLOSED, ctx.now)
    await ctx.tx.thread.add(
        item.number,
        kind="status",
        author="resident",
        now=ctx.now,
        status=Status.CLOSED,
        text=texts.COMMENT_DELETED_NOTE,
    )
    ctx.outgoing += await to_staff(
        ctx.tx,
        await handlers_of(ctx.tx, item),
        texts.COMMENT_DELETED_TO_STAFF.format(number=item.number),
        item,
    )
    logger.info("comment item №{} closed: comment deleted", item.number)
