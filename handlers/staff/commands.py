"""Staff commands that act (SPEC §5, §6): each parses its text into a call of the action in
handlers/staff/actions.py and passes on what the action returns. Nothing here decides who
may do what: the action does."""

from __future__ import annotations

import secrets
from datetime import timedelta

from handlers import texts
from handlers.context import Context
from handlers.identity import PLATFORMS
from handlers.staff import actions
from handlers.staff.actions import Outcome
from handlers.staff.args import UsageError, identity_and_text, number_and_text
from handlers.staff.views import audit, member, staff_list
from handlers.text_input import visible_length
from storage.staff import MODERATOR


def tell(ctx: Context, outcome: Outcome) -> None:
    """The action's messages, then its answer into the chat of the official who acted."""
    ctx.outgoing.extend(outcome.messages)
    ctx.reply(outcome.text, appeal_number=outcome.number)


async def cmd_take(ctx: Context, args: str) -> None:
    number, _ = number_and_text(args, text="none")
    tell(ctx, await actions.take(ctx.work, member(ctx), number))


async def cmd_reply(ctx: Context, args: str) -> None:
    number, text = number_and_text(args)
    tell(ctx, await actions.reply(ctx.work, member(ctx), number, text))


async def cmd_ask(ctx: Context, args: str) -> None:
    number, text = number_and_text(args)
    tell(ctx, await actions.ask(ctx.work, member(ctx), number, text))


async def cmd_close(ctx: Context, args: str) -> None:
    number, comment = number_and_text(args, text="optional")
    tell(ctx, await actions.close(ctx.work, member(ctx), number, comment))


async def cmd_invite(ctx: Context, args: str) -> None:
    number, _ = number_and_text(args, text="none")
    tell(ctx, await actions.invite(ctx.work, member(ctx), number))


async def cmd_comment(ctx: Context, args: str) -> None:
    """`/comment <код_поселения> <ссылка> текст`: a comment registered by hand (OK)."""
    code, _, rest = args.strip().partition(" ")
    link, _, text = rest.strip().partition(" ")
    text = text.strip()
    if not code or not link or not visible_length(text):
        raise UsageError
    outcome = await actions.register_comment(
        ctx.work, member(ctx), code, link, text, resident_id=ctx.resident.id
    )
    tell(ctx, outcome)


async def cmd_assign(ctx: Context, args: str) -> None:
    number, code = number_and_text(args)
    if " " in code or "\n" in code:
        raise UsageError
    tell(ctx, await actions.assign(ctx.work, member(ctx), number, code))


async def cmd_reject(ctx: Context, args: str) -> None:
    number, reason = number_and_text(args)
    tell(ctx, await actions.reject(ctx.work, member(ctx), number, reason))


def _identity(rest: str) -> tuple[str, str]:
    try:
        return identity_and_text(rest)
    except UsageError as error:
        if error.args:  # an identity was given but is malformed: say how to write one
            raise UsageError(texts.BAD_IDENTITY.format(platforms=", ".join(PLATFORMS))) from None
        raise


async def cmd_ban(ctx: Context, args: str) -> None:
    identity, reason = _identity(args)
    tell(ctx, await actions.ban(ctx.work, member(ctx), identity, reason))


async def cmd_unban(ctx: Context, args: str) -> None:
    identity, rest = _identity(args)
    if rest:
        raise UsageError
    tell(ctx, await actions.unban(ctx.work, member(ctx), identity))


async def cmd_staff(ctx: Context, args: str) -> None:
    """`/staff list`, `/staff add <settlement_code|moderator> platform:id`,
    `/staff remove platform:id`."""
    action, _, rest = args.partition(" ")
    action = action.casefold()
    if action == "list" and not rest.strip():
        await staff_list(ctx)
    elif action == "add":
        role_or_code, _, who = rest.strip().partition(" ")
        identity, extra = _identity(who.strip())
        if not role_or_code or extra:
            raise UsageError
        settlement = None if role_or_code == MODERATOR else role_or_code
        tell(ctx, await actions.add_staff(ctx.work, member(ctx), identity, settlement))
    elif action == "remove":
        identity, extra = _identity(rest.strip())
        if extra:
            raise UsageError
        tell(ctx, await actions.remove_staff(ctx.work, member(ctx), identity))
    else:
        raise UsageError


# The dashboard's sign-in links (SPEC §16): valid this long, at most this many per person
# within that time (a link is 256 random bits; the cap keeps a stolen chat from minting
# links without end and the table small).
LOGIN_VALID = timedelta(minutes=10)
LOGINS_PER_WINDOW = 5


async def cmd_web(ctx: Context, args: str) -> None:
    """`/web`: a one-time link that signs this person in to the web dashboard. Only the
    hash of its token is stored."""
    if args.strip():
        raise UsageError
    minutes = int(LOGIN_VALID.total_seconds() // 60)
    if not ctx.settings.dashboard_url:
        ctx.reply(texts.WEB_OFF)
        return
    staff = member(ctx)
    if await ctx.tx.dashboard.logins_since(staff.identity, ctx.now - LOGIN_VALID) >= (
        LOGINS_PER_WINDOW
    ):
        ctx.reply(texts.WEB_TOO_MANY.format(minutes=minutes))
        return
    token = secrets.token_urlsafe(32)
    await ctx.tx.dashboard.issue_login(token, staff.identity, ctx.now, ctx.now + LOGIN_VALID)
    await audit(ctx, "web_link")
    url = f"{ctx.settings.dashboard_url}/login/{token}"
    ctx.reply(texts.WEB_LINK.format(minutes=minutes, url=url))
