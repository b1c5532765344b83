"""Settlement administrators' commands (SPEC §5) and what moderators' commands share.

Every command is a thin function `(ctx, args) -> None` registered in COMMANDS; what it needs
(the staff member, the transaction) is already in the context. An administrator sees only
the appeals of their settlements; a number outside them is answered exactly like a number
that does not exist, so nothing leaks (SPEC §12).
"""

from __future__ import annotations

from loguru import logger

from handlers import texts
from handlers.appeal_view import card, organisation, settlement_title, thread_lines
from handlers.context import Context
from handlers.feedback import rating_keyboard
from handlers.formatting import local_date, local_time, status_title
from handlers.notify import tell_resident
from handlers.staff_args import UsageError, number_and_text
from storage.models import Appeal, Status
from storage.staff import StaffMember

LIST_LIMIT = 30
FINISHED = (Status.CLOSED, Status.REJECTED)
OPEN = (Status.NEW, Status.IN_PROGRESS)
LIST_FILTERS: dict[str, tuple[Status, ...]] = {
    "open": OPEN,
    "new": (Status.NEW,),
    "work": (Status.IN_PROGRESS,),
    "overdue": OPEN,
    "answered": (Status.ANSWERED,),
    "all": tuple(Status),
}


def member(ctx: Context) -> StaffMember:
    assert ctx.staff is not None, "staff command without a staff member"
    return ctx.staff


async def visible_appeal(ctx: Context, number: int) -> Appeal | None:
    """The appeal if this staff member may act on it; otherwise a refusal that does not tell
    whether it exists in another settlement."""
    appeal = await ctx.tx.appeals.get(number)
    if appeal is None or not member(ctx).may_act_on(appeal.settlement):
        ctx.reply(texts.APPEAL_NOT_FOUND.format(number=number))
        logger.info("staff {} refused appeal №{}", ctx.message.identity, number)
        return None
    return appeal


async def open_appeal(ctx: Context, number: int) -> Appeal | None:
    """As visible_appeal, and not closed or rejected."""
    appeal = await visible_appeal(ctx, number)
    if appeal is not None and appeal.status in FINISHED:
        ctx.reply(texts.APPEAL_FINISHED.format(number=number, status=status_title(appeal.status)))
        return None
    return appeal


async def change_status(ctx: Context, appeal: Appeal, status: Status, note: str | None) -> None:
    await ctx.tx.appeals.set_status(appeal.number, status, ctx.now)
    await ctx.tx.thread.add(
        appeal.number,
        kind="status",
        author=ctx.message.identity,
        now=ctx.now,
        status=status,
        text=note,
    )


async def audit(ctx: Context, action: str, number: int | None = None, details: str = "") -> None:
    await ctx.tx.audit.add(
        ctx.message.identity, action, ctx.now, appeal_number=number, details=details or None
    )
    logger.info(
        "staff action {} by {} appeal №{} platform={}",
        action,
        ctx.message.identity,
        number if number is not None else "-",
        ctx.message.platform,
    )


# --- commands --------------------------------------------------------------------------


async def cmd_list(ctx: Context, args: str) -> None:
    key = args.casefold() or "open"
    if key not in LIST_FILTERS or (key == "open" and args):
        raise UsageError
    staff = member(ctx)
    appeals, total = await ctx.tx.appeals.listing(
        statuses=LIST_FILTERS[key],
        settlements=None if staff.moderator else sorted(staff.settlements),
        overdue_at=ctx.now if key == "overdue" else None,
        limit=LIST_LIMIT,
    )
    title = texts.LIST_FILTERS[key]
    if not appeals:
        ctx.reply(texts.LIST_EMPTY.format(filter=title))
    else:
        ctx.reply(
            list_text(ctx, appeals, total, texts.LIST_TITLE.format(filter=title, total=total))
        )
    await audit(ctx, "list", details=key)


def list_text(ctx: Context, appeals: list[Appeal], total: int, title: str) -> str:
    tz = ctx.settings.timezone
    lines = [title]
    for appeal in appeals:
        category = ctx.settings.category(appeal.category)
        lines.append(
            texts.LIST_LINE.format(
                number=appeal.number,
                date=local_date(appeal.created_at, tz),
                category=category.title if category else appeal.category,
                settlement=settlement_title(ctx.settings, appeal.settlement),
                status=status_title(appeal.status),
                deadline=local_time(appeal.deadline_at, tz),
            )
        )
    if total > len(appeals):
        lines.append(texts.LIST_MORE.format(more=total - len(appeals)))
    return "\n".join(lines)


async def cmd_show(ctx: Context, args: str) -> None:
    number, _ = number_and_text(args, text="none")
    appeal = await visible_appeal(ctx, number)
    if appeal is None:
        return
    thread = await ctx.tx.thread.of_appeal(number)
    text = "\n".join(
        [
            card(ctx.settings, appeal, texts.CARD_SHOW),
            "",
            texts.THREAD_TITLE,
            *thread_lines(ctx.settings, thread),
        ]
    )
    ctx.reply(text, appeal_number=number)
    await audit(ctx, "show", number)


async def cmd_take(ctx: Context, args: str) -> None:
    number, _ = number_and_text(args, text="none")
    appeal = await open_appeal(ctx, number)
    if appeal is None:
        return
    if appeal.status == Status.IN_PROGRESS:
        ctx.reply(texts.ALREADY_IN_PROGRESS.format(number=number))
        return
    await change_status(ctx, appeal, Status.IN_PROGRESS, None)
    org = organisation(ctx.settings, appeal.settlement)
    tell_resident(ctx, appeal, texts.TAKEN_TO_RESIDENT.format(number=number, organisation=org))
    ctx.reply(texts.TAKEN.format(number=number), appeal_number=number)
    await audit(ctx, "take", number)


async def reply_to_resident(ctx: Context, number: int, text: str) -> None:
    """The official answer: into the thread, status «Отвечено», to the resident's own chat
    with the organisation's name and the rating buttons."""
    appeal = await open_appeal(ctx, number)
    if appeal is None:
        return
    await ctx.tx.appeals.record_answer(number, ctx.now)
    await ctx.tx.thread.add(
        number, kind="answer", author=ctx.message.identity, now=ctx.now, text=text
    )
    org = organisation(ctx.settings, appeal.settlement)
    tell_resident(
        ctx,
        appeal,
        texts.ANSWER_TO_RESIDENT.format(number=number, organisation=org, text=text)
        + "\n\n"
        + texts.RATE_PROMPT,
        rating_keyboard(number),
    )
    ctx.reply(texts.REPLIED.format(number=number), appeal_number=number)
    await audit(ctx, "reply", number)


async def cmd_reply(ctx: Context, args: str) -> None:
    number, text = number_and_text(args)
    await reply_to_resident(ctx, number, text)


async def cmd_ask(ctx: Context, args: str) -> None:
    number, text = number_and_text(args)
    appeal = await open_appeal(ctx, number)
    if appeal is None:
        return
    await ctx.tx.thread.add(
        number, kind="question", author=ctx.message.identity, now=ctx.now, text=text
    )
    await ctx.tx.questions.ask(number, appeal.resident_id, ctx.message.identity, ctx.now)
    org = organisation(ctx.settings, appeal.settlement)
    tell_resident(
        ctx, appeal, texts.QUESTION_TO_RESIDENT.format(number=number, organisation=org, text=text)
    )
    ctx.reply(texts.ASKED.format(number=number), appeal_number=number)
    await audit(ctx, "ask", number)


async def cmd_close(ctx: Context, args: str) -> None:
    number, comment = number_and_text(args, text="optional")
    appeal = await open_appeal(ctx, number)
    if appeal is None:
        return
    await change_status(ctx, appeal, Status.CLOSED, comment or None)
    notice = texts.CLOSED_TO_RESIDENT.format(number=number)
    if comment:
        notice += "\n" + texts.CLOSED_COMMENT.format(comment=comment)
    tell_resident(ctx, appeal, notice)
    ctx.reply(texts.CLOSED.format(number=number), appeal_number=number)
    await audit(ctx, "close", number, comment)
