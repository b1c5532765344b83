"""What staff read (SPEC §5, §6): the lists (/list, /overdue, a page at a time), an appeal
with its thread (/show), the figures (/stats) and the staff (/staff list).

Every view is a thin function `(ctx, args) -> None` registered in handlers/staff/router.py.
An administrator sees only the appeals of their settlements; a number outside them is
answered exactly like a number that does not exist, so nothing leaks (SPEC §12).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from handlers import texts
from handlers.appeal_view import card, settlement_title, thread_lines, topic
from handlers.context import Context
from handlers.figures.report import PeriodError, Titles, period_bounds, stats_text
from handlers.formatting import local_date, local_time, status_title
from handlers.messages import Button, Keyboard
from handlers.settings import HandlerSettings
from handlers.staff import actions
from handlers.staff.args import UsageError, number_and_text, parse_date, split_after
from handlers.text_input import fold
from storage.models import Appeal, Draft, Status
from storage.staff import MODERATOR, StaffMember

LIST_LIMIT = 30
# Lists say how many appeals they hold up to this many; past it, «больше 1000» (a count of
# every row would stall the loop at a million appeals).
COUNT_UP_TO = 1000
OPEN = (Status.NEW, Status.IN_PROGRESS)
# The lists of /list: which statuses each holds. «overdue» is those waiting for an answer
# past their current deadline (the same rule as /overdue and the reminders, SPEC §8).
LIST_FILTERS: dict[str, tuple[Status, ...]] = {
    "open": OPEN,
    "new": (Status.NEW,),
    "work": (Status.IN_PROGRESS,),
    "overdue": OPEN,
    "answered": (Status.ANSWERED,),
    "all": tuple(Status),
}
NEWEST_FIRST = frozenset({"answered", "all"})


def member(ctx: Context) -> StaffMember:
    assert ctx.staff is not None, "staff command without a staff member"
    return ctx.staff


async def visible_appeal(ctx: Context, number: int) -> Appeal | None:
    """The appeal if this staff member may see it; otherwise the refusal that does not tell
    whether it exists in another settlement."""
    appeal = await actions.visible_appeal(ctx.work, member(ctx), number)
    if appeal is None:
        ctx.reply(texts.APPEAL_NOT_FOUND.format(number=number))
    return appeal


async def audit(ctx: Context, action: str, number: int | None = None, details: str = "") -> None:
    await actions.audit(ctx.work, member(ctx), action, number, details)


# --- commands --------------------------------------------------------------------------


async def cmd_list(ctx: Context, args: str) -> None:
    """`/list [фильтр] [после N]`: a page of the appeals of my settlements (all of them for
    a moderator). Those waiting for an answer come most urgent first (earliest current
    deadline); «answered» and «all» come latest first. A page ends, when more follow, with
    a «Ещё» button and the command that shows the next page (typing «Ещё» works too)."""
    rest, after = split_after(args)
    key = rest.casefold() or "open"
    if key not in LIST_FILTERS or (key == "open" and rest):
        raise UsageError
    await show_listing(ctx, Listing("list", key), after)


@dataclass(frozen=True)
class Listing:
    """Which list: `/list <key>` or `/overdue` (key "overdue", every settlement)."""

    command: str
    key: str

    @property
    def typed(self) -> str:
        """The command as an official types it."""
        if self.command == "list" and self.key != "open":
            return f"/list {self.key}"
        return f"/{self.command}"

    def payload(self, after: int) -> str:
        return f"{LISTING_PAYLOAD}{self.command}:{self.key}:{after}"


LISTING_PAYLOAD = "page:"
# The draft row of a staff member who has a list with more pages: what «Ещё» continues.
LISTING_BOOKMARK = "staff:listing"


async def show_listing(ctx: Context, listing: Listing, after: int | None) -> None:
    """One page of a list, the first or the one after appeal №`after`; every statement is
    an index range of about a page (storage/appeals.py), whatever the size of the register."""
    staff = member(ctx)
    if after is not None and await visible_appeal(ctx, after) is None:
        return
    statuses = LIST_FILTERS[listing.key]
    settlements = None if staff.moderator else sorted(staff.settlements)
    due_before = ctx.now if listing.key == "overdue" else None
    page = await ctx.tx.appeals.listing(
        statuses=statuses,
        settlements=settlements,
        due_before=due_before,
        newest_first=listing.key in NEWEST_FIRST,
        after=after,
        limit=LIST_LIMIT,
    )
    title = texts.LIST_FILTERS[listing.key]
    overdue = listing.command == "overdue"
    if after is not None:
        heading = (texts.OVERDUE_TITLE_NEXT if overdue else texts.LIST_TITLE_NEXT).format(
            filter=title, after=after
        )
    else:
        count = await ctx.tx.appeals.count(
            statuses=statuses,
            settlements=settlements,
            due_before=due_before,
            up_to=COUNT_UP_TO + 1,
        )
        total = texts.LIST_MANY.format(count=COUNT_UP_TO) if count > COUNT_UP_TO else str(count)
        heading = (texts.OVERDUE_TITLE if overdue else texts.LIST_TITLE).format(
            filter=title, total=total
        )
    keyboard = None
    if not page.rows:
        if after is not None:
            ctx.reply(texts.LIST_END.format(filter=title))
        else:
            ctx.reply(texts.OVERDUE_EMPTY if overdue else texts.LIST_EMPTY.format(filter=title))
    else:
        lines = [heading, *list_lines(ctx, page.rows)]
        last = page.rows[-1][0].number
        if page.more:
            lines.append(texts.LIST_NEXT.format(command=listing.typed, after=last))
            keyboard = Keyboard(rows=((Button(texts.MORE, listing.payload(last)),),), inline=True)
        ctx.reply("\n".join(lines), keyboard)
    await _bookmark(ctx, listing, page.rows[-1][0].number if keyboard is not None else None)
    details = listing.key if after is None else f"{listing.key} after {after}"
    await audit(ctx, listing.command, details=details)


async def _bookmark(ctx: Context, listing: Listing, after: int | None) -> None:
    """Remember where «Ещё» typed as text continues (staff use no other draft)."""
    platform, user_id = ctx.message.platform, ctx.message.user_id
    if after is None:
        if await ctx.tx.drafts.get(platform, user_id) is not None:
            await ctx.tx.drafts.delete(platform, user_id)
        return
    data = {"command": listing.command, "key": listing.key, "after": after}
    await ctx.tx.drafts.save(platform, user_id, Draft(step=LISTING_BOOKMARK, data=data), ctx.now)


async def continue_listing(ctx: Context) -> bool:
    """«Ещё» under a list, pressed or typed: the next page. False if the message is not
    that (or the list is gone), for the caller to answer it otherwise."""
    message = ctx.message
    listing: Listing | None = None
    after: int | None = None
    if message.payload is not None and message.payload.startswith(LISTING_PAYLOAD):
        command, _, rest = message.payload.removeprefix(LISTING_PAYLOAD).partition(":")
        key, _, number = rest.partition(":")
        if number.isascii() and number.isdecimal() and len(number) <= 9:
            listing, after = Listing(command, key), int(number)
    elif message.payload is None and fold(message.text) == fold(texts.MORE):
        draft = await ctx.tx.drafts.get(message.platform, message.user_id)
        if draft is not None and draft.step == LISTING_BOOKMARK:
            data = draft.data
            if isinstance(data.get("after"), int):
                listing = Listing(str(data.get("command")), str(data.get("key")))
                after = data["after"]
    if listing is None or after is None:
        return False
    allowed = (listing.command == "list" and listing.key in LIST_FILTERS) or (
        listing.command == "overdue" and listing.key == "overdue" and member(ctx).moderator
    )
    if not allowed:
        return False
    await show_listing(ctx, listing, after)
    return True


def list_lines(ctx: Context, rows: list[tuple[Appeal, datetime]]) -> list[str]:
    """One line an appeal, with its current deadline."""
    tz = ctx.settings.timezone
    lines = []
    for appeal, due in rows:
        lines.append(
            texts.LIST_LINE.format(
                number=appeal.number,
                date=local_date(appeal.created_at, tz),
                category=topic(ctx.settings, appeal),
                settlement=settlement_title(ctx.settings, appeal.settlement),
                status=status_title(appeal.status),
                deadline=local_time(due, tz),
            )
        )
    return lines


async def cmd_show(ctx: Context, args: str) -> None:
    number, _ = number_and_text(args, text="none")
    appeal = await visible_appeal(ctx, number)
    if appeal is None:
        return
    thread = await ctx.tx.thread.of_appeal(number)
    comment = await ctx.tx.comments.of_item(number) if appeal.is_comment else None
    text = "\n".join(
        [
            card(ctx.settings, appeal, texts.CARD_SHOW, comment),
            "",
            texts.THREAD_TITLE,
            *thread_lines(ctx.settings, thread, comment=appeal.is_comment),
        ]
    )
    ctx.reply(text, appeal_number=number)
    await audit(ctx, "show", number)


async def staff_list(ctx: Context) -> None:
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


def _period(args: str, now: datetime, settings: HandlerSettings) -> tuple[date, date]:
    """[С] [ПО] in local dates; by default from the start of this year to today."""
    parts = args.split()
    if len(parts) > 2:
        raise UsageError
    today = now.astimezone(settings.timezone).date()
    try:
        dates = [parse_date(part) for part in parts]
    except ValueError as error:
        raise UsageError(texts.BAD_DATE.format(text=error.args[0])) from None
    start = dates[0] if dates else today.replace(month=1, day=1)
    end = dates[1] if len(dates) > 1 else today
    if start > end:
        raise UsageError(texts.BAD_PERIOD)
    return start, end


def stats_bounds(
    args: str, now: datetime, settings: HandlerSettings
) -> tuple[date, date, datetime, datetime]:
    """The local days `/stats` was asked for and their bounds in time."""
    start, end = _period(args, now, settings)
    try:
        since, until = period_bounds(start, end, settings.timezone)
    except PeriodError as error:
        raise UsageError(*error.args) from None
    return start, end, since, until


async def cmd_stats(ctx: Context, args: str) -> None:
    """SPEC §9 for a period of local days, compactly (handlers/figures/report.py). The
    figures were read ahead on the read-only connection (router.read_ahead) unless the
    update came some other way."""
    start, end, since, until = stats_bounds(args, ctx.now, ctx.settings)
    figures = ctx.ahead.figures.get((since, until))
    if figures is None:
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
