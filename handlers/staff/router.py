"""The staff router: which command a staff member typed, whether they may use it, and
quote-replies to the bot's notifications (the same as /reply N текст, SPEC §5)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from handlers import texts
from handlers.appeal_view import settlement_title
from handlers.context import Context
from handlers.staff import actions, commands, views
from handlers.staff.args import UsageError
from handlers.staff.views import continue_listing, member
from handlers.text_input import is_one_of, split_command, visible_length
from storage.staff import StaffMember

CommandFn = Callable[[Context, str], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    run: CommandFn
    moderator_only: bool = False


async def cmd_help(ctx: Context, args: str) -> None:
    ctx.reply(help_text(member(ctx)))


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
    "assign": Command(commands.cmd_assign, moderator_only=True),
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
            message.platform, message.chat_id, message.reply_to
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


def roles_text(ctx: Context, staff: StaffMember) -> str:
    roles = []
    if staff.moderator:
        roles.append(texts.ROLE_MODERATOR)
    if staff.settlements:
        titles = ", ".join(sorted(settlement_title(ctx.settings, s) for s in staff.settlements))
        roles.append(texts.ROLE_ADMIN.format(settlements=titles))
    return "; ".join(roles)
