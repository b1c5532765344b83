"""Who is told about an appeal, and in which chat: administrators of its settlement (the
moderators when it has none), moderators for escalations, the resident in their own chat.

Shared by the resident dialogue (a new appeal, an addition, «Вопрос не решён») and by staff
actions (an answer, a hand-over). Each function returns the messages; the caller decides
where they go (the context of a chat update, the outcome of an action)."""

from __future__ import annotations

from loguru import logger

from handlers import texts
from handlers.appeal_view import card, settlement_title
from handlers.context import Work
from handlers.identity import split_identity
from handlers.messages import Keyboard, Outgoing
from storage.db import Tx
from storage.models import Appeal, Photo


async def chat_of(tx: Tx, identity: str) -> tuple[str, str]:
    """(platform, chat id) where a staff identity is written to: the chat they last wrote
    from, or their user id (a private chat on VK and Telegram has the user's id)."""
    platform, user_id = split_identity(identity)
    known = await tx.residents.find(platform, user_id)
    return platform, known.chat_id if known else user_id


async def to_staff(
    tx: Tx,
    identities: list[str],
    text: str,
    appeal: Appeal,
    *,
    photos: tuple[Photo, ...] = (),
) -> list[Outgoing]:
    """The same message about `appeal` to each person once, in order."""
    messages = []
    for identity in dict.fromkeys(identities):
        platform, chat = await chat_of(tx, identity)
        messages.append(Outgoing(platform, chat, text, photos=photos, appeal_number=appeal.number))
    return messages


async def handlers_of(tx: Tx, appeal: Appeal) -> list[str]:
    """The administrators of the appeal's settlement, or the moderators if there are none."""
    admins = await tx.staff.admins_of(appeal.settlement)
    return admins or await tx.staff.moderators()


async def settlement_notice(
    work: Work, appeal: Appeal, title: str = texts.CARD_NEW
) -> list[Outgoing]:
    """The card of §5 to every administrator of the settlement; never nobody told."""
    admins = await work.tx.staff.admins_of(appeal.settlement)
    text = card(work.settings, appeal, title)
    recipients = admins
    if not admins:
        recipients = await work.tx.staff.moderators()
        settlement = settlement_title(work.settings, appeal.settlement)
        text = texts.CARD_NO_ADMIN.format(settlement=settlement) + "\n\n" + text
    if not recipients:
        logger.error(
            "appeal №{} has nobody to notify: no administrator of {} and no moderator",
            appeal.number,
            appeal.settlement,
        )
        return []
    logger.info("appeal №{} notified to {} staff", appeal.number, len(recipients))
    return await to_staff(work.tx, recipients, text, appeal, photos=appeal.photos)


async def to_staff_and_moderators(tx: Tx, appeal: Appeal, text: str) -> list[Outgoing]:
    admins = await tx.staff.admins_of(appeal.settlement)
    return await to_staff(tx, [*admins, *await tx.staff.moderators()], text, appeal)


def to_resident(appeal: Appeal, text: str, keyboard: Keyboard | None = None) -> Outgoing:
    """A message into the resident's own chat on the resident's own platform."""
    return Outgoing(appeal.platform, appeal.chat_id, text, keyboard, appeal_number=appeal.number)
