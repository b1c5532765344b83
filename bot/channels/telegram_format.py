"""Telegram's wire format, both ways: an aiogram Update into the normalized incoming message,
and a keyboard into reply markup (messenger-apis.md §3)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import UTC, datetime

from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    Update,
)

from bot.pagination import KeyboardLimits
from handlers.messages import Incoming, Keyboard, Location, Photo

PLATFORM = "tg"
MAX_TEXT = 4096  # UTF-16 code units (§3.5)
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64  # bytes (§3.5)
MAX_START_PAYLOAD = 64  # a deep link's start parameter: up to 64 characters
ALLOWED_UPDATES = ["message", "callback_query"]
# Telegram allows large inline keyboards (about 100 buttons, 8 per row); long lists are laid
# out within these conservative bounds so that they stay readable on a phone.
INLINE_LIMITS = KeyboardLimits(max_rows=14, max_per_row=3, max_buttons=42, max_label=64)


class NotForUs(Exception):
    """An update the bot ignores on purpose (a group chat, a bot, another update type)."""


@dataclass(frozen=True)
class Parsed:
    incoming: Incoming
    callback_id: str | None = None  # a callback query to answer (stops the spinner)


def _name(first: str | None, last: str | None) -> str:
    return " ".join(part for part in (first, last) if part)


def parse_update(update: Update, bot_id: int) -> Parsed:
    """Normalize one update; raises NotForUs for updates to ignore."""
    event_id = f"update:{update.update_id}"
    query = update.callback_query
    if query is not None:
        chat = query.message.chat if query.message is not None else None
        if chat is None or chat.type != "private" or query.from_user.is_bot:
            raise NotForUs("a callback outside a private chat")
        incoming = Incoming(
            platform=PLATFORM,
            chat_id=str(chat.id),
            user_id=str(query.from_user.id),
            received_at=datetime.now(UTC),
            display_name=_name(query.from_user.first_name, query.from_user.last_name),
            payload=query.data or "",
            event_id=event_id,
        )
        return Parsed(incoming, callback_id=query.id)
    message = update.message
    if message is None:
        raise NotForUs("not a message nor a button press")
    sender = message.from_user
    if message.chat.type != "private" or sender is None or sender.is_bot:
        raise NotForUs("not a private chat with a person")
    photos: tuple[Photo, ...] = ()
    if message.photo:
        largest = message.photo[-1]  # Telegram lists sizes smallest first
        photos = (Photo(platform=PLATFORM, ref=largest.file_id, url=None),)
    location = None
    if message.location is not None:
        lat, lon = message.location.latitude, message.location.longitude
        if math.isfinite(lat) and math.isfinite(lon):
            location = Location(lat, lon)
    phone = message.contact.phone_number if message.contact is not None else None
    text = message.text or message.caption or ""
    start = None
    command, _, argument = text.partition(" ")
    if command == "/start" and argument.strip():
        # A deep link t.me/<bot>?start=<payload> arrives as "/start <payload>" [§3]: the
        # command is the greeting, the payload goes on beside it (a settlement's code).
        text, start = "/start", argument.strip()[:MAX_START_PAYLOAD]
    quoted = message.reply_to_message
    reply_to = None
    if quoted is not None and quoted.from_user is not None and quoted.from_user.id == bot_id:
        reply_to = str(quoted.message_id)
    incoming = Incoming(
        platform=PLATFORM,
        chat_id=str(message.chat.id),
        user_id=str(sender.id),
        received_at=message.date,
        text=text,
        display_name=_name(sender.first_name, sender.last_name),
        photos=photos,
        location=location,
        phone=phone,
        event_id=event_id,
        reply_to=reply_to,
        start=start,
        # Anything else a person can send (a sticker, a voice note, a checklist, paid media,
        # kinds Telegram adds later) is content the dialogue cannot read: said so, not
        # taken for an empty text.
        unsupported=not (text or photos or location or phone),
    )
    return Parsed(incoming)


@functools.lru_cache(maxsize=256)  # the same few keyboards, built for every send otherwise
def reply_markup(keyboard: Keyboard) -> InlineKeyboardMarkup | ReplyKeyboardMarkup:
    """The main menu stays under the input box as a reply keyboard (a press sends its label,
    which the dialogue reads as the button); every other keyboard is inline, under its
    message, with the payload as callback data. Built once per distinct keyboard and
    shared: aiogram only reads it."""
    if keyboard.menu:
        return ReplyKeyboardMarkup(
            keyboard=[[KeyboardButton(text=b.label) for b in row] for row in keyboard.rows],
            resize_keyboard=True,
            is_persistent=True,
        )
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=b.label, callback_data=_data(b.payload)) for b in row]
            for row in keyboard.rows
        ]
    )


def _data(payload: str) -> str:
    if len(payload.encode()) > MAX_CALLBACK_DATA:
        raise ValueError(f"button payload over {MAX_CALLBACK_DATA} bytes: {payload[:20]}…")
    return payload
