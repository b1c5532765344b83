"""Moderators' commands (SPEC §6): hand over, reject, ban, manage staff, figures, overdue."""

from __future__ import annotations

from datetime import date

from handlers import texts
from handlers.appeal_view import organisation, settlement_title
from handlers.context import Context
from handlers.figures.report import PeriodError, Titles, period_bounds, stats_text
from handlers.identity import PLATFORMS
from handlers.notify import notify_settlement, tell_resident
from handlers.staff.args import (
    UsageError,
    identity_and_text,
    number_and_text,
    parse_date,
    split_after,
)
from handlers.staff.views import Listing, audit, change_status, open_appeal, show_listing
from storage.models import Status
from storage.staff import ADMIN, MODERATOR


async def cmd_assign(ctx: Context, args: str) -> None:
    number, code = number_and_text(args)
    if " " in code or "\n" in code:
        raise UsageError
    appeal = await open_appeal(ctx, number)
    if appeal is None:
        return
    if ctx.settings.settlement(code) is None:
        codes = ", ".join(s.code for s in ctx.settings.settlements)
        ctx.reply(texts.UNKNOWN_SETTLEMENT.format(code=code, codes=codes))
        return
    title = settlement_title(ctx.settings, code)
    if appeal.settlement == code:
        ctx.reply(texts.ASSIGN_SAME.format(number=number, settlement=title))
        return
    await ctx.tx.appeals.set_settlement(number, code, ctx.now)
    await ctx.tx.thread.add(
        number, kind="assigned", author=ctx.message.identity, now=ctx.now, text=code
    )
    moved = await ctx.tx.appeals.get(number)
    assert moved is not None
    await notify_settlement(ctx, moved, texts.CARD_REASSIGNED)
    org = organisation(ctx.settings, code)
    tell_resident(ctx, moved, texts.ASSIGNED_TO_RESIDENT.format(number=number, organisation=org))
    ctx.reply(texts.ASSIGNED.format(number=number, settlement=title), appeal_number=number)
    await audit(ctx, "assign", number, f"{appeal.settlement} -> {code}")


async def cmd_reject(ctx: Context, args: str) -> None:
    number, reason = number_and_text(args)
    appeal = await open_appeal(ctx, number)
    if appeal is None:
        return
    await change_status(ctx, appeal, Status.REJECTED, reason)
    tell_resident(ctx, appeal, texts.REJECTED_TO_RESIDENT.format(number=number, reason=reason))
    ctx.reply(texts.REJECTED.format(number=number), appeal_number=number)
    await audit(ctx, "reject", number, reason)


def _identity(rest: str) -> tuple[str, str]:
    try:
        return identity_and_text(rest)
    except UsageError as error:
        if error.args:  # an identity was given but is malformed: say how to write one
            raise UsageError(texts.BAD_IDENTITY.format(platforms=", ".join(PLATFORMS))) from None
        raise


async def cmd_ban(ctx: Context, args: str) -> None:
    identity, reason = _identity(args)
    if await ctx.tx.staff.member(identity) is not None:
        ctx.reply(texts.CANNOT_BAN_STAFF.format(identity=identity))
        return
    new = await ctx.tx.bans.ban(identity, reason or None, ctx.message.identity, ctx.now)
    ctx.reply((texts.BANNED if new else texts.BAN_UPDATED).format(identity=identity))
    await audit(ctx, "ban", details=f"{identity} {reason}".strip())


async def cmd_unban(ctx: Context, args: str) -> None:
    identity, rest = _identity(args)
    if rest:
        raise UsageError
    removed = await ctx.tx.bans.unban(identity)
    ctx.reply((texts.UNBANNED if removed else texts.NOT_BANNED).format(identity=identity))
    if removed:
        await audit(ctx, "unban", details=identity)


async def cmd_staff(ctx: Context, args: str) -> None:
    action, _, rest = args.partition(" ")
    action = action.casefold()
    if action == "list" and not rest.strip():
        await _staff_list(ctx)
    elif action == "add":
        role_or_code, _, who = rest.strip().partition(" ")
        identity, extra = _identity(who.strip())
        if not role_or_code or extra:
            raise UsageError
        await _staff_add(ctx, role_or_code, identity)
    elif action == "remove":
        identity, extra = _identity(rest.strip())
        if extra:
            raise UsageError
        await _staff_remove(ctx, identity)
    else:
        raise UsageError


async def _staff_list(ctx: Context) -> None:
    rows = await ctx.tx.staff.all()
    if not rows:
        ctx.reply(texts.STAFF_EMPTY)
        return
    lines = [texts.STAFF_LIST_TITLE]
    for row in rows:
        source = texts.STAFF_FROM_CONFIG if row.source == "config" else ""
        if row.role == MODERATOR:
            lines.append(texts.STAFF_LIST_MODERATOR.format(identity=row.identity, source=source))
        else:
            lines.append(
                texts.STAFF_LIST_ADMIN.format(
                    identity=row.identity,
                    settlement=settlement_title(ctx.settings, row.settlement),
                    source=source,
                )
            )
    ctx.reply("\n".join(lines))


async def _staff_add(ctx: Context, role_or_code: str, identity: str) -> None:
    if role_or_code == MODERATOR:
        role, settlement, title = MODERATOR, "", texts.ROLE_MODERATOR
    elif ctx.settings.settlement(role_or_code) is not None:
        role, settlement = ADMIN, role_or_code
        title = texts.ROLE_ADMIN.format(settlements=settlement_title(ctx.settings, role_or_code))
    else:
        codes = ", ".join([MODERATOR, *(s.code for s in ctx.settings.settlements)])
        ctx.reply(texts.UNKNOWN_SETTLEMENT.format(code=role_or_code, codes=codes))
        return
    added = await ctx.tx.staff.add(identity, role, settlement, ctx.message.identity, ctx.now)
    ctx.reply(
        (texts.STAFF_ADDED if added else texts.STAFF_ALREADY).format(identity=identity, role=title)
    )
    if added:
        await audit(ctx, "staff_add", details=f"{identity} {role_or_code}")


async def _staff_remove(ctx: Context, identity: str) -> None:
    if identity == ctx.message.identity:
        ctx.reply(texts.CANNOT_REMOVE_SELF)
        return
    removed = await ctx.tx.staff.remove(identity)
    if not removed:
        ctx.reply(texts.STAFF_NOT_FOUND.format(identity=identity))
        return
    reply = texts.STAFF_REMOVED.format(identity=identity)
    if any(row.source == "config" for row in removed):
        reply += "\n" + texts.STAFF_REMOVED_CONFIG
    ctx.reply(reply)
    await audit(ctx, "staff_remove", details=identity)


def _period(ctx: Context, args: str) -> tuple[date, date]:
    """[С] [ПО] in local dates; by default from the start of this year to today."""
    parts = args.split()
    if len(parts) > 2:
        raise UsageError
    today = ctx.now.astimezone(ctx.settings.timezone).date()
    try:
        dates = [parse_date(part) for part in parts]
    except ValueError as error:
        raise UsageError(texts.BAD_DATE.format(text=error.args[0])) from None
    start = dates[0] if dates else today.replace(month=1, day=1)
    end = dates[1] if len(dates) > 1 else today
    if start > end:
        raise UsageError(texts.BAD_PERIOD)
    return start, end


async def cmd_stats(ctx: Context, args: str) -> None:
    """SPEC §9 for a period of local days, compactly (handlers/figures/report.py)."""
    start, end = _period(ctx, args)
    try:
        since, until = period_bounds(start, end, ctx.settings.timezone)
    except PeriodError as error:
        raise UsageError(*error.args) from None
    figures = await ctx.tx.appeals.figures(since, until)
    ctx.reply(stats_text(Titles.of(ctx.settings), figures, start, end))
    await audit(ctx, "stats", details=f"{start} {end}")


async def cmd_overdue(ctx: Context, args: str) -> None:
    """`/overdue [после N]`: appeals waiting for an answer past their current deadline, the
    longest overdue first, a page at a time; a reopened appeal counts from its new deadline
    (storage/appeals.py, `_DUE`), exactly as `/list overdue` and the reminders do."""
    rest, after = split_after(args)
    if rest:
        raise UsageError
    await show_listing(ctx, Listing("overdue", "overdue"), after)
