"""Deadlines (SPEC §8): a reminder to the administrators `remind_before_hours` before an
appeal's deadline, and one escalation to the moderators once it has passed unanswered.

`deadline_pass` is one pass of the scheduler (bot/scheduler.py) in one transaction. It finds
the appeals waiting for an answer («Новое», «В работе») whose reminder or escalation is due
and not yet sent, records each notice in `deadline_notices` and writes its messages to the
outbox, all in that transaction: a restart neither repeats a notice nor skips one. A notice
that comes late (the bot was stopped when it fell due) is still sent; a reminder whose
deadline has passed by then says so instead of counting down, so that the administrators,
not only the moderators, learn that the appeal is overdue.

Which deadline counts:

* from registration, `created_at + answer_within_hours`: stored as `deadline_at` and shown
  to the resident;
* after «Вопрос не решён» the resident is owed a new answer, so the appeal gets a new
  deadline `answer_within_hours` after that rating (stored when the rating is given,
  handlers/dialogue/feedback.py), with its own reminder and escalation. The registration deadline
  does not change: the figures measure the first answer against it. /overdue and
  `/list overdue` use the same rule (storage/appeals.py, `_DUE`).

Reminders go to the administrators of the appeal's settlement, or to the moderators where
it has none; escalations to the moderators. `remind_before_hours = 0` means no reminders.
A pass handles at most `PASS_LIMIT` appeals of each kind, earliest deadline first; the rest
wait for the next pass, so a large backlog never makes one huge transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from loguru import logger

from handlers import texts
from handlers.appeal_view import settlement_title, topic
from handlers.figures.report import duration
from handlers.formatting import local_time, shorten, status_title, utc_offset
from handlers.messages import Outgoing
from handlers.notify import chat_of, queue
from handlers.settings import HandlerSettings
from handlers.text_input import neutralise_bidi
from storage.db import Store, Tx
from storage.models import Appeal

REMINDER = "reminder"
ESCALATION = "escalation"
PASS_LIMIT = 100
TEXT_PREVIEW = 300  # characters of the appeal's text quoted in a notice


@dataclass(frozen=True)
class PassResult:
    """What one pass did: notices recorded, and messages queued for them."""

    reminders: int = 0
    escalations: int = 0
    messages: int = 0


async def deadline_pass(
    db: Store, settings: HandlerSettings, now: datetime, *, limit: int = PASS_LIMIT
) -> PassResult:
    """Send the reminders and escalations due at `now` that were not sent yet."""
    outgoing: list[Outgoing] = []
    async with db.transaction() as tx:
        reminders = 0
        if settings.remind_before_hours > 0:
            due = await tx.appeals.due_for_notice(
                REMINDER,
                due_before=now + timedelta(hours=settings.remind_before_hours),
                limit=limit,
            )
            for appeal, due_at in due:
                admins = await tx.staff.admins_of(appeal.settlement)
                recipients = admins or await tx.staff.moderators()
                text = reminder_text(settings, appeal, due_at, now)
                reminders += await _notify(
                    tx, REMINDER, appeal, due_at, recipients, text, now, outgoing
                )
        escalations = 0
        due = await tx.appeals.due_for_notice(ESCALATION, due_before=now, limit=limit)
        for appeal, due_at in due:
            admins = await tx.staff.admins_of(appeal.settlement)
            text = escalation_text(settings, appeal, due_at, now, admins)
            recipients = await tx.staff.moderators()
            escalations += await _notify(
                tx, ESCALATION, appeal, due_at, recipients, text, now, outgoing
            )
        for out in outgoing:
            await queue(tx, out, now)
    return PassResult(reminders=reminders, escalations=escalations, messages=len(outgoing))


async def _notify(
    tx: Tx,
    kind: str,
    appeal: Appeal,
    due_at: datetime,
    recipients: list[str],
    text: str,
    now: datetime,
    outgoing: list[Outgoing],
) -> bool:
    """Record the notice and queue its messages; False if it was recorded before."""
    people = list(dict.fromkeys(recipients))  # each person once, in order
    if not await tx.appeals.record_notice(appeal.number, kind, due_at, now, recipients=len(people)):
        return False
    for identity in people:
        chat = await chat_of(tx, identity)
        outgoing.append(chat.message(text, appeal_number=appeal.number))
    if people:
        logger.info("appeal №{} {} sent to {} staff", appeal.number, kind, len(people))
    else:
        logger.error(
            "appeal №{} {} has nobody to go to: no administrator of {} and no moderator",
            appeal.number,
            kind,
            appeal.settlement,
        )
    return True


def _about(settings: HandlerSettings, appeal: Appeal) -> list[str]:
    lines = [
        texts.DEADLINE_ABOUT.format(
            category=topic(settings, appeal),
            settlement=settlement_title(settings, appeal.settlement),
            status=status_title(appeal.status),
            text=shorten(neutralise_bidi(appeal.text), TEXT_PREVIEW),
        )
    ]
    if appeal.rating == "unresolved":
        lines.append(texts.DEADLINE_REOPENED)
    if appeal.is_comment:
        lines.append(texts.CARD_COMMENT_PUBLIC)  # the answer will be public (SPEC §14)
    return lines


def reminder_text(
    settings: HandlerSettings, appeal: Appeal, due_at: datetime, now: datetime
) -> str:
    tz = settings.timezone
    when = {
        "number": appeal.number,
        "deadline": local_time(due_at, tz),
        "tz": utc_offset(due_at, tz),
    }
    if due_at > now:
        head = texts.DEADLINE_REMINDER.format(**when, left=duration((due_at - now).total_seconds()))
    else:
        head = texts.DEADLINE_REMINDER_LATE.format(**when)
    return "\n".join(
        [head, *_about(settings, appeal), texts.DEADLINE_HOW_TO_ANSWER.format(number=appeal.number)]
    )


def escalation_text(
    settings: HandlerSettings,
    appeal: Appeal,
    due_at: datetime,
    now: datetime,
    admins: list[str],
) -> str:
    tz = settings.timezone
    head = texts.ESCALATION.format(
        number=appeal.number,
        deadline=local_time(due_at, tz),
        tz=utc_offset(due_at, tz),
        late=duration((now - due_at).total_seconds()),
    )
    who = (
        texts.ESCALATION_ADMINS.format(admins=", ".join(admins))
        if admins
        else texts.ESCALATION_NO_ADMINS
    )
    return "\n".join(
        [
            head,
            *_about(settings, appeal),
            who,
            texts.ESCALATION_HOW_TO_ACT.format(number=appeal.number),
        ]
    )
