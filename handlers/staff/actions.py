"""Staff actions (SPEC §5, §6, §14), each written once: take, reply, ask, close, assign,
reject, invite, ban, unban, add and remove staff.

An action is a function of (the unit of work, who acts, the appeal number or identity, typed
arguments). It checks the rights itself, changes the appeal, writes the audit line and
returns an `Outcome`: what to tell the official who acted and the messages for everyone
else. It needs no incoming message, so every way of calling it runs the same code: a chat
command (handlers/staff/commands.py parses `/reply N текст` into a call), a quoted reply
(handlers/staff/router.py), later a dashboard form or a comment item.

An administrator may act only on the appeals of their settlements: a number outside them is
refused exactly like a number that does not exist, so nothing leaks (SPEC §12). Hand-overs,
rejections, bans and staff changes are for moderators.

A comment item (SPEC §14) is acted on by the same actions: `reply` answers in public under
the comment, `invite` posts there an invitation to write to the community's messages, `ask`
is refused (a question could only be asked in public), and taking, closing, handing over or
rejecting tell its author nothing (there is no private chat to tell them in).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from loguru import logger

from handlers import texts
from handlers.appeal_view import FINISHED, organisation, settlement_title
from handlers.context import Work
from handlers.formatting import status_word
from handlers.items import register_comment_item
from handlers.keyboards import rating_keyboard
from handlers.messages import CommentTarget, Outgoing
from handlers.notify import settlement_notice, to_resident
from storage.models import Appeal, Comment, Status
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


async def _comment_of(work: Work, appeal: Appeal) -> Comment:
    comment = await work.tx.comments.of_item(appeal.number)
    assert comment is not None, f"comment item №{appeal.number} has no comment"
    return comment


def by_hand(comment: Comment) -> bool:
    """A comment item a moderator registered by hand (`register_comment`): the bot cannot
    reach its comment, so answers under it are posted by people."""
    return not comment.post_id


def _answered_under(appeal: Appeal, comment: Comment, text: str, done: str) -> Outcome:
    """A public answer under the item's comment, through the community it was posted in;
    `done` tells the official so. Under a comment registered by hand, the official is given
    the text to post there themselves."""
    number = appeal.number
    if by_hand(comment):
        done = texts.COMMENT_POST_BY_HAND.format(number=number, link=comment.link, text=text)
        return _confirmed(done, number, status=Status.ANSWERED)
    answer = Outgoing(
        appeal.platform,
        appeal.chat_id,
        text,
        appeal_number=number,
        community=appeal.community,
        comment=CommentTarget(comment.owner_id, comment.post_id, comment.comment_id),
    )
    return _confirmed(done, number, answer, status=Status.ANSWERED)


async def _answerable_comment(work: Work, appeal: Appeal) -> Comment | Outcome:
    comment = await _comment_of(work, appeal)
    if comment.deleted:
        return _refused(texts.COMMENT_DELETED_CANNOT_ANSWER.format(number=appeal.number))
    return comment


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
    if appeal.is_comment:
        return _confirmed(
            texts.COMMENT_TAKEN.format(number=number), number, status=Status.IN_PROGRESS
        )
    return _confirmed(
        texts.TAKEN.format(number=number),
        number,
        to_resident(appeal, texts.TAKEN_TO_RESIDENT.format(number=number, organisation=org)),
        status=Status.IN_PROGRESS,
    )


async def reply(work: Work, actor: StaffMember, number: int, text: str) -> Outcome:
    """The official answer: into the thread, status «Отвечено», to the resident's own chat
    with the organisation's name and the rating buttons. For a comment item, in public
    under the comment (the card warned that it is public)."""
    appeal = await _open_appeal(work, actor, number)
    if isinstance(appeal, Outcome):
        return appeal
    if appeal.is_comment:
        return await _reply_under(work, actor, appeal, text)
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


async def _reply_under(work: Work, actor: StaffMember, appeal: Appeal, text: str) -> Outcome:
    comment = await _answerable_comment(work, appeal)
    if isinstance(comment, Outcome):
        return comment
    number = appeal.number
    await work.tx.appeals.record_answer(number, work.now)
    await work.tx.thread.add(number, kind="answer", author=actor.identity, now=work.now, text=text)
    org = organisation(work.settings, appeal.settlement)
    answer = texts.COMMENT_ANSWER.format(text=text, organisation=org)
    await audit(work, actor, "reply", number, "public, under the comment")
    return _answered_under(appeal, comment, answer, texts.COMMENT_REPLIED.format(number=number))


async def invite(work: Work, actor: StaffMember, number: int) -> Outcome:
    """Under a comment, a polite invitation to write to the community's messages (its
    link), where the author's own appeal dialogue starts, consent first (SPEC §14). It
    answers the comment: status «Отвечено»."""
    appeal = await _open_appeal(work, actor, number)
    if isinstance(appeal, Outcome):
        return appeal
    if not appeal.is_comment:
        return _refused(texts.INVITE_NOT_A_COMMENT.format(number=number))
    community = work.settings.community(appeal.platform, appeal.community)
    if community is None or not community.invite_url:
        return _refused(texts.INVITE_NO_LINK.format(number=number))
    comment = await _answerable_comment(work, appeal)
    if isinstance(comment, Outcome):
        return comment
    text = texts.COMMENT_INVITATION.format(
        url=community.invite_url, hours=work.settings.answer_within_hours
    )
    await work.tx.appeals.record_answer(number, work.now)
    await work.tx.thread.add(number, kind="invite", author=actor.identity, now=work.now, text=text)
    await audit(work, actor, "invite", number)
    return _answered_under(appeal, comment, text, texts.COMMENT_INVITED.format(number=number))


async def ask(work: Work, actor: StaffMember, number: int, text: str) -> Outcome:
    """A question to the resident; their next message is forwarded back to `actor`. Not
    for a comment item: its author has no private chat with the bot to answer in."""
    appeal = await _open_appeal(work, actor, number)
    if isinstance(appeal, Outcome):
        return appeal
    if appeal.is_comment:
        return _refused(texts.ASK_NOT_FOR_COMMENT.format(number=number))
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
    if appeal.is_comment:
        await audit(work, actor, "close", number, comment)
        return _confirmed(texts.COMMENT_CLOSED.format(number=number), number, status=Status.CLOSED)
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
    if appeal.is_comment:
        done = texts.COMMENT_ASSIGNED.format(number=number, settlement=title)
        return _confirmed(done, number, *cards, status=None)
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
    await audit(work, actor, "reject", number, reason)
    if appeal.is_comment:
        done = texts.COMMENT_REJECTED.format(number=number)
        return _confirmed(done, number, status=Status.REJECTED)
    notice = texts.REJECTED_TO_RESIDENT.format(number=number, reason=reason)
    return _confirmed(
        texts.REJECTED.format(number=number),
        number,
        to_resident(appeal, notice),
        status=Status.REJECTED,
    )


async def register_comment(
    work: Work,
    actor: StaffMember,
    settlement: str,
    link: str,
    text: str,
    *,
    resident_id: int,
) -> Outcome:
    """A comment the bot cannot receive (OK documents no way to: SPEC §14), registered by a
    moderator by hand: an item like any comment's, with its link and text, the settlement's
    staff notified, the deadline watched and the figures kept. Answers to it (`reply`,
    `invite`) are recorded, and the official is given the text to post under it. The item is
    written down as the moderator's (`resident_id`: their own row; the comment's author is
    not known to the bot). Moderators only."""
    if not actor.moderator:
        return MODERATORS_ONLY
    if work.settings.settlement(settlement) is None:
        codes = ", ".join(s.code for s in work.settings.settlements)
        return _refused(texts.UNKNOWN_SETTLEMENT.format(code=settlement, codes=codes))
    if len(link) > MAX_LINK or not link.startswith(("https://", "http://")):
        return _refused(texts.COMMENT_BAD_LINK)
    limit = work.settings.limits.max_description
    if len(text) > limit:
        return _refused(texts.DESCRIPTION_TOO_LONG.format(length=len(text), max=limit))
    platform = _platform_of(link, actor.identity)
    item, cards = await register_comment_item(
        work,
        Comment(
            number=0,
            platform=platform,
            community="",
            owner_id="",
            post_id="",  # no post the bot can reach: answers are posted by hand
            comment_id="",  # one of the item's own
            author_id="",
            author_link=None,
            link=link,
        ),
        resident_id=resident_id,
        settlement=settlement,
        text=text,
        author=actor.identity,
    )
    await audit(work, actor, "comment_by_hand", item.number, link)
    done = texts.COMMENT_REGISTERED.format(number=item.number)
    return _confirmed(done, item.number, *cards, status=Status.NEW)


# Where a link points, by its host: the messenger the comment is on.
_LINK_PLATFORMS = {
    "ok.ru": "ok",
    "odnoklassniki.ru": "ok",
    "vk.com": "vk",
    "vk.ru": "vk",
    "max.ru": "max",
    "t.me": "tg",
}
MAX_LINK = 2048


def _platform_of(link: str, identity: str) -> str:
    host = (urlsplit(link).hostname or "").casefold()
    for domain, platform in _LINK_PLATFORMS.items():
        if host == domain or host.endswith("." + domain):
            return platform
    return identity.partition(":")[0]


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
