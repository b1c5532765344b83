"""The appeal form (SPEC §4, steps 1–8): consent, category, settlement, description, place,
photos, contact, confirmation. Each step asks one question and reads one answer."""

from __future__ import annotations

import hashlib
import math
from typing import Any

from handlers import keyboards, texts
from handlers.context import Context
from handlers.dialogue.registration import register_appeal
from handlers.dialogue.steps import Finish, Goto, Prompt, Stay, Step, Transition
from handlers.formatting import shorten
from handlers.keyboards import SKIP, nav_row, one_per_row
from handlers.messages import Button, Keyboard, Location
from handlers.text_input import clean_text, normalize_phone, visible_length
from storage.models import Draft

MAX_PLACE = 500
MAX_NAME = 100
KEPT_PREVIEW = 500  # characters of a kept description quoted back in the question
KEEP_DESCRIPTION = Button(texts.KEEP_NAME, "desc:keep")
CHANGE_SETTLEMENT = Button(texts.CHANGE_SETTLEMENT, "confirm:settlement")
# A draft's settlement chosen before the form began (SPEC §14): the community's settlement,
# or a deep link's. The settlement step is skipped; the confirmation can still change it.
PRESET = "preset_settlement"
FROM_CONFIRM = "settlement_from_confirm"  # the settlement step was opened from the summary


def preset_of(ctx: Context, draft: Draft) -> str | None:
    """The draft's preset settlement, if it is one the configuration still has."""
    code = draft.data.get(PRESET)
    if isinstance(code, str) and ctx.settings.settlement(code) is not None:
        return code
    return None


def consent_text(ctx: Context) -> str:
    s = ctx.settings
    return texts.CONSENT.format(
        bot_name=s.bot_name, version=s.privacy_policy_version, url=s.privacy_policy_url
    )


def needs_consent(ctx: Context) -> bool:
    resident = ctx.resident
    return (
        resident.consent_at is None
        or resident.consent_version != ctx.settings.privacy_policy_version
    )


def first_step(ctx: Context) -> str:
    """Where a new appeal starts: consent first if it is missing or for an older policy."""
    return ConsentStep.name if needs_consent(ctx) else CategoryStep.name


def draft_photos(draft: Draft) -> list[dict[str, Any]]:
    photos: list[dict[str, Any]] = draft.data.setdefault("photos", [])
    return photos


def take_photos(ctx: Context, draft: Draft) -> str | None:
    """Attach the message's photos to the draft (up to the limit); a note to say, if any."""
    if not ctx.message.photos:
        return None
    limit = ctx.settings.limits.max_photos
    photos = draft_photos(draft)
    room = max(0, limit - len(photos))
    photos.extend(p.to_dict() for p in ctx.message.photos[:room])
    if len(ctx.message.photos) > room:
        return texts.PHOTOS_FULL.format(max=limit)
    return texts.PHOTO_ADDED.format(count=len(photos), max=limit)


class ConsentStep(Step):
    name = "consent"

    def prompt(self, ctx: Context, draft: Draft) -> Prompt:
        return Prompt(consent_text(ctx), self._keyboard())

    def again(self, ctx: Context, draft: Draft) -> Prompt:
        """Only the question: the document was shown as a message of its own."""
        return Prompt(texts.CONSENT_AGAIN, self._keyboard())

    @staticmethod
    def _keyboard() -> Keyboard:
        agree = Button(texts.AGREE, "consent:yes")
        disagree = Button(texts.DISAGREE, "consent:no")
        return Keyboard(rows=((agree, disagree),), numbered=True)

    async def handle(self, ctx: Context, draft: Draft, pressed: Button | None) -> Transition:
        if pressed is None:
            return Stay(texts.HINT_CHOOSE)
        if pressed.payload == "consent:no":
            ctx.reply(texts.CONSENT_REFUSED, keyboards.main_menu())
            return Finish()
        digest = hashlib.sha256(consent_text(ctx).encode()).hexdigest()
        name = clean_text(ctx.message.display_name)[:MAX_NAME] or None
        await ctx.tx.residents.give_consent(
            ctx.resident.id,
            version=ctx.settings.privacy_policy_version,
            text_hash=digest,
            display_name=name,
            now=ctx.now,
        )
        await ctx.tx.audit.add(ctx.message.identity, "consent_given", ctx.now, details=digest)
        return Goto(CategoryStep.name)


class CategoryStep(Step):
    name = "category"

    def prompt(self, ctx: Context, draft: Draft) -> Prompt:
        buttons = (Button(c.title, f"cat:{c.code}") for c in ctx.settings.categories)
        return Prompt(texts.ASK_CATEGORY, one_per_row(buttons, nav_row(back=False), numbered=True))

    async def handle(self, ctx: Context, draft: Draft, pressed: Button | None) -> Transition:
        if pressed is None:
            return Stay(texts.HINT_CHOOSE)
        draft.data["category"] = pressed.payload.removeprefix("cat:")
        preset = preset_of(ctx, draft)
        if preset is not None:  # the community's (or the link's) settlement: no question
            draft.data.setdefault("settlement", preset)
            return Goto(DescriptionStep.name)
        return Goto(SettlementStep.name)


class SettlementStep(Step):
    """The settlement, chosen from the list. Skipped where the form began with one (a
    settlement's community, a deep link): then reached only from the confirmation, and back
    to it."""

    name = "settlement"

    def prompt(self, ctx: Context, draft: Draft) -> Prompt:
        buttons = (Button(s.title, f"st:{s.code}") for s in ctx.settings.settlements)
        return Prompt(texts.ASK_SETTLEMENT, one_per_row(buttons, nav_row(), numbered=True))

    async def handle(self, ctx: Context, draft: Draft, pressed: Button | None) -> Transition:
        if pressed is None:
            return Stay(texts.HINT_CHOOSE)
        draft.data["settlement"] = pressed.payload.removeprefix("st:")
        if draft.data.pop(FROM_CONFIRM, False):
            return Goto(ConfirmStep.name)
        return Goto(DescriptionStep.name)

    def previous(self, ctx: Context, draft: Draft) -> str | None:
        return ConfirmStep.name if draft.data.get(FROM_CONFIRM) else CategoryStep.name


class DescriptionStep(Step):
    """Free text within the configured length. Too short: what was typed is kept and the next
    message is added to it. Too long: the resident is asked to shorten it.

    Whatever is kept is said in the question whenever the step is reached again: the start
    of a description that was too short («Уже написано: …», the next message is added to
    it), or a whole description (come back with «Назад», or brought from the resident's
    first message) with «Оставить как есть» to go on with it. Text with nothing visible in
    it is never kept."""

    name = "description"

    def prompt(self, ctx: Context, draft: Draft) -> Prompt:
        limits = ctx.settings.limits
        text = self._question(ctx)
        partial = draft.data.get("description_partial")
        kept = draft.data.get("description")
        if partial:
            text += "\n\n" + texts.DESCRIPTION_PARTIAL.format(
                text=shorten(partial, KEPT_PREVIEW),
                length=visible_length(partial),
                min=limits.min_description,
            )
        elif kept:
            text += "\n\n" + texts.DESCRIPTION_KEPT.format(text=shorten(kept, KEPT_PREVIEW))
        return Prompt(text, self._keyboard(draft))

    def again(self, ctx: Context, draft: Draft) -> Prompt:
        return Prompt(self._question(ctx), self._keyboard(draft))

    @staticmethod
    def _question(ctx: Context) -> str:
        limits = ctx.settings.limits
        return texts.ASK_DESCRIPTION.format(min=limits.min_description, max=limits.max_description)

    @staticmethod
    def _keyboard(draft: Draft) -> Keyboard:
        if draft.data.get("description") and not draft.data.get("description_partial"):
            return Keyboard(rows=((KEEP_DESCRIPTION,), nav_row()))
        return Keyboard(rows=(nav_row(),))

    async def handle(self, ctx: Context, draft: Draft, pressed: Button | None) -> Transition:
        if pressed is not None:  # «Оставить как есть»
            return Goto(PlaceStep.name)
        photo_note = take_photos(ctx, draft)
        typed = ctx.message.text
        if not typed:
            return Stay(photo_note or texts.HINT_TEXT_EXPECTED)
        partial = draft.data.get("description_partial")
        text = f"{partial}\n{typed}" if partial else typed
        limits = ctx.settings.limits
        if len(text) > limits.max_description:  # what was kept before stays kept
            return Stay(
                texts.DESCRIPTION_TOO_LONG.format(length=len(text), max=limits.max_description)
            )
        length = visible_length(text)
        if length < limits.min_description:
            if visible_length(typed):  # a new description begun: the old one gives way
                draft.data["description_partial"] = text
                draft.data.pop("description", None)
            return Stay(
                texts.DESCRIPTION_TOO_SHORT.format(length=length, min=limits.min_description)
            )
        draft.data.pop("description_partial", None)
        draft.data["description"] = text
        return Goto(PlaceStep.name)

    def previous(self, ctx: Context, draft: Draft) -> str | None:
        return CategoryStep.name if preset_of(ctx, draft) else SettlementStep.name


class PlaceStep(Step):
    name = "place"

    def prompt(self, ctx: Context, draft: Draft) -> Prompt:
        return Prompt(texts.ASK_PLACE, Keyboard(rows=((SKIP,), nav_row()), asks="location"))

    async def handle(self, ctx: Context, draft: Draft, pressed: Button | None) -> Transition:
        message = ctx.message
        if pressed is not None:  # «Пропустить»
            draft.data.update(place=None, latitude=None, longitude=None)
            return Goto(photos_or_contact(ctx))
        photo_note = take_photos(ctx, draft)
        typed = message.text if visible_length(message.text) else ""  # no invisible address
        if message.location is None and not typed:
            return Stay(photo_note or texts.HINT_TEXT_EXPECTED)
        if len(typed) > MAX_PLACE:
            return Stay(texts.PLACE_TOO_LONG.format(max=MAX_PLACE))
        draft.data["place"] = typed or None
        if message.location is not None and not valid_location(message.location):
            return Stay(texts.LOCATION_INVALID)
        if message.location is not None:
            draft.data["latitude"] = message.location.latitude
            draft.data["longitude"] = message.location.longitude
        return Goto(photos_or_contact(ctx))

    def previous(self, ctx: Context, draft: Draft) -> str | None:
        return DescriptionStep.name


def valid_location(location: Location) -> bool:
    lat, lon = location.latitude, location.longitude
    return math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180


def photos_or_contact(ctx: Context) -> str:
    return PhotosStep.name if ctx.settings.limits.max_photos > 0 else NameStep.name


class PhotosStep(Step):
    name = "photos"

    def prompt(self, ctx: Context, draft: Draft) -> Prompt:
        text = texts.ASK_PHOTOS.format(max=ctx.settings.limits.max_photos)
        return Prompt(text, Keyboard(rows=((keyboards.DONE, SKIP), nav_row())))

    async def handle(self, ctx: Context, draft: Draft, pressed: Button | None) -> Transition:
        if pressed is not None:  # «Готово» or «Пропустить»: photos already attached are kept
            return Goto(NameStep.name)
        note = take_photos(ctx, draft)
        if note is None:
            return Stay(texts.PHOTOS_EXPECTED)
        if len(draft_photos(draft)) >= ctx.settings.limits.max_photos:
            ctx.reply(note)
            return Goto(NameStep.name)
        return Stay(note)

    def previous(self, ctx: Context, draft: Draft) -> str | None:
        return PlaceStep.name


class NameStep(Step):
    """The name: offered from the messenger profile, or — come back with «Назад» — the one
    given before; «Оставить как есть» keeps what the question shows."""

    name = "contact_name"

    def prompt(self, ctx: Context, draft: Draft) -> Prompt:
        current = self._current(ctx, draft)
        rows: list[tuple[Button, ...]] = []
        if current:
            rows.append((Button(texts.KEEP_NAME, "name:keep"),))
            kept = "contact_name" in draft.data
            text = (texts.ASK_NAME_KEPT if kept else texts.ASK_NAME_WITH_PROFILE).format(
                name=current
            )
        else:
            text = texts.ASK_NAME
        rows += [(SKIP,), nav_row()]
        return Prompt(text, Keyboard(rows=tuple(rows)))

    @staticmethod
    def _current(ctx: Context, draft: Draft) -> str:
        """The name «Оставить как есть» keeps: the one entered, or else the profile's."""
        if "contact_name" in draft.data:
            return str(draft.data["contact_name"] or "")
        profile = clean_text(ctx.message.display_name)[:MAX_NAME]
        return profile if visible_length(profile) else ""

    async def handle(self, ctx: Context, draft: Draft, pressed: Button | None) -> Transition:
        if pressed is not None:
            keep = pressed.payload == "name:keep"
            draft.data["contact_name"] = (self._current(ctx, draft) or None) if keep else None
            return Goto(PhoneStep.name)
        if not visible_length(ctx.message.text):
            return Stay(texts.HINT_TEXT_EXPECTED)
        if len(ctx.message.text) > MAX_NAME:
            return Stay(texts.NAME_TOO_LONG.format(max=MAX_NAME))
        draft.data["contact_name"] = ctx.message.text
        return Goto(PhoneStep.name)

    def previous(self, ctx: Context, draft: Draft) -> str | None:
        return PhotosStep.name if ctx.settings.limits.max_photos > 0 else PlaceStep.name


class PhoneStep(Step):
    name = "contact_phone"

    def prompt(self, ctx: Context, draft: Draft) -> Prompt:
        return Prompt(texts.ASK_PHONE, Keyboard(rows=((SKIP,), nav_row()), asks="contact"))

    async def handle(self, ctx: Context, draft: Draft, pressed: Button | None) -> Transition:
        if pressed is not None:
            draft.data["contact_phone"] = None
            return Goto(ConfirmStep.name)
        given = ctx.message.phone or ctx.message.text
        if not given:
            return Stay(texts.HINT_TEXT_EXPECTED)
        phone = normalize_phone(given)
        if phone is None:
            return Stay(texts.PHONE_INVALID)
        draft.data["contact_phone"] = phone
        return Goto(ConfirmStep.name)

    def previous(self, ctx: Context, draft: Draft) -> str | None:
        return NameStep.name


def summary(ctx: Context, draft: Draft) -> str:
    data = draft.data
    category = ctx.settings.category(data.get("category", ""))
    settlement = ctx.settings.settlement(data.get("settlement", ""))
    lines = [
        texts.SUMMARY_CATEGORY.format(value=category.title if category else texts.NOT_GIVEN),
        texts.SUMMARY_SETTLEMENT.format(value=settlement.title if settlement else texts.NOT_GIVEN),
        texts.SUMMARY_TEXT.format(value=data.get("description", "")),
        texts.SUMMARY_PLACE.format(value=data.get("place") or texts.NOT_GIVEN),
    ]
    if data.get("latitude") is not None:
        lines.append(texts.SUMMARY_LOCATION.format(lat=data["latitude"], lon=data["longitude"]))
    lines += [
        texts.SUMMARY_PHOTOS.format(value=len(data.get("photos", [])) or texts.NOT_GIVEN),
        texts.SUMMARY_NAME.format(value=data.get("contact_name") or texts.NOT_GIVEN),
        texts.SUMMARY_PHONE.format(value=data.get("contact_phone") or texts.NOT_GIVEN),
    ]
    return "\n".join(lines)


class ConfirmStep(Step):
    """The summary and «Отправить»; where the settlement step was skipped, a button to
    change the settlement all the same."""

    name = "confirm"

    def prompt(self, ctx: Context, draft: Draft) -> Prompt:
        send = Button(texts.SEND, "send")
        text = texts.CONFIRM.format(summary=summary(ctx, draft))
        rows: tuple[tuple[Button, ...], ...] = ((send,),)
        if preset_of(ctx, draft) is not None:
            rows += ((CHANGE_SETTLEMENT,),)
        return Prompt(text, Keyboard(rows=(*rows, nav_row()), numbered=True))

    async def handle(self, ctx: Context, draft: Draft, pressed: Button | None) -> Transition:
        if pressed is None:
            return Stay(texts.HINT_CHOOSE)
        if pressed.payload == CHANGE_SETTLEMENT.payload:
            draft.data[FROM_CONFIRM] = True
            return Goto(SettlementStep.name)
        await register_appeal(ctx, draft)
        return Finish()

    def previous(self, ctx: Context, draft: Draft) -> str | None:
        return PhoneStep.name


FORM_STEPS: tuple[Step, ...] = (
    ConsentStep(),
    CategoryStep(),
    SettlementStep(),
    DescriptionStep(),
    PlaceStep(),
    PhotosStep(),
    NameStep(),
    PhoneStep(),
    ConfirmStep(),
)
