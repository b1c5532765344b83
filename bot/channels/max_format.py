"""MAX's wire format, both ways, with no network: an Update (message_created, message_callback,
bot_started, and comments under a channel's posts: comment_created, comment_edited,
comment_removed) into the normalized incoming message, and a keyboard into maxapi's
inline_keyboard attachment within MAX's limits.

Facts are from the official OpenAPI schema, schema.yaml 0.0.33 of max-messenger/api-schema
(cited as `schema: <path>`), and messenger-apis.md §4. Updates are read from their JSON as it
came (the inbox keeps it so), field by field, so that an attachment kind MAX adds later makes
the message "unsupported" instead of making the whole update unreadable.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from maxapi.types import (
    CallbackButton,
    RequestContactButton,
    RequestGeoLocationButton,
)
from maxapi.types.attachments.buttons import InlineButtonUnion
from maxapi.types.attachments.buttons.attachment_button import AttachmentButton
from maxapi.utils.inline_keyboard import InlineKeyboardBuilder
from maxapi.utils.vcf import parse_vcf_info

from bot.channels.vk_format import moment
from bot.pagination import KeyboardLimits
from handlers import texts
from handlers.messages import (
    COMMENT_DELETE,
    COMMENT_EDIT,
    COMMENT_NEW,
    CommentEvent,
    Incoming,
    Keyboard,
    Location,
    Photo,
)

PLATFORM = "max"
# schema: NewMessageBody.text maxLength 4000; maxapi refuses len(text) >= 4000 itself
# (methods/send_message.py), so a part is at most 3999 characters.
MAX_TEXT = 3999
MAX_BUTTON_TEXT = 128  # schema: Button.text maxLength
MAX_CALLBACK_PAYLOAD = 1024  # schema: CallbackButton.payload maxLength
# Not in schema.yaml 0.0.33; issue 17, SPEC §13, messenger-apis.md §4.3 (third-party docs).
LIMITS = KeyboardLimits(max_rows=30, max_per_row=7, max_buttons=210, max_label=MAX_BUTTON_TEXT)
# The same with room for the row of a request_geo_location / request_contact button.
LIMITS_WITH_REQUEST = KeyboardLimits(
    max_rows=LIMITS.max_rows - 1,
    max_per_row=LIMITS.max_per_row,
    max_buttons=LIMITS.max_buttons - 1,
    max_label=MAX_BUTTON_TEXT,
)
MESSAGE_CREATED = "message_created"
MESSAGE_CALLBACK = "message_callback"
BOT_STARTED = "bot_started"
# Comments under the posts of a channel the bot administers (schema: CommentCreatedUpdate,
# CommentEditedUpdate carry a `message`; CommentRemovedUpdate message_id, chat_id, user_id,
# post_id), SPEC §14.
COMMENT_CREATED = "comment_created"
COMMENT_EDITED = "comment_edited"
COMMENT_REMOVED = "comment_removed"
COMMENT_UPDATES = {
    COMMENT_CREATED: COMMENT_NEW,
    COMMENT_EDITED: COMMENT_EDIT,
    COMMENT_REMOVED: COMMENT_DELETE,
}
MESSAGE_UPDATE_TYPES = (MESSAGE_CREATED, MESSAGE_CALLBACK, BOT_STARTED)
UPDATE_TYPES = (*MESSAGE_UPDATE_TYPES, *COMMENT_UPDATES)
CHANNEL = "channel"
DIALOG = "dialog"  # schema: ChatType; a person's one-to-one chat with the bot
START_TEXT = "Начать"  # a bot_started shows the menu, as «Начать» does elsewhere
MAX_PAYLOAD_KEPT = 1024
# Attachments the dialogue cannot read (schema: Attachment.discriminator.mapping).
UNREADABLE = frozenset({"sticker", "audio", "video", "file", "share"})
# The bot's own keyboards come back on messages it sent; a person's message has none.
IGNORED = frozenset({"inline_keyboard"})


class NotForUs(Exception):
    """An update the bot ignores on purpose (a group chat, a bot, another update type)."""


@dataclass(frozen=True)
class Parsed:
    incoming: Incoming
    callback_id: str | None = None  # a button press to answer (POST /answers)
    start_payload: str | None = None  # the deep link of a bot_started (?start=…)


def _name(user: dict[str, Any]) -> str:
    parts = (user.get("first_name"), user.get("last_name"))
    return " ".join(str(part) for part in parts if isinstance(part, str) and part)


def _user_id(user: Any) -> int:
    if not isinstance(user, dict):
        raise TypeError("no user")
    user_id = user["user_id"]
    if not isinstance(user_id, int) or isinstance(user_id, bool) or user_id <= 0:
        raise ValueError("user_id is not a positive integer")
    return user_id


def event_id(update: dict[str, Any]) -> str | None:
    """The update's own id, the same when MAX sends it again: a message's `mid`; a press's
    callback id with its time (one keyboard's presses share a callback_id [schema:
    Callback.callback_id "current keyboard identifier"]); a start's user and time."""
    kind = update.get("update_type")
    if kind == MESSAGE_CREATED:
        mid = ((update.get("message") or {}).get("body") or {}).get("mid")
        return f"mid:{mid}" if isinstance(mid, str) and mid else None
    if kind == MESSAGE_CALLBACK:
        callback = update.get("callback") or {}
        callback_id = callback.get("callback_id")
        if not isinstance(callback_id, str) or not callback_id:
            return None
        return f"callback:{callback_id}:{callback.get('timestamp')}"
    if kind == BOT_STARTED:
        user = update.get("user") or {}
        return f"started:{user.get('user_id')}:{update.get('timestamp')}"
    if kind in (COMMENT_CREATED, COMMENT_EDITED):
        mid = ((update.get("message") or {}).get("body") or {}).get("mid")
        if not isinstance(mid, str) or not mid:
            return None
        return f"{kind}:{mid}" + (f":{update.get('timestamp')}" if kind == COMMENT_EDITED else "")
    if kind == COMMENT_REMOVED:
        mid = update.get("message_id")
        return f"{kind}:{mid}" if isinstance(mid, str) and mid else None
    return None


def sender(update: Any) -> Hashable:
    """Who sent an update (its lane in lanes.in_sender_order); None if it does not say."""
    if not isinstance(update, dict):
        return None
    kind = update.get("update_type")
    if kind == MESSAGE_CALLBACK:
        user = (update.get("callback") or {}).get("user")
    elif kind in (MESSAGE_CREATED, COMMENT_CREATED, COMMENT_EDITED):
        user = (update.get("message") or {}).get("sender")
    elif kind == COMMENT_REMOVED:
        found_id: Hashable = update.get("user_id")
        return found_id
    else:
        user = update.get("user")
    found: Hashable = user.get("user_id") if isinstance(user, dict) else None
    return found


def parse_update(update: dict[str, Any]) -> Parsed:
    """Normalize one update. Raises NotForUs for updates to ignore, and KeyError, TypeError
    or ValueError for malformed ones (the caller logs and drops them)."""
    kind = update.get("update_type")
    if kind == MESSAGE_CALLBACK:
        return _callback(update)
    if kind == MESSAGE_CREATED:
        return _message(update)
    if kind in COMMENT_UPDATES:
        return _comment(update, COMMENT_UPDATES[kind])
    if kind == BOT_STARTED:
        user = update["user"]
        user_id = _user_id(user)
        if user.get("is_bot"):
            raise NotForUs("a bot started the bot")
        payload = update.get("payload")
        incoming = Incoming(
            platform=PLATFORM,
            chat_id=str(user_id),
            user_id=str(user_id),
            received_at=moment(update.get("timestamp"), scale=1000),
            text=START_TEXT,
            display_name=_name(user),
            event_id=event_id(update),
        )
        start = payload[:MAX_PAYLOAD_KEPT] if isinstance(payload, str) and payload else None
        return Parsed(incoming, start_payload=start)
    raise NotForUs(f"update type {kind!r}")


def _callback(update: dict[str, Any]) -> Parsed:
    callback = update["callback"]
    user = callback["user"]
    user_id = _user_id(user)
    if user.get("is_bot"):
        raise NotForUs("a bot pressed a button")
    message = update.get("message")
    recipient = (message or {}).get("recipient") or {}
    if recipient.get("chat_type") not in (None, DIALOG):
        raise NotForUs("a button pressed in a group chat")
    callback_id = callback["callback_id"]
    if not isinstance(callback_id, str):
        raise TypeError("callback_id is not a string")
    payload = callback.get("payload")
    incoming = Incoming(
        platform=PLATFORM,
        chat_id=str(user_id),
        user_id=str(user_id),
        received_at=moment(callback.get("timestamp"), scale=1000),
        display_name=_name(user),
        payload=payload[:MAX_CALLBACK_PAYLOAD] if isinstance(payload, str) else "",
        event_id=event_id(update),
    )
    return Parsed(incoming, callback_id=callback_id)


def _person(message: dict[str, Any], what: str) -> tuple[int, dict[str, Any]]:
    """The sender of a message or comment, if a person wrote it: not the channel itself (no
    sender), not a bot."""
    user = message.get("sender")
    if not isinstance(user, dict):
        raise NotForUs(f"{what} without a sender (the channel itself)")
    if user.get("is_bot"):
        raise NotForUs(f"{what} from a bot")
    return _user_id(user), user


def _message(update: dict[str, Any]) -> Parsed:
    message = update["message"]
    user_id, user = _person(message, "a message")
    if (message.get("recipient") or {}).get("chat_type") != DIALOG:
        raise NotForUs("not a dialog with a person")
    body = message.get("body") or {}
    text = str(body.get("text") or "")
    photos: list[Photo] = []
    location = None
    phone = None
    unreadable = False
    for attachment in body.get("attachments") or []:
        if not isinstance(attachment, dict):
            unreadable = True
            continue
        kind = attachment.get("type")
        payload = attachment.get("payload")
        if kind == "image" and isinstance(payload, dict) and isinstance(payload.get("url"), str):
            token = payload.get("token")
            ref = token if isinstance(token, str) and token else str(payload["url"])
            photos.append(Photo(platform=PLATFORM, ref=ref, url=str(payload["url"])))
        elif kind == "location":
            location = _location(attachment)
        elif kind == "contact" and isinstance(payload, dict):
            vcf = payload.get("vcf_info")
            phone = parse_vcf_info(vcf).phone if isinstance(vcf, str) else None
        elif kind not in IGNORED:
            unreadable = True  # a sticker, a voice note, a file, a kind MAX adds later
    link = message.get("link")
    reply_to = None
    if isinstance(link, dict) and link.get("type") == "reply":
        # A mid is unique across MAX: the sent-message table tells whether it was ours.
        mid = (link.get("message") or {}).get("mid")
        reply_to = mid if isinstance(mid, str) and mid else None
    incoming = Incoming(
        platform=PLATFORM,
        chat_id=str(user_id),
        user_id=str(user_id),
        received_at=moment(message.get("timestamp"), scale=1000),
        text=text,
        display_name=_name(user),
        photos=tuple(photos),
        location=location,
        phone=phone,
        event_id=event_id(update),
        reply_to=reply_to,
        unsupported=unreadable and not (text or photos or location or phone),
    )
    return Parsed(incoming)


def post_chat(post_id: str) -> str:
    """The "chat" of a post's comments: where the answers under them go, in order."""
    return f"post:{post_id}"


def _comment(update: dict[str, Any], action: str) -> Parsed:
    """A comment under a channel's post. Comments posted on behalf of the channel and by
    bots (the bot's own answers among them) are not for us. The schema gives a comment no
    public address: its place is the channel and the post."""
    if action == COMMENT_DELETE:
        mid, post_id = update["message_id"], update["post_id"]
        if not isinstance(mid, str) or not isinstance(post_id, str) or not mid or not post_id:
            raise TypeError("comment_removed without its ids")
        user_id = _user_id({"user_id": update.get("user_id")})
        owner, text, name, when = update.get("chat_id"), "", "", update.get("timestamp")
    else:
        message = update["message"]
        user_id, user = _person(message, "a comment")
        recipient = message.get("recipient") or {}
        post_id = recipient.get("post_id")
        body = message.get("body") or {}
        mid = body.get("mid")
        if not isinstance(mid, str) or not mid or not isinstance(post_id, str) or not post_id:
            raise TypeError("a comment without its ids")
        owner, text, name = recipient.get("chat_id"), str(body.get("text") or ""), _name(user)
        when = message.get("timestamp")
    comment = CommentEvent(
        action=action,
        owner_id=str(owner) if owner is not None else "",
        post_id=post_id,
        comment_id=mid,
        link="",
        author_link=None,
    )
    incoming = Incoming(
        platform=PLATFORM,
        chat_id=post_chat(post_id),
        user_id=str(user_id),
        received_at=moment(when, scale=1000),
        text=text,
        display_name=name,
        event_id=event_id(update),
        comment=comment,
    )
    return Parsed(incoming)


def _location(attachment: dict[str, Any]) -> Location | None:
    """schema: LocationAttachment (latitude, longitude beside `type`, no payload)."""
    try:
        lat, lon = float(attachment["latitude"]), float(attachment["longitude"])
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    return Location(lat, lon) if math.isfinite(lat) and math.isfinite(lon) else None


def inline_keyboard(keyboard: Keyboard) -> AttachmentButton:
    """An inline_keyboard of callback buttons (MAX has no reply keyboard: the main menu is
    one too), with a request_geo_location or request_contact button first where the
    question asks for a place or a phone."""
    builder = InlineKeyboardBuilder()  # type: ignore[no-untyped-call]
    request: InlineButtonUnion | None = None
    if keyboard.asks == "location":
        request = RequestGeoLocationButton(text=texts.SHARE_LOCATION)
    elif keyboard.asks == "contact":
        request = RequestContactButton(text=texts.SHARE_CONTACT)
    if request is not None:
        builder.row(request)
    for row in keyboard.rows:
        builder.row(*(CallbackButton(text=b.label, payload=_payload(b.payload)) for b in row))
    return builder.as_markup()


def _payload(payload: str) -> str:
    if len(payload) > MAX_CALLBACK_PAYLOAD:
        raise ValueError(f"button payload over {MAX_CALLBACK_PAYLOAD} characters: {payload[:20]}…")
    return payload
