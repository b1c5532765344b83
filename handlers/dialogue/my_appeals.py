"""«Мои обращения» (SPEC §4): the resident's appeals, newest first, a page at a time.

A page shows `PAGE` appeals. When older ones remain, it ends with «Показаны 1–10 из 599»
and a «Ещё» button whose payload carries where the next page starts (the number of the
last appeal shown: keyset paging on the resident's index, so every page costs the same).
«Ещё» typed as text (or the number of the button) works too: where the next page starts is
kept in the resident's draft (`mine_before`), or, outside a dialogue, in a bookmark draft
(`MyAppealsStep`) that any other message simply drops.
"""

from __future__ import annotations

from handlers import keyboards, texts
from handlers.context import Context
from handlers.dialogue.steps import Prompt, Stay, Step, Transition
from handlers.formatting import local_date, shorten, status_title
from handlers.messages import Button, Keyboard
from handlers.text_input import pressed_button
from storage.models import Draft

PAGE = 10
ANSWER_PREVIEW = 500
PAYLOAD = "mine:"  # mine:<number of the last appeal shown>
CURSOR = "mine_before"  # where «Ещё» typed in a dialogue continues


def page_keyboard(before: int | None) -> Keyboard:
    """The main menu, and «Ещё» under it (its number comes after the menu's) if there is
    a next page."""
    if before is None:
        return keyboards.main_menu()
    more = Button(texts.MORE, f"{PAYLOAD}{before}")
    return Keyboard(rows=(*keyboards.main_menu().rows, (more,)), numbered=True)


class MyAppealsStep(Step):
    """A bookmark, not a question: the list has a next page. «Ещё» shows it; anything else
    drops the bookmark and is taken as if it had not been there (handlers/dialogue/resident.py)."""

    name = "mine"
    form = False

    def prompt(self, ctx: Context, draft: Draft) -> Prompt:
        return Prompt(texts.MENU_AGAIN, page_keyboard(_int(draft.data.get("before"))))

    async def handle(self, ctx: Context, draft: Draft, pressed: Button | None) -> Transition:
        return Stay(texts.HINT_CHOOSE)  # never reached: the router handles the bookmark


def requested_page(ctx: Context, draft: Draft | None) -> int | None:
    """Where the next page starts if this message asks for it: «Ещё» pressed (from any
    list, the payload says where), or typed (or its number) after a list that has one."""
    message = ctx.message
    if message.payload is not None:
        if message.payload.startswith(PAYLOAD):
            return _int(message.payload.removeprefix(PAYLOAD))
        return None
    if draft is None:
        return None
    before = _int(draft.data.get("before" if draft.step == MyAppealsStep.name else CURSOR))
    if before is None:
        return None
    pressed = pressed_button(message, page_keyboard(before))
    if pressed is not None and pressed.payload.startswith(PAYLOAD):
        return before
    return None


async def show_my_appeals(ctx: Context, draft: Draft | None, before: int | None = None) -> None:
    """A page of the resident's appeals: the newest, or those older than №`before`; each
    with the latest answer, if there is one. `draft` is the resident's draft (None outside
    a dialogue): the place to remember where «Ещё» continues."""
    appeals_of = ctx.tx.appeals
    resident = ctx.resident.id
    total = await appeals_of.count_of_resident(resident)
    if not total:
        ctx.reply(texts.NO_APPEALS, keyboards.main_menu())
        await _remember(ctx, draft, None)
        return
    appeals = await appeals_of.of_resident(resident, limit=PAGE + 1, before=before)
    more = len(appeals) > PAGE
    appeals = appeals[:PAGE]
    if not appeals:
        ctx.reply(texts.MY_APPEALS_END, keyboards.main_menu())
        await _remember(ctx, draft, None)
        return
    first = 1
    if before is not None:
        first += await appeals_of.count_of_resident(resident, newer_than=appeals[0].number)
    last = first + len(appeals) - 1
    if before is None:
        lines = [texts.MY_APPEALS_TITLE.format(total=total)]
    else:
        lines = [texts.MY_APPEALS_NEXT_TITLE.format(first=first, last=last, total=total)]
    tz = ctx.settings.timezone
    for appeal in appeals:
        category = ctx.settings.category(appeal.category)
        settlement = ctx.settings.settlement(appeal.settlement)
        lines.append(
            texts.MY_APPEAL_LINE.format(
                number=appeal.number,
                date=local_date(appeal.created_at, tz),
                category=category.title if category else appeal.category,
                settlement=settlement.title if settlement else appeal.settlement,
                status=status_title(appeal.status),
            )
        )
        answers = await ctx.tx.thread.of_appeal(appeal.number, kinds=("answer",))
        if answers and answers[-1].text:
            lines.append(
                texts.MY_APPEAL_ANSWER.format(text=shorten(answers[-1].text, ANSWER_PREVIEW))
            )
    next_before = appeals[-1].number if more else None
    if more:
        lines.append(texts.MY_APPEALS_MORE.format(first=first, last=last, total=total))
    ctx.reply("\n".join(lines), page_keyboard(next_before))
    await _remember(ctx, draft, next_before)


async def _remember(ctx: Context, draft: Draft | None, before: int | None) -> None:
    platform, user_id = ctx.message.platform, ctx.message.user_id
    if draft is None or draft.step == MyAppealsStep.name:
        if before is not None:
            bookmark = Draft(step=MyAppealsStep.name, data={"before": before})
            await ctx.tx.drafts.save(platform, user_id, bookmark, ctx.now)
        elif draft is not None:
            await ctx.tx.drafts.delete(platform, user_id)
        return
    if before is None and CURSOR not in draft.data:
        return
    if before is None:
        draft.data.pop(CURSOR, None)
    else:
        draft.data[CURSOR] = before
    await ctx.tx.drafts.save(platform, user_id, draft, ctx.now)


def _int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdecimal() and len(value) <= 9:
        return int(value)
    return None
