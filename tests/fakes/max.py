"""A fake MAX Bot API on 127.0.0.1 that speaks the real wire format, so tests can run maxapi (or
our own client) with real HTTP against it: the bot's identity, long polling with `marker`,
webhook subscriptions and pushes, sending messages with inline keyboards, callback answers, the
two-step image upload (with "attachment not ready" refusals), image download and `GET /chats`.

Where the shapes and limits come from (nothing here is guessed without saying so):
- the official OpenAPI schema `schema.yaml` of github.com/max-messenger/api-schema, version
  0.0.33 (cited below as `schema: <path>`);
- captured payloads: the official Go client's fixtures (max-messenger/max-bot-api-client-go,
  `stabs/*.json`) and maxapi's docs/MAX_API_Real_Payloads_2026.md (cited as `go stabs` and
  `maxapi payloads`);
- what maxapi 1.2.3 (love-apples/maxapi) sends and expects (cited as `maxapi: <file>`).
Marks [??] say "not confirmed by the schema or a captured payload": the fake had to pick
something (mostly error `code` keys and texts).

Routes (operation ids from the schema, also the names for `calls_of`, `fail_method` and
`drop_connections`): getMyInfo `GET /me`, getUpdates `GET /updates`, subscribe / getSubscriptions
/ unsubscribe `POST|GET|DELETE /subscriptions`, sendMessage `POST /messages`, answerOnCallback
`POST /answers`, getUploadUrl `POST /uploads`, getChat `GET /chats/{chatId}`, sendComment
`POST /messages/{messageId}/comments` (SPEC §14); plus UPLOAD (the upload URL getUploadUrl
hands out, `POST /upload/{id}`) and DOWNLOAD (an image's `payload.url`, `GET /img/{photo_id}`),
which real MAX serves from other hosts without the bot token. Anything else answers 404 (405
for a known path with another HTTP method).

Authorization: exactly the bot token in the `Authorization` header, no "Bearer" (schema:
components/securitySchemes/access_token; maxapi: bot.py `self.headers = {"Authorization":
token}`). A token in an `access_token` query parameter is refused, as MAX no longer takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from tests.fakes.base import LoopbackFake
from tests.fakes.vk import TINY_JPEG

SCHEMA_VERSION = "0.0.33"
TOKEN = "fake_max_bot_token-0123456789abcdef"
BOT_ID = 700100200
PAYLOADS_DIR = Path(__file__).resolve().parent.parent / "payloads" / "max"

# Operation ids (schema: paths.<path>.<verb>.operationId) and two pseudo routes.
GET_ME = "getMyInfo"
GET_UPDATES = "getUpdates"
SUBSCRIBE = "subscribe"
GET_SUBSCRIPTIONS = "getSubscriptions"
UNSUBSCRIBE = "unsubscribe"
SEND_MESSAGE = "sendMessage"
ANSWER_CALLBACK = "answerOnCallback"
GET_UPLOAD_URL = "getUploadUrl"
GET_CHAT = "getChat"
SEND_COMMENT = "sendComment"
UPLOAD = "upload"
DOWNLOAD = "download"

# ---------------------------------------------------------------- limits, with their sources
TEXT_MAX_CHARS = 4000  # schema: components/schemas/NewMessageBody.properties.text.maxLength
BUTTON_TEXT_MIN_CHARS = 1  # schema: components/schemas/Button.properties.text.minLength
BUTTON_TEXT_MAX_CHARS = 128  # schema: components/schemas/Button.properties.text.maxLength
CALLBACK_PAYLOAD_MAX_CHARS = 1024  # schema: components/schemas/CallbackButton ... payload.maxLength
CLIPBOARD_PAYLOAD_MAX_CHARS = 1024  # schema: components/schemas/ClipboardButton payload.maxLength
LINK_URL_MAX_CHARS = 2048  # schema: components/schemas/LinkButton url.maxLength
OPEN_APP_PAYLOAD_MAX_CHARS = 512  # schema: components/schemas/OpenAppButton payload.maxLength
# Keyboard size: NOT in schema.yaml 0.0.33 (it only says buttons.minItems 1); issue 17, SPEC §13
# and messenger-apis.md §4.3 (third-party docs) give 30 rows, 7 a row, 210 in all. 30 x 7 = 210,
# so the total can only be hit together with one of the other two.
KEYBOARD_ROWS_MAX = 30
KEYBOARD_ROW_MAX = 7
KEYBOARD_BUTTONS_MAX = 210
BOT_STARTED_PAYLOAD_MAX_CHARS = 512  # schema: components/schemas/BotStartedUpdate payload.maxLength
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{5,256}")  # schema: SubscriptionRequestBody.secret
# (min, max, default) of schema: paths./updates.get.parameters limit and timeout
UPDATES_LIMIT_RANGE = (1, 1000, 100)
UPDATES_TIMEOUT_RANGE = (0, 90, 30)
# maxapi: methods/get_updates.py docstring ("API limits since 11.05.2026": batch <= 100) [??]
UPDATES_BATCH_MAX = 100

# schema: components/schemas/Button.discriminator.mapping
BUTTON_TYPES = frozenset(
    {
        "callback",
        "link",
        "request_geo_location",
        "request_contact",
        "message",
        "open_app",
        "clipboard",
    }
)
# schema: components/schemas/AttachmentRequest.discriminator.mapping
ATTACHMENT_REQUEST_TYPES = frozenset(
    {
        "image",
        "video",
        "audio",
        "file",
        "sticker",
        "contact",
        "inline_keyboard",
        "location",
        "share",
    }
)
UPLOAD_TYPES = frozenset({"image", "video", "audio", "file"})  # schema: UploadType.enum
TEXT_FORMATS = frozenset({"markdown", "html"})  # schema: components/schemas/TextFormat.enum
LINK_TYPES = frozenset({"forward", "reply"})  # schema: components/schemas/MessageLinkType.enum

# Error answers: schema components/schemas/Error {code, message} with the HTTP status.
CODE_BAD_REQUEST = "proto.payload"  # dev.max.ru POST /answers example ("callback_id: ...")
CODE_INVALID_TOKEN = "verify.token"  # go stabs error.invalid-token.json
CODE_NOT_READY = "attachment.not.ready"  # go stabs error.attachment.not.ready.json; maxapi retries
CODE_DENIED = "chat.denied"  # schema: paths./messages.post.responses.403.example
CODE_NOT_FOUND = "not.found"  # [??]
CODE_NOT_ALLOWED = "method.not.allowed"  # [??]
CODE_TOO_MANY = "too.many.requests"  # [??] the schema documents 429 but not its body
CODE_INTERNAL = "internal.error"  # [??]
DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: (CODE_BAD_REQUEST, "Invalid request"),
    401: (CODE_INVALID_TOKEN, "Invalid access_token"),
    403: (CODE_DENIED, "Bot has no access to this chat"),  # text [??]
    404: (CODE_NOT_FOUND, "Resource not found"),
    405: (CODE_NOT_ALLOWED, "Method is not allowed"),
    429: (CODE_TOO_MANY, "Too many requests"),
    500: (CODE_INTERNAL, "Internal Server Error"),
    502: ("bad.gateway", "Bad Gateway"),  # [??]
    503: ("service.unavailable", "Service unavailable"),  # [??]
    504: ("gateway.timeout", "Gateway Timeout"),  # [??]
}

FIRST_MARKER = 25_493_970  # markers are opaque int64 (schema: UpdateList.marker); go stabs
FIRST_SEQ = 116_327_994_376_978_687  # MessageBody.seq as large as go stabs show
FIRST_DIALOG = 182_182_000  # dialog chat ids: positive in go stabs (group chats are negative)
DEFAULT_LOCALE = "ru"


@dataclass
class SentMessage:
    """One message the bot sent through POST /messages."""

    user_id: int  # the dialog's other party
    chat_id: int  # the dialog's chat id
    mid: str
    text: str | None
    attachments: list[dict[str, Any]]  # as the bot sent them (AttachmentRequest)
    link: dict[str, Any] | None  # NewMessageLink as sent
    format: str | None
    notify: bool | None
    query: dict[str, str]
    message: dict[str, Any]  # the Message the fake answered (and keeps, e.g. for callbacks)

    @property
    def buttons(self) -> list[list[dict[str, Any]]] | None:
        """The inline keyboard's rows, if the message had one."""
        for attachment in self.attachments:
            if attachment.get("type") == "inline_keyboard":
                rows: list[list[dict[str, Any]]] = attachment["payload"]["buttons"]
                return rows
        return None

    @property
    def button_texts(self) -> list[str]:
        return [button["text"] for row in self.buttons or [] for button in row]


@dataclass
class Upload:
    """One getUploadUrl grant and what was uploaded to it."""

    upload_id: str
    type: str
    token: str | None = None  # video/audio: handed out with the URL (schema: UploadEndpoint)
    filename: str = ""
    content_type: str = ""
    data: bytes = b""
    done: bool = False


@dataclass(frozen=True)
class _Failure:
    kind: Literal["error", "raw", "drop", "drop_after"]
    status: int = 0
    code: str = ""
    message: str = ""
    retry_after: int | None = None
    body: str | None = None


class MaxAPIError(Exception):
    """Raised inside a route; becomes an Error answer {"code", "message"} with `status`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, code, message)
        self.status = status
        self.code = code
        self.message = message


def _bad(message: str) -> MaxAPIError:
    return MaxAPIError(400, CODE_BAD_REQUEST, message)


def load_payload(name: str) -> dict[str, Any]:
    """A schema-shaped Update from tests/payloads/max/ (`name` with or without `.json`)."""
    file_name = name if name.endswith(".json") else f"{name}.json"
    data: dict[str, Any] = json.loads((PAYLOADS_DIR / file_name).read_text("utf-8"))
    return data


def iter_payload_names() -> Iterator[str]:
    for path in sorted(PAYLOADS_DIR.glob("*.json")):
        yield path.stem


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _now_ms() -> int:
    """Times are milliseconds since the epoch (schema: info.description "Resources format")."""
    return int(time.time() * 1000)


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, text=_dumps(value), content_type="application/json", headers=headers
    )


def _int_param(query: Any, name: str, default: int | None = None) -> int | None:
    raw: str | None = query.get(name)
    if raw is None or raw in ("", "null"):
        return default
    try:
        return int(raw)
    except ValueError:
        raise _bad(f"{name}: must be an integer") from None


def _bool_param(query: Any, name: str) -> bool | None:
    raw: str | None = query.get(name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise _bad(f"{name}: must be true or false")
    return raw == "true"


def _check_text(value: Any, name: str, min_len: int, max_len: int) -> str:
    if not isinstance(value, str):
        raise _bad(f"{name}: must be a string")
    if not min_len <= len(value) <= max_len:
        raise _bad(f"{name}: length must be between {min_len} and {max_len}")  # wording [??]
    return value


class FakeMax(LoopbackFake):
    """A fake MAX Bot API; see the module docstring. Start it, point maxapi at it with
    `bot.set_api_url(fake.url)`, push updates (`message`, `callback`, `bot_started`, `push`) and
    inspect `sent`, `callback_answers`, `calls` afterwards.

    `hold_seconds`: None holds a long poll for the `timeout` asked for (30 s by default, as MAX
    does; maxapi's polling sends none); a number caps the hold, to keep tests quick.
    `not_ready_times`: every token uploaded from now on is refused as "attachment.not.ready"
    this many times when sent, so the client must retry (settable any time).
    `strict_webhook_urls`: refuse subscription URLs other than https on port 443, as MAX does;
    off by default so that tests can subscribe http://127.0.0.1:<port>."""

    def __init__(
        self,
        token: str = TOKEN,
        *,
        bot_id: int = BOT_ID,
        username: str = "appeals_test_bot",
        first_name: str = "Обращения граждан",
        hold_seconds: float | None = None,
        not_ready_times: int = 0,
        strict_webhook_urls: bool = False,
    ) -> None:
        self.token = token
        self.bot_id = bot_id
        self.username = username
        self.first_name = first_name
        self.hold_seconds = hold_seconds
        self.not_ready_times = not_ready_times
        self.strict_webhook_urls = strict_webhook_urls
        self.url = ""
        # The world as MAX sees it.
        self.users: dict[int, dict[str, Any]] = {}
        self.blocked: set[int] = set()  # users who stopped the bot (bot_stopped)
        self.images: dict[int, bytes] = {}  # photo_id -> what its URL serves
        self.subscriptions: list[dict[str, Any]] = []  # Subscription + its "secret"
        # What the bot did, in order.
        self.calls: list[dict[str, Any]] = []
        self.polls: list[dict[str, str]] = []  # the query of every GET /updates
        self.sent: list[SentMessage] = []
        self.callback_answers: list[dict[str, Any]] = []
        self.edits: list[dict[str, Any]] = []  # messages replaced through a callback answer
        # Comments under channel posts: mid -> CommentMessage (people's and the bot's), and
        # what the bot posted (sendComment), in order.
        self.comments: dict[str, dict[str, Any]] = {}
        self.sent_comments: list[dict[str, Any]] = []
        self.uploads: list[Upload] = []
        self.downloads: list[int] = []  # photo ids served
        self.not_ready_refusals = 0
        self.delivered_updates = 0  # by GET /updates or a 200 from a webhook
        # Limits enforced with 429 when set (0 = off): messages a second overall and into one
        # dialog ("no more than two messages a second into one dialog", dev.max.ru [??]).
        self.rate_limit = 0.0
        self.per_chat_limit = 0.0
        self.rate_errors = 0
        # Every error the fake answered: (operation, HTTP status, code).
        self.answered_errors: list[tuple[str, int, str]] = []
        # Bugs inside the fake itself (answered 500 instead of raising).
        self.errors: list[str] = []

        self._updates: list[tuple[int, dict[str, Any]]] = []  # (sequence number, Update)
        self._next_marker = FIRST_MARKER
        self._seq = FIRST_SEQ
        self._dialogs: dict[int, int] = {}  # user id -> dialog chat id
        self._dialog_users: dict[int, int] = {}  # dialog chat id -> user id
        self._messages: dict[str, dict[str, Any]] = {}  # mid -> Message (both directions)
        self._callbacks: dict[str, dict[str, Any]] = {}  # callback_id -> {user_id, mid}
        self._tokens: dict[str, dict[str, Any]] = {}  # attachment token -> its attachment
        self._not_ready: dict[str, int] = {}  # token -> refusals still due
        self._upload_grants: dict[str, Upload] = {}
        self._next_photo_id = 9_001
        self._failures: dict[str, deque[_Failure]] = {}
        self._send_times: deque[float] = deque()
        self._chat_send_times: dict[int, deque[float]] = {}
        self._changed = asyncio.Event()
        self._holding = 0
        self._closing = False

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        app = web.Application(middlewares=[self._guard], client_max_size=64 * 1024 * 1024)
        routes: list[tuple[str, str, str, Callable[..., Awaitable[Any]], bool]] = [
            ("GET", "/me", GET_ME, self._get_me, True),
            ("GET", "/updates", GET_UPDATES, self._get_updates, True),
            ("POST", "/subscriptions", SUBSCRIBE, self._subscribe, True),
            ("GET", "/subscriptions", GET_SUBSCRIPTIONS, self._get_subscriptions, True),
            ("DELETE", "/subscriptions", UNSUBSCRIBE, self._unsubscribe, True),
            ("POST", "/messages", SEND_MESSAGE, self._send_message, True),
            ("POST", "/answers", ANSWER_CALLBACK, self._answer_callback, True),
            ("POST", "/uploads", GET_UPLOAD_URL, self._get_upload_url, True),
            ("GET", "/chats/{chat_id}", GET_CHAT, self._get_chat, True),
            ("POST", "/messages/{mid}/comments", SEND_COMMENT, self._send_comment, True),
            ("POST", "/upload/{upload_id}", UPLOAD, self._upload, False),
            ("GET", "/img/{photo_id}", DOWNLOAD, self._download, False),
        ]
        for verb, path, operation, implementation, auth in routes:
            app.router.add_route(verb, path, self._route(operation, implementation, auth=auth))
        app.router.add_route("*", "/{tail:.*}", self._unknown_route)
        self._closing = False
        await self._serve(app)

    async def stop(self) -> None:
        self._closing = True
        self._wake()
        await self._close()

    # ----------------------------------------------------------------- what the bot did

    @property
    def bot_user(self) -> dict[str, Any]:
        """The bot as a User (schema: components/schemas/User; `name` is deprecated but real
        payloads still carry it: go stabs, maxapi payloads)."""
        return {
            "user_id": self.bot_id,
            "first_name": self.first_name,
            "username": self.username,
            "is_bot": True,
            "last_activity_time": _now_ms(),
            "name": self.first_name,
        }

    def messages_to(self, user_id: int) -> list[SentMessage]:
        return [m for m in self.sent if m.user_id == user_id]

    def calls_of(self, operation: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["operation"] == operation]

    @property
    def holding(self) -> int:
        """How many GET /updates are held right now (by clients still connected)."""
        return self._holding

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet committed by a `marker` (schema: paths./updates.get.description)."""
        return [update for _, update in self._updates]

    async def wait_polled(self, within: float = 5.0) -> None:
        """Until a GET /updates is being held (the bot listens; pushes reach it at once)."""
        await self.wait_for(lambda: self._holding > 0, within, "a held GET /updates")

    async def wait_sent(self, count: int, within: float = 5.0) -> list[SentMessage]:
        """Until at least `count` messages were sent in total; returns them all."""
        await self.wait_for(lambda: len(self.sent) >= count, within, f"{count} sent messages")
        return list(self.sent)

    async def wait_calls(
        self, operation: str, count: int = 1, within: float = 5.0
    ) -> list[dict[str, Any]]:
        await self.wait_for(
            lambda: len(self.calls_of(operation)) >= count, within, f"{count} {operation} calls"
        )
        return self.calls_of(operation)

    # ----------------------------------------------------------------- people and updates

    def add_user(
        self,
        user_id: int,
        first_name: str = "Иван",
        last_name: str | None = "Петров",
        username: str | None = None,
    ) -> dict[str, Any]:
        """Make a MAX user known (as if they had opened a dialog with the bot); returns the
        User object (schema: components/schemas/User, plus the deprecated `name`)."""
        user: dict[str, Any] = {
            "user_id": user_id,
            "first_name": first_name,
            "last_name": last_name or "",
            "is_bot": False,
            "last_activity_time": _now_ms(),
            "name": f"{first_name} {last_name}" if last_name else first_name,
        }
        if username:
            user["username"] = username
        self.users[user_id] = user
        self.dialog_id(user_id)
        return copy.deepcopy(user)

    def user(self, user_id: int) -> dict[str, Any]:
        if user_id not in self.users:
            return self.add_user(user_id)
        return copy.deepcopy(self.users[user_id])

    def dialog_id(self, user_id: int) -> int:
        """The chat id of the bot's dialog with `user_id` (stable for the fake's life)."""
        if user_id not in self._dialogs:
            chat_id = FIRST_DIALOG + len(self._dialogs)
            self._dialogs[user_id] = chat_id
            self._dialog_users[chat_id] = user_id
        return self._dialogs[user_id]

    def push(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an Update for GET /updates and learn from it what MAX would know (the user,
        the message and its mid, a callback id, a stop). Returns it."""
        if "update_type" not in update or "timestamp" not in update:
            raise ValueError("an Update needs update_type and timestamp (schema: Update)")
        self._absorb(update)
        self._updates.append((self._next_marker, update))
        self._next_marker += 1
        self._wake()
        return update

    def message(
        self,
        user_id: int,
        text: str = "",
        *,
        photos: Sequence[bytes] | int = (),
        location: tuple[float, float] | None = None,
        contact: str | None = None,
        reply_to: str | None = None,
        push: bool = True,
    ) -> dict[str, Any]:
        """A message_created from `user_id` in their dialog with the bot (schema:
        MessageCreatedUpdate): text, photos (image attachments whose URL this fake serves; an
        int gives that many tiny JPEGs), a shared location (LocationAttachment), a shared
        contact (ContactAttachment, as a request_contact button sends it: vcf_info [??]), and a
        reply (`link` {type: reply, message: the quoted MessageBody}) to the message `reply_to`.
        Pushed unless push=False (then only built, e.g. for a webhook)."""
        sender = self.user(user_id)
        now = _now_ms()
        attachments: list[dict[str, Any]] = []
        contents = [TINY_JPEG] * photos if isinstance(photos, int) else list(photos)
        for content in contents:
            attachments.append(self._new_image(content))
        if location is not None:
            latitude, longitude = location
            attachments.append({"type": "location", "latitude": latitude, "longitude": longitude})
        if contact is not None:
            attachments.append(self._contact(sender, contact))
        body: dict[str, Any] = {"mid": self._new_mid(), "seq": self._new_seq(), "text": text}
        if attachments:
            body["attachments"] = attachments
        message: dict[str, Any] = {
            "sender": sender,
            "recipient": {
                "chat_id": self.dialog_id(user_id),
                "chat_type": "dialog",
                "user_id": self.bot_id,  # the recipient of a user's message is the bot (go stabs)
            },
            "timestamp": now,
            "body": body,
        }
        if reply_to is not None:
            message["link"] = self._linked("reply", reply_to)
        update = {
            "update_type": "message_created",
            "timestamp": now,
            "message": message,
            "user_locale": DEFAULT_LOCALE,
        }
        return self.push(update) if push else update

    def callback(
        self, user_id: int, payload: str, *, mid: str | None = None, push: bool = True
    ) -> dict[str, Any]:
        """A message_callback: `user_id` pressed a callback button with `payload` (schema:
        MessageCallbackUpdate, Callback). `message` is the bot's message `mid`, by default the
        last one sent to the user with an inline keyboard (null if there is none, as the schema
        allows for a deleted message). Every press gets a new callback_id [??: the schema calls
        it "current keyboard identifier"; captured payloads do not show two presses]."""
        user = self.user(user_id)
        now = _now_ms()
        message: dict[str, Any] | None = None
        if mid is not None:
            if mid not in self._messages:
                raise ValueError(f"no message {mid} is known")
            message = self._messages[mid]
        else:
            with_keyboard = [m for m in self.messages_to(user_id) if m.buttons]
            if with_keyboard:
                message = self._messages.get(with_keyboard[-1].mid)
        update = {
            "update_type": "message_callback",
            "timestamp": now,
            "callback": {
                "timestamp": now,
                "callback_id": secrets.token_urlsafe(12),
                "payload": payload,
                "user": user,
            },
            "message": copy.deepcopy(message),
            "user_locale": DEFAULT_LOCALE,
        }
        return self.push(update) if push else update

    def bot_started(
        self, user_id: int, payload: str | None = None, *, push: bool = True
    ) -> dict[str, Any]:
        """A bot_started: the user pressed "Start", maybe through a deep link
        https://max.ru/<bot>?start=<payload> (schema: BotStartedUpdate; info.description "Deep
        linking"). Real payloads also carry `user_id` (go stabs update.bot_started.json)."""
        user = self.user(user_id)
        update: dict[str, Any] = {
            "update_type": "bot_started",
            "timestamp": _now_ms(),
            "chat_id": self.dialog_id(user_id),
            "user": user,
            "user_id": user_id,
            "user_locale": DEFAULT_LOCALE,
        }
        if payload is not None:
            update["payload"] = payload
        return self.push(update) if push else update

    # ----------------------------------------------------------------- channel comments

    def comment(
        self,
        user_id: int,
        text: str,
        *,
        channel_id: int = -70000000001,
        post_id: str = "mid.post-1",
        push: bool = True,
    ) -> dict[str, Any]:
        """A comment_created (schema: CommentCreatedUpdate, `message` a Message whose recipient
        is the channel with the post's id, `post_id`; a comment's body has no attachments,
        CommentMessageBody). The bot gets it as an administrator of the channel with
        read_all_messages."""
        now = _now_ms()
        message = {
            "sender": self.user(user_id),
            "recipient": {"chat_id": channel_id, "chat_type": "channel", "post_id": post_id},
            "timestamp": now,
            "body": {"mid": self._new_mid(), "seq": self._new_seq(), "text": text},
        }
        self.comments[message["body"]["mid"]] = message
        update = {"update_type": "comment_created", "timestamp": now, "message": message}
        return self.push(update) if push else update

    def comment_edited(self, mid: str, text: str, *, push: bool = True) -> dict[str, Any]:
        """A comment_edited (schema: CommentEditedUpdate): the comment `mid` says `text` now."""
        message = self.comments[mid]
        message["body"]["text"] = text
        update = {
            "update_type": "comment_edited",
            "timestamp": _now_ms(),
            "message": copy.deepcopy(message),
        }
        return self.push(update) if push else update

    def comment_removed(self, mid: str, *, push: bool = True) -> dict[str, Any]:
        """A comment_removed (schema: CommentRemovedUpdate: message_id, chat_id, user_id of
        who deleted it, post_id)."""
        message = self.comments.pop(mid)
        update = {
            "update_type": "comment_removed",
            "timestamp": _now_ms(),
            "message_id": mid,
            "chat_id": message["recipient"]["chat_id"],
            "user_id": message["sender"]["user_id"],
            "post_id": message["recipient"]["post_id"],
        }
        return self.push(update) if push else update

    def bot_stopped(self, user_id: int, *, push: bool = True) -> dict[str, Any]:
        """A bot_stopped (schema: BotStoppedUpdate): the user blocked the bot; sending to them
        is refused with 403 until they start it again."""
        update: dict[str, Any] = {
            "update_type": "bot_stopped",
            "timestamp": _now_ms(),
            "chat_id": self.dialog_id(user_id),
            "user": self.user(user_id),
            "user_id": user_id,
            "user_locale": DEFAULT_LOCALE,
        }
        if not push:
            return update
        return self.push(update)

    def push_payload(self, name: str, *, user_id: int | None = None) -> dict[str, Any]:
        """Push a payload from tests/payloads/max/ with fresh times, mid/seq and callback id
        (and, with `user_id`, as that user; the dialog chat id follows)."""
        update = load_payload(name)
        now = _now_ms()
        update["timestamp"] = now
        for holder in (update.get("message") or {}, update.get("callback") or {}):
            if "timestamp" in holder:
                holder["timestamp"] = now
        message = update.get("message")
        if update["update_type"] == "message_created" and message:
            message["body"]["mid"] = self._new_mid()
            message["body"]["seq"] = self._new_seq()
            if user_id is not None:
                message["sender"] = self.user(user_id)
                message["recipient"]["chat_id"] = self.dialog_id(user_id)
            # Images move to this fake (a tiny JPEG), so that their URL can be fetched.
            attachments = [
                self._new_image(TINY_JPEG) if a.get("type") == "image" else a
                for a in message["body"].get("attachments") or []
            ]
            if attachments:
                message["body"]["attachments"] = attachments
        if "callback" in update:
            update["callback"]["callback_id"] = secrets.token_urlsafe(12)
            if user_id is not None:
                update["callback"]["user"] = self.user(user_id)
        if "user" in update and user_id is not None:
            update["user"] = self.user(user_id)
            update["user_id"] = user_id
            update["chat_id"] = self.dialog_id(user_id)
        return self.push(update)

    async def post_webhook(
        self, url: str, update: dict[str, Any], secret: str | None
    ) -> tuple[int, str]:
        """POST `update` to a bot's webhook `url` as MAX does: the Update as a JSON body, the
        subscription secret in the X-Max-Bot-Api-Secret header (schema:
        SubscriptionRequestBody.secret). Only a 200 counts as delivered (schema: info
        "Webhook": any non-200 is a failed delivery, retried for up to 8 hours; call again to
        resend). Returns the HTTP status and body text."""
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Max-Bot-Api-Secret"] = secret
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=_dumps(update).encode(), headers=headers) as response,
        ):
            status = response.status
            text = await response.text()
        if status == 200:
            self.delivered_updates += 1
        return status, text

    async def deliver_webhook(self, update: dict[str, Any]) -> list[tuple[str, int, str]]:
        """POST `update` to every subscription that takes its type, with that subscription's
        secret; returns (url, status, body) for each."""
        results: list[tuple[str, int, str]] = []
        for subscription in list(self.subscriptions):
            types = subscription.get("update_types")
            if types and update.get("update_type") not in types:
                continue
            status, text = await self.post_webhook(
                subscription["url"], update, subscription.get("secret")
            )
            results.append((subscription["url"], status, text))
        return results

    # ----------------------------------------------------------------- failure injection

    def fail_method(
        self,
        operation: str,
        error_code: int,
        times: int = 1,
        *,
        code: str | None = None,
        message: str | None = None,
        retry_after: int | None = None,
        body: str | None = None,
    ) -> None:
        """The next `times` calls of `operation` answer HTTP `error_code` with an Error body
        {code, message} (defaults per status, see DEFAULT_ERRORS). A 429 carries a Retry-After
        header (1 s unless `retry_after`) [??: the schema documents 429 without saying what
        hint comes with it]. With `body`, that raw text instead (e.g. a proxy's HTML 502)."""
        default_code, default_message = DEFAULT_ERRORS.get(
            error_code, ("error", f"Error {error_code}")
        )
        if error_code == 429 and retry_after is None:
            retry_after = 1
        failure = _Failure(
            "raw" if body is not None else "error",
            error_code,
            code or default_code,
            message if message is not None else default_message,
            retry_after,
            body,
        )
        self._failures.setdefault(operation, deque()).extend([failure] * times)
        self._wake()

    def drop_connections(
        self, operation: str, times: int = 1, *, after_processing: bool = False
    ) -> None:
        """The next `times` requests of `operation` get their connection closed unanswered:
        before anything is done, or with `after_processing` once the call took effect (a
        message was sent, the client cannot know: MAX has no idempotency key, so a resend
        shows it twice)."""
        kind: Literal["drop", "drop_after"] = "drop_after" if after_processing else "drop"
        self._failures.setdefault(operation, deque()).extend([_Failure(kind)] * times)
        self._wake()

    def heal(self) -> None:
        """Forget every failure still queued."""
        self._failures.clear()

    # ----------------------------------------------------------------- HTTP plumbing

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """The fake never raises: a bug in it becomes a 500 and a line in `errors`."""
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception as exc:
            self.errors.append(f"{request.method} {request.path_qs}: {exc!r}")
            return self._error("?", 500, CODE_INTERNAL, "fake failed, see FakeMax.errors")

    def _route(
        self,
        operation: str,
        implementation: Callable[..., Awaitable[Any]],
        *,
        auth: bool,
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._handle(request, operation, implementation, auth=auth)

        return handler

    async def _handle(
        self,
        request: web.Request,
        operation: str,
        implementation: Callable[..., Awaitable[Any]],
        *,
        auth: bool,
    ) -> web.StreamResponse:
        call: dict[str, Any] = {
            "operation": operation,
            "http": f"{request.method} {request.path}",
            "query": dict(request.query),
            "authorization": request.headers.get("Authorization"),
            "json": None,
        }
        if request.content_type == "application/json" and request.can_read_body:
            raw = await request.read()
            try:
                call["json"] = json.loads(raw) if raw else None
            except ValueError:
                call["json_error"] = raw.decode("utf-8", "replace")
        self.calls.append(call)
        if auth and request.headers.get("Authorization") != self.token:
            return self._error(operation, 401, CODE_INVALID_TOKEN, "Invalid access_token")
        failure = self._take_failure(operation)
        if failure is not None and failure.kind != "drop_after":
            return self._failure_response(request, operation, failure)
        try:
            result = await implementation(request, call)
        except MaxAPIError as error:
            return self._error(operation, error.status, error.code, error.message)
        if failure is not None:  # drop_after: it took effect, the answer is lost
            return self._drop(request)
        if isinstance(result, web.StreamResponse):
            return result
        return _json(result)

    async def _unknown_route(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.calls.append(
            {
                "operation": "?",
                "http": f"{request.method} {path}",
                "query": dict(request.query),
                "authorization": request.headers.get("Authorization"),
                "json": None,
            }
        )
        known = ("/me", "/updates", "/subscriptions", "/messages", "/answers", "/uploads")
        if path in known or re.fullmatch(r"/chats/-?\d+", path):
            return self._error("?", 405, CODE_NOT_ALLOWED, "Method is not allowed")
        return self._error("?", 404, CODE_NOT_FOUND, f"Path {path} not found")

    def _take_failure(self, operation: str) -> _Failure | None:
        queue = self._failures.get(operation)
        return queue.popleft() if queue else None

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            transport.abort()
        return web.Response(status=200)

    def _failure_response(
        self, request: web.Request, operation: str, failure: _Failure
    ) -> web.StreamResponse:
        if failure.kind in ("drop", "drop_after"):
            return self._drop(request)
        headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else None
        if failure.kind == "raw":
            body = failure.body or ""
            self.answered_errors.append((operation, failure.status, "raw body"))
            html = body.lstrip().startswith("<")
            return web.Response(
                status=failure.status,
                text=body,
                content_type="text/html" if html else "application/json",
                headers=headers,
            )
        return self._error(operation, failure.status, failure.code, failure.message, headers)

    def _error(
        self,
        operation: str,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        self.answered_errors.append((operation, status, code))
        return _json({"code": code, "message": message}, status, headers)

    def _wake(self) -> None:
        """Wake every held GET /updates (a push, an injected failure or stop())."""
        self._changed.set()
        self._changed = asyncio.Event()

    @staticmethod
    def _json_body(call: dict[str, Any]) -> dict[str, Any]:
        if "json_error" in call:
            raise _bad("Invalid JSON in request body")  # wording [??]
        body = call.get("json")
        if not isinstance(body, dict):
            raise _bad("Request body must be a JSON object")  # wording [??]
        return body

    # ----------------------------------------------------------------- routes

    async def _get_me(self, request: web.Request, call: dict[str, Any]) -> dict[str, Any]:
        """schema: paths./me.get -> BotInfo (UserWithPhoto + commands)."""
        info = self.bot_user
        info.update(description="Обращения граждан в администрацию района", commands=None)
        return info

    async def _get_updates(self, request: web.Request, call: dict[str, Any]) -> dict[str, Any]:
        """schema: paths./updates.get. Every update has a sequence number; the answer's
        `marker` points to the next one; passing a marker commits everything before it;
        without one, all updates since the last commitment come. Holds up to `timeout` s."""
        query = request.query
        self.polls.append(dict(query))
        if self.subscriptions:
            # "Both methods cannot be used simultaneously" (schema: info.description); the
            # schema lists 405 for /updates [??: that this is the case it is for].
            raise MaxAPIError(405, CODE_NOT_ALLOWED, "Long polling is off: webhook subscribed")
        low, high, default = UPDATES_LIMIT_RANGE
        limit = _int_param(query, "limit", default)
        if limit is None or not low <= limit <= high:
            raise _bad(f"limit: must be between {low} and {high}")
        low, high, default = UPDATES_TIMEOUT_RANGE
        timeout = _int_param(query, "timeout", default)
        if timeout is None or not low <= timeout <= high:
            raise _bad(f"timeout: must be between {low} and {high}")
        marker = _int_param(query, "marker")
        types = {t for raw in query.getall("types", []) for t in raw.split(",") if t}
        if marker is not None:
            self._updates = [(seq, u) for seq, u in self._updates if seq >= marker]
        hold = float(timeout)
        if self.hold_seconds is not None:
            hold = min(hold, self.hold_seconds)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + hold
        self._holding += 1
        try:
            while True:
                start = marker if marker is not None else -1
                pending = [(seq, u) for seq, u in self._updates if seq >= start]
                batch: list[tuple[int, dict[str, Any]]] = []
                scanned = None
                for seq, update in pending:
                    if len(batch) >= min(limit, UPDATES_BATCH_MAX):
                        break
                    scanned = seq
                    if not types or update["update_type"] in types:
                        batch.append((seq, update))
                if batch and not (request.transport is None or request.transport.is_closing()):
                    self.delivered_updates += len(batch)
                    return {
                        "updates": [copy.deepcopy(u) for _, u in batch],
                        "marker": batch[-1][0] + 1,
                    }
                remaining = deadline - loop.time()
                gone = request.transport is None or request.transport.is_closing()
                if remaining <= 0 or self._closing or gone:
                    next_marker = scanned + 1 if scanned is not None else marker
                    return {"updates": [], "marker": next_marker or self._next_marker}
                changed = self._changed
                with contextlib.suppress(TimeoutError):
                    # In slices, to notice a client that went away (aiohttp does not cancel
                    # the handler), so that `_holding` counts only live polls.
                    await asyncio.wait_for(changed.wait(), min(remaining, 0.1))
        finally:
            self._holding -= 1

    async def _subscribe(self, request: web.Request, call: dict[str, Any]) -> dict[str, Any]:
        """schema: paths./subscriptions.post, SubscriptionRequestBody -> SimpleQueryResult."""
        body = self._json_body(call)
        url = body.get("url")
        if not isinstance(url, str) or not url:
            raise _bad("url: must not be empty")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _bad("url: must be an absolute URL")
        if self.strict_webhook_urls and (parts.scheme != "https" or (parts.port or 443) != 443):
            # schema: SubscriptionUrl "Must starts with https://"; paths./subscriptions.post
            # "Your server must be listening on port 443".
            raise _bad("url: must be https on port 443")
        secret = body.get("secret")
        if secret is not None and (
            not isinstance(secret, str) or not SECRET_PATTERN.fullmatch(secret)
        ):
            raise _bad("secret: 5-256 characters A-Z, a-z, 0-9, _ and -")
        update_types = body.get("update_types")
        if update_types is not None and (
            not isinstance(update_types, list)
            or not all(isinstance(t, str) and t for t in update_types)
        ):
            raise _bad("update_types: must be a list of update types")
        self.subscriptions = [s for s in self.subscriptions if s["url"] != url]
        self.subscriptions.append(
            {
                "url": url,
                "time": _now_ms(),
                "update_types": update_types,
                "secret": secret,
            }
        )
        self._wake()  # a held long poll ends (with 405 on its next round)
        return {"success": True}

    async def _get_subscriptions(
        self, request: web.Request, call: dict[str, Any]
    ) -> dict[str, Any]:
        """schema: paths./subscriptions.get -> GetSubscriptionsResult (no secrets in it)."""
        return {
            "subscriptions": [
                {"url": s["url"], "time": s["time"], "update_types": s["update_types"]}
                for s in self.subscriptions
            ]
        }

    async def _unsubscribe(self, request: web.Request, call: dict[str, Any]) -> dict[str, Any]:
        """schema: paths./subscriptions.delete (query `url`, required) -> SimpleQueryResult."""
        url = request.query.get("url")
        if not url:
            raise _bad("url: must not be empty")
        self.subscriptions = [s for s in self.subscriptions if s["url"] != url]
        return {"success": True}

    async def _send_message(self, request: web.Request, call: dict[str, Any]) -> dict[str, Any]:
        """schema: paths./messages.post (query user_id or chat_id, NewMessageBody) ->
        SendMessageResult."""
        query = request.query
        user_id = _int_param(query, "user_id")
        chat_id = _int_param(query, "chat_id")
        _bool_param(query, "disable_link_preview")
        if (user_id is None) == (chat_id is None):
            raise _bad("exactly one of user_id and chat_id is required")  # [??]
        if chat_id is not None:
            if chat_id not in self._dialog_users:
                raise MaxAPIError(403, CODE_DENIED, "Bot has no access to this chat")
            user_id = self._dialog_users[chat_id]
        assert user_id is not None
        if user_id not in self.users or user_id in self.blocked:
            # schema: paths./messages.post.responses.403 "when user suspended bot, bot
            # doesn't have access to chat"
            raise MaxAPIError(403, CODE_DENIED, "Bot has no access to this chat")
        body = self._check_new_message(self._json_body(call))
        if self._over_rate_limit(self.dialog_id(user_id)):
            self.rate_errors += 1
            raise MaxAPIError(429, CODE_TOO_MANY, "Too many requests")
        self._refuse_unready(body)
        message = self._new_bot_message(user_id, body)
        self.sent.append(
            SentMessage(
                user_id=user_id,
                chat_id=self.dialog_id(user_id),
                mid=message["body"]["mid"],
                text=body.get("text"),
                attachments=copy.deepcopy(body.get("attachments") or []),
                link=copy.deepcopy(body.get("link")),
                format=body.get("format"),
                notify=body.get("notify"),
                query=dict(query),
                message=message,
            )
        )
        return {"message": copy.deepcopy(message)}

    async def _send_comment(self, request: web.Request, call: dict[str, Any]) -> dict[str, Any]:
        """schema: paths./messages/{messageId}/comments.post (NewCommentBody: text ≤ 4000,
        link, format; "Attachments are not allowed in comments") -> SendCommentResult. The
        post is the path's mid; a `link` of type reply names the comment answered."""
        post_id = request.match_info["mid"]
        _bool_param(request.query, "disable_link_preview")
        body = self._json_body(call)
        unknown = set(body) - {"text", "link", "format"}
        if unknown:
            raise _bad(f"{sorted(unknown)[0]}: not allowed in a comment")  # [??] MAX's words
        text = body.get("text")
        if text is not None:
            _check_text(text, "text", 0, TEXT_MAX_CHARS)
        link = body.get("link")
        channel = None
        if link is not None:
            if not isinstance(link, dict) or link.get("type") != "reply":
                raise _bad("link: only a reply is allowed in a comment")  # [??]
            answered = self.comments.get(str(link.get("mid")))
            if answered is None or answered["recipient"]["post_id"] != post_id:
                raise MaxAPIError(404, "not.found", "Comment not found")  # [??]
            channel = answered["recipient"]["chat_id"]
        if not text and link is None:
            raise _bad("text: must not be empty")
        message = {
            "sender": self.bot_user,
            "recipient": {"chat_id": channel, "chat_type": "channel", "post_id": post_id},
            "timestamp": _now_ms(),
            "body": {"mid": self._new_mid(), "seq": self._new_seq(), "text": text},
        }
        if link is not None:
            answered = self.comments[str(link["mid"])]
            message["link"] = {"type": "reply", "message": copy.deepcopy(answered["body"])}
        self.comments[message["body"]["mid"]] = message
        self.sent_comments.append(
            {"post_id": post_id, "text": text, "link": copy.deepcopy(link), "message": message}
        )
        # The bot's own comment comes back to it as comment_created [??: not captured; the
        # schema says the bot gets every comment of a channel it administers].
        self.push(
            {
                "update_type": "comment_created",
                "timestamp": message["timestamp"],
                "message": copy.deepcopy(message),
            }
        )
        return {"message": copy.deepcopy(message)}

    async def _answer_callback(self, request: web.Request, call: dict[str, Any]) -> dict[str, Any]:
        """schema: paths./answers.post (query callback_id, CallbackAnswer) ->
        SimpleQueryResult. A `message` replaces the message with the keyboard."""
        callback_id = request.query.get("callback_id", "")
        _bool_param(request.query, "disable_link_preview")
        if not callback_id.strip():
            raise _bad("callback_id: must not be empty")
        body = self._json_body(call)
        if callback_id not in self._callbacks:
            # dev.max.ru POST /answers error example
            raise _bad("callback_id: Callback identifier is invalid")
        new_message = body.get("message")
        notification = body.get("notification")
        if new_message is None and notification is None:
            raise _bad("message or notification is required")  # third-party tests; text [??]
        if notification is not None and not isinstance(notification, str):
            raise _bad("notification: must be a string")
        if new_message is not None:
            new_message = self._check_new_message(new_message, "message.")
            self._refuse_unready(new_message)
        pressed = self._callbacks[callback_id]
        self.callback_answers.append(
            {
                "callback_id": callback_id,
                "user_id": pressed["user_id"],
                "mid": pressed["mid"],
                "notification": notification,
                "message": copy.deepcopy(new_message),
            }
        )
        original = self._messages.get(pressed["mid"] or "")
        if new_message is not None and original is not None:
            original["body"]["text"] = new_message.get("text")
            if new_message.get("attachments") is not None:
                original["body"]["attachments"] = [
                    self._materialize(a) for a in new_message["attachments"]
                ]
            self.edits.append(copy.deepcopy(original))
        return {"success": True}

    async def _get_upload_url(self, request: web.Request, call: dict[str, Any]) -> dict[str, Any]:
        """schema: paths./uploads.post (query type: UploadType) -> UploadEndpoint; video and
        audio get their token here already."""
        kind = request.query.get("type", "")
        if kind == "photo":
            raise _bad("type: photo is no longer supported, use image")  # schema text; code [??]
        if kind not in UPLOAD_TYPES:
            raise _bad("type: must be one of image, video, audio, file")
        grant = Upload(upload_id=secrets.token_hex(8), type=kind)
        self._upload_grants[grant.upload_id] = grant
        answer: dict[str, Any] = {"url": f"{self.url}/upload/{grant.upload_id}"}
        if kind in ("video", "audio"):
            grant.token = self._new_token()
            answer["token"] = grant.token
        return answer

    async def _upload(self, request: web.Request, call: dict[str, Any]) -> web.StreamResponse:
        """The upload URL: a multipart POST with the file in field `data` (schema:
        paths./uploads.post.description). An image answers {"photos": {<id>: {"token"}}} and a
        file {"token"} (maxapi: utils/message.py parses exactly these)."""
        grant = self._upload_grants.get(request.match_info["upload_id"])
        if grant is None or grant.done:
            raise MaxAPIError(404, CODE_NOT_FOUND, "Upload not found")  # [??]
        if not request.content_type.startswith("multipart/"):
            raise _bad("a multipart/form-data body is expected")
        form = await request.post()
        part = form.get("data")
        if not isinstance(part, web.FileField):
            raise _bad("data: a file is expected")
        grant.data = part.file.read()
        grant.filename = part.filename or ""
        grant.content_type = part.content_type or ""
        grant.done = True
        self.uploads.append(grant)
        call["upload"] = {"type": grant.type, "filename": grant.filename, "size": len(grant.data)}
        if grant.type == "image":
            attachment = self._new_image(grant.data)
            token = attachment["payload"]["token"]
            self._not_ready[token] = self.not_ready_times
            return _json({"photos": {str(attachment["payload"]["photo_id"]): {"token": token}}})
        token = grant.token or self._new_token()
        self._tokens[token] = {"type": grant.type, "payload": {"token": token}}
        self._not_ready[token] = self.not_ready_times
        return _json({"token": token})

    async def _download(self, request: web.Request, call: dict[str, Any]) -> web.StreamResponse:
        try:
            photo_id = int(request.match_info["photo_id"])
        except ValueError:
            photo_id = -1
        if photo_id not in self.images:
            return web.Response(status=404, text="Not Found")
        self.downloads.append(photo_id)
        return web.Response(body=self.images[photo_id], content_type="image/jpeg")

    async def _get_chat(self, request: web.Request, call: dict[str, Any]) -> dict[str, Any]:
        """schema: paths./chats/{chatId}.get -> Chat. Only dialogs exist here. maxapi asks for
        it for every update it handles (maxapi: utils/updates.py, auto_requests=True)."""
        try:
            chat_id = int(request.match_info["chat_id"])
        except ValueError:
            raise _bad("chatId: must be an integer") from None
        user_id = self._dialog_users.get(chat_id)
        if user_id is None or user_id not in self.users:
            raise MaxAPIError(404, CODE_NOT_FOUND, f"Chat {chat_id} not found")  # [??]
        user = self.user(user_id)
        return {
            "chat_id": chat_id,
            "type": "dialog",
            "status": "suspended" if user_id in self.blocked else "active",
            "title": None,
            "icon": None,
            "last_event_time": _now_ms(),
            "participants_count": 2,
            "is_public": False,
            "link": None,
            "description": None,
            "dialog_with_user": {**user, "avatar_url": None, "full_avatar_url": None},
        }

    # ----------------------------------------------------------------- validation

    def _check_new_message(self, body: Any, where: str = "") -> dict[str, Any]:
        """NewMessageBody (schema: components/schemas/NewMessageBody and what it refers to),
        refused with 400 {"code": "proto.payload", "message": "<field>: <reason>"}."""
        if not isinstance(body, dict):
            raise _bad(f"{where or 'body'}: must be an object")
        text = body.get("text")
        if text is not None:
            _check_text(text, f"{where}text", 0, TEXT_MAX_CHARS)
        attachments = body.get("attachments")
        if attachments is not None:
            if not isinstance(attachments, list):
                raise _bad(f"{where}attachments: must be a list")
            for index, attachment in enumerate(attachments):
                self._check_attachment(attachment, f"{where}attachments[{index}]")
        link = body.get("link")
        if link is not None:
            if not isinstance(link, dict) or link.get("type") not in LINK_TYPES:
                raise _bad(f"{where}link.type: must be forward or reply")
            mid = link.get("mid")
            if not isinstance(mid, str) or not mid:
                raise _bad(f"{where}link.mid: must not be empty")
            if mid not in self._messages:
                raise _bad(f"{where}link.mid: Invalid message_id: {mid}")  # dev.max.ru wording
            if link["type"] == "forward" and text:
                raise _bad("errors.forward.text.not-empty")  # third-party docs (maxgram)
        fmt = body.get("format")
        if fmt is not None and fmt not in TEXT_FORMATS:
            raise _bad(f"{where}format: must be markdown or html")
        notify = body.get("notify")
        if notify is not None and not isinstance(notify, bool):
            raise _bad(f"{where}notify: must be a boolean")
        if not text and not attachments and link is None:
            raise _bad(f"{where}text: message is empty")  # [??]
        return body

    def _check_attachment(self, attachment: Any, where: str) -> None:
        if not isinstance(attachment, dict):
            raise _bad(f"{where}: must be an object")
        kind = attachment.get("type")
        if kind not in ATTACHMENT_REQUEST_TYPES:
            raise _bad(f"{where}.type: unknown attachment type {kind!r}")
        payload = attachment.get("payload")
        if kind == "location":  # schema: LocationAttachmentRequest
            for name in ("latitude", "longitude"):
                value = attachment.get(name)
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise _bad(f"{where}.{name}: must be a number")
            return
        if not isinstance(payload, dict):
            raise _bad(f"{where}.payload: must be an object")
        if kind == "inline_keyboard":
            self._check_keyboard(payload, f"{where}.payload")
        elif kind == "image":  # schema: PhotoAttachmentRequestPayload, fields exclusive
            given = [name for name in ("url", "token", "photos") if payload.get(name) is not None]
            if len(given) != 1:
                raise _bad(f"{where}.payload: exactly one of url, token, photos")
            if "token" in given:
                self._check_token(payload["token"], f"{where}.payload.token")
            elif "url" in given and not (isinstance(payload["url"], str) and payload["url"]):
                raise _bad(f"{where}.payload.url: must not be empty")
            elif "photos" in given:
                photos = payload["photos"]
                if not isinstance(photos, dict) or not photos:
                    raise _bad(f"{where}.payload.photos: must be a non-empty object")
                for key, item in photos.items():
                    if not isinstance(item, dict):
                        raise _bad(f"{where}.payload.photos.{key}: must be an object")
                    self._check_token(item.get("token"), f"{where}.payload.photos.{key}.token")
        elif kind in ("video", "audio", "file"):  # schema: UploadedInfo
            self._check_token(payload.get("token"), f"{where}.payload.token")
        elif kind == "sticker" and not isinstance(payload.get("code"), str):
            raise _bad(f"{where}.payload.code: must be a string")

    def _check_token(self, token: Any, where: str) -> None:
        if not isinstance(token, str) or not token:
            raise _bad(f"{where}: must not be empty")
        if token not in self._tokens:
            raise _bad(f"{where}: unknown token")  # [??]

    @staticmethod
    def _check_keyboard(payload: dict[str, Any], where: str) -> None:
        """schema: InlineKeyboardAttachmentRequestPayload (buttons: minItems 1, rows of
        Button); sizes from issue 17 (not in the schema, see KEYBOARD_ROWS_MAX)."""
        rows = payload.get("buttons")
        if not isinstance(rows, list) or not rows:
            raise _bad(f"{where}.buttons: must be a non-empty list of rows")
        if len(rows) > KEYBOARD_ROWS_MAX:
            raise _bad(f"{where}.buttons: at most {KEYBOARD_ROWS_MAX} rows")
        total = 0
        for r, row in enumerate(rows):
            if not isinstance(row, list) or not row:
                raise _bad(f"{where}.buttons[{r}]: must be a non-empty list")
            if len(row) > KEYBOARD_ROW_MAX:
                raise _bad(f"{where}.buttons[{r}]: at most {KEYBOARD_ROW_MAX} buttons a row")
            total += len(row)
            for c, button in enumerate(row):
                FakeMax._check_button(button, f"{where}.buttons[{r}][{c}]")
        if total > KEYBOARD_BUTTONS_MAX:
            raise _bad(f"{where}.buttons: at most {KEYBOARD_BUTTONS_MAX} buttons")

    @staticmethod
    def _check_button(button: Any, where: str) -> None:
        """schema: Button and its kinds (CallbackButton, LinkButton, ...)."""
        if not isinstance(button, dict):
            raise _bad(f"{where}: must be an object")
        kind = button.get("type")
        if kind not in BUTTON_TYPES:
            raise _bad(f"{where}.type: unknown button type {kind!r}")
        _check_text(
            button.get("text"), f"{where}.text", BUTTON_TEXT_MIN_CHARS, BUTTON_TEXT_MAX_CHARS
        )
        if kind == "callback":
            _check_text(button.get("payload"), f"{where}.payload", 0, CALLBACK_PAYLOAD_MAX_CHARS)
        elif kind == "clipboard":
            _check_text(button.get("payload"), f"{where}.payload", 0, CLIPBOARD_PAYLOAD_MAX_CHARS)
        elif kind == "link":
            _check_text(button.get("url"), f"{where}.url", 1, LINK_URL_MAX_CHARS)
        elif kind == "open_app":
            _check_text(button.get("web_app"), f"{where}.web_app", 1, 10_000)
            payload = button.get("payload")
            if payload is not None:
                _check_text(payload, f"{where}.payload", 0, OPEN_APP_PAYLOAD_MAX_CHARS)
                if not re.fullmatch(r"[\w-]*", payload):
                    raise _bad(f"{where}.payload: only letters, digits, _ and -")
        elif kind == "request_geo_location":
            quick = button.get("quick")
            if quick is not None and not isinstance(quick, bool):
                raise _bad(f"{where}.quick: must be a boolean")

    def _refuse_unready(self, body: dict[str, Any]) -> None:
        """While a freshly uploaded file is processed it cannot be attached: 400
        attachment.not.ready (schema: paths./messages.post.description "Important notice";
        body as go stabs error.attachment.not.ready.json)."""
        refuse = False
        for attachment in body.get("attachments") or []:
            payload = attachment.get("payload") if isinstance(attachment, dict) else None
            if not isinstance(payload, dict):
                continue
            tokens = [payload.get("token")]
            if isinstance(payload.get("photos"), dict):
                tokens += [p.get("token") for p in payload["photos"].values()]
            for token in tokens:
                if isinstance(token, str) and self._not_ready.get(token, 0) > 0:
                    self._not_ready[token] -= 1
                    refuse = True
        if refuse:
            self.not_ready_refusals += 1
            raise MaxAPIError(400, CODE_NOT_READY, "")

    def _over_rate_limit(self, chat_id: int) -> bool:
        now = asyncio.get_running_loop().time()
        over = False
        if self.rate_limit:
            self._send_times.append(now)
            while self._send_times and self._send_times[0] <= now - 1.0:
                self._send_times.popleft()
            over = len(self._send_times) > self.rate_limit
        if self.per_chat_limit:
            chat = self._chat_send_times.setdefault(chat_id, deque())
            chat.append(now)
            while chat and chat[0] <= now - 1.0:
                chat.popleft()
            over = over or len(chat) > self.per_chat_limit
        return over

    # ----------------------------------------------------------------- building objects

    def _absorb(self, update: dict[str, Any]) -> None:
        kind = update["update_type"]
        message = update.get("message")
        if kind == "message_created" and isinstance(message, dict):
            sender = message.get("sender") or {}
            if isinstance(sender.get("user_id"), int) and not sender.get("is_bot"):
                self.users.setdefault(sender["user_id"], sender)
                self.dialog_id(sender["user_id"])
            mid = (message.get("body") or {}).get("mid")
            if mid:
                self._messages[mid] = message
            for attachment in (message.get("body") or {}).get("attachments") or []:
                token = (attachment.get("payload") or {}).get("token")
                if isinstance(token, str):
                    self._tokens.setdefault(token, attachment)
        elif kind == "message_callback":
            callback = update.get("callback") or {}
            user = callback.get("user") or {}
            if isinstance(user.get("user_id"), int):
                self.users.setdefault(user["user_id"], user)
            mid = ((message or {}).get("body") or {}).get("mid")
            self._callbacks[callback.get("callback_id", "")] = {
                "user_id": user.get("user_id"),
                "mid": mid,
            }
        elif kind in ("bot_started", "bot_stopped"):
            user = update.get("user") or {}
            user_id = user.get("user_id")
            if isinstance(user_id, int):
                self.users.setdefault(user_id, user)
                self.dialog_id(user_id)
                if kind == "bot_started":
                    self.blocked.discard(user_id)
                else:
                    self.blocked.add(user_id)

    def _new_mid(self) -> str:
        return "mid." + secrets.token_hex(16)  # go stabs: mid.<32 hex digits>

    def _new_seq(self) -> int:
        self._seq += 1
        return self._seq

    @staticmethod
    def _new_token() -> str:
        return secrets.token_urlsafe(32)

    def _new_image(self, content: bytes, url: str | None = None) -> dict[str, Any]:
        """A PhotoAttachment (schema: PhotoAttachmentPayload photo_id, token, url) whose URL
        this fake serves (or `url`, for an image sent by URL); its token may be sent again."""
        photo_id = self._next_photo_id
        self._next_photo_id += 1
        self.images[photo_id] = content
        token = self._new_token()
        attachment = {
            "type": "image",
            "payload": {
                "photo_id": photo_id,
                "token": token,
                "url": url or f"{self.url}/img/{photo_id}",
            },
        }
        self._tokens[token] = attachment
        return copy.deepcopy(attachment)

    @staticmethod
    def _contact(user: dict[str, Any], phone: str) -> dict[str, Any]:
        """schema: ContactAttachment / ContactAttachmentPayload {vcf_info, max_info}; the VCF
        text is what maxapi's utils/vcf.py reads (FN, TEL) [??: no captured payload]."""
        name = user.get("name") or user.get("first_name", "")
        vcf = f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:{name}\r\nTEL;TYPE=cell:{phone}\r\nEND:VCARD\r\n"
        return {"type": "contact", "payload": {"vcf_info": vcf, "max_info": copy.deepcopy(user)}}

    def _linked(self, kind: str, mid: str) -> dict[str, Any]:
        """LinkedMessage (schema: components/schemas/LinkedMessage) for the known message
        `mid`: type, its sender, chat and body."""
        quoted = self._messages.get(mid)
        if quoted is None:
            raise ValueError(f"no message {mid} is known")
        return {
            "type": kind,
            "sender": copy.deepcopy(quoted.get("sender")),
            "chat_id": quoted["recipient"].get("chat_id"),
            "message": copy.deepcopy(quoted["body"]),
        }

    def _materialize(self, attachment: dict[str, Any]) -> dict[str, Any]:
        """What a sent AttachmentRequest looks like inside the Message MAX answers with."""
        kind = attachment["type"]
        payload = attachment.get("payload") or {}
        if kind == "image":
            token = payload.get("token")
            if token is None and isinstance(payload.get("photos"), dict):
                token = next(iter(payload["photos"].values())).get("token")
            if token is not None and token in self._tokens:
                return copy.deepcopy(self._tokens[token])
            return self._new_image(TINY_JPEG, payload.get("url"))
        if kind == "inline_keyboard":  # maxapi payloads show a callback_id on the keyboard
            return {
                "type": "inline_keyboard",
                "callback_id": secrets.token_urlsafe(12),
                "payload": {"buttons": copy.deepcopy(payload["buttons"])},
            }
        return copy.deepcopy(attachment)

    def _new_bot_message(self, user_id: int, body: dict[str, Any]) -> dict[str, Any]:
        message_body: dict[str, Any] = {
            "mid": self._new_mid(),
            "seq": self._new_seq(),
            "text": body.get("text") or "",
        }
        attachments = [self._materialize(a) for a in body.get("attachments") or []]
        if attachments:
            message_body["attachments"] = attachments
        message: dict[str, Any] = {
            "sender": self.bot_user,
            "recipient": {
                "chat_id": self.dialog_id(user_id),
                "chat_type": "dialog",
                "user_id": user_id,
            },
            "timestamp": _now_ms(),
            "body": message_body,
        }
        link = body.get("link")
        if link is not None:
            message["link"] = self._linked(link["type"], link["mid"])
        self._messages[message_body["mid"]] = message
        return message
