"""The staff router: which command a staff member typed, whether they may use it, and
quote-replies to the bot's notifications (the same as /reply N текст, SPEC §5)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from handlers import texts
from handlers.appeal_view import settlement_title
from handlers.context import Context, ReadAhead
from handlers.messages import Incoming
from handlers.settings import HandlerSettings
from handlers.staff import actions, commands, views
from handlers.staff.args import UsageError
from handlers.staff.views import continue_listing, member
from handlers.text_input import is_one_of, split_command, visible_length
from storage.db import Tx
from storage.staff import StaffMember

CommandFn = Callable[[Context, str], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    run: CommandFn
    moderator_only: bool = False


async def cmd_help(ctx: Context, args: str) -> None:
    ctx.reply(help_text(member(ctx)))


READ_AHEAD = frozenset({"stats"})  # commands whose long reads run before the transaction


def help_text(staff: StaffMember) -> str:
    names = [
        name for name, command in COMMANDS.items() if staff.moderator or not command.moderator_only
    ]
    return "\n".join([texts.STAFF_HELP_TITLE, *(texts.USAGE[name] for name in names)])


COMMANDS: dict[str, Command] = {
    "help": Command(cmd_help),
    "list": Command(views.cmd_list),
    "show": Command(views.cmd_show),
    "take": Command(commands.cmd_take),
    "reply": Command(commands.cmd_reply),
    "ask": Command(commands.cmd_ask),
    "close": Command(commands.cmd_close),
    "invite": Command(commands.cmd_invite),
    "assign": Command(commands.cmd_assign, moderator_only=True),
    "comment": Command(commands.cmd_comment, moderator_only=True),
    "reject": Command(commands.cmd_reject, moderator_only=True),
    "ban": Command(commands.cmd_ban, moderator_only=True),
    "unban": Command(commands.cmd_unban, moderator_only=True),
    "staff": Command(commands.cmd_staff, moderator_only=True),
    "stats": Command(views.cmd_stats, moderator_only=True),
    "overdue": Command(views.cmd_overdue, moderator_only=True),
    "web": Command(commands.cmd_web),
}


async def handle_staff(ctx: Context) -> None:
    """Commands, quote-replies to notifications, «Ещё» under a list, and a hint for
    anything else. A quote-reply with nothing visible in it is not an answer."""
    message = ctx.message
    text = message.text
    if await continue_listing(ctx):
        return
    if (
        message.reply_to
        and visible_length(text)
        and not text.startswith("/")
        and message.payload is None
    ):
        number = await ctx.tx.outbox.appeal_of_message(
            message.platform, message.chat_id, message.reply_to, message.community
        )
        if number is not None:
            commands.tell(ctx, await actions.reply(ctx.work, member(ctx), number, text))
            return
    if is_one_of(text, texts.MENU_WORDS):
        staff = member(ctx)
        ctx.reply(texts.STAFF_GREETING.format(roles=roles_text(ctx, staff), help=help_text(staff)))
        return
    if not text.startswith("/") or message.payload is not None:
        ctx.reply(texts.STAFF_PLAIN_TEXT)
        return
    name, args = split_command(text)
    command = COMMANDS.get(name)
    if command is None:
        ctx.reply(texts.UNKNOWN_STAFF_COMMAND)
        return
    # Which commands this person is offered (as /help lists them), answered before the
    # arguments are read. It is not the authorization: each action checks that itself.
    if command.moderator_only and not member(ctx).moderator:
        ctx.reply(texts.MODERATOR_ONLY)
        return
    try:
        await command.run(ctx, args)
    except UsageError as error:
        usage = texts.USAGE_PREFIX.format(usage=texts.USAGE[name])
        ctx.reply(f"{error.args[0]}\n{usage}" if error.args else usage)


def reads_ahead(message: Incoming) -> bool:
    """Whether the update may need a long read before its transaction (`/stats`)."""
    text = message.text
    if not text.startswith("/") or message.payload is not None:
        return False
    return split_command(text)[0] in READ_AHEAD


async def read_ahead(
    message: Incoming, view: Tx, settings: HandlerSettings, now: datetime
) -> ReadAhead:
    """The long reads a staff command will need, on the read-only connection before the
    update's transaction: the figures of `/stats` from a moderator. Anything else, or a
    command that will be refused, reads nothing here (the command answers as always)."""
    ahead = ReadAhead()
    if not reads_ahead(message):
        return ahead
    _, args = split_command(message.text)
    sender = await view.arrival.read(message.platform, message.user_id, message.identity)
    if sender.staff is None or not sender.staff.moderator:
        return ahead
    try:
        _, _, since, until = views.stats_bounds(args, now, settings)
    except UsageError:
        return ahead
    ahead.figures[(since, until)] = await view.appeals.figures(since, until)
    return ahead


def roles_text(ctx: Context, staff: StaffMember) -> str:
    roles = []
    if staff.moderator:
        roles.append(texts.ROLE_MODERATOR)
    if staff.settlements:
        titles = ", ".join(sorted(settlement_title(ctx.settings, s) for s in staff.settlements))
        roles.append(texts.ROLE_ADMIN.format(settlements=titles))
    return "; ".join(roles)
