"""Who is told about an appeal, and in which chat: administrators of its settlement (the
moderators when it has none), moderators for escalations, the resident in their own chat."""

from __future__ import annotations

from loguru import logger

from handlers import texts
from handlers.appeal_view import card, settlement_title
from handlers.context import Context
from handlers.identity import split_identity
from handlers.messages import Keyboard
from storage.db import Tx
from storage.models import Appeal, Photo


async def chat_of(tx: Tx, identity: str) -> tuple[str, str]:
    """(platform, chat id) where a staff identity is written to: the chat they last wrote
    from, or their user id (a private chat on VK and Telegram has the user's id)."""
    platform, user_id = split_identity(identity)
    known = await tx.residents.find(platform, user_id)
    return platform, known.chat_id if known else user_id


async def send_to_staff(
    ctx: Context,
    identities: list[str],
    text: str,
    appeal: Appeal,
    *,
    photos: tuple[Photo, ...] = (),
) -> None:
    for identity in dict.fromkeys(identities):  # each person once, in order
        platform, chat = await chat_of(ctx.tx, identity)
        ctx.send(
            platform,
            chat,
            text,
            photos=photos,
            appeal_number=appeal.number,
        )


async def handlers_of(ctx: Context, appeal: Appeal) -> list[str]:
    """The administrators of the appeal's settlement, or the moderators if there are none."""
    admins = await ctx.tx.staff.admins_of(appeal.settlement)
    return admins or await ctx.tx.staff.moderators()


async def notify_settlement(ctx: Context, appeal: Appeal, title: str = texts.CARD_NEW) -> None:
    """The card of §5 to every administrator of the settlement; never nobody told."""
    admins = await ctx.tx.staff.admins_of(appeal.settlement)
    text = card(ctx.settings, appeal, title)
    recipients = admins
    if not admins:
        recipients = await ctx.tx.staff.moderators()
        text = (
            texts.CARD_NO_ADMIN.format(settlement=settlement_title(ctx.settings, appeal.settlement))
            + "\n\n"
            + text
        )
    if not recipients:
        logger.error(
            "appeal №{} has nobody to notify: no administrator of {} and no moderator",
            appeal.number,
            appeal.settlement,
        )
        return
    await send_to_staff(ctx, recipients, text, appeal, photos=appeal.photos)
    logger.info("appeal №{} notified to {} staff", appeal.number, len(recipients))


async def notify_staff_and_moderators(ctx: Context, appeal: Appeal, text: str) -> None:
    admins = await ctx.tx.staff.admins_of(appeal.settlement)
    await send_to_staff(ctx, [*admins, *await ctx.tx.staff.moderators()], text, appeal)


def tell_resident(
    ctx: Context, appeal: Appeal, text: str, keyboard: Keyboard | None = None
) -> None:
    """A message into the resident's own chat on the resident's own platform."""
    ctx.send(appeal.platform, appeal.chat_id, text, keyboard, appeal_number=appeal.number)
