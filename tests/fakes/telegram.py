"""A fake Telegram Bot API on 127.0.0.1 that speaks the real wire format, so tests can run aiogram
with real HTTP against it: methods under /bot{token}/, long polling, webhook pushes, photo
upload, getFile and file download under /file/bot{token}/.

What real Telegram does, and so what this fake does, is taken from the shared notes:
messenger-apis.md §3 (Telegram with aiogram 3) and library-notes.md §2-§4. Error texts follow the
Bot API server (tdlib/telegram-bot-api, Client.cpp) where it words them itself; texts that come
from deeper inside Telegram and were only seen in bug reports are marked [??].

Methods: getMe, getUpdates, setWebhook, deleteWebhook, getWebhookInfo, setMyCommands,
getMyCommands, deleteMyCommands, sendMessage, sendPhoto, sendMediaGroup (photos), sendChatAction,
answerCallbackQuery, editMessageText, editMessageReplyMarkup, deleteMessage, getFile. Any other
answers 404 "Not Found", so aiogram raises TelegramNotFound.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import email
import email.policy
import inspect
import ipaddress
import json
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from tests.fakes.base import LoopbackFake

# Methods that put a message into a chat: what Telegram's send limits count.
SEND_METHODS = frozenset({"sendMessage", "sendPhoto", "sendMediaGroup"})
TOKEN = "123456:TEST-token-abcdefghijklmnopqrstuvwxyz"
PAYLOADS_DIR = Path(__file__).resolve().parent.parent / "payloads" / "telegram"

# Pseudo method name: `fail_method` / `drop_connections` also apply to file downloads.
FILE = "file"

# Limits (messenger-apis.md §3.5, §3.6; aiogram docstrings, which copy the Bot API docs).
MESSAGE_MAX_UTF16 = 4096  # "1-4096 characters after entities parsing", in UTF-16 code units
CAPTION_MAX_UTF16 = 1024
CALLBACK_DATA_MAX_BYTES = 64
CALLBACK_ANSWER_MAX_CHARS = 200
MEDIA_GROUP_MIN, MEDIA_GROUP_MAX = 2, 10
UPDATES_LIMIT_MAX = 100
PHOTO_MAX_BYTES = 10 * 1024 * 1024
DOWNLOAD_MAX_BYTES = 20 * 1024 * 1024
BOT_COMMANDS_MAX = 100
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
BOT_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
WEBHOOK_PORTS = frozenset({80, 88, 443, 8443})
# Update types an empty or never-set allowed_updates leaves out (getUpdates docs).
NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
# Fields Telegram reads as JSON text inside form data (aiogram JSON-encodes dicts and lists).
JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "allowed_updates",
        "commands",
        "scope",
        "entities",
        "caption_entities",
        "media",
        "link_preview_options",
        "reply_parameters",
    }
)
# Exactly one of these makes an inline keyboard button (InlineKeyboardButton docs).
INLINE_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
# Tags of the HTML parse mode (sendMessage docs, "HTML style").
HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "tg-emoji",
        "code",
        "pre",
        "blockquote",
    }
)
HTML_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}

GROUP_CHAT_ID = -4012345678  # a basic group (new-style id)
SUPERGROUP_CHAT_ID = -1001987654321
GROUP_TITLE = "Соседи: ул. Ленина, 5"
FIRST_UPDATE_ID = 861_000_001

# Default descriptions of injected errors (messenger-apis.md §3.7 and the Bot API server).
DESCRIPTIONS: dict[int, str] = {
    400: "Bad Request: chat not found",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
WRONG_FILE = "Bad Request: wrong file identifier/HTTP URL specified"

# Sizes Telegram makes of a photo; the largest comes LAST in `photo` (PhotoSize docs).
PHOTO_SIZES: tuple[tuple[int, int, int], ...] = (
    (90, 67, 1_214),
    (320, 240, 15_871),
    (800, 600, 61_344),
    (1280, 960, 98_765),
)

# A JPEG start and end marker: enough for a type sniffer, not a decodable picture.
TINY_JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    b"\xff\xdb\x00\x43\x00" + bytes(range(1, 65)) + b"\xff\xd9"
)
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")


@dataclass
class SentMessage:
    """One message the bot sent (sendMessage, sendPhoto, or one item of sendMediaGroup).
    `text` / `caption` are as sent (HTML markup included; the Message answered holds the parsed
    text). `reply_markup` is what the bot sent, and follows editMessageReplyMarkup and
    editMessageText (which removes an inline keyboard it is not given again). `photo` is the
    file_id, the URL, or "upload:<n>" (n = bytes uploaded)."""

    chat_id: int
    text: str | None
    caption: str | None
    method: str
    message_id: int
    reply_markup: dict[str, Any] | None
    photo: str | None
    params: dict[str, str] = field(default_factory=dict)  # everything the call carried
    date: int = 0


@dataclass(frozen=True)
class _Failure:
    kind: Literal["error", "raw", "drop"]
    code: int = 0
    description: str = ""
    retry_after: int | None = None
    body: str | None = None


class _TelegramError(Exception):
    """Raised inside a method implementation; becomes {"ok": false, ...} with that status."""

    def __init__(
        self, code: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(code, description)
        self.code = code
        self.description = description
        self.parameters = parameters


def _bad(description: str) -> _TelegramError:
    return _TelegramError(400, f"Bad Request: {description}")


@dataclass
class _Described:
    """A result that comes with a "description" beside it (setWebhook, deleteWebhook)."""

    result: Any
    description: str


def load_payload(name: str) -> dict[str, Any]:
    """A real-shaped Update from tests/payloads/telegram/ (`name` with or without `.json`)."""
    file_name = name if name.endswith(".json") else f"{name}.json"
    data: dict[str, Any] = json.loads((PAYLOADS_DIR / file_name).read_text("utf-8"))
    return data


def iter_payload_names() -> Iterator[str]:
    for path in sorted(PAYLOADS_DIR.glob("*.json")):
        yield path.stem


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP is 2)."""
    return len(text.encode("utf-16-le")) // 2


def update_type(update: dict[str, Any]) -> str:
    """The kind of an Update: its one field besides update_id."""
    return next((k for k in update if k != "update_id"), "")


def fake_jpeg(size: int, seed: str = "") -> bytes:
    """`size` bytes (at least a tiny JPEG) that start and end like a JPEG; `seed` varies them."""
    head, tail = TINY_JPEG[:-2], TINY_JPEG[-2:]
    filler = (seed.encode() or b"x") * (max(size - len(TINY_JPEG), 0) // max(len(seed), 1) + 1)
    return head + filler[: max(size - len(TINY_JPEG), 0)] + tail


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


class FakeTelegram(LoopbackFake):
    """A fake Telegram Bot API; see the module docstring. Start it, point aiogram's session at
    `TelegramAPIServer.from_base(fake.url)`, push updates, and inspect `calls` / `sent`."""

    def __init__(
        self,
        token: str = TOKEN,
        *,
        hold_seconds: float = 0.2,
        bot_id: int | None = None,
        username: str = "appeals_test_bot",
        first_name: str = "Обращения граждан",
    ) -> None:
        self.token = token
        self.hold_seconds = hold_seconds
        self.bot_id = bot_id if bot_id is not None else int(token.split(":", 1)[0])
        self.username = username
        self.first_name = first_name
        self.url = ""
        # The bot's view of the world: who wrote to it, who blocked it, what files exist.
        self.known_chats: set[int] = set()
        self.blocked: set[int] = set()
        self.users: dict[int, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self.url_contents: dict[str, bytes] = {}  # what a photo URL serves (TINY_JPEG if absent)
        self.unreachable_urls: set[str] = set()
        # What the bot did, in order.
        self.calls: list[dict[str, Any]] = []
        self.sent: list[SentMessage] = []
        self.callback_answers: list[dict[str, Any]] = []
        # Telegram's limits, enforced with 429 when set (0 = off), and how often they were hit.
        self.rate_limit = 0.0
        self.per_chat_limit = 0.0
        self.rate_errors = 0
        self._send_times: deque[float] = deque()
        self._chat_send_times: dict[str, deque[float]] = {}
        self.webhook: dict[str, Any] | None = None
        self.allowed_updates: list[str] | None = None  # the remembered getUpdates setting
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.uploads: list[bytes] = []
        self.downloads: list[str] = []  # file paths served under /file/bot{token}/
        self.delivered_updates = 0
        # Every error the fake answered: (method, error_code, description).
        self.answered_errors: list[tuple[str, int, str]] = []
        # Bugs inside the fake itself (answered 500 instead of raising).
        self.errors: list[str] = []
        # setWebhook with a URL is refused with 429 within this many seconds of the previous
        # one, as the Bot API server does (Client.cpp: next_allowed_set_webhook_date_).
        self.set_webhook_interval = 1.0

        self._updates: list[dict[str, Any]] = []
        self._next_update_id = FIRST_UPDATE_ID
        self._failures: dict[str, deque[_Failure]] = {}
        self._changed = asyncio.Event()
        self._holding = 0
        self._poll_seq = 0
        self._closing = False
        self._last_set_webhook = -1e9
        self._chats: dict[int, dict[str, Any]] = {}
        self._last_message_id: dict[int, int] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._sent_by_key: dict[tuple[int, int], SentMessage] = {}
        self._open_callbacks: set[str] = set()
        self._unique_ids: dict[str, str] = {}
        self._file_paths: dict[str, str] = {}  # file_id -> file_path (assigned by getFile)
        self._by_path: dict[str, str] = {}  # file_path -> file_id
        self._photo_sets: dict[str, list[dict[str, Any]]] = {}  # any size's id -> all sizes
        self._runner: web.AppRunner | None = None
        self._methods: dict[str, Callable[[dict[str, str], dict[str, bytes]], Any]] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendMediaGroup": self._send_media_group,
            "sendChatAction": self._send_chat_action,
            "answerCallbackQuery": self._answer_callback_query,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "getFile": self._get_file,
        }
        self._by_lower = {name.lower(): name for name in self._methods}

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        app = web.Application(middlewares=[self._guard], client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._closing = False
        await self._serve(app)

    async def stop(self) -> None:
        self._closing = True
        self._wake()
        await self._close()

    # ----------------------------------------------------------------- what the bot did

    @property
    def bot_user(self) -> dict[str, Any]:
        """The bot as a User object, as it appears in `from` of its messages."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    def messages_to(self, chat_id: int) -> list[SentMessage]:
        return [m for m in self.sent if m.chat_id == chat_id]

    def calls_of(self, method: str) -> list[dict[str, Any]]:
        name = self._by_lower.get(method.lower(), method)
        return [c for c in self.calls if c["method"] == name]

    def commands_for(
        self,
        scope_type: str = "default",
        *,
        chat_id: int | None = None,
        user_id: int | None = None,
        language_code: str = "",
    ) -> list[dict[str, Any]]:
        """The commands setMyCommands set for a scope ([] if none); `commands` is keyed by the
        scope JSON with sorted keys, e.g. '{"type":"default"}' or '{"chat_id":5,"type":"chat"}'
        (followed by " <language_code>" when one was given)."""
        scope: dict[str, Any] = {"type": scope_type}
        if chat_id is not None:
            scope["chat_id"] = chat_id
        if user_id is not None:
            scope["user_id"] = user_id
        return self.commands.get(_scope_key(scope, language_code), [])

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed (getUpdates offset) or delivered by post_webhook."""
        return list(self._updates)

    async def wait_polled(self, within: float = 5.0) -> None:
        """Until a getUpdates call is being held (the bot listens; pushes reach it at once)."""
        await self.wait_for(lambda: self._holding > 0, within, "a held getUpdates call")

    async def wait_sent(self, count: int, within: float = 5.0) -> list[SentMessage]:
        """Until at least `count` messages were sent in total; returns them all."""
        await self.wait_for(lambda: len(self.sent) >= count, within, f"{count} sent messages")
        return list(self.sent)

    async def wait_calls(
        self, method: str, count: int = 1, within: float = 5.0
    ) -> list[dict[str, Any]]:
        """Until `method` was called at least `count` times; returns those calls."""
        await self.wait_for(
            lambda: len(self.calls_of(method)) >= count, within, f"{count} {method} calls"
        )
        return self.calls_of(method)

    # ----------------------------------------------------------------- updates

    def push(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an Update for getUpdates (assigning update_id if missing) and learn from it
        what Telegram would know: the chat exists, its files, callback ids, a block. Returns it."""
        if "update_id" not in update:
            update["update_id"] = self._next_update_id
        self._next_update_id = max(self._next_update_id, int(update["update_id"]) + 1)
        self._absorb(update)
        self._updates.append(update)
        self._wake()
        return update

    def message(
        self,
        user_id: int,
        text: str | None = None,
        *,
        first_name: str = "Иван",
        last_name: str | None = "Петров",
        username: str | None = None,
        photo: bool = False,
        caption: str | None = None,
        location: tuple[float, float] | None = None,
        contact_phone: str | None = None,
        sticker: bool = False,
        reply_to: SentMessage | None = None,
        chat_type: Literal["private", "group", "supergroup"] = "private",
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        """Build and push a `message` Update from `user_id`; returns it. In a group the chat is
        GROUP_CHAT_ID / SUPERGROUP_CHAT_ID unless `chat_id` says otherwise. A person who
        blocked the bot first unblocks it (a `my_chat_member` update), as Telegram makes them."""
        if text is not None and photo:
            raise ValueError("a photo message carries `caption`, not `text`")
        user = self._user(user_id, first_name, last_name, username)
        chat = self._chat_for(user, chat_type, chat_id)
        if chat_type == "private" and user_id in self.blocked:
            self.unblock(user_id)  # one must press "Restart" to write to a blocked bot
        message: dict[str, Any] = {
            "message_id": self._new_message_id(chat["id"]),
            "from": user,
            "chat": chat,
            "date": int(time.time()),
        }
        if reply_to is not None:
            quoted = self._messages.get((reply_to.chat_id, reply_to.message_id))
            if quoted is None:
                raise ValueError(f"the fake never sent message {reply_to.message_id}")
            message["reply_to_message"] = _without_reply(quoted)
        if text is not None:
            message["text"] = text
            command = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
            if command:
                length = utf16_len(command.group())
                message["entities"] = [{"offset": 0, "length": length, "type": "bot_command"}]
        if photo:
            message["photo"] = self._new_photo_sizes()
        if caption is not None:
            message["caption"] = caption
        if location is not None:
            message["location"] = {"latitude": location[0], "longitude": location[1]}
        if contact_phone is not None:
            contact = {"phone_number": contact_phone, "first_name": first_name, "user_id": user_id}
            if last_name:
                contact["last_name"] = last_name
            message["contact"] = contact
        if sticker:
            message["sticker"] = self._new_sticker()
        return self.push({"message": message})

    def callback(
        self, user_id: int, data: str, message: SentMessage | None = None
    ) -> dict[str, Any]:
        """Build and push a `callback_query` Update: `user_id` pressed the button carrying
        `data` under `message` (by default the latest message the bot sent to that chat)."""
        candidates = [message] if message is not None else list(reversed(self.messages_to(user_id)))
        shown = None
        for candidate in candidates:
            current = self._messages.get((candidate.chat_id, candidate.message_id))
            if current is not None and data in _callback_data_of(current):
                message, shown = candidate, current
                break
        if message is None or shown is None:
            where = "under that message" if message is not None else f"sent to {user_id}"
            raise ValueError(f"no button with callback_data {data!r} {where} (still shown)")
        user = self.users.get(user_id) or self._user(user_id, "Иван", "Петров", None)
        query_id = str(secrets.randbelow(9 * 10**18) + 10**18)
        update = {
            "callback_query": {
                "id": query_id,
                "from": user,
                "message": copy.deepcopy(shown),
                "chat_instance": _chat_instance(message.chat_id),
                "data": data,
            }
        }
        return self.push(update)

    def block(self, user_id: int) -> dict[str, Any]:
        """The person blocks the bot: pushes `my_chat_member` (member -> kicked); from then
        on sending to them answers 403 "Forbidden: bot was blocked by the user"."""
        return self.push(self._chat_member_update(user_id, "member", "kicked"))

    def unblock(self, user_id: int) -> dict[str, Any]:
        """The person restarts the bot: `my_chat_member` (kicked -> member)."""
        return self.push(self._chat_member_update(user_id, "kicked", "member"))

    def push_payload(self, name: str, *, user_id: int | None = None) -> dict[str, Any]:
        """Push an Update from tests/payloads/telegram/ with fresh update_id, message ids and
        dates (and the sender moved to `user_id`); returns it."""
        update = load_payload(name)
        update.pop("update_id", None)
        if user_id is not None:
            _move_user(update, user_id)
        body = update[update_type(update)]
        now = int(time.time())
        messages = _messages_in(body)
        for message in messages:  # bot messages quoted here keep their ids, so go first
            if message.get("from", {}).get("is_bot"):
                chat_id = message["chat"]["id"]
                last = self._last_message_id.get(chat_id, 0)
                self._last_message_id[chat_id] = max(last, int(message["message_id"]))
        for message in messages:
            message["date"] = now
            if not message.get("from", {}).get("is_bot"):
                message["message_id"] = self._new_message_id(message["chat"]["id"])
        if "date" in body:
            body["date"] = now
        if update_type(update) == "callback_query":
            body["id"] = str(secrets.randbelow(9 * 10**18) + 10**18)
        return self.push(update)

    async def post_webhook(
        self, url: str, update: dict[str, Any], secret: str | None
    ) -> tuple[int, str]:
        """POST `update` to the bot's webhook `url` as Telegram does (JSON, the secret in
        X-Telegram-Bot-Api-Secret-Token). A 2xx answer delivers it (it leaves the getUpdates
        queue); a method in the answer body is executed, as Telegram does. Returns the HTTP
        status and body text."""
        if update.get("update_id") is None or not any(u is update for u in self._updates):
            self.push(update)
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=_dumps(update).encode(), headers=headers) as response,
        ):
            body = await response.read()
            status = response.status
            content_type = response.headers.get("Content-Type", "")
        if 200 <= status < 300:
            self._updates = [u for u in self._updates if u is not update]
            self.delivered_updates += 1
            await self._run_webhook_reply(content_type, body)
        return status, body.decode("utf-8", "replace")

    # ----------------------------------------------------------------- failure injection

    def fail_method(
        self,
        method: str,
        error_code: int,
        times: int = 1,
        *,
        description: str | None = None,
        retry_after: int | None = None,
        body: str | None = None,
    ) -> None:
        """The next `times` calls of `method` answer {"ok": false, "error_code": error_code,
        ...} with that HTTP status (429 carries parameters.retry_after, 3 by default). With
        `body`, that raw text instead (e.g. nginx's HTML 502 page). FILE names downloads."""
        name = self._by_lower.get(method.lower(), method)
        if error_code == 429:
            retry_after = 3 if retry_after is None else retry_after
            default = f"Too Many Requests: retry after {retry_after}"
        else:
            default = DESCRIPTIONS.get(error_code, f"Error {error_code}")
        failure = _Failure(
            "raw" if body is not None else "error",
            error_code,
            description or default,
            retry_after,
            body,
        )
        self._failures.setdefault(name, deque()).extend([failure] * times)
        self._wake()

    def drop_connections(self, method: str, times: int = 1) -> None:
        """The next `times` requests of `method` get their connection closed unanswered."""
        name = self._by_lower.get(method.lower(), method)
        self._failures.setdefault(name, deque()).extend([_Failure("drop")] * times)
        self._wake()

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
            description = "Internal Server Error: fake failed, see FakeTelegram.errors"
            return self._error_response("?", 500, description)

    @staticmethod
    async def _read_request(request: web.Request) -> tuple[dict[str, str], dict[str, bytes]]:
        """Form fields (query, urlencoded, multipart or JSON body) and uploaded file parts."""
        fields: dict[str, str] = dict(request.query)
        files: dict[str, bytes] = {}
        if not request.can_read_body:
            return fields, files
        if request.content_type == "application/json":
            try:
                data = await request.json()
            except ValueError:
                raise _bad("can't parse JSON request body") from None  # [??] wording
            if not isinstance(data, dict):
                raise _bad("can't parse JSON request body")
            fields.update({k: _field_text(v) for k, v in data.items() if v is not None})
            return fields, files
        try:
            form = await request.post()
        except ValueError:
            raise _bad("can't parse request body") from None  # [??] wording
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = value.file.read()
            elif isinstance(value, bytes | bytearray):
                fields[key] = bytes(value).decode("utf-8", "replace")
            else:
                fields[key] = str(value)
        return fields, files

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        return queue.popleft() if queue else None

    def _failure_response(
        self, request: web.Request, method: str, failure: _Failure
    ) -> web.StreamResponse:
        if failure.kind == "drop":
            transport = request.transport
            if transport is not None:
                transport.abort()
            return web.Response(status=200)
        if failure.kind == "raw":
            body = failure.body or ""
            html = body.lstrip().startswith("<")
            self.answered_errors.append((method, failure.code, "raw body"))
            return web.Response(
                status=failure.code,
                text=body,
                content_type="text/html" if html else "application/json",
            )
        parameters = {"retry_after": failure.retry_after} if failure.retry_after else None
        return self._error_response(method, failure.code, failure.description, parameters)

    def _error_response(
        self,
        method: str,
        code: int,
        description: str,
        parameters: dict[str, Any] | None = None,
    ) -> web.Response:
        self.answered_errors.append((method, code, description))
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.Response(status=code, text=_dumps(body), content_type="application/json")

    def _wake(self) -> None:
        """Wake every held getUpdates (a push, an injected failure, a new poll or stop())."""
        self._changed.set()
        self._changed = asyncio.Event()

    # ----------------------------------------------------------------- routes

    async def _handle_method(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["method"]
        method = self._by_lower.get(name.lower(), name)
        try:
            fields, files = await self._read_request(request)
        except _TelegramError as error:
            return self._error_response(method, error.code, error.description)
        self.calls.append({"method": method, **self._decoded(fields, files)})
        if request.match_info["token"] != self.token:
            return self._error_response(method, 401, "Unauthorized")
        failure = self._take_failure(method)
        if failure is not None:
            return self._failure_response(request, method, failure)
        if method in SEND_METHODS and self._over_rate_limit(fields.get("chat_id", "")):
            self.rate_errors += 1
            return self._error_response(
                method, 429, "Too Many Requests: retry after 1", {"retry_after": 1}
            )
        return await self._execute(method, fields, files)

    def _over_rate_limit(self, chat_id: str) -> bool:
        """Telegram's limits (§3.5): about `rate_limit` messages a second overall and
        `per_chat_limit` a second into one chat; beyond them, 429. 0 = not enforced."""
        now = asyncio.get_running_loop().time()
        over = False
        if self.rate_limit:
            recent = self._send_times
            recent.append(now)
            while recent and recent[0] <= now - 1.0:
                recent.popleft()
            over = len(recent) > self.rate_limit
        if self.per_chat_limit:
            chat = self._chat_send_times.setdefault(chat_id, deque())
            chat.append(now)
            while chat and chat[0] <= now - 1.0:
                chat.popleft()
            over = over or len(chat) > self.per_chat_limit
        return over

    async def _execute(
        self, method: str, fields: dict[str, str], files: dict[str, bytes]
    ) -> web.Response:
        implementation = self._methods.get(method)
        if implementation is None:
            return self._error_response(method, 404, "Not Found")
        try:
            result = implementation(fields, files)
            if inspect.isawaitable(result):
                result = await result
        except _TelegramError as error:
            return self._error_response(method, error.code, error.description, error.parameters)
        body: dict[str, Any] = {"ok": True}
        if isinstance(result, _Described):
            body.update(result=result.result, description=result.description)
        else:
            body["result"] = result
        return web.Response(text=_dumps(body), content_type="application/json")

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        if request.match_info["token"] != self.token:
            return self._error_response(FILE, 401, "Unauthorized")
        failure = self._take_failure(FILE)
        if failure is not None:
            return self._failure_response(request, FILE, failure)
        file_id = self._by_path.get(path)
        if file_id is None or file_id not in self.files:
            return self._error_response(FILE, 404, "Not Found")
        self.downloads.append(path)
        kind = "image/jpeg" if path.endswith(".jpg") else "application/octet-stream"
        return web.Response(body=self.files[file_id], content_type=kind)

    async def _run_webhook_reply(self, content_type: str, body: bytes) -> None:
        """Telegram executes a method the webhook answered with (aiogram sends it as
        multipart form data when a handler returns a method and handle_in_background=False)."""
        fields: dict[str, str] = {}
        files: dict[str, bytes] = {}
        if content_type.startswith("application/json"):
            with contextlib.suppress(ValueError):
                data = json.loads(body or b"{}")
                if isinstance(data, dict):
                    fields = {k: _field_text(v) for k, v in data.items() if v is not None}
        elif content_type.startswith("multipart/form-data"):
            raw = f"Content-Type: {content_type}\r\n\r\n".encode() + body
            parsed = email.message_from_bytes(raw, policy=email.policy.HTTP)
            for part in parsed.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if not isinstance(name, str) or not isinstance(payload, bytes):
                    continue
                if part.get_filename():
                    files[name] = payload
                else:
                    fields[name] = payload.decode("utf-8")
        method_name = fields.pop("method", "")
        if not method_name:
            return
        method = self._by_lower.get(method_name.lower(), method_name)
        self.calls.append({"method": method, **self._decoded(fields, files)})
        await self._execute(method, fields, files)  # its answer goes nowhere, as on Telegram

    # ----------------------------------------------------------------- API methods

    def _get_me(self, fields: dict[str, str], files: dict[str, bytes]) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(
        self, fields: dict[str, str], files: dict[str, bytes]
    ) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise _TelegramError(409, WEBHOOK_CONFLICT)
        offset = _int_field(fields, "offset", 0)
        limit = min(max(_int_field(fields, "limit", UPDATES_LIMIT_MAX), 1), UPDATES_LIMIT_MAX)
        timeout = max(_int_field(fields, "timeout", 0), 0)
        if "allowed_updates" in fields:
            self.allowed_updates = _json_list(fields["allowed_updates"], "allowed_updates")
        # offset confirms every update below it, for good; a negative one keeps the last -N.
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]

        self._poll_seq += 1
        my_seq = self._poll_seq
        self._wake()  # a getUpdates still held for someone else ends with 409
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.hold_seconds if timeout > 0 else 0.0)
        self._holding += 1
        try:
            while True:
                if self._poll_seq != my_seq:
                    raise _TelegramError(409, DESCRIPTIONS[409])
                if self.webhook is not None:
                    raise _TelegramError(409, WEBHOOK_CONFLICT)
                batch = [u for u in self._updates if self._allowed(u)][:limit]
                if batch:
                    self.delivered_updates += len(batch)
                    return copy.deepcopy(batch)
                remaining = deadline - loop.time()
                if remaining <= 0 or self._closing:
                    return []
                changed = self._changed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), remaining)
        finally:
            self._holding -= 1

    def _allowed(self, update: dict[str, Any]) -> bool:
        kind = update_type(update)
        if self.allowed_updates:
            return kind in self.allowed_updates
        return kind not in NOT_BY_DEFAULT

    def _set_webhook(self, fields: dict[str, str], files: dict[str, bytes]) -> _Described:
        url = fields.get("url", "")
        if not url:
            return self._delete_webhook(fields, files)
        now = time.monotonic()
        if now < self._last_set_webhook + self.set_webhook_interval:
            raise _TelegramError(429, "Too Many Requests: retry after 1", {"retry_after": 1})
        self._last_set_webhook = now
        secret = fields.get("secret_token")
        if secret is not None and not SECRET_TOKEN.fullmatch(secret):
            raise _bad("secret token contains unallowed characters")
        parts = urlsplit(url)
        if not parts.hostname:
            raise _bad("invalid webhook URL specified")
        if parts.scheme != "https":
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        if (parts.port or 443) not in WEBHOOK_PORTS:
            raise _bad("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        with contextlib.suppress(ValueError):
            address = ipaddress.ip_address(parts.hostname)
            if not address.is_global:
                raise _bad(f"bad webhook: IP address {address} is reserved")
        allowed = (
            _json_list(fields["allowed_updates"], "allowed_updates")
            if "allowed_updates" in fields
            else None
        )
        if allowed is not None:
            self.allowed_updates = allowed
        drop = fields.get("drop_pending_updates") == "true"
        if drop:
            self._updates.clear()
        same = self.webhook is not None and self.webhook["url"] == url
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "allowed_updates": allowed,
            "max_connections": _int_field(fields, "max_connections", 40),
            "drop_pending_updates": drop,
        }
        self._wake()  # a held getUpdates ends with 409
        return _Described(
            True, "Webhook is already set" if same and not drop else "Webhook was set"
        )

    def _delete_webhook(self, fields: dict[str, str], files: dict[str, bytes]) -> _Described:
        if fields.get("drop_pending_updates") == "true":
            self._updates.clear()
        was_set, self.webhook = self.webhook is not None, None
        return _Described(True, "Webhook was deleted" if was_set else "Webhook is already deleted")

    def _get_webhook_info(self, fields: dict[str, str], files: dict[str, bytes]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook:
            info["max_connections"] = self.webhook["max_connections"]
        if self.allowed_updates:
            info["allowed_updates"] = list(self.allowed_updates)
        return info

    def _set_my_commands(self, fields: dict[str, str], files: dict[str, bytes]) -> bool:
        try:
            commands = json.loads(fields.get("commands", ""))
        except ValueError:
            raise _bad("can't parse commands JSON object") from None
        if not isinstance(commands, list):
            raise _bad("expected an Array of BotCommand")
        if len(commands) > BOT_COMMANDS_MAX:
            raise _bad("too many commands specified")  # [??] wording
        for item in commands:
            if not isinstance(item, dict):
                raise _bad("can't parse BotCommand: expected an Object")
            command = item.get("command")
            description = item.get("description")
            if not isinstance(command, str) or not BOT_COMMAND.fullmatch(command.lstrip("/")):
                raise _bad("BOT_COMMAND_INVALID")  # [??] TDLib's code for a bad command
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")  # [??]
        key = _scope_key(self._scope(fields), fields.get("language_code", ""))
        self.commands[key] = commands
        return True

    def _get_my_commands(
        self, fields: dict[str, str], files: dict[str, bytes]
    ) -> list[dict[str, Any]]:
        key = _scope_key(self._scope(fields), fields.get("language_code", ""))
        return self.commands.get(key, [])

    def _delete_my_commands(self, fields: dict[str, str], files: dict[str, bytes]) -> bool:
        key = _scope_key(self._scope(fields), fields.get("language_code", ""))
        self.commands.pop(key, None)
        return True

    def _send_message(self, fields: dict[str, str], files: dict[str, bytes]) -> dict[str, Any]:
        chat_id = self._target_chat(fields)
        text = _parsed_text(fields.get("text", ""), fields.get("parse_mode", ""))
        if not text.strip():
            raise _bad("message text is empty")
        if utf16_len(text.strip()) > MESSAGE_MAX_UTF16:
            raise _bad("message is too long")
        markup = self._reply_markup(fields)
        message = self._new_bot_message(chat_id, fields, markup)
        message["text"] = text.strip()
        self._record(message, "sendMessage", fields, files, text=fields.get("text"))
        return message

    def _send_photo(self, fields: dict[str, str], files: dict[str, bytes]) -> dict[str, Any]:
        chat_id = self._target_chat(fields)
        caption = self._caption(fields.get("caption"), fields.get("parse_mode", ""))
        photo, sizes = self._resolve_photo(fields.get("photo"), files, "photo")
        markup = self._reply_markup(fields)
        message = self._new_bot_message(chat_id, fields, markup)
        message["photo"] = sizes
        if caption:
            message["caption"] = caption
        self._record(
            message, "sendPhoto", fields, files, caption=fields.get("caption"), photo=photo
        )
        return message

    def _send_media_group(
        self, fields: dict[str, str], files: dict[str, bytes]
    ) -> list[dict[str, Any]]:
        chat_id = self._target_chat(fields)
        try:
            media = json.loads(fields.get("media", ""))
        except ValueError:
            raise _bad("can't parse media JSON object") from None
        if not isinstance(media, list):
            raise _bad("expected an Array of InputMedia")
        if not MEDIA_GROUP_MIN <= len(media) <= MEDIA_GROUP_MAX:
            raise _bad("wrong number of media specified")  # [??] wording
        resolved = []
        for item in media:
            if not isinstance(item, dict):
                raise _bad("can't parse InputMedia: expected an Object")
            if item.get("type") != "photo":
                # Telegram also takes video/audio/document albums; this bot only sends photos.
                raise _bad(f'can\'t parse InputMedia: type "{item.get("type")}" is unsupported')
            caption = self._caption(item.get("caption"), item.get("parse_mode", ""))
            photo, sizes = self._resolve_photo(item.get("media"), files, None)
            resolved.append((item, caption, photo, sizes))
        group_id = str(secrets.randbelow(9 * 10**16) + 10**16)
        messages = []
        for item, caption, photo, sizes in resolved:
            message = self._new_bot_message(chat_id, fields, None)
            message.update(media_group_id=group_id, photo=sizes)
            if caption:
                message["caption"] = caption
            self._record(
                message, "sendMediaGroup", fields, files, caption=item.get("caption"), photo=photo
            )
            messages.append(message)
        return messages

    def _send_chat_action(self, fields: dict[str, str], files: dict[str, bytes]) -> bool:
        self._target_chat(fields)
        if not fields.get("action"):
            raise _bad("wrong parameter action in request")
        return True

    def _answer_callback_query(self, fields: dict[str, str], files: dict[str, bytes]) -> bool:
        query_id = fields.get("callback_query_id", "")
        if query_id not in self._open_callbacks:
            raise _TelegramError(400, QUERY_INVALID)
        if len(fields.get("text", "")) > CALLBACK_ANSWER_MAX_CHARS:
            raise _bad("MESSAGE_TOO_LONG")  # [??] TDLib's code for a long answer text
        self._open_callbacks.discard(query_id)
        self.callback_answers.append(self._decoded(fields, files))
        return True

    def _edit_message_text(self, fields: dict[str, str], files: dict[str, bytes]) -> dict[str, Any]:
        message = self._editable(fields)
        text = _parsed_text(fields.get("text", ""), fields.get("parse_mode", "")).strip()
        if not text:
            raise _bad("message text is empty")
        if utf16_len(text) > MESSAGE_MAX_UTF16:
            raise _bad("message is too long")
        markup = self._reply_markup(fields, inline_only=True)
        if text == message.get("text") and markup == message.get("reply_markup"):
            raise _TelegramError(400, NOT_MODIFIED)
        message["text"] = text
        self._set_markup(message, markup, text=fields.get("text"))
        return copy.deepcopy(message)

    def _edit_message_reply_markup(
        self, fields: dict[str, str], files: dict[str, bytes]
    ) -> dict[str, Any]:
        message = self._editable(fields)
        markup = self._reply_markup(fields, inline_only=True)
        if markup == message.get("reply_markup"):
            raise _TelegramError(400, NOT_MODIFIED)
        self._set_markup(message, markup)
        return copy.deepcopy(message)

    def _delete_message(self, fields: dict[str, str], files: dict[str, bytes]) -> bool:
        chat_id = self._target_chat(fields, for_sending=False)
        key = (chat_id, _int_field(fields, "message_id", 0))
        if self._messages.pop(key, None) is None:
            raise _bad("message to delete not found")
        return True

    def _get_file(self, fields: dict[str, str], files: dict[str, bytes]) -> dict[str, Any]:
        file_id = fields.get("file_id", "")
        if file_id not in self.files:
            raise _bad("invalid file_id")
        content = self.files[file_id]
        if len(content) > DOWNLOAD_MAX_BYTES:
            raise _bad("file is too big")
        path = self._file_paths.get(file_id)
        if path is None:
            folder, extension = _file_kind(file_id)
            path = f"{folder}/file_{len(self._file_paths)}{extension}"
            self._file_paths[file_id] = path
            self._by_path[path] = file_id
        return {
            "file_id": file_id,
            "file_unique_id": self._unique_id(file_id),
            "file_size": len(content),
            "file_path": path,
        }

    # ----------------------------------------------------------------- method helpers

    def _target_chat(self, fields: dict[str, str], *, for_sending: bool = True) -> int:
        raw = fields.get("chat_id", "").strip()
        if not raw:
            raise _bad("chat_id is empty")
        try:
            chat_id = int(raw)
        except ValueError:
            raise _bad("chat not found") from None  # an @username the bot does not know
        if chat_id not in self.known_chats:
            if chat_id in self.users:  # seen in a group, never started the bot
                raise _TelegramError(403, "Forbidden: bot can't initiate conversation with a user")
            raise _bad("chat not found")
        if for_sending and chat_id in self.blocked:
            kind = self._chat_object(chat_id)["type"]
            if kind == "private":
                raise _TelegramError(403, "Forbidden: bot was blocked by the user")
            raise _TelegramError(403, f"Forbidden: bot was kicked from the {kind} chat")
        return chat_id

    def _caption(self, raw: Any, parse_mode: Any) -> str:
        if raw is None:
            return ""
        caption = _parsed_text(str(raw), str(parse_mode or "")).strip()
        if utf16_len(caption) > CAPTION_MAX_UTF16:
            raise _bad("message caption is too long")
        return caption

    def _reply_markup(
        self, fields: dict[str, str], *, inline_only: bool = False
    ) -> dict[str, Any] | None:
        """The parsed reply_markup, validated as the Bot API server does (Client.cpp
        get_reply_markup) plus the documented limits it leaves to Telegram."""
        raw = fields.get("reply_markup")
        if not raw:
            return None
        try:
            markup = json.loads(raw)
        except ValueError:
            raise _bad("can't parse reply keyboard markup JSON object") from None
        if not isinstance(markup, dict):
            raise _bad("object expected as reply markup")
        if "inline_keyboard" in markup:
            _check_inline_keyboard(markup["inline_keyboard"])
        elif inline_only:
            raise _bad("inline keyboard expected")  # [??] editMessage* take inline only
        elif "keyboard" in markup:
            _check_reply_keyboard(markup["keyboard"])
        elif not markup.get("remove_keyboard") and not markup.get("force_reply"):
            raise _bad("object expected as reply markup")  # [??] an empty/unknown object
        return markup

    def _resolve_photo(
        self, value: Any, files: dict[str, bytes], field_name: str | None
    ) -> tuple[str, list[dict[str, Any]]]:
        """What `photo` (or an InputMedia `media`) names: an upload, a URL or a file_id, as
        the SentMessage.photo text and the PhotoSize list of the resulting message."""
        content: bytes | None = None
        key = None
        if isinstance(value, str) and value.startswith("attach://"):
            key = value.removeprefix("attach://")
        elif not value and field_name is not None:
            key = field_name  # the file sent directly in the `photo` part
        if key is not None:
            content = files.get(key)
            if content is None:
                raise _bad("there is no photo in the request")
            if not content:
                raise _bad("file must be non-empty")
            if len(content) > PHOTO_MAX_BYTES:
                raise _TelegramError(413, "Request Entity Too Large")
            if not _looks_like_image(content):
                raise _bad("IMAGE_PROCESS_FAILED")
            self.uploads.append(content)
            return f"upload:{len(content)}", self._new_photo_sizes(content)
        if not isinstance(value, str) or not value:
            raise _bad("there is no photo in the request")
        if value.startswith(("http://", "https://")):
            if value in self.unreachable_urls:
                raise _bad("failed to get HTTP URL content")
            content = self.url_contents.get(value, TINY_JPEG)
            if not _looks_like_image(content):
                raise _bad("wrong type of the web page content")
            return value, self._new_photo_sizes(content)
        if value not in self.files:
            raise _TelegramError(400, WRONG_FILE)
        sizes = self._photo_sets.get(value)
        if sizes is None:  # a file_id the test put into `files` by hand
            size = {
                "file_id": value,
                "file_unique_id": self._unique_id(value),
                "width": 1280,
                "height": 960,
                "file_size": len(self.files[value]),
            }
            sizes = [size]
        return value, copy.deepcopy(sizes)

    def _new_bot_message(
        self, chat_id: int, fields: dict[str, str], markup: dict[str, Any] | None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": self._new_message_id(chat_id),
            "from": self.bot_user,
            "chat": self._chat_object(chat_id),
            "date": int(time.time()),
        }
        reply_to = self._reply_to(chat_id, fields)
        if reply_to is not None:
            message["reply_to_message"] = _without_reply(reply_to)
        if markup is not None and "inline_keyboard" in markup and markup["inline_keyboard"]:
            # Only an inline keyboard is part of the message; a reply keyboard is not echoed.
            message["reply_markup"] = markup
        return message

    def _reply_to(self, chat_id: int, fields: dict[str, str]) -> dict[str, Any] | None:
        target, allow_missing = None, fields.get("allow_sending_without_reply") == "true"
        if fields.get("reply_parameters"):
            try:
                parameters = json.loads(fields["reply_parameters"])
                target = int(parameters["message_id"])
            except (ValueError, KeyError, TypeError):
                raise _bad("can't parse reply parameters JSON object") from None
            allow_missing = bool(parameters.get("allow_sending_without_reply")) or allow_missing
        elif fields.get("reply_to_message_id"):
            target = _int_field(fields, "reply_to_message_id", 0)
        if target is None:
            return None
        found = self._messages.get((chat_id, target))
        if found is None and not allow_missing:
            raise _bad("message to be replied not found")
        return found

    def _record(
        self,
        message: dict[str, Any],
        method: str,
        fields: dict[str, str],
        files: dict[str, bytes],
        *,
        text: str | None = None,
        caption: str | None = None,
        photo: str | None = None,
    ) -> None:
        chat_id = message["chat"]["id"]
        self._messages[(chat_id, message["message_id"])] = copy.deepcopy(message)
        markup = fields.get("reply_markup")
        sent = SentMessage(
            chat_id=chat_id,
            text=text,
            caption=caption,
            method=method,
            message_id=message["message_id"],
            reply_markup=json.loads(markup) if markup else None,
            photo=photo,
            params=_with_uploads(fields, files),
            date=message["date"],
        )
        self._sent_by_key[(chat_id, sent.message_id)] = sent
        self.sent.append(sent)

    def _editable(self, fields: dict[str, str]) -> dict[str, Any]:
        if fields.get("inline_message_id"):
            raise _bad("message to edit not found")  # the bot sends no inline messages
        chat_id = self._target_chat(fields, for_sending=False)
        message = self._messages.get((chat_id, _int_field(fields, "message_id", 0)))
        if message is None:
            raise _bad("message to edit not found")
        if message.get("from", {}).get("id") != self.bot_id:
            raise _bad("message can't be edited")
        return message

    def _set_markup(
        self, message: dict[str, Any], markup: dict[str, Any] | None, text: str | None = None
    ) -> None:
        if markup and markup.get("inline_keyboard"):
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = int(time.time())
        sent = self._sent_by_key.get((message["chat"]["id"], message["message_id"]))
        if sent is not None:
            sent.reply_markup = markup
            if text is not None:
                sent.text = text

    def _scope(self, fields: dict[str, str]) -> dict[str, Any]:
        if not fields.get("scope"):
            return {"type": "default"}
        try:
            scope = json.loads(fields["scope"])
        except ValueError:
            raise _bad("can't parse BotCommandScope JSON object") from None
        if not isinstance(scope, dict) or not isinstance(scope.get("type"), str):
            raise _bad("can't parse BotCommandScope JSON object")
        return scope

    # ----------------------------------------------------------------- bookkeeping

    def _decoded(self, fields: dict[str, str], files: dict[str, bytes]) -> dict[str, Any]:
        """Fields as `calls` shows them: JSON fields parsed, uploads as "upload:<n>"."""
        decoded: dict[str, Any] = {}
        for key, value in _with_uploads(fields, files).items():
            if key in JSON_FIELDS:
                try:
                    decoded[key] = _resolve_attach(json.loads(value), files)
                except ValueError:
                    decoded[key] = value
            else:
                decoded[key] = value
        return decoded

    def _absorb(self, update: dict[str, Any]) -> None:
        """Learn what Telegram knows once an update exists: the chat, the sender, the files,
        the callback query id, whether the person blocked the bot."""
        body = update.get(update_type(update))
        if not isinstance(body, dict):
            return
        for message in _messages_in(body):
            chat = message.get("chat", {})
            if "id" in chat:
                self._learn_chat(chat)
                self._last_message_id[chat["id"]] = max(
                    self._last_message_id.get(chat["id"], 0), int(message.get("message_id", 0))
                )
                key = (chat["id"], message["message_id"])
                self._messages.setdefault(key, _without_reply(message))
            self._learn_files(message)
        sender = body.get("from")
        if isinstance(sender, dict) and not sender.get("is_bot"):
            self.users[sender["id"]] = sender
        if update_type(update) == "callback_query":
            self._open_callbacks.add(str(body["id"]))
        if update_type(update) == "my_chat_member":
            self._learn_chat(body["chat"])
            status = body["new_chat_member"]["status"]
            if status in ("kicked", "left"):
                self.blocked.add(body["chat"]["id"])
            else:
                self.blocked.discard(body["chat"]["id"])

    def _learn_chat(self, chat: dict[str, Any]) -> None:
        self.known_chats.add(chat["id"])
        self._chats[chat["id"]] = copy.deepcopy(chat)

    def _learn_files(self, message: dict[str, Any]) -> None:
        sizes = message.get("photo")
        if isinstance(sizes, list) and sizes:
            for size in sizes:
                self._learn_file(size, fake_jpeg(int(size.get("file_size", 0)), size["file_id"]))
                self._photo_sets[size["file_id"]] = sizes
        for key in ("sticker", "document", "voice", "video", "audio"):
            item = message.get(key)
            if isinstance(item, dict) and "file_id" in item:
                self._learn_file(item, _fake_file(key, int(item.get("file_size", 64))))
                thumbnail = item.get("thumbnail") or item.get("thumb")
                if isinstance(thumbnail, dict):
                    size = int(thumbnail.get("file_size", 64))
                    self._learn_file(thumbnail, fake_jpeg(size, thumbnail["file_id"]))

    def _learn_file(self, item: dict[str, Any], content: bytes) -> None:
        self.files.setdefault(item["file_id"], content)
        if "file_unique_id" in item:
            self._unique_ids.setdefault(item["file_id"], item["file_unique_id"])

    def _unique_id(self, file_id: str) -> str:
        if file_id not in self._unique_ids:
            self._unique_ids[file_id] = "AQAD" + secrets.token_urlsafe(12)[:12]
        return self._unique_ids[file_id]

    def _user(
        self, user_id: int, first_name: str, last_name: str | None, username: str | None
    ) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        user["language_code"] = "ru"
        return user

    def _chat_for(
        self, user: dict[str, Any], chat_type: str, chat_id: int | None
    ) -> dict[str, Any]:
        if chat_type == "private":
            chat = {k: v for k, v in user.items() if k in ("id", "first_name", "last_name")}
            if "username" in user:
                chat["username"] = user["username"]
            chat["type"] = "private"
            return chat
        default = GROUP_CHAT_ID if chat_type == "group" else SUPERGROUP_CHAT_ID
        return {"id": chat_id or default, "title": GROUP_TITLE, "type": chat_type}

    def _chat_object(self, chat_id: int) -> dict[str, Any]:
        """The Chat object of a known chat (one registered by hand gets a plausible one)."""
        if chat_id in self._chats:
            return copy.deepcopy(self._chats[chat_id])
        if chat_id > 0:
            return {"id": chat_id, "first_name": f"User{chat_id}", "type": "private"}
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return {"id": chat_id, "title": GROUP_TITLE, "type": kind}

    def _chat_member_update(self, user_id: int, old: str, new: str) -> dict[str, Any]:
        user = self.users.get(user_id) or self._user(user_id, "Иван", "Петров", None)
        chat = self._chats.get(user_id) or self._chat_for(user, "private", None)
        new_member: dict[str, Any] = {"user": self.bot_user, "status": new}
        if new == "kicked":
            new_member["until_date"] = 0
        old_member: dict[str, Any] = {"user": self.bot_user, "status": old}
        if old == "kicked":
            old_member["until_date"] = 0
        return {
            "my_chat_member": {
                "chat": chat,
                "from": user,
                "date": int(time.time()),
                "old_chat_member": old_member,
                "new_chat_member": new_member,
            }
        }

    def _new_message_id(self, chat_id: int) -> int:
        self._last_message_id[chat_id] = self._last_message_id.get(chat_id, 0) + 1
        return self._last_message_id[chat_id]

    def _new_photo_sizes(self, content: bytes | None = None) -> list[dict[str, Any]]:
        """PhotoSize objects of one new photo, largest last; the fake serves every size (the
        uploaded `content` for all of them, or generated JPEG-like bytes)."""
        stem = secrets.token_urlsafe(33)
        unique = secrets.token_urlsafe(9)
        sizes = []
        for index, (width, height, file_size) in enumerate(PHOTO_SIZES):
            file_id = f"AgACAgIAAxkBAAI{stem}{'ABCD'[index]}"
            data = content if content is not None else fake_jpeg(file_size, file_id)
            self.files[file_id] = data
            self._unique_ids[file_id] = f"AQAD{unique}{'mxyz'[index]}"
            sizes.append(
                {
                    "file_id": file_id,
                    "file_unique_id": self._unique_ids[file_id],
                    "file_size": len(data),
                    "width": width,
                    "height": height,
                }
            )
        for size in sizes:
            self._photo_sets[size["file_id"]] = sizes
        return sizes

    def _new_sticker(self) -> dict[str, Any]:
        file_id = "CAACAgIAAxkBAAI" + secrets.token_urlsafe(40)
        thumb_id = "AAMCAgADGQEAAI" + secrets.token_urlsafe(40)
        thumbnail = {
            "file_id": thumb_id,
            "file_unique_id": "AQAD" + secrets.token_urlsafe(9),
            "file_size": 5_418,
            "width": 128,
            "height": 128,
        }
        sticker = {
            "width": 512,
            "height": 512,
            "emoji": "👍",
            "set_name": "HotCherry",
            "is_animated": False,
            "is_video": False,
            "type": "regular",
            "thumbnail": thumbnail,
            "thumb": dict(thumbnail),
            "file_id": file_id,
            "file_unique_id": "AgAD" + secrets.token_urlsafe(9),
            "file_size": 27_384,
        }
        self.files[file_id] = _fake_file("sticker", 27_384)
        self.files[thumb_id] = fake_jpeg(5_418, thumb_id)
        self._unique_ids[file_id] = sticker["file_unique_id"]
        self._unique_ids[thumb_id] = thumbnail["file_unique_id"]
        return sticker


# --------------------------------------------------------------------- module helpers


def _field_text(value: Any) -> str:
    """A JSON body value as Telegram reads the same field from a form."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return _dumps(value)
    return str(value)


def _int_field(fields: dict[str, str], name: str, default: int) -> int:
    raw = fields.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise _bad(f"invalid {name} specified") from None  # [??] wording


def _json_list(raw: str, name: str) -> list[str]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise _bad(f"can't parse {name} JSON object") from None  # [??] wording
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"can't parse {name} JSON object")
    return value


def _scope_key(scope: dict[str, Any], language_code: str) -> str:
    key = json.dumps(scope, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{key} {language_code}" if language_code else key


def _chat_instance(chat_id: int) -> str:
    """A stable opaque chat_instance per chat, shaped like Telegram's (a signed 64-bit)."""
    return str(-(4_000_000_000_000_000_000 + abs(chat_id) % 10**15))


def _callback_data_of(message: dict[str, Any]) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["callback_data"] for row in rows for b in row if "callback_data" in b]


def _without_reply(message: dict[str, Any]) -> dict[str, Any]:
    quoted = copy.deepcopy(message)
    quoted.pop("reply_to_message", None)
    return quoted


def _messages_in(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every Message object inside an update body (itself, a quoted one, a callback's)."""
    found = []
    if "message_id" in body and "chat" in body:
        found.append(body)
    for key in ("message", "reply_to_message", "pinned_message"):
        inner = body.get(key)
        if isinstance(inner, dict):
            found.extend(_messages_in(inner))
    return found


def _move_user(update: dict[str, Any], user_id: int) -> None:
    """Make the (non-bot) sender of a payload `user_id`, in `from`, private chats and contacts."""
    old_ids = set()

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("from"), dict) and not value["from"].get("is_bot"):
                old_ids.add(value["from"]["id"])
            for inner in value.values():
                visit(inner)
        elif isinstance(value, list):
            for inner in value:
                visit(inner)

    def rewrite(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("id") in old_ids and ("first_name" in value or "type" in value):
                value["id"] = user_id
            if value.get("user_id") in old_ids:
                value["user_id"] = user_id
            for inner in value.values():
                rewrite(inner)
        elif isinstance(value, list):
            for inner in value:
                rewrite(inner)

    visit(update)
    rewrite(update)


def _with_uploads(fields: dict[str, str], files: dict[str, bytes]) -> dict[str, str]:
    """Fields with "attach://<key>" values and direct file parts shown as "upload:<n>"."""
    shown: dict[str, str] = {}
    referenced: set[str] = set()
    for key, value in fields.items():
        name = value.removeprefix("attach://") if value.startswith("attach://") else None
        if name is not None and name in files:
            referenced.add(name)
            shown[key] = f"upload:{len(files[name])}"
        else:
            shown[key] = value
            referenced.update(k for k in files if f"attach://{k}" in value)  # JSON (media)
    for key, content in files.items():
        if key not in referenced:
            shown.setdefault(key, f"upload:{len(content)}")
    return shown


def _resolve_attach(value: Any, files: dict[str, bytes]) -> Any:
    if isinstance(value, dict):
        return {k: _resolve_attach(v, files) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_attach(v, files) for v in value]
    if isinstance(value, str) and value.startswith("attach://"):
        key = value.removeprefix("attach://")
        if key in files:
            return f"upload:{len(files[key])}"
    return value


def _looks_like_image(content: bytes) -> bool:
    webp = content[:4] == b"RIFF" and content[8:12] == b"WEBP"
    return webp or content.startswith(_IMAGE_MAGIC)


def _fake_file(kind: str, size: int) -> bytes:
    if kind == "sticker":
        head = b"RIFF" + (max(size, 12) - 8).to_bytes(4, "little") + b"WEBPVP8 "
        return head + b"\x00" * max(size - len(head), 0)
    return b"\x00" * size


def _file_kind(file_id: str) -> tuple[str, str]:
    """Folder and extension of a file_path, from the file_id's type prefix."""
    if file_id.startswith("CAAC"):
        return "stickers", ".webp"
    if file_id.startswith("BQAC"):
        return "documents", ""
    return "photos", ".jpg"


def _check_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list):
        raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    for row in rows:
        if not isinstance(row, list):
            raise _bad(
                'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
            )
        for button in row:
            problem = _inline_button_problem(button)
            if problem == "BUTTON_DATA_INVALID":
                raise _bad(problem)
            if problem:
                raise _bad(f"can't parse inline keyboard button: {problem}")


def _inline_button_problem(button: Any) -> str:
    if not isinstance(button, dict):
        return "InlineKeyboardButton must be an Object"
    if "text" not in button:
        return 'Can\'t find field "text"'
    if not isinstance(button["text"], str):
        return 'Field "text" must be of type String'
    actions = [name for name in INLINE_BUTTON_ACTIONS if button.get(name) not in (None, "")]
    if not actions:
        return "Text buttons are unallowed in the inline keyboard"
    if len(actions) > 1:
        # The docs say "exactly one"; the server would silently take the first one. [??]
        return f"exactly one of the optional fields must be used, got {', '.join(actions)}"
    data = button.get("callback_data")
    if data is not None:
        if not isinstance(data, str):
            return 'Field "callback_data" must be of type String'
        if not 1 <= len(data.encode()) <= CALLBACK_DATA_MAX_BYTES:
            return "BUTTON_DATA_INVALID"
    url = button.get("url")
    if url is not None and not (isinstance(url, str) and re.match(r"(https?|tg)://\S", url)):
        return f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL"  # [??]
    return ""


def _check_reply_keyboard(rows: Any) -> None:
    if not isinstance(rows, list):
        raise _bad('field "keyboard" of the ReplyKeyboardMarkup must be an Array')
    for row in rows:
        if not isinstance(row, list):
            raise _bad('field "keyboard" of the ReplyKeyboardMarkup must be an Array of Arrays')
        for button in row:
            if isinstance(button, str):
                continue  # a bare string is a text button
            if not isinstance(button, dict):
                raise _bad(
                    "can't parse keyboard button: KeyboardButton must be a String or an Object"
                )
            if "text" not in button:
                raise _bad("can't parse keyboard button: Can't find field \"text\"")
            if not isinstance(button["text"], str):
                raise _bad('can\'t parse keyboard button: Field "text" must be of type String')


def _parsed_text(text: str, parse_mode: str) -> str:
    """The text as Telegram stores it: HTML markup parsed (and validated) in parse_mode HTML.
    Markdown modes are taken as they are: this fake does not parse them."""
    mode = parse_mode.lower()
    if mode in ("", "none", "markdown", "markdownv2"):
        return text
    if mode != "html":
        raise _bad("unsupported parse_mode")
    return _parse_html(text)


def _parse_html(text: str) -> str:
    """Plain text of Telegram HTML; errors worded as TDLib's parse_html words them."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "&":
            match = re.match(r"&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);", text[i:])
            if match:
                name = match.group(1)
                code = int(name[2:], 16) if name.startswith("#x") else None
                if name.startswith("#") and code is None:
                    code = int(name[1:])
                if code is not None and 0 < code <= 0x10FFFF:
                    out.append(chr(code))
                elif name in HTML_ENTITIES:
                    out.append(HTML_ENTITIES[name])
                else:
                    out.append(match.group())  # an unknown named entity stays as it is
                i += len(match.group())
                continue
            out.append(char)
            i += 1
            continue
        if char != "<":
            out.append(char)
            i += 1
            continue
        offset = len(text[:i].encode())
        end = text.find(">", i)
        if text.startswith("</", i):
            if end < 0:
                raise _bad(f"can't parse entities: Unclosed end tag at byte offset {offset}")
            name = text[i + 2 : end].strip().lower()
            if not stack:
                raise _bad(f"can't parse entities: Unexpected end tag at byte offset {offset}")
            if name != stack[-1]:
                raise _bad(
                    f"can't parse entities: Unmatched end tag at byte offset {offset}, "
                    f'expected "</{stack[-1]}>", found "</{name}>"'
                )
            stack.pop()
            i = end + 1
            continue
        name_match = re.match(r"[^\s>/<]*", text[i + 1 :])
        name = name_match.group().lower() if name_match else ""
        if name not in HTML_TAGS:
            raise _bad(
                f'can\'t parse entities: Unsupported start tag "{name}" at byte offset {offset}'
            )
        if end < 0:
            raise _bad(f"can't parse entities: Unclosed start tag at byte offset {offset}")
        attributes = text[i + 1 + len(name) : end]
        if name == "span" and not re.search(r"""class\s*=\s*["']?tg-spoiler""", attributes):
            raise _bad(
                'can\'t parse entities: Tag "span" must have class "tg-spoiler" '
                f"at byte offset {offset}"
            )
        stack.append(name)
        i = end + 1
    if stack:
        raise _bad(
            f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1]}\""
        )
    return "".join(out)
