"""Who is told about an appeal, and in which chat: administrators of its settlement (the
moderators when it has none), moderators for escalations, the resident in their own chat.

Shared by the resident dialogue (a new appeal, an addition, «Вопрос не решён») and by staff
actions (an answer, a hand-over). Each function returns the messages; the caller decides
where they go (the context of a chat update, the outcome of an action)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from loguru import logger

from handlers import texts
from handlers.appeal_view import card, settlement_title
from handlers.context import Work
from handlers.identity import split_identity
from handlers.messages import Keyboard, Outgoing
from storage.db import Tx
from storage.models import Appeal, Photo


@dataclass(frozen=True)
class Chat:
    """Where a person is written to: a chat of one community (bot) of a platform."""

    platform: str
    chat_id: str
    community: str = ""

    def message(
        self,
        text: str,
        *,
        photos: tuple[Photo, ...] = (),
        appeal_number: int | None = None,
        report: bool = False,
    ) -> Outgoing:
        return Outgoing(
            self.platform,
            self.chat_id,
            text,
            photos=photos,
            appeal_number=appeal_number,
            report=report,
            community=self.community,
        )


async def chat_of(tx: Tx, identity: str) -> Chat:
    """Where a staff identity is written to: the chat they last wrote from, through the
    community they wrote to (SPEC §14: each community is a sender of its own), or their
    user id through the main community (a private chat on VK and Telegram has the user's
    id)."""
    platform, user_id = split_identity(identity)
    known = await tx.residents.find(platform, user_id)
    if known is None:
        return Chat(platform, user_id)
    return Chat(platform, known.chat_id, known.community)


async def queue(tx: Tx, out: Outgoing, now: datetime) -> None:
    """Write a message to the outbox, in the transaction of what caused it (SPEC §7)."""
    await tx.outbox.queue(
        out.platform,
        out.chat_id,
        out.body(),
        now,
        appeal_number=out.appeal_number,
        community=out.community,
    )


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
        chat = await chat_of(tx, identity)
        messages.append(chat.message(text, photos=photos, appeal_number=appeal.number))
    return messages


async def handlers_of(tx: Tx, appeal: Appeal) -> list[str]:
    """The administrators of the appeal's settlement, or the moderators if there are none."""
    admins = await tx.staff.admins_of(appeal.settlement)
    return admins or await tx.staff.moderators()


async def settlement_notice(
    work: Work, appeal: Appeal, title: str = texts.CARD_NEW
) -> list[Outgoing]:
    """The card of §5 to every administrator of the settlement; never nobody told. A
    comment item's card goes to the same people (SPEC §14), written as a comment's."""
    admins = await work.tx.staff.admins_of(appeal.settlement) if appeal.settlement else []
    comment = await work.tx.comments.of_item(appeal.number) if appeal.is_comment else None
    text = card(work.settings, appeal, title, comment)
    recipients = admins
    if not admins:
        recipients = await work.tx.staff.moderators()
        settlement = settlement_title(work.settings, appeal.settlement)
        note = (
            texts.COMMENT_NO_ADMIN
            if appeal.is_comment
            else texts.CARD_NO_ADMIN.format(settlement=settlement)
        )
        text = note + "\n\n" + text
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
    """A message into the resident's own chat on the resident's own platform, through the
    community the appeal came in by."""
    return Outgoing(
        appeal.platform,
        appeal.chat_id,
        text,
        keyboard,
        appeal_number=appeal.number,
        community=appeal.community,
    )
