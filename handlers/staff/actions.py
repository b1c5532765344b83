"""Staff actions (SPEC §5, §6), each written once: take, reply, ask, close, assign, reject,
ban, unban, add and remove staff.

An action is a function of (the unit of work, who acts, the appeal number or identity, typed
arguments). It checks the rights itself, changes the appeal, writes the audit line and
returns an `Outcome`: what to tell the official who acted and the messages for everyone
else. It needs no incoming message, so every way of calling it runs the same code: a chat
command (handlers/staff/commands.py parses `/reply N текст` into a call), a quoted reply
(handlers/staff/router.py), later a dashboard form or a comment item.

An administrator may act only on the appeals of their settlements: a number outside them is
refused exactly like a number that does not exist, so nothing leaks (SPEC §12). Hand-overs,
rejections, bans and staff changes are for moderators.
"""

from __future__ import annotations

from dataclasses import dataclass

from loguru import logger

from handlers import texts
from handlers.appeal_view import FINISHED, organisation, settlement_title
from handlers.context import Work
from handlers.formatting import status_word
from handlers.keyboards import rating_keyboard
from handlers.messages import Outgoing
from handlers.notify import settlement_notice, to_resident
from storage.models import Appeal, Status
from storage.staff import ADMIN, MODERATOR, StaffMember


@dataclass(frozen=True)
class Outcome:
    """What an action did.

    `done`: it changed something and wrote its audit line; when False nothing changed and
    `text` says why (not allowed, no such appeal, already closed, nothing to do). `text` is
    for the official who acted; `number`, the appeal a confirmation is about (a quoted reply
    to it finds the appeal); `status`, the appeal's status after the action when it changed;
    `messages`, for the resident and other staff, in the order they are sent.
    """

    text: str
    done: bool = False
    number: int | None = None
    status: Status | None = None
    messages: tuple[Outgoing, ...] = ()


def _refused(text: str) -> Outcome:
    return Outcome(text)


MODERATORS_ONLY = _refused(texts.MODERATOR_ONLY)


async def visible_appeal(work: Work, actor: StaffMember, number: int) -> Appeal | None:
    """The appeal if `actor` may see it; None when it does not exist or is another
    settlement's (the caller says APPEAL_NOT_FOUND for both)."""
    appeal = await work.tx.appeals.get(number)
    if appeal is None or not actor.may_act_on(appeal.settlement):
        logger.info("staff {} refused appeal №{}", actor.identity, number)
        return None
    return appeal


async def _open_appeal(work: Work, actor: StaffMember, number: int) -> Appeal | Outcome:
    """The appeal if `actor` may act on it and it is neither closed nor rejected."""
    appeal = await visible_appeal(work, actor, number)
    if appeal is None:
        return _refused(texts.APPEAL_NOT_FOUND.format(number=number))
    if appeal.status in FINISHED:
        status = status_word(appeal.status)
        return _refused(texts.APPEAL_FINISHED.format(number=number, status=status))
    return appeal


async def audit(
    work: Work, actor: StaffMember, action: str, number: int | None = None, details: str = ""
) -> None:
    """The audit line of SPEC §6 (who, what, which appeal, when), and the log line."""
    await work.tx.audit.add(
        actor.identity, action, work.now, appeal_number=number, details=details or None
    )
    logger.info(
        "staff action {} by {} appeal №{}",
        action,
        actor.identity,
        number if number is not None else "-",
    )


async def _set_status(
    work: Work, actor: StaffMember, appeal: Appeal, status: Status, note: str | None
) -> None:
    await work.tx.appeals.set_status(appeal.number, status, work.now)
    await work.tx.thread.add(
        appeal.number, kind="status", author=actor.identity, now=work.now, status=status, text=note
    )


def _confirmed(text: str, number: int, *messages: Outgoing, status: Status | None) -> Outcome:
    return Outcome(text, done=True, number=number, status=status, messages=messages)


# --- appeals -------------------------------------------------------------------------------


async def take(work: Work, actor: StaffMember, number: int) -> Outcome:
    """«В работе»; the resident is told who took it."""
    appeal = await _open_appeal(work, actor, number)
    if isinstance(appeal, Outcome):
        return appeal
    if appeal.status == Status.IN_PROGRESS:
        return _refused(texts.ALREADY_IN_PROGRESS.format(number=number))
    await _set_status(work, actor, appeal, Status.IN_PROGRESS, None)
    org = organisation(work.settings, appeal.settlement)
    await audit(work, actor, "take", number)
    return _confirmed(
        texts.TAKEN.format(number=number),
        number,
        to_resident(appeal, texts.TAKEN_TO_RESIDENT.format(number=number, organisation=org)),
        status=Status.IN_PROGRESS,
    )


async def reply(work: Work, actor: StaffMember, number: int, text: str) -> Outcome:
    """The official answer: into the thread, status «Отвечено», to the resident's own chat
    with the organisation's name and the rating buttons."""
    appeal = await _open_appeal(work, actor, number)
    if isinstance(appeal, Outcome):
        return appeal
    await work.tx.appeals.record_answer(number, work.now)
    await work.tx.thread.add(number, kind="answer", author=actor.identity, now=work.now, text=text)
    org = organisation(work.settings, appeal.settlement)
    answer = texts.ANSWER_TO_RESIDENT.format(number=number, organisation=org, text=text)
    await audit(work, actor, "reply", number)
    return _confirmed(
        texts.REPLIED.format(number=number),
        number,
        to_resident(appeal, answer + "\n\n" + texts.RATE_PROMPT, rating_keyboard(number)),
        status=Status.ANSWERED,
    )


async def ask(work: Work, actor: StaffMember, number: int, text: str) -> Outcome:
    """A question to the resident; their next message is forwarded back to `actor`."""
    appeal = await _open_appeal(work, actor, number)
    if isinstance(appeal, Outcome):
        return appeal
    await work.tx.thread.add(
        number, kind="question", author=actor.identity, now=work.now, text=text
    )
    await work.tx.questions.ask(number, appeal.resident_id, actor.identity, work.now)
    org = organisation(work.settings, appeal.settlement)
    question = texts.QUESTION_TO_RESIDENT.format(number=number, organisation=org, text=text)
    await audit(work, actor, "ask", number)
    return _confirmed(
        texts.ASKED.format(number=number), number, to_resident(appeal, question), status=None
    )


async def close(work: Work, actor: StaffMember, number: int, comment: str = "") -> Outcome:
    appeal = await _open_appeal(work, actor, number)
    if isinstance(appeal, Outcome):
        return appeal
    await _set_status(work, actor, appeal, Status.CLOSED, comment or None)
    notice = texts.CLOSED_TO_RESIDENT.format(number=number)
    if comment:
        notice += "\n" + texts.CLOSED_COMMENT.format(comment=comment)
    await audit(work, actor, "close", number, comment)
    return _confirmed(
        texts.CLOSED.format(number=number),
        number,
        to_resident(appeal, notice),
        status=Status.CLOSED,
    )


async def assign(work: Work, actor: StaffMember, number: int, settlement: str) -> Outcome:
    """Hand the appeal to another settlement: its administrators get the card, the
    resident is told who now handles it. Moderators only."""
    if not actor.moderator:
        return MODERATORS_ONLY
    appeal = await _open_appeal(work, actor, number)
    if isinstance(appeal, Outcome):
        return appeal
    if work.settings.settlement(settlement) is None:
        codes = ", ".join(s.code for s in work.settings.settlements)
        return _refused(texts.UNKNOWN_SETTLEMENT.format(code=settlement, codes=codes))
    title = settlement_title(work.settings, settlement)
    if appeal.settlement == settlement:
        return _refused(texts.ASSIGN_SAME.format(number=number, settlement=title))
    await work.tx.appeals.set_settlement(number, settlement, work.now)
    await work.tx.thread.add(
        number, kind="assigned", author=actor.identity, now=work.now, text=settlement
    )
    moved = await work.tx.appeals.get(number)
    assert moved is not None
    cards = await settlement_notice(work, moved, texts.CARD_REASSIGNED)
    org = organisation(work.settings, settlement)
    await audit(work, actor, "assign", number, f"{appeal.settlement} -> {settlement}")
    return _confirmed(
        texts.ASSIGNED.format(number=number, settlement=title),
        number,
        *cards,
        to_resident(moved, texts.ASSIGNED_TO_RESIDENT.format(number=number, organisation=org)),
        status=None,
    )


async def reject(work: Work, actor: StaffMember, number: int, reason: str) -> Outcome:
    """Not an appeal, spam, a duplicate: «Отклонено», with a polite notice. Moderators only."""
    if not actor.moderator:
        return MODERATORS_ONLY
    appeal = await _open_appeal(work, actor, number)
    if isinstance(appeal, Outcome):
        return appeal
    await _set_status(work, actor, appeal, Status.REJECTED, reason)
    notice = texts.REJECTED_TO_RESIDENT.format(number=number, reason=reason)
    await audit(work, actor, "reject", number, reason)
    return _confirmed(
        texts.REJECTED.format(number=number),
        number,
        to_resident(appeal, notice),
        status=Status.REJECTED,
    )


# --- identities ----------------------------------------------------------------------------
# `identity` is a valid `platform:user_id` (handlers/identity.py parses it).


async def ban(work: Work, actor: StaffMember, identity: str, reason: str = "") -> Outcome:
    """Messages of `identity` are acknowledged once, then ignored (SPEC §6); banning again
    updates the reason. Staff cannot be banned. Moderators only."""
    if not actor.moderator:
        return MODERATORS_ONLY
    if await work.tx.staff.member(identity) is not None:
        return _refused(texts.CANNOT_BAN_STAFF.format(identity=identity))
    new = await work.tx.bans.ban(identity, reason or None, actor.identity, work.now)
    await audit(work, actor, "ban", details=f"{identity} {reason}".strip())
    return Outcome(
        (texts.BANNED if new else texts.BAN_UPDATED).format(identity=identity), done=True
    )


async def unban(work: Work, actor: StaffMember, identity: str) -> Outcome:
    if not actor.moderator:
        return MODERATORS_ONLY
    if not await work.tx.bans.unban(identity):
        return _refused(texts.NOT_BANNED.format(identity=identity))
    await audit(work, actor, "unban", details=identity)
    return Outcome(texts.UNBANNED.format(identity=identity), done=True)


async def add_staff(
    work: Work, actor: StaffMember, identity: str, settlement: str | None
) -> Outcome:
    """`identity` becomes an administrator of `settlement`, or a moderator when it is
    None. Moderators only."""
    if not actor.moderator:
        return MODERATORS_ONLY
    if settlement is None:
        role, code, title = MODERATOR, "", texts.ROLE_MODERATOR
    elif work.settings.settlement(settlement) is not None:
        role, code = ADMIN, settlement
        title = texts.ROLE_ADMIN.format(settlements=settlement_title(work.settings, settlement))
    else:
        codes = ", ".join([MODERATOR, *(s.code for s in work.settings.settlements)])
        return _refused(texts.UNKNOWN_SETTLEMENT.format(code=settlement, codes=codes))
    if not await work.tx.staff.add(identity, role, code, actor.identity, work.now):
        return _refused(texts.STAFF_ALREADY.format(identity=identity, role=title))
    await audit(work, actor, "staff_add", details=f"{identity} {settlement or MODERATOR}")
    return Outcome(texts.STAFF_ADDED.format(identity=identity, role=title), done=True)


async def remove_staff(work: Work, actor: StaffMember, identity: str) -> Outcome:
    """Every staff role of `identity` (a role from config comes back at the next start,
    which the answer says). Nobody removes themselves. Moderators only."""
    if not actor.moderator:
        return MODERATORS_ONLY
    if identity == actor.identity:
        return _refused(texts.CANNOT_REMOVE_SELF)
    removed = await work.tx.staff.remove(identity)
    if not removed:
        return _refused(texts.STAFF_NOT_FOUND.format(identity=identity))
    await work.tx.dashboard.end_sessions_of(identity)
    text = texts.STAFF_REMOVED.format(identity=identity)
    if any(row.source == "config" for row in removed):
        text += "\n" + texts.STAFF_REMOVED_CONFIG
    await audit(work, actor, "staff_remove", details=identity)
    return Outcome(text, done=True)
