"""The resident's side of the conversation (SPEC §4): main menu, help, «Мои обращения»,
additions to an open appeal, resuming a draft, withdrawing consent, and the appeal form."""

from __future__ import annotations

from datetime import timedelta

from loguru import logger

from handlers import keyboards, texts
from handlers.context import Context
from handlers.feedback import RATE_PREFIX, answer_question, rate, rating_keyboard
from handlers.form import FORM_STEPS, CategoryStep, first_step
from handlers.formatting import local_date, shorten, status_title
from handlers.keyboards import CANCEL, MENU_PAYLOADS
from handlers.messages import Button, Keyboard
from handlers.notify import handlers_of, send_to_staff
from handlers.staff_args import split_command
from handlers.steps import Finish, Goto, Prompt, Stay, Step, Transition
from handlers.text_input import is_one_of, pressed_button
from storage.models import OPEN_STATUSES, Draft, Photo

# A resident who comes back to an unfinished form after this long is asked whether to
# continue or start over, instead of having the message taken as the answer.
RESUME_AFTER = timedelta(minutes=30)
MY_APPEALS_SHOWN = 10
ADDITION_OFFERS = 3
ANSWER_PREVIEW = 500


def greet(ctx: Context, note: str | None = None) -> None:
    """The greeting with the main menu, after a note if there is one (one message)."""
    s = ctx.settings
    greeting = texts.GREETING.format(bot_name=s.bot_name, hours=s.answer_within_hours)
    ctx.reply(f"{note}\n\n{greeting}" if note else greeting, keyboards.main_menu())


def show_help(ctx: Context) -> None:
    s = ctx.settings
    ctx.reply(
        texts.HELP_TEXT.format(
            bot_name=s.bot_name,
            hours=s.answer_within_hours,
            formal_url=s.formal_appeal_url,
            policy_url=s.privacy_policy_url,
        ),
        keyboards.help_menu(),
    )


async def show_my_appeals(ctx: Context) -> None:
    appeals = await ctx.tx.appeals.of_resident(ctx.resident.id, limit=MY_APPEALS_SHOWN)
    if not appeals:
        ctx.reply(texts.NO_APPEALS, keyboards.main_menu())
        return
    lines = [texts.MY_APPEALS_TITLE]
    for appeal in appeals:
        category = ctx.settings.category(appeal.category)
        settlement = ctx.settings.settlement(appeal.settlement)
        lines.append(
            texts.MY_APPEAL_LINE.format(
                number=appeal.number,
                date=local_date(appeal.created_at, ctx.settings.timezone),
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
    ctx.reply("\n".join(lines), keyboards.main_menu())


class ResumeStep(Step):
    """«У вас есть незавершённое обращение…»: continue where it stopped, or start over."""

    name = "resume"  # holds a form in progress: expires only with draft_ttl_days

    def prompt(self, ctx: Context, draft: Draft) -> Prompt:
        step = texts.STEP_TITLES.get(draft.data.get("resume_step", ""), "")
        rows = (
            (Button(texts.CONTINUE, "resume:continue"),),
            (Button(texts.START_OVER, "resume:restart"),),
            (CANCEL,),
        )
        return Prompt(texts.RESUME.format(step=step), Keyboard(rows=rows, numbered=True))

    async def handle(self, ctx: Context, draft: Draft, pressed: Button | None) -> Transition:
        if pressed is None:
            return Stay(texts.HINT_CHOOSE)
        if pressed.payload == "resume:restart":
            draft.data.clear()
            return Goto(first_step(ctx))
        return Goto(draft.data.pop("resume_step", CategoryStep.name))


class AdditionStep(Step):
    """A resident with an open appeal wrote outside a dialogue: add it to №N, or start anew."""

    name = "addition"
    form = False

    def prompt(self, ctx: Context, draft: Draft) -> Prompt:
        rows = tuple(
            (Button(texts.ADD_TO.format(number=n), f"add:{n}"),) for n in draft.data["offers"]
        )
        rows += ((Button(texts.NEW_INSTEAD, "menu:new"),), (CANCEL,))
        return Prompt(texts.ADDITION_OFFER, Keyboard(rows=rows, numbered=True))

    async def handle(self, ctx: Context, draft: Draft, pressed: Button | None) -> Transition:
        if pressed is None:
            return Stay(texts.HINT_CHOOSE)
        if pressed.payload == "menu:new":
            draft.data.clear()
            return Goto(first_step(ctx))
        number = int(pressed.payload.removeprefix("add:"))
        appeal = await ctx.tx.appeals.get(number)
        if (
            appeal is None
            or appeal.resident_id != ctx.resident.id
            or appeal.status not in OPEN_STATUSES
        ):
            ctx.reply(texts.ADDITION_CLOSED.format(number=number), keyboards.main_menu())
            return Finish()
        photos = tuple(Photo.from_dict(p) for p in draft.data.get("photos", []))
        await ctx.tx.thread.add(
            number,
            kind="addition",
            author="resident",
            now=ctx.now,
            text=draft.data.get("text") or None,
            photos=photos,
        )
        await send_to_staff(
            ctx,
            await handlers_of(ctx, appeal),
            texts.ADDITION_TO_STAFF.format(
                number=number, text=draft.data.get("text") or texts.PHOTOS_ONLY
            ),
            appeal,
            photos=photos,
        )
        ctx.reply(
            texts.ADDITION_ACCEPTED.format(number=number),
            keyboards.main_menu(),
            appeal_number=number,
        )
        logger.info("appeal №{} addition from resident platform={}", number, ctx.message.platform)
        return Finish()


class ForgetStep(Step):
    """Withdrawing consent: name and phone erased from every appeal of the resident."""

    name = "forget"
    form = False

    def prompt(self, ctx: Context, draft: Draft) -> Prompt:
        rows = ((Button(texts.FORGET_YES, "forget:yes"),), (CANCEL,))
        return Prompt(texts.FORGET_CONFIRM, Keyboard(rows=rows, numbered=True))

    async def handle(self, ctx: Context, draft: Draft, pressed: Button | None) -> Transition:
        if pressed is None:
            return Stay(texts.HINT_CHOOSE)
        erased = await ctx.tx.appeals.erase_contacts_of_resident(ctx.resident.id)
        await ctx.tx.residents.withdraw_consent(ctx.resident.id)
        await ctx.tx.audit.add(
            ctx.message.identity,
            "consent_withdrawn",
            ctx.now,
            details=f"appeals anonymised: {erased}",
        )
        ctx.reply(texts.FORGOTTEN, keyboards.main_menu())
        logger.info(
            "consent withdrawn platform={} appeals anonymised={}", ctx.message.platform, erased
        )
        return Finish()


STEPS: dict[str, Step] = {
    step.name: step for step in (*FORM_STEPS, ResumeStep(), AdditionStep(), ForgetStep())
}


RESIDENT_COMMANDS = frozenset(("forget", "help"))
STAFF_COMMANDS = frozenset(
    [
        "list",
        "show",
        "take",
        "reply",
        "ask",
        "close",
        "assign",
        "reject",
        "ban",
        "unban",
        "staff",
        "stats",
        "overdue",
    ]
)


def ask(ctx: Context, step: Step, draft: Draft, hint: str | None = None) -> None:
    """Put the step's question (after a hint, if any) with its buttons."""
    prompt = step.prompt(ctx, draft)
    ctx.reply(f"{hint}\n\n{prompt.text}" if hint else prompt.text, prompt.keyboard)


async def goto(ctx: Context, draft: Draft, step_name: str, hint: str | None = None) -> None:
    draft.step = step_name
    await ctx.tx.drafts.save(ctx.message.platform, ctx.message.user_id, draft, ctx.now)
    ask(ctx, STEPS[step_name], draft, hint)


async def drop(ctx: Context) -> None:
    await ctx.tx.drafts.delete(ctx.message.platform, ctx.message.user_id)


async def handle_resident(ctx: Context) -> None:
    """Everything a resident sends goes through here, in this order: expiry, global words
    (cancel, menu, /forget, /help, commands), the current step, or the main menu."""
    message = ctx.message
    draft = await ctx.tx.drafts.get(message.platform, message.user_id)
    if draft is not None and (draft.step not in STEPS or _expired(ctx, draft)):
        await drop(ctx)
        if draft.step in STEPS and STEPS[draft.step].form:
            ctx.reply(texts.DRAFT_EXPIRED.format(days=ctx.settings.limits.draft_ttl_days))
        draft = None
    elif draft is not None and not STEPS[draft.step].form and _idle(ctx, draft):
        await drop(ctx)  # a stale offer or confirmation: start from the menu
        draft = None

    text = "" if message.payload is not None else message.text
    if message.payload == keyboards.CANCEL.payload or is_one_of(text, texts.CANCEL_WORDS):
        await _cancel(ctx, draft)
        return
    if text.startswith("/") and not is_one_of(text, texts.MENU_WORDS):
        name, _ = split_command(text)
        # On a free-text step an unknown «/…» is just text (an address may start so).
        if name in RESIDENT_COMMANDS or name in STAFF_COMMANDS or not _free_text(ctx, draft):
            await _command(ctx, draft, name)
            return
    if message.payload is not None and message.payload.startswith(RATE_PREFIX):
        await rate(ctx, message.payload)
        if draft is not None:
            ask(ctx, STEPS[draft.step], draft)
        return
    in_form = draft is not None and STEPS[draft.step].form
    if not in_form and message.payload is None and (text or message.photos):
        question = await ctx.tx.questions.open_for(ctx.resident.id)
        if question is not None and not is_one_of(text, texts.MENU_WORDS):
            await drop(ctx)
            await answer_question(ctx, question)
            return
    if draft is not None and STEPS[draft.step].form:
        menu_asked = is_one_of(text, texts.MENU_WORDS) or message.payload == keyboards.NEW.payload
        if draft.step != ResumeStep.name and (menu_asked or _idle(ctx, draft)):
            draft.data["resume_step"] = draft.step
            await goto(ctx, draft, ResumeStep.name)
            return
    if draft is None:
        if is_one_of(text, texts.MENU_WORDS):
            greet(ctx)
        else:
            await _idle_menu(ctx)
        return
    await _answer_step(ctx, draft)


async def _cancel(ctx: Context, draft: Draft | None) -> None:
    """«Отмена» however it came (pressed, typed, its number, /cancel): the draft is dropped."""
    await drop(ctx)
    if draft is not None and STEPS[draft.step].form:
        ctx.reply(texts.CANCELLED, keyboards.main_menu())
    else:
        greet(ctx)


def _expired(ctx: Context, draft: Draft) -> bool:
    ttl = timedelta(days=ctx.settings.limits.draft_ttl_days)
    return draft.updated_at is not None and ctx.now - draft.updated_at > ttl


def _idle(ctx: Context, draft: Draft) -> bool:
    return draft.updated_at is not None and ctx.now - draft.updated_at > RESUME_AFTER


def _free_text(ctx: Context, draft: Draft | None) -> bool:
    if draft is None or not STEPS[draft.step].form:
        return False
    return not STEPS[draft.step].prompt(ctx, draft).keyboard.numbered


async def _command(ctx: Context, draft: Draft | None, name: str) -> None:
    if name == "forget":
        await goto(ctx, draft or Draft(step=ForgetStep.name), ForgetStep.name)
        return
    if name == "help":
        show_help(ctx)
    else:
        ctx.reply(
            texts.COMMAND_UNAVAILABLE if name in STAFF_COMMANDS else texts.HINT_UNKNOWN_COMMAND
        )
    if draft is not None:
        ask(ctx, STEPS[draft.step], draft)
    elif name != "help":
        greet(ctx)


async def _menu_choice(ctx: Context, draft: Draft | None, payload: str) -> None:
    """A main-menu button, pressed from the menu or from an old keyboard mid-dialogue."""
    if payload == keyboards.NEW.payload:
        await goto(ctx, Draft(step=""), first_step(ctx))
    elif payload == keyboards.FORGET.payload:
        await goto(ctx, draft or Draft(step=""), ForgetStep.name)
    else:
        if payload == keyboards.MINE.payload:
            await show_my_appeals(ctx)
        else:
            show_help(ctx)
        if draft is not None:
            ask(ctx, STEPS[draft.step], draft)


async def _idle_menu(ctx: Context) -> None:
    message = ctx.message
    unrated = await ctx.tx.appeals.latest_unrated_answer(ctx.resident.id)
    if unrated is not None and message.payload is None:
        typed = pressed_button(message, rating_keyboard(unrated.number))
        if typed is not None:
            await rate(ctx, typed.payload)
            return
    pressed = pressed_button(message, keyboards.help_menu())
    if pressed is not None:
        await _menu_choice(ctx, None, pressed.payload)
        return
    if message.payload is not None:
        greet(ctx, texts.HINT_STALE_BUTTON)
        return
    if len(message.text) > ctx.settings.limits.max_description:
        limit = ctx.settings.limits.max_description
        greet(ctx, texts.DESCRIPTION_TOO_LONG.format(length=len(message.text), max=limit))
        return
    if message.text or message.photos:
        open_appeals = await ctx.tx.appeals.of_resident(
            ctx.resident.id, limit=ADDITION_OFFERS, open_only=True
        )
        if open_appeals:
            draft = Draft(
                step=AdditionStep.name,
                data={
                    "offers": [a.number for a in open_appeals],
                    "text": message.text,
                    "photos": [p.to_dict() for p in message.photos],
                },
            )
            await goto(ctx, draft, AdditionStep.name)
            return
    greet(ctx)


async def _answer_step(ctx: Context, draft: Draft) -> None:
    message = ctx.message
    step = STEPS[draft.step]
    pressed = pressed_button(message, step.prompt(ctx, draft).keyboard)
    if pressed is None and message.payload is not None:
        if message.payload in MENU_PAYLOADS:
            await _menu_choice(ctx, draft, message.payload)
        else:
            ask(ctx, step, draft, texts.HINT_STALE_BUTTON)
        return
    if pressed is not None and pressed.payload == keyboards.CANCEL.payload:  # its number typed
        await _cancel(ctx, draft)
        return
    if pressed is not None and pressed.payload == keyboards.BACK.payload:
        previous = step.previous(ctx)
        await goto(ctx, draft, previous or step.name)
        return
    if pressed is None and message.unsupported:
        ask(ctx, step, draft, texts.HINT_UNSUPPORTED)
        return
    transition = await step.handle(ctx, draft, pressed)
    if isinstance(transition, Finish):
        await drop(ctx)
    elif isinstance(transition, Goto):
        await goto(ctx, draft, transition.step)
    else:
        await goto(ctx, draft, step.name, transition.hint)
