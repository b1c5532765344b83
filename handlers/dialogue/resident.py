"""The resident's side of the conversation (SPEC §4): main menu, help, «Мои обращения»
(handlers/dialogue/my_appeals.py), offers for what is written outside a dialogue
(handlers/dialogue/offers.py), resuming a draft, withdrawing consent, and the appeal form.

The main menu's labels («Подать обращение», «Мои обращения», «Справка», «Удалить мои
данные») do what they say whenever they come, typed or pressed, at any step: Telegram's
persistent menu keyboard sends them as plain text, so they are never taken as an answer to
the step (a description, an address). «Мои обращения» and «Справка» leave the dialogue
where it was and ask its question again; «Подать обращение» in the middle of a form offers
to continue it or start over.

A preset settlement (SPEC §14): a conversation may begin with its settlement known — the
person wrote to a settlement's own community, or came by a deep link naming a settlement's
code (MAX `bot_started` payload, Telegram `/start <code>`). The greeting names it, every draft
begun in that conversation keeps it (`form.PRESET`), the form skips the settlement step, and
the confirmation offers to change it. A deep link's settlement outlives the greeting in a
bookmark draft (`PresetStep`) until a form or an offer takes it over, or the resident goes
quiet for `RESUME_AFTER`.
"""

from __future__ import annotations

from datetime import timedelta

from loguru import logger

from handlers import keyboards, texts
from handlers.context import Context
from handlers.dialogue.feedback import answer_question, rate
from handlers.dialogue.form import FORM_STEPS, PRESET, CategoryStep, first_step
from handlers.dialogue.my_appeals import MyAppealsStep, requested_page, show_my_appeals
from handlers.dialogue.offers import AdditionStep, IntakeStep, make_offer, new_appeal_data
from handlers.dialogue.steps import Finish, Goto, Prompt, Stay, Step, Transition
from handlers.keyboards import CANCEL, MENU_PAYLOADS, RATE_PREFIX, rating_keyboard
from handlers.messages import Button, Keyboard
from handlers.text_input import (
    button_label,
    is_one_of,
    pressed_button,
    split_command,
    visible_length,
)
from storage.models import Draft

# A resident who comes back to an unfinished form after this long is asked whether to
# continue or start over, instead of having the message taken as the answer.
RESUME_AFTER = timedelta(minutes=30)
# The main menu's buttons as typed labels only: a typed number means the step's own button.
MENU_LABELS = Keyboard(rows=keyboards.help_menu().rows)


def greet(ctx: Context, note: str | None = None) -> None:
    """The greeting with the main menu, after a note if there is one (one message); it
    names the settlement the conversation is preset to, if any."""
    s = ctx.settings
    greeting = texts.GREETING.format(bot_name=s.bot_name, hours=s.answer_within_hours)
    preset = s.settlement(ctx.preset_settlement or "")
    if preset is not None:
        greeting = texts.GREETING_SETTLEMENT.format(
            bot_name=s.bot_name, settlement=preset.title, hours=s.answer_within_hours
        )
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


class PresetStep(Step):
    """A bookmark, not a question: the settlement a deep link named, kept until a form or an
    offer takes it over (their drafts replace this one). While it is there the resident is
    outside any dialogue; dropped once they are idle."""

    name = "preset"
    form = False

    def prompt(self, ctx: Context, draft: Draft) -> Prompt:
        return Prompt(texts.MENU_AGAIN, keyboards.main_menu())

    async def handle(self, ctx: Context, draft: Draft, pressed: Button | None) -> Transition:
        return Finish()  # never reached: handle_resident reads the bookmark as no dialogue


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
        # The queued and sent messages first: the appeals' contacts say what to look for.
        await ctx.tx.retention.erase_person_from_outbox(ctx.resident.id)
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
    step.name: step
    for step in (
        *FORM_STEPS,
        ResumeStep(),
        PresetStep(),
        AdditionStep(),
        IntakeStep(),
        ForgetStep(),
        MyAppealsStep(),
    )
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
        "invite",
        "assign",
        "comment",
        "reject",
        "ban",
        "unban",
        "staff",
        "stats",
        "overdue",
    ]
)


def ask(
    ctx: Context, step: Step, draft: Draft, hint: str | None = None, *, again: bool = False
) -> None:
    """Put the step's question (after a hint, if any) with its buttons; `again`: the
    question is repeated (after a hint or something shown in between), in its short form."""
    prompt = step.again(ctx, draft) if again else step.prompt(ctx, draft)
    ctx.reply(f"{hint}\n\n{prompt.text}" if hint else prompt.text, prompt.keyboard)


async def goto(ctx: Context, draft: Draft, step_name: str, hint: str | None = None) -> None:
    """Save the draft at `step_name` and ask that step's question."""
    draft.step = step_name
    await _save(ctx, draft)
    ask(ctx, STEPS[step_name], draft, hint)


async def stay(ctx: Context, draft: Draft, hint: str | None) -> None:
    """Save the draft (what the answer changed) and ask the same question again."""
    await _save(ctx, draft)
    ask(ctx, STEPS[draft.step], draft, hint, again=True)


async def _save(ctx: Context, draft: Draft) -> None:
    draft.data.pop("mine_before", None)  # «Ещё» now continues no list
    if ctx.preset_settlement and not ({"category", "settlement"} & draft.data.keys()):
        # A draft begun in a preset conversation keeps its settlement (a form that has
        # chosen already keeps what it chose).
        draft.data.setdefault(PRESET, ctx.preset_settlement)
    await ctx.tx.drafts.save(ctx.message.platform, ctx.message.user_id, draft, ctx.now)


async def drop(ctx: Context) -> None:
    await ctx.tx.drafts.delete(ctx.message.platform, ctx.message.user_id)


async def handle_resident(ctx: Context) -> None:
    """Everything a resident sends goes through here, in this order: expiry, «Ещё» under a
    list, global words (cancel, commands), ratings, answers to questions, the main menu,
    the current step, or — outside a dialogue — the menu and the offers."""
    message = ctx.message
    draft = await ctx.tx.drafts.get(message.platform, message.user_id)
    if draft is not None and (draft.step not in STEPS or _expired(ctx, draft)):
        await drop(ctx)
        if draft.step in STEPS and STEPS[draft.step].form:
            ctx.reply(texts.DRAFT_EXPIRED.format(days=ctx.settings.limits.draft_ttl_days))
        draft = None
    elif draft is not None and _disposable(draft) and _idle(ctx, draft):
        await drop(ctx)  # a stale confirmation or bookmark: start from the menu
        draft = None
    draft = await _preset(ctx, draft)

    before = requested_page(ctx, draft)
    if before is not None:
        await show_my_appeals(ctx, draft, before)
        if draft is not None and draft.step != MyAppealsStep.name:
            ask(ctx, STEPS[draft.step], draft, again=True)
        return
    if draft is not None and draft.step == MyAppealsStep.name:
        await drop(ctx)  # the bookmark of a list: anything but «Ещё» goes on without it
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
            ask(ctx, STEPS[draft.step], draft, again=True)
        return
    if await _typed_rating(ctx, draft):
        return
    in_form = draft is not None and STEPS[draft.step].form
    if not in_form and message.payload is None and (visible_length(text) or message.photos):
        question = await ctx.tx.questions.open_for(ctx.resident.id)
        if question is not None and not is_one_of(text, texts.MENU_WORDS):
            await answer_question(ctx, question)
            if draft is not None and STEPS[draft.step].keeps:
                ask(ctx, STEPS[draft.step], draft, again=True)  # still kept, still to choose
            else:
                await drop(ctx)
            return
    menu = _menu_button(ctx, draft)
    if draft is not None and STEPS[draft.step].form:
        new = is_one_of(text, texts.MENU_WORDS) or (menu is not None and menu == keyboards.NEW)
        if draft.step == ResumeStep.name and new:
            ask(ctx, STEPS[draft.step], draft, again=True)  # the same choice, still open
            return
        if draft.step != ResumeStep.name and (new or _idle(ctx, draft)):
            draft.data["resume_step"] = draft.step
            await goto(ctx, draft, ResumeStep.name)
            return
    if menu is not None:
        await _menu_choice(ctx, draft, menu.payload)
        return
    if draft is None:
        if is_one_of(text, texts.MENU_WORDS):
            greet(ctx)
        else:
            await _idle_menu(ctx)
        return
    if is_one_of(text, texts.MENU_WORDS):  # an offer or a confirmation on screen
        if STEPS[draft.step].keeps:
            ask(ctx, STEPS[draft.step], draft, again=True)  # what it keeps is not dropped
        else:
            await drop(ctx)
            greet(ctx)
        return
    await _answer_step(ctx, draft)


async def _preset(ctx: Context, draft: Draft | None) -> Draft | None:
    """Which settlement this conversation is preset to (`ctx.preset_settlement`): a deep
    link's in this very message, else the draft's, else the community's own. A deep link
    outside any dialogue is kept in a bookmark for the messages after it. Returns the draft
    the dialogue goes on with: a bookmark counts as none."""
    settings = ctx.settings
    linked = _linked_settlement(ctx)
    kept = draft.data.get(PRESET) if draft is not None else None
    if draft is not None and draft.step == PresetStep.name:
        draft = None
    community = settings.settlement_of(ctx.message.platform, ctx.message.community)
    for code in (linked, kept, community.code if community else None):
        if isinstance(code, str) and settings.settlement(code) is not None:
            ctx.preset_settlement = code
            break
    if linked is not None and draft is None:
        bookmark = Draft(step=PresetStep.name, data={PRESET: linked})
        await ctx.tx.drafts.save(ctx.message.platform, ctx.message.user_id, bookmark, ctx.now)
    return draft


def _linked_settlement(ctx: Context) -> str | None:
    """The settlement code a deep link's payload names (`?start=sergino`), if it does."""
    payload = (ctx.message.start or "").strip().casefold()
    return payload if payload and ctx.settings.settlement(payload) is not None else None


async def withdrawal(ctx: Context) -> bool:
    """For a banned identity, whose messages are otherwise ignored: withdrawing consent
    (152-ФЗ) works for everyone. /forget or «Удалить мои данные» opens the confirmation, and
    the answer to it is handled; True if this message was one of those."""
    message = ctx.message
    draft = await ctx.tx.drafts.get(message.platform, message.user_id)
    if draft is not None and draft.step == ForgetStep.name:
        await handle_resident(ctx)
        return True
    text = "" if message.payload is not None else message.text
    asked = message.payload == keyboards.FORGET.payload or is_one_of(text, (texts.FORGET_ME,))
    if text.startswith("/") and split_command(text)[0] == "forget":
        asked = True
    if asked:
        await goto(ctx, Draft(step=ForgetStep.name), ForgetStep.name)
    return asked


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


def _disposable(draft: Draft) -> bool:
    """A draft that holds nothing the resident wrote: dropped once they are idle."""
    step = STEPS[draft.step]
    return not step.form and not step.keeps


def _free_text(ctx: Context, draft: Draft | None) -> bool:
    if draft is None or not STEPS[draft.step].form:
        return False
    return not STEPS[draft.step].prompt(ctx, draft).keyboard.numbered


def _menu_button(ctx: Context, draft: Draft | None) -> Button | None:
    """A main-menu button this message presses, wherever it comes: the button's payload (an
    old keyboard, Telegram's menu), or its label typed. The step's own buttons come first
    (a typed number is the step's), and those of them that are the menu's count as such
    («Новое обращение» is «Подать обращение»)."""
    message = ctx.message
    if message.payload is not None:
        if message.payload not in MENU_PAYLOADS:
            return None
        return next(b for b in MENU_LABELS.buttons if b.payload == message.payload)
    if draft is not None:
        own = pressed_button(message, STEPS[draft.step].prompt(ctx, draft).keyboard)
        if own is not None:
            return own if own.payload in MENU_PAYLOADS else None
    return pressed_button(message, MENU_LABELS)


async def _typed_rating(ctx: Context, draft: Draft | None) -> bool:
    """«Вопрос решён» or «Вопрос не решён» typed (e.g. on Telegram, where the rating
    buttons are inline): rates the latest answer that is not rated yet, wherever it comes."""
    message = ctx.message
    if message.payload is not None or pressed_button(message, rating_keyboard(0)) is None:
        return False
    unrated = await ctx.tx.appeals.latest_unrated_answer(ctx.resident.id)
    if unrated is None:
        return False
    typed = pressed_button(message, rating_keyboard(unrated.number))
    assert typed is not None
    await rate(ctx, typed.payload)
    if draft is not None:
        ask(ctx, STEPS[draft.step], draft, again=True)
    return True


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
        ask(ctx, STEPS[draft.step], draft, again=True)
    elif name != "help":
        greet(ctx)


async def _menu_choice(ctx: Context, draft: Draft | None, payload: str) -> None:
    """A main-menu button, from the menu or in the middle of a dialogue (a form's «Подать
    обращение» is answered before: it offers to continue or start over)."""
    if payload == keyboards.NEW.payload:
        if draft is not None and STEPS[draft.step].keeps:
            # What the offer kept goes into the new appeal.
            draft.data = new_appeal_data(ctx, draft.data)
        else:
            draft = Draft(step="")
        await goto(ctx, draft, first_step(ctx))
    elif payload == keyboards.FORGET.payload:
        await goto(ctx, draft or Draft(step=""), ForgetStep.name)
    else:
        if payload == keyboards.MINE.payload:
            await show_my_appeals(ctx, draft)
        else:
            show_help(ctx)
        if draft is not None:
            ask(ctx, STEPS[draft.step], draft, again=True)


async def _idle_menu(ctx: Context) -> None:
    """A message outside any dialogue: a menu button's number, a stale button, a message
    to offer to add to an open appeal or to file, or else the greeting."""
    message = ctx.message
    pressed = pressed_button(message, keyboards.help_menu())
    if pressed is not None:
        await _menu_choice(ctx, None, pressed.payload)
        return
    if message.payload is not None or button_label(message.text) is not None:
        greet(ctx, texts.HINT_STALE_BUTTON)  # a button of a dialogue that is over
        return
    if len(message.text) > ctx.settings.limits.max_description:
        limit = ctx.settings.limits.max_description
        greet(ctx, texts.DESCRIPTION_TOO_LONG.format(length=len(message.text), max=limit))
        return
    offer = await make_offer(ctx)
    if offer is None:
        greet(ctx)
        return
    hint = None
    if offer.step == IntakeStep.name:
        s = ctx.settings
        hint = texts.INTAKE_GREETING.format(bot_name=s.bot_name, hours=s.answer_within_hours)
        preset = s.settlement(ctx.preset_settlement or "")
        if preset is not None:
            hint = texts.INTAKE_GREETING_SETTLEMENT.format(
                bot_name=s.bot_name, settlement=preset.title, hours=s.answer_within_hours
            )
    await goto(ctx, offer, offer.step, hint)


async def _answer_step(ctx: Context, draft: Draft) -> None:
    message = ctx.message
    step = STEPS[draft.step]
    keyboard = step.prompt(ctx, draft).keyboard
    pressed = pressed_button(message, keyboard)
    if pressed is None and message.payload is not None:
        ask(ctx, step, draft, texts.HINT_STALE_BUTTON, again=True)
        return
    if pressed is not None and pressed.payload == keyboards.CANCEL.payload:  # its number typed
        await _cancel(ctx, draft)
        return
    if pressed is not None and pressed.payload == keyboards.BACK.payload:
        previous = step.previous(ctx, draft)
        await goto(ctx, draft, previous or step.name)
        return
    if pressed is None and message.unsupported:
        ask(ctx, step, draft, texts.HINT_UNSUPPORTED, again=True)
        return
    label = button_label(message.text) if pressed is None and not keyboard.numbered else None
    if label is not None:  # «Пропустить» where there is none is not a description
        ask(ctx, step, draft, texts.HINT_NOT_HERE.format(label=label), again=True)
        return
    transition = await step.handle(ctx, draft, pressed)
    if isinstance(transition, Finish):
        await drop(ctx)
    elif isinstance(transition, Goto):
        await goto(ctx, draft, transition.step)
    else:
        await stay(ctx, draft, transition.hint)
