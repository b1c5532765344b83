"""VK's wire format, both ways, with no network: an update (message_new, message_event, and
the comments under posts: wall_reply_new, wall_reply_edit, wall_reply_delete) into the
normalized incoming message, and a keyboard into VK keyboard JSON within VK's limits.
Facts are from the shared API notes, messenger-apis.md §1 (API 5.199), and for the wall from
the official schema, github.com/VKCOM/vk-api-schema (callback/objects.json: wall_reply_new
and wall_reply_edit carry a wall_wall_comment, wall_reply_delete a
callback_wall_comment_delete)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.pagination import KeyboardLimits
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

PLATFORM = "vk"
MAX_TEXT = 4096  # §1.6: `message` may be 9000 by the schema; vkbottle and practice use 4096
MAX_ATTACHMENTS = 10
MAX_PAYLOAD = 255  # §1.6: button payload, commonly stated limit
# §1.6 Keyboard: standard 5×10 and at most 40 buttons; inline 5×6 and at most 10.
# A label longer than 40 characters is cut by VK, so we shorten it ourselves.
STANDARD_LIMITS = KeyboardLimits(max_rows=10, max_per_row=5, max_buttons=40, max_label=40)
INLINE_LIMITS = KeyboardLimits(max_rows=6, max_per_row=5, max_buttons=10, max_label=40)
START_PAYLOAD = {"command": "start"}  # the «Начать» button VK shows to a new visitor
START_TEXT = "Начать"
GROUP_CHAT_PEER = 2_000_000_000  # §1.4: peer ids of group chats start here
# Comments under a community's posts (SPEC §14), and what each says happened.
WALL_EVENTS = {
    "wall_reply_new": COMMENT_NEW,
    "wall_reply_edit": COMMENT_EDIT,
    "wall_reply_delete": COMMENT_DELETE,
}
SUPPORTED_TYPES = frozenset({"message_new", "message_event", *WALL_EVENTS})
PROFILE_URL = "https://vk.com/id{user_id}"
COMMENT_URL = "https://vk.com/wall{owner_id}_{post_id}?reply={comment_id}"
# Attachment types that carry nothing the dialogue can read (sticker, voice, files…).
READABLE_ATTACHMENTS = frozenset({"photo", "link"})


class NotForUs(Exception):
    """An update the bot ignores on purpose (its own message, a group chat, …)."""


@dataclass(frozen=True)
class Parsed:
    """An update's fields before the sender's name is known."""

    incoming: Incoming
    user_id: int
    callback_event_id: str | None = None  # a message_event to acknowledge
    peer_id: int = 0


def payload_json(payload: str) -> str:
    """A dialogue payload as VK wants it on a button: a JSON string."""
    return json.dumps({"p": payload}, ensure_ascii=False, separators=(",", ":"))


def payload_from(raw: Any) -> tuple[str | None, str]:
    """(dialogue payload, text to use instead) from a button payload as VK delivers it: a
    JSON string in message_new, an object in message_event. Unknown shapes pass through as
    a string, which the dialogue answers as a stale button."""
    data = raw
    if isinstance(raw, str):
        try:
            data = json.loads(raw)
        except ValueError:
            return raw[:MAX_PAYLOAD], ""
    if data == START_PAYLOAD:
        return None, START_TEXT
    if isinstance(data, dict) and isinstance(data.get("p"), str):
        return data["p"], ""
    return json.dumps(data, ensure_ascii=False)[:MAX_PAYLOAD], ""


def _area(size: dict[str, Any]) -> float:
    try:
        area = float(size.get("width") or 0) * float(size.get("height") or 0)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return area if math.isfinite(area) else 0.0


def best_photo(photo: dict[str, Any]) -> Photo | None:
    sizes = [s for s in photo.get("sizes") or [] if isinstance(s, dict) and s.get("url")]
    if not sizes:
        return None
    largest = max(sizes, key=_area)
    ref = f"photo{photo['owner_id']}_{photo['id']}"
    if photo.get("access_key"):
        ref += f"_{photo['access_key']}"
    return Photo(platform=PLATFORM, ref=ref, url=str(largest["url"]))


def _location(geo: Any) -> Location | None:
    if not isinstance(geo, dict) or not isinstance(geo.get("coordinates"), dict):
        return None
    coordinates = geo["coordinates"]
    try:
        lat, lon = float(coordinates["latitude"]), float(coordinates["longitude"])
    except OverflowError:
        return None
    return Location(lat, lon) if math.isfinite(lat) and math.isfinite(lon) else None


def moment(timestamp: Any, scale: float = 1.0) -> datetime:
    """A platform's Unix time as an aware datetime; now, if it is missing or impossible
    (it only orders messages in the log: no reason to drop a message over it)."""
    try:
        return datetime.fromtimestamp(float(timestamp) / scale, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def parse_update(update: dict[str, Any]) -> Parsed:
    """Normalize one update. Raises NotForUs for updates to ignore, and KeyError,
    TypeError or ValueError for malformed ones (the caller logs and drops them)."""
    kind = update.get("type")
    if kind not in SUPPORTED_TYPES:
        raise NotForUs(f"update type {kind!r}")
    obj = update["object"]
    event_id = str(update["event_id"]) if update.get("event_id") else None
    if kind in WALL_EVENTS:
        return _wall_comment(WALL_EVENTS[kind], obj, event_id)
    if kind == "message_event":
        peer_id, user_id = int(obj["peer_id"]), int(obj["user_id"])
        if peer_id != user_id:
            raise NotForUs("callback in a group chat")
        payload, text = payload_from(obj.get("payload"))
        incoming = Incoming(
            platform=PLATFORM,
            chat_id=str(peer_id),
            user_id=str(user_id),
            received_at=datetime.now(UTC),
            text=text,
            payload=payload,
            event_id=event_id,
        )
        return Parsed(incoming, user_id, str(obj["event_id"]), peer_id)
    message = obj["message"]
    peer_id, from_id = int(message["peer_id"]), int(message["from_id"])
    if message.get("out") or from_id <= 0:
        raise NotForUs("the community's own message")
    if peer_id != from_id or peer_id >= GROUP_CHAT_PEER:
        raise NotForUs("a group chat")
    payload, text = (None, str(message.get("text") or ""))
    if message.get("payload"):
        payload, start_text = payload_from(message["payload"])
        text = start_text or (text if payload is None else "")
    attachments = [a for a in message.get("attachments") or [] if isinstance(a, dict)]
    photos = tuple(
        p for a in attachments if a.get("type") == "photo" for p in [best_photo(a["photo"])] if p
    )
    location = _location(message.get("geo"))
    unreadable = any(a.get("type") not in READABLE_ATTACHMENTS for a in attachments)
    reply = message.get("reply_message")
    incoming = Incoming(
        platform=PLATFORM,
        chat_id=str(peer_id),
        user_id=str(from_id),
        received_at=moment(message.get("date")),
        text=text,
        payload=payload,
        photos=photos,
        location=location,
        event_id=event_id or f"message:{message['id']}",
        reply_to=str(reply["id"]) if isinstance(reply, dict) and reply.get("id") else None,
        unsupported=unreadable and not (text or payload or photos or location),
    )
    return Parsed(incoming, from_id, peer_id=peer_id)


def comment_chat(owner_id: int, post_id: int) -> str:
    """The "chat" of a post's comments: where the answers under them go, in order."""
    return f"wall{owner_id}_{post_id}"


def _wall_comment(action: str, obj: dict[str, Any], event_id: str | None) -> Parsed:
    """A comment under a post. The community's own comments (from_id < 0: its posts'
    discussion, and the bot's own answers, which VK sends back as wall_reply_new) are not
    for us. A deletion names the comment, not its text; who deleted it does not matter (the
    item is found by the comment's id), even when it was the community itself."""
    owner_id, post_id, comment_id = int(obj["owner_id"]), int(obj["post_id"]), int(obj["id"])
    if action == COMMENT_DELETE:
        # The schema (callback_wall_comment_delete) says `user_id`; VK's documentation and
        # its callbacks say `deleter_id` (the author, a moderator or the community).
        author = int(obj.get("user_id") or obj.get("deleter_id") or owner_id)
        text = ""
        photos: tuple[Photo, ...] = ()
        date = None
    else:
        author = int(obj["from_id"])
        text = str(obj.get("text") or "")
        attachments = [a for a in obj.get("attachments") or [] if isinstance(a, dict)]
        photos = tuple(
            p
            for a in attachments
            if a.get("type") == "photo" and isinstance(a.get("photo"), dict)
            for p in [best_photo(a["photo"])]
            if p
        )
        date = obj.get("date")
    if author <= 0 and action != COMMENT_DELETE:
        raise NotForUs("the community's own comment")
    link = COMMENT_URL.format(owner_id=owner_id, post_id=post_id, comment_id=comment_id)
    thread = obj.get("parents_stack")
    if isinstance(thread, list) and thread and isinstance(thread[0], int):
        link += f"&thread={thread[0]}"
    comment = CommentEvent(
        action=action,
        owner_id=str(owner_id),
        post_id=str(post_id),
        comment_id=str(comment_id),
        link=link,
        author_link=PROFILE_URL.format(user_id=author),
    )
    incoming = Incoming(
        platform=PLATFORM,
        chat_id=comment_chat(owner_id, post_id),
        user_id=str(author),
        received_at=moment(date),
        text=text,
        photos=photos,
        event_id=event_id or f"wall:{action}:{owner_id}_{comment_id}:{obj.get('date')}",
        comment=comment,
    )
    return Parsed(incoming, author)


def keyboard_json(keyboard: Keyboard) -> str:
    """VK keyboard JSON: text buttons for reply options, callback buttons under the message
    for inline ones (their presses come back as message_event)."""
    action_type = "callback" if keyboard.inline else "text"
    buttons = [
        [
            {
                "action": {
                    "type": action_type,
                    "label": button.label,
                    "payload": payload_json(button.payload),
                },
                "color": "secondary" if button.payload.startswith("nav:") else "primary",
            }
            for button in row
        ]
        for row in keyboard.rows
    ]
    return json.dumps(
        {"one_time": False, "inline": keyboard.inline, "buttons": buttons},
        ensure_ascii=False,
        separators=(",", ":"),  # every byte is urlencoded in Python on each send
    )
