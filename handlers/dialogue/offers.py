"""What a resident writes outside a dialogue is kept until they say where it goes (SPEC §4).

* A resident with an open appeal is offered «Дополнить №N» · «Новое обращение»
  (`AdditionStep`).
* A resident without one whose message already describes a problem (`describes_problem`)
  is offered to file it as an appeal (`IntakeStep`).

While the offer is on screen, what else they send (another text, a photo) is kept with the
first message and goes wherever they choose: into the appeal's thread, or into the new
appeal's form (the text as its description, the photos as its photos). Such an offer is
not dropped when the resident goes quiet; only «Отмена» (or `limits.draft_ttl_days`)
discards it.

Consent still comes first: choosing to file takes the resident to the consent step (if it
is missing), then category and settlement, and the description step shows the text,
with «Оставить как есть». A refused consent drops the draft, and the text with it.
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from handlers import keyboards, texts
from handlers.context import Context
from handlers.dialogue.form import PRESET, first_step
from handlers.dialogue.steps import Finish, Goto, Prompt, Stay, Step, Transition
from handlers.keyboards import CANCEL
from handlers.messages import Button, Keyboard
from handlers.notify import handlers_of, to_staff
from handlers.settings import Limits
from handlers.text_input import button_label, fold, is_one_of, neutralise_bidi, visible_length
from storage.models import OPEN_STATUSES, Draft, Photo

ADDITION_OFFERS = 3  # open appeals offered to add to, the newest first
MIN_WORDS = 3


def describes_problem(text: str, limits: Limits) -> bool:
    """Whether a message written outside any dialogue already describes a problem, so that
    the bot offers to file it instead of only greeting (SPEC §4 is silent; this is the rule).

    It does if it is free text — not a command, a menu word or a button's label — of at
    most `limits.max_description` characters which, after a greeting at its start
    (texts.GREETINGS: «Здравствуйте», «Добрый день»…), still has at least
    `limits.min_description` visible characters in at least three words. So «Здравствуйте!»
    or «Добрый день, подскажите» is a greeting, and «У нас третий день нет воды» a problem.
    """
    text = text.strip()
    if not text or text.startswith("/") or len(text) > limits.max_description:
        return False
    if is_one_of(text, texts.MENU_WORDS) or button_label(text) is not None:
        return False
    rest = fold(text)
    for greeting in sorted(texts.GREETINGS, key=len, reverse=True):
        if rest.startswith(greeting) and not rest[len(greeting) : len(greeting) + 1].isalpha():
            rest = rest[len(greeting) :]
            break
    rest = rest.lstrip(" .,!?:;-—…")
    words = [word for word in rest.split() if any(ch.isalnum() for ch in word)]
    return visible_length(rest) >= limits.min_description and len(words) >= MIN_WORDS


def new_appeal_data(ctx: Context, kept: dict[str, Any]) -> dict[str, Any]:
    """The data a new appeal's form starts with, from what an offer kept: the text as the
    description if it describes a problem (the description step shows it), the photos."""
    data: dict[str, Any] = {}
    if kept.get(PRESET):  # the settlement the conversation began with goes on with it
        data[PRESET] = kept[PRESET]
    text = str(kept.get("text") or "")
    if describes_problem(text, ctx.settings.limits):
        data["description"] = text
    photos = list(kept.get("photos", []))[: ctx.settings.limits.max_photos]
    if photos:
        data["photos"] = photos
    return data


def keep(ctx: Context, draft: Draft, kept_note: str) -> Transition:
    """Another message while an offer is on screen: added to what it keeps. A button's
    label typed (say «Дополнить №1» for an appeal not offered) is a choice that missed, and
    a message that would make the text too long is refused, not cut."""
    message = ctx.message
    limits = ctx.settings.limits
    text = message.text if visible_length(message.text) else ""
    if (text and button_label(text) is not None) or not (text or message.photos):
        return Stay(texts.HINT_CHOOSE)
    kept = str(draft.data.get("text") or "")
    combined = f"{kept}\n{text}" if kept and text else kept or text
    if len(combined) > limits.max_description:
        refused = texts.ADDITION_TOO_LONG.format(length=len(combined), max=limits.max_description)
        return Stay(f"{refused}\n{texts.HINT_CHOOSE}")
    draft.data["text"] = combined
    photos: list[dict[str, Any]] = draft.data.setdefault("photos", [])
    room = max(0, limits.max_photos - len(photos))
    photos.extend(p.to_dict() for p in message.photos[:room])
    notes = [kept_note]
    if len(message.photos) > room:
        notes.append(texts.PHOTOS_FULL.format(max=limits.max_photos))
    return Stay(" ".join(notes))


def _content(ctx: Context) -> dict[str, Any]:
    """The message as what an offer keeps (photos up to `limits.max_photos`)."""
    message = ctx.message
    text = message.text if visible_length(message.text) else ""
    photos = message.photos[: ctx.settings.limits.max_photos]
    return {"text": text, "photos": [p.to_dict() for p in photos]}


async def make_offer(ctx: Context) -> Draft | None:
    """The offer a message written outside any dialogue deserves, if any: to add it to an
    open appeal, or to file it as a new one."""
    message = ctx.message
    if not (visible_length(message.text) or message.photos):
        return None
    open_appeals = await ctx.tx.appeals.of_resident(
        ctx.resident.id, limit=ADDITION_OFFERS, open_only=True
    )
    if open_appeals:
        data = {"offers": [a.number for a in open_appeals], **_content(ctx)}
        return Draft(step=AdditionStep.name, data=data)
    if message.photos or describes_problem(message.text, ctx.settings.limits):
        return Draft(step=IntakeStep.name, data=_content(ctx))
    return None


class AdditionStep(Step):
    """A resident with an open appeal wrote outside a dialogue: add it to №N, or start anew."""

    name = "addition"
    form = False
    keeps = True

    def prompt(self, ctx: Context, draft: Draft) -> Prompt:
        rows = tuple(
            (Button(texts.ADD_TO.format(number=n), f"add:{n}"),) for n in draft.data["offers"]
        )
        rows += ((Button(texts.NEW_INSTEAD, keyboards.NEW.payload),), (CANCEL,))
        return Prompt(texts.ADDITION_OFFER, Keyboard(rows=rows, numbered=True))

    async def handle(self, ctx: Context, draft: Draft, pressed: Button | None) -> Transition:
        if pressed is None:
            return keep(ctx, draft, texts.ADDITION_KEPT)
        if pressed.payload == keyboards.NEW.payload:
            draft.data = new_appeal_data(ctx, draft.data)
            return Goto(first_step(ctx))
        number = int(pressed.payload.removeprefix("add:"))
        appeal = await ctx.tx.appeals.get(number)
        if (
            appeal is None
            or appeal.is_comment
            or appeal.resident_id != ctx.resident.id
            or appeal.status not in OPEN_STATUSES
        ):
            ctx.reply(texts.ADDITION_CLOSED.format(number=number), keyboards.main_menu())
            return Finish()
        photos = tuple(Photo.from_dict(p) for p in draft.data.get("photos", []))
        text = str(draft.data.get("text") or "")
        await ctx.tx.thread.add(
            number,
            kind="addition",
            author="resident",
            now=ctx.now,
            text=text or None,
            photos=photos,
        )
        ctx.outgoing += await to_staff(
            ctx.tx,
            await handlers_of(ctx.tx, appeal),
            texts.ADDITION_TO_STAFF.format(
                number=number, text=neutralise_bidi(text) or texts.PHOTOS_ONLY
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


class IntakeStep(Step):
    """A first message that already describes a problem (or brings photos): file it?"""

    name = "intake"
    form = False
    keeps = True

    def prompt(self, ctx: Context, draft: Draft) -> Prompt:
        text = str(draft.data.get("text") or "")
        about_text = describes_problem(text, ctx.settings.limits)
        offer = texts.INTAKE_OFFER if about_text else texts.INTAKE_OFFER_PHOTOS
        if about_text and ctx.preset_settlement is not None:
            offer = texts.INTAKE_OFFER_SETTLEMENT  # only the topic is left to choose
        rows = (*keyboards.main_menu().rows, (CANCEL,))
        return Prompt(offer, Keyboard(rows=rows, numbered=True))

    async def handle(self, ctx: Context, draft: Draft, pressed: Button | None) -> Transition:
        # The menu's buttons are answered before a step is (handlers/dialogue/resident.py).
        return keep(ctx, draft, texts.INTAKE_KEPT)
