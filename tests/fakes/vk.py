"""A fake VK API (5.199) on 127.0.0.1 that speaks the real wire format, so tests can run vkbottle
with real HTTP against it: API methods, the Bots Long Poll, photo upload and photo download.

What real VK does, and so what this fake does, is taken from the shared notes:
messenger-apis.md §1 (VK) and library-notes.md §2-§4 (vkbottle against fake servers).
Marks such as [??] repeat the notes' "not confirmed against the live API".

Several communities (SPEC §14): the fake hosts its main community (`group_id`) and any added
with `add_community(group_id, token)`; a call is the community's whose token it carries (a
token the fake was not told of is the main community's, as before communities existed), each
community has its own long-poll stream, and every message sent records who sent it.

Comments under posts, as the official schema (github.com/VKCOM/vk-api-schema, 5.199) has
them: `wall.createComment` (wall/methods.json: owner_id, post_id, from_group, message,
reply_to_comment, guid; access_token_type user and group; answer {comment_id,
parents_stack}) and the events `wall_reply_new` / `wall_reply_edit` (callback/objects.json:
a wall_wall_comment) and `wall_reply_delete` (callback_wall_comment_delete: owner_id, id,
user_id, post_id), no field the schema does not name (tests/test_vk_wall_schema.py checks
them against tests/payloads/vk/wall_schema.json). A comment the fake posts for the bot is pushed
back to the long poll as `wall_reply_new` from -group_id, as VK does (messenger-apis.md
§1.11), so the bot must not take its own answers for new comments.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from tests.fakes.base import LoopbackFake

API_VERSION = "5.199"
PAYLOADS_DIR = Path(__file__).resolve().parent.parent / "payloads" / "vk"

# Pseudo method names: `fail_method` / `drop_connections` also apply to these routes.
LONG_POLL = "longpoll"
UPLOAD = "upload"
IMAGE = "img"

# messages.send limits (messenger-apis.md §1.6). The schema allows 9000 characters, vkbottle
# splits at 4096; the notes say respect 4096 [??: exact server limit].
MESSAGE_MAX_CHARS = 4096
BUTTON_LABEL_MAX_CHARS = 40
BUTTON_PAYLOAD_MAX_CHARS = 255  # "commonly stated" [??]
EVENT_DATA_MAX_CHARS = 1000
PEER_IDS_MAX = 100
# Real VK knows more action types (open_app, vkpay, open_photo); the bot sends only these.
BUTTON_TYPES = frozenset({"text", "callback", "location", "open_link"})
BUTTON_COLORS = frozenset({"primary", "secondary", "negative", "positive", "default"})
LONG_POLL_BATCH = 100
CHAT_PEER_OFFSET = 2_000_000_000  # peer_id of a group chat = 2000000000 + chat_id

# Real error_msg texts (vk-schema errors.json; 5, 100 and 8 as VK words them in answers).
ERROR_MESSAGES: dict[int, str] = {
    1: "Unknown error occurred",
    3: "Unknown method passed",
    5: "User authorization failed: invalid access_token (4).",
    6: "Too many requests per second",
    7: "Permission to perform this action is denied",
    8: "Invalid request",
    9: "Flood control",
    10: "Internal server error",
    14: "Captcha needed",
    15: "Access denied",
    29: "Rate limit reached",
    100: "One of the parameters specified was missing or invalid",
    104: "Not found",
    900: "Can't send messages for users from blacklist",
    901: "Can't send messages for users without permission",
    902: "Can't send messages to this user due to their privacy settings",
    911: "Keyboard format is invalid",
    912: "This is a chat bot feature, change this status in settings",
    914: "Message is too long",
    917: "You don't have access to this chat",
    945: "Chat was disabled",
    950: "Can't send message, reply timed out",
}

# What a desktop client reports in message_new.client_info (messenger-apis.md §1.10).
CLIENT_INFO: dict[str, Any] = {
    "button_actions": [
        "text",
        "vkpay",
        "open_app",
        "location",
        "open_link",
        "callback",
        "intent_subscribe",
        "intent_unsubscribe",
    ],
    "keyboard": True,
    "inline_keyboard": True,
    "carousel": True,
    "lang_id": 0,
}

# Photo sizes as VK lists them: not ordered by size, so "largest" must compare width*height.
PHOTO_SIZES: tuple[tuple[str, int, int], ...] = (
    ("s", 75, 56),
    ("m", 130, 97),
    ("x", 604, 453),
    ("o", 130, 98),
    ("p", 200, 150),
    ("q", 320, 240),
    ("r", 510, 383),
    ("y", 807, 605),
    ("z", 1280, 960),
)

# A JPEG header and end marker: enough for a type sniffer, not a decodable picture.
TINY_JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    b"\xff\xdb\x00\x43\x00" + bytes(range(1, 65)) + b"\xff\xd9"
)


@dataclass(frozen=True)
class KeyboardLimits:
    rows: int
    per_row: int
    buttons: int


# messenger-apis.md §1.6 "Keyboard": standard 5x10 and 40 buttons, inline 5x6 and 10 buttons.
STANDARD_KEYBOARD = KeyboardLimits(rows=10, per_row=5, buttons=40)
INLINE_KEYBOARD = KeyboardLimits(rows=6, per_row=5, buttons=10)


@dataclass
class SentMessage:
    """One message the bot sent through messages.send (one per peer for `peer_ids`)."""

    peer_id: int
    text: str
    random_id: int
    keyboard: dict[str, Any] | None
    attachment: str | None
    message_id: int
    conversation_message_id: int = 0
    date: int = 0
    params: dict[str, str] = field(default_factory=dict)  # everything the call carried
    group_id: int = 0  # the community that sent it (its token)


@dataclass
class WallComment:
    """A comment under a post of a community's wall (wall_wall_comment, the fields used)."""

    id: int
    owner_id: int  # the wall: -group_id
    post_id: int
    from_id: int  # negative: the community itself
    text: str
    date: int
    reply_to_comment: int | None = None
    reply_to_user: int | None = None
    parents_stack: list[int] = field(default_factory=list)
    guid: str | None = None
    params: dict[str, str] = field(default_factory=dict)  # what wall.createComment carried

    def as_object(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": self.id,
            "from_id": self.from_id,
            "date": self.date,
            "text": self.text,
            "post_id": self.post_id,
            "owner_id": self.owner_id,
            "parents_stack": list(self.parents_stack),
            "attachments": [],
            "thread": {"count": 0, "items": [], "can_post": True, "show_reply_button": True},
        }
        if self.reply_to_comment is not None:
            obj["reply_to_comment"] = self.reply_to_comment
        if self.reply_to_user is not None:
            obj["reply_to_user"] = self.reply_to_user
        return obj


# wall.createComment's errors (vk-api-schema wall/methods.json; errors.json).
WALL_ACCESS_REPLIES = 212  # Access to post comments denied
WALL_LINKS_FORBIDDEN = 222  # Hyperlinks are forbidden
WALL_REPLY_OWNER_FLOOD = 223  # Too many replies
ERROR_MESSAGES_WALL = {
    212: "Access to post comments denied",
    213: "Access to status replies denied",
    222: "Hyperlinks are forbidden",
    223: "Too many replies",
}
ERROR_MESSAGES.update(ERROR_MESSAGES_WALL)


@dataclass(frozen=True)
class _Failure:
    kind: Literal["error", "raw", "drop"]
    code: int = 0
    status: int = 200
    body: str | None = None


class _VKError(Exception):
    """Raised inside a method implementation; becomes a VK error envelope."""

    def __init__(self, code: int, detail: str | None = None) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


def load_payload(name: str) -> dict[str, Any]:
    """A real-shaped VK JSON from tests/payloads/vk/ (`name` with or without `.json`)."""
    file_name = name if name.endswith(".json") else f"{name}.json"
    data: dict[str, Any] = json.loads((PAYLOADS_DIR / file_name).read_text("utf-8"))
    return data


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


class FakeVK(LoopbackFake):
    """A fake VK community API; see the module docstring. Start it, point vkbottle's
    `api.API_URL` at `api_url`, push updates, and inspect `calls` / `sent` afterwards."""

    def __init__(self, group_id: int = 777, *, hold_seconds: float = 0.2) -> None:
        self.group_id = group_id
        self.tokens: dict[str, int] = {}  # token -> group_id, for the added communities
        self.comments: list[WallComment] = []  # every comment on every wall, in order
        self.hold_seconds = hold_seconds
        self.group_name = "Обращения граждан"
        self.url = ""
        self.users: dict[int, tuple[str, str]] = {}
        # What the bot did, in order.
        self.calls: list[dict[str, str]] = []
        self.sent: list[SentMessage] = []
        self.polls: list[dict[str, str]] = []  # query of every long-poll request
        self.seen_event_answers: list[dict[str, str]] = []
        self.uploads: list[bytes] = []
        self.downloads: list[str] = []  # names requested under /img/
        self.delivered_events = 0
        self.rate_limit = 0.0  # calls a second enforced with error 6 (0 = off)
        self.rate_errors = 0
        self._call_times: deque[float] = deque()
        # Every error envelope the fake answered: (method, error_code, why).
        self.answered_errors: list[tuple[str, int, str]] = []
        # Bugs inside the fake itself (answered as error 10 instead of raising).
        self.errors: list[str] = []

        self._streams: dict[int, list[dict[str, Any]]] = {group_id: []}
        self._keys: dict[str, int] = {}  # long-poll key -> its community
        self._poll_failures: deque[tuple[int, str | None]] = deque()
        self._failures: dict[str, deque[_Failure]] = {}
        self._changed = asyncio.Event()
        self._holding = 0
        self._closing = False
        self._next_message_id = 1
        self._next_photo_id = 457239017
        self._cmids: dict[int, int] = {}
        self._by_random_id: dict[tuple[int, int, int], SentMessage] = {}
        self._by_guid: dict[tuple[int, str], WallComment] = {}
        self._next_comment_id = 1
        self._upload_tokens: dict[str, int] = {}  # opaque upload token -> index in uploads
        self._images: dict[str, bytes] = {}
        self._runner: web.AppRunner | None = None
        self._methods: dict[str, Callable[[dict[str, str]], Any]] = {
            "groups.getById": self._groups_get_by_id,
            "groups.getLongPollServer": self._groups_get_long_poll_server,
            "users.get": self._users_get,
            "messages.send": self._messages_send,
            "messages.edit": self._messages_edit,
            "messages.sendMessageEventAnswer": self._messages_send_message_event_answer,
            "photos.getMessagesUploadServer": self._photos_get_messages_upload_server,
            "photos.saveMessagesPhoto": self._photos_save_messages_photo,
            "wall.createComment": self._wall_create_comment,
        }

    # ----------------------------------------------------------------- lifecycle

    @property
    def api_url(self) -> str:
        """What vkbottle's `API.API_URL` (and the bot's `[vk] api_url`) is set to."""
        return f"{self.url}/method/"

    async def start(self) -> None:
        app = web.Application(middlewares=[self._guard], client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/method/{name}", self._handle_method)
        app.router.add_route("*", "/lp", self._handle_long_poll)
        app.router.add_post("/upload", self._handle_upload)
        app.router.add_get("/img/{name}", self._handle_image)
        self._closing = False
        await self._serve(app)

    async def stop(self) -> None:
        self._closing = True
        self._wake()
        await self._close()

    # ----------------------------------------------------------------- what the bot sent

    def _over_rate_limit(self) -> bool:
        """VK's limit for a community token (§1.8: 20 calls a second): more than
        `rate_limit` calls within any second answer error 6. 0 = not enforced."""
        if not self.rate_limit:
            return False
        now = asyncio.get_running_loop().time()
        recent = self._call_times
        recent.append(now)
        while recent and recent[0] <= now - 1.0:
            recent.popleft()
        return len(recent) > self.rate_limit

    @property
    def _updates(self) -> list[dict[str, Any]]:
        """The main community's long-poll stream."""
        return self._streams[self.group_id]

    def add_community(self, group_id: int, token: str) -> None:
        """Host another community, reached with `token` (SPEC §14)."""
        self.tokens[token] = group_id
        self._streams.setdefault(group_id, [])

    def messages_to(self, peer_id: int, group_id: int | None = None) -> list[SentMessage]:
        """Messages sent to `peer_id` (by the community `group_id`, if given)."""
        return [
            m
            for m in self.sent
            if m.peer_id == peer_id and (group_id is None or m.group_id == group_id)
        ]

    def replies_to(self, comment_id: int) -> list[WallComment]:
        """Comments posted in answer to comment `comment_id`."""
        return [c for c in self.comments if c.reply_to_comment == comment_id]

    def calls_of(self, method: str) -> list[dict[str, str]]:
        return [c for c in self.calls if c["method"] == method]

    async def wait_for_poll(self, within: float = 5.0, *, count: int = 1) -> None:
        """Until `count` long-poll requests are being held (the bot listens to that many
        communities; pushes reach it)."""
        await self.wait_for(lambda: self._holding >= count, within, f"{count} long polls")

    async def wait_sent(self, count: int, within: float = 5.0) -> list[SentMessage]:
        """Until at least `count` messages were sent in total; returns them all."""
        await self.wait_for(lambda: len(self.sent) >= count, within, f"{count} sent messages")
        return list(self.sent)

    async def wait_delivered(self, count: int, within: float = 5.0) -> None:
        await self.wait_for(
            lambda: self.delivered_events >= count, within, f"{count} delivered updates"
        )

    # ----------------------------------------------------------------- updates

    def push(self, update: dict[str, Any]) -> None:
        """Queue a full update envelope {"type","object","group_id","event_id","v"}; the next
        long-poll answer of its community carries it (with whatever else is queued, up to
        100)."""
        group = update.get("group_id")
        stream = self._streams.get(group) if isinstance(group, int) else None
        (stream if stream is not None else self._updates).append(update)
        self._wake()

    def message_new(
        self,
        from_id: int,
        text: str = "",
        *,
        payload: str | None = None,
        attachments: list[dict[str, Any]] | None = None,
        geo: dict[str, Any] | None = None,
        reply_message: dict[str, Any] | None = None,
        peer_id: int | None = None,
        group_id: int | None = None,
    ) -> dict[str, Any]:
        """Build and push a `message_new` update from `from_id` (a private dialog unless
        `peer_id` says otherwise) to the community `group_id` (the main one by default);
        `payload` is the JSON *string* a keyboard button carries."""
        peer = from_id if peer_id is None else peer_id
        # In group chats VK gives bots id 0 (only conversation_message_id identifies them).
        message_id = 0 if peer >= CHAT_PEER_OFFSET else self._new_message_id()
        message: dict[str, Any] = {
            "date": int(time.time()),
            "from_id": from_id,
            "id": message_id,
            "out": 0,
            "version": 10_000_000 + self._next_message_id,
            "attachments": list(attachments or []),
            "conversation_message_id": self._new_cmid(peer),
            "fwd_messages": [],
            "important": False,
            "is_hidden": False,
            "peer_id": peer,
            "random_id": 0,
            "text": text,
        }
        if payload is not None:
            message["payload"] = payload
        if geo is not None:
            message["geo"] = geo
        if reply_message is not None:
            message["reply_message"] = reply_message
        update = self._envelope(
            "message_new", {"message": message, "client_info": CLIENT_INFO}, group_id
        )
        self.push(update)
        return update

    def message_event(
        self,
        user_id: int,
        payload: dict[str, Any],
        *,
        peer_id: int | None = None,
        group_id: int | None = None,
    ) -> dict[str, Any]:
        """Build and push a `message_event` (callback button press); `payload` is an object
        here, unlike message_new (messenger-apis.md §1.4)."""
        peer = user_id if peer_id is None else peer_id
        obj = {
            "user_id": user_id,
            "peer_id": peer,
            "event_id": secrets.token_hex(6),
            "payload": payload,
            "conversation_message_id": self._cmids.get(peer, 0),
        }
        update = self._envelope("message_event", obj, group_id)
        self.push(update)
        return update

    # ----------------------------------------------------------------- the wall

    def wall_reply_new(
        self,
        from_id: int,
        text: str,
        *,
        post_id: int = 1,
        group_id: int | None = None,
        reply_to_comment: int | None = None,
        push: bool = True,
    ) -> dict[str, Any]:
        """A person comments under post `post_id` of community `group_id`: the comment is
        on the wall, and its `wall_reply_new` is pushed (unless `push` is False: build the
        envelope for a Callback API test). Returns the envelope."""
        group = self.group_id if group_id is None else group_id
        comment = self._add_comment(-group, post_id, from_id, text, reply_to_comment)
        update = self._envelope("wall_reply_new", comment.as_object(), group)
        if push:
            self.push(update)
        return update

    def wall_reply_edit(self, comment_id: int, text: str, *, push: bool = True) -> dict[str, Any]:
        """The author edits comment `comment_id`: `wall_reply_edit` with the new text."""
        comment = self._comment(comment_id)
        comment.text = text
        update = self._envelope("wall_reply_edit", comment.as_object(), -comment.owner_id)
        if push:
            self.push(update)
        return update

    def wall_reply_delete(self, comment_id: int, *, push: bool = True) -> dict[str, Any]:
        """Comment `comment_id` is deleted: `wall_reply_delete` (callback_wall_comment_delete,
        `user_id` its author)."""
        comment = self._comment(comment_id)
        self.comments.remove(comment)
        obj = {
            "owner_id": comment.owner_id,
            "id": comment.id,
            "user_id": comment.from_id,
            "post_id": comment.post_id,
        }
        update = self._envelope("wall_reply_delete", obj, -comment.owner_id)
        if push:
            self.push(update)
        return update

    def _comment(self, comment_id: int) -> WallComment:
        for comment in self.comments:
            if comment.id == comment_id:
                return comment
        raise KeyError(f"no comment {comment_id}")

    def _add_comment(
        self,
        owner_id: int,
        post_id: int,
        from_id: int,
        text: str,
        reply_to_comment: int | None,
    ) -> WallComment:
        parents: list[int] = []
        reply_to_user = None
        if reply_to_comment is not None:
            parent = self._comment(reply_to_comment)
            parents = [*parent.parents_stack, parent.id] if parent.parents_stack else [parent.id]
            reply_to_user = parent.from_id
        comment = WallComment(
            id=self._next_comment_id,
            owner_id=owner_id,
            post_id=post_id,
            from_id=from_id,
            text=text,
            date=int(time.time()),
            reply_to_comment=reply_to_comment,
            reply_to_user=reply_to_user,
            parents_stack=parents[:1],
        )
        self._next_comment_id += 1
        self.comments.append(comment)
        return comment

    def push_payload(self, name: str, *, from_id: int | None = None) -> dict[str, Any]:
        """Push an update from tests/payloads/vk/ with fresh ids (event, message,
        conversation message), and photo URLs moved onto this fake; returns it."""
        update = load_payload(name)
        update["event_id"] = secrets.token_hex(20)
        update["group_id"] = self.group_id
        obj = update.get("object", {})
        message = obj.get("message") if isinstance(obj, dict) else None
        if isinstance(message, dict):
            if from_id is not None:
                message["from_id"] = message["peer_id"] = from_id
            message["id"] = self._new_message_id()
            message["conversation_message_id"] = self._new_cmid(message["peer_id"])
            message["date"] = int(time.time())
        elif isinstance(obj, dict) and update.get("type") == "message_event":
            if from_id is not None:
                obj["user_id"] = obj["peer_id"] = from_id
            obj["event_id"] = secrets.token_hex(6)
        localized: dict[str, Any] = self._localize_urls(update)
        self.push(localized)
        return localized

    def photo_attachment(self, owner_id: int, photo_id: int) -> dict[str, Any]:
        """A real-shaped photo attachment whose size URLs this fake serves (after start())."""
        access_key = secrets.token_hex(9)
        return {"type": "photo", "photo": self._photo_object(owner_id, photo_id, access_key)}

    def quote(self, message: SentMessage) -> dict[str, Any]:
        """The `reply_message` VK attaches when a person replies to the bot's `message`."""
        return {
            "date": message.date,
            "from_id": -self.group_id,
            "text": message.text,
            "attachments": [],
            "conversation_message_id": message.conversation_message_id,
            "peer_id": message.peer_id,
            "id": message.message_id,
        }

    # ----------------------------------------------------------------- failure injection

    def fail_next_poll(self, code: int, ts: str | None = None) -> None:
        """The next long-poll answer is {"failed": code}. 1 carries "ts" (`ts`, by default the
        poller's own, so nothing is lost); after 2 and 3 the issued keys stop working, so the
        poller must call groups.getLongPollServer again. 4 carries min/max_version."""
        self._poll_failures.append((code, ts))
        self._wake()

    def fail_method(
        self,
        method: str,
        error_code: int,
        times: int = 1,
        *,
        http_status: int = 200,
        body: str | None = None,
    ) -> None:
        """The next `times` calls of `method` answer a VK error envelope with `error_code`
        (HTTP 200, as VK does); with `body` or a non-200 `http_status`, that raw answer
        instead (e.g. 502 with an HTML page). LONG_POLL, UPLOAD, IMAGE name the other routes."""
        raw = body is not None or http_status != 200
        failure = (
            _Failure("raw", error_code, http_status, body) if raw else _Failure("error", error_code)
        )
        self._failures.setdefault(method, deque()).extend([failure] * times)
        self._wake()

    def drop_connections(self, method: str, times: int = 1) -> None:
        """The next `times` requests of `method` get their connection closed unanswered."""
        self._failures.setdefault(method, deque()).extend([_Failure("drop")] * times)
        self._wake()

    def heal(self) -> None:
        """Forget the failures still queued by `fail_method` and `drop_connections`."""
        self._failures.clear()

    # ----------------------------------------------------------------- HTTP plumbing

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """The fake never raises: a bug in it becomes VK error 10 and a line in `errors`."""
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception as exc:
            self.errors.append(f"{request.method} {request.path_qs}: {exc!r}")
            return self._error_response(request.path, 10, {}, "fake failed: see FakeVK.errors")

    @staticmethod
    async def _read_params(request: web.Request) -> dict[str, str]:
        params = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and "access_token" not in params:
            params["access_token"] = auth.removeprefix("Bearer ")
        return params

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        return queue.popleft() if queue else None

    def _failure_response(
        self, request: web.Request, method: str, params: dict[str, str], failure: _Failure
    ) -> web.StreamResponse:
        if failure.kind == "drop":
            transport = request.transport
            if transport is not None:
                transport.abort()
            return web.Response(status=200)
        if failure.kind == "raw":
            body = failure.body
            if body is None:
                body = _dumps(self._error_body(method, failure.code, params))
            html = body.lstrip().startswith("<")
            return web.Response(
                status=failure.status,
                text=body,
                content_type="text/html" if html else "application/json",
            )
        return self._error_response(method, failure.code, params, "injected")

    def _error_body(
        self, method: str, code: int, params: dict[str, str], message: str | None = None
    ) -> dict[str, Any]:
        request_params = [
            {"key": k, "value": v} for k, v in params.items() if k not in ("access_token",)
        ]
        request_params += [{"key": "method", "value": method}, {"key": "oauth", "value": "1"}]
        error: dict[str, Any] = {
            "error_code": code,
            "error_msg": message or ERROR_MESSAGES.get(code, ERROR_MESSAGES[1]),
            "request_params": request_params,
        }
        if code == 14:  # vkbottle's CaptchaError requires both fields
            error["captcha_sid"] = secrets.token_hex(6)
            error["captcha_img"] = f"{self.url}/img/captcha.jpg"
        return {"error": error}

    def _error_response(
        self,
        method: str,
        code: int,
        params: dict[str, str],
        why: str,
        message: str | None = None,
    ) -> web.Response:
        self.answered_errors.append((method, code, why))
        return web.Response(
            text=_dumps(self._error_body(method, code, params, message)),
            content_type="application/json",
        )

    def _wake(self) -> None:
        """Wake every held long poll (a push, an injected failure or stop())."""
        self._changed.set()
        self._changed = asyncio.Event()

    # ----------------------------------------------------------------- routes

    async def _handle_method(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["name"]
        params = await self._read_params(request)
        self.calls.append({"method": method, **params})
        failure = self._take_failure(method)
        if failure is not None:
            return self._failure_response(request, method, params, failure)
        if self._over_rate_limit():
            self.rate_errors += 1
            return self._error_response(method, 6, params, "rate limit")
        if not params.get("access_token"):
            message = "User authorization failed: no access_token passed."
            return self._error_response(method, 5, params, "no access_token", message)
        if not params.get("v"):
            # [??] VK's exact wording for a missing version was not retrieved.
            message = "Invalid request: v (version) is required"
            return self._error_response(method, 8, params, "no v", message)
        implementation = self._methods.get(method)
        if implementation is None:
            return self._error_response(method, 3, params, "unknown method")
        try:
            result = implementation(params)
        except _VKError as error:
            base = ERROR_MESSAGES.get(error.code, ERROR_MESSAGES[1])
            # VK appends the reason to error 100 ("...: random_id is a required parameter").
            message = f"{base}: {error.detail}" if error.code == 100 and error.detail else base
            return self._error_response(
                method, error.code, params, error.detail or base, message=message
            )
        return web.Response(text=_dumps({"response": result}), content_type="application/json")

    async def _handle_long_poll(self, request: web.Request) -> web.StreamResponse:
        params = await self._read_params(request)
        self.polls.append(params)
        failure = self._take_failure(LONG_POLL)
        if failure is not None:
            return self._failure_response(request, LONG_POLL, params, failure)
        try:
            ts = int(params.get("ts", ""))
        except ValueError:
            return web.json_response({"failed": 1, "ts": str(len(self._updates))})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.hold_seconds
        self._holding += 1
        try:
            while True:
                if self._poll_failures:
                    return web.json_response(self._poll_failure(ts))
                if params.get("key") not in self._keys:
                    return web.json_response({"failed": 2})
                stream = self._streams[self._keys[params["key"]]]
                if ts < len(stream):
                    batch = stream[ts : ts + LONG_POLL_BATCH]
                    self.delivered_events += len(batch)
                    body = {"ts": str(ts + len(batch)), "updates": batch}
                    return web.Response(text=_dumps(body), content_type="application/json")
                remaining = deadline - loop.time()
                if remaining <= 0 or self._closing:
                    return web.json_response({"ts": str(ts), "updates": []})
                changed = self._changed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), remaining)
        finally:
            self._holding -= 1

    def _poll_failure(self, ts: int) -> dict[str, Any]:
        code, new_ts = self._poll_failures.popleft()
        answer: dict[str, Any] = {"failed": code}
        if code == 1:
            answer["ts"] = new_ts if new_ts is not None else str(ts)
        elif code in (2, 3):
            self._keys.clear()
        elif code == 4:
            answer.update(min_version=0, max_version=3)
        return answer

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        failure = self._take_failure(UPLOAD)
        if failure is not None:
            return self._failure_response(request, UPLOAD, dict(request.query), failure)
        photo: bytes | None = None
        if request.can_read_body and request.content_type.startswith("multipart/"):
            form = await request.post()
            field_value = form.get("photo")
            if isinstance(field_value, web.FileField):
                photo = field_value.file.read()
        if photo is None:  # VK answers an empty photo list; saveMessagesPhoto then fails
            return web.json_response({"server": 1, "photo": "[]", "hash": secrets.token_hex(16)})
        self.uploads.append(photo)
        token = f"{secrets.token_hex(5)}:{len(self.uploads) - 1}"
        self._upload_tokens[token] = len(self.uploads) - 1
        opaque = json.dumps([{"markers_restarted": True, "photo": token, "sizes": []}])
        return web.json_response({"server": 1, "photo": opaque, "hash": secrets.token_hex(16)})

    async def _handle_image(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        failure = self._take_failure(IMAGE)
        if failure is not None:
            return self._failure_response(request, IMAGE, {}, failure)
        self.downloads.append(name)
        return web.Response(body=self._images.get(name, TINY_JPEG), content_type="image/jpeg")

    # ----------------------------------------------------------------- API methods

    def _groups_get_by_id(self, params: dict[str, str]) -> dict[str, Any]:
        # 5.199 shape: an object with "groups" (the old list shape breaks vkbottle).
        group = {
            "id": self.group_id,
            "name": self.group_name,
            "screen_name": f"club{self.group_id}",
            "is_closed": 0,
            "type": "group",
            "photo_50": f"{self.url}/img/club{self.group_id}_50.jpg",
            "photo_100": f"{self.url}/img/club{self.group_id}_100.jpg",
            "photo_200": f"{self.url}/img/club{self.group_id}_200.jpg",
        }
        return {"groups": [group], "profiles": []}

    def _group_of(self, params: dict[str, str]) -> int:
        """The community whose token the call carries (the main one for any other token)."""
        return self.tokens.get(params.get("access_token", ""), self.group_id)

    def _groups_get_long_poll_server(self, params: dict[str, str]) -> dict[str, Any]:
        group_id = _int_param(params, "group_id")
        if group_id != self._group_of(params):
            raise _VKError(15, f"no access to group {group_id}")
        key = secrets.token_hex(20)
        self._keys[key] = group_id
        # ts is a string; a new session starts at "now", as on VK.
        return {"key": key, "server": f"{self.url}/lp", "ts": str(len(self._streams[group_id]))}

    def _users_get(self, params: dict[str, str]) -> list[dict[str, Any]]:
        users = []
        for raw in params.get("user_ids", "").split(","):
            if not raw.strip().lstrip("-").isdigit():
                continue
            user_id = int(raw)
            first, last = self.users.get(user_id, (f"Имя{user_id}", f"Фамилия{user_id}"))
            users.append(
                {
                    "id": user_id,
                    "first_name": first,
                    "last_name": last,
                    "can_access_closed": True,
                    "is_closed": False,
                }
            )
        return users

    def _messages_send(self, params: dict[str, str]) -> int | list[dict[str, int]]:
        if not params.get("random_id"):
            raise _VKError(100, "random_id is a required parameter")
        random_id = _int_param(params, "random_id")
        text = params.get("message", "")
        attachment = params.get("attachment") or None
        if "peer_ids" in params:
            peers = [_to_int(p, "peer_ids") for p in params["peer_ids"].split(",") if p]
            if not peers or len(peers) > PEER_IDS_MAX:
                raise _VKError(100, "peer_ids is invalid")
        elif params.get("peer_id") or params.get("user_id"):
            peers = [_int_param(params, "peer_id" if params.get("peer_id") else "user_id")]
        else:
            raise _VKError(100, "you should specify peer_id, user_id, domain, chat_id or user_ids")
        if len(text) > MESSAGE_MAX_CHARS:
            raise _VKError(914, f"{len(text)} characters")
        content = ("sticker_id", "forward_messages", "forward")
        if not text.strip() and not attachment and not any(params.get(k) for k in content):
            raise _VKError(100, "message is empty or invalid")
        keyboard = _check_keyboard(params["keyboard"]) if "keyboard" in params else None
        group = self._group_of(params)

        sent = []
        for peer in peers:
            earlier = self._by_random_id.get((group, peer, random_id)) if random_id else None
            if earlier is not None:  # VK's dedup: the same message, not a second one
                sent.append(earlier)
                continue
            message = SentMessage(
                peer_id=peer,
                text=text,
                random_id=random_id,
                keyboard=keyboard,
                attachment=attachment,
                message_id=self._new_message_id(),
                conversation_message_id=self._new_cmid(peer),
                date=int(time.time()),
                params=dict(params),
                group_id=group,
            )
            self.sent.append(message)
            if random_id:
                self._by_random_id[(group, peer, random_id)] = message
            sent.append(message)
        if "peer_ids" not in params:
            return sent[0].message_id
        return [
            {
                "peer_id": m.peer_id,
                "message_id": m.message_id,
                "conversation_message_id": m.conversation_message_id,
            }
            for m in sent
        ]

    def _messages_edit(self, params: dict[str, str]) -> int:
        _int_param(params, "peer_id")
        if not params.get("message_id") and not params.get("conversation_message_id"):
            raise _VKError(100, "message_id or conversation_message_id is required")
        if len(params.get("message", "")) > MESSAGE_MAX_CHARS:
            raise _VKError(914)
        if "keyboard" in params:
            _check_keyboard(params["keyboard"])
        return 1

    def _messages_send_message_event_answer(self, params: dict[str, str]) -> int:
        for name in ("event_id", "user_id", "peer_id"):
            if not params.get(name):
                raise _VKError(100, f"{name} is undefined")
        event_data = params.get("event_data")
        if event_data is not None:
            if len(event_data) > EVENT_DATA_MAX_CHARS:
                raise _VKError(100, "event_data is too long")
            try:
                json.loads(event_data)
            except ValueError:
                raise _VKError(100, "event_data is invalid") from None
        self.seen_event_answers.append(dict(params))
        return 1

    def _photos_get_messages_upload_server(self, params: dict[str, str]) -> dict[str, Any]:
        upload_url = f"{self.url}/upload?act=do_add&aid=-14&gid={self.group_id}"
        return {"upload_url": upload_url, "album_id": -14, "user_id": 0, "group_id": self.group_id}

    def _photos_save_messages_photo(self, params: dict[str, str]) -> list[dict[str, Any]]:
        try:
            uploaded = json.loads(params.get("photo", ""))
            index = self._upload_tokens[uploaded[0]["photo"]]
        except (ValueError, LookupError, TypeError):
            raise _VKError(100, "photos_list is invalid") from None
        photo_id = self._next_photo_id
        self._next_photo_id += 1
        owner_id = -self.group_id
        photo = self._photo_object(owner_id, photo_id, secrets.token_hex(9))
        for size in photo["sizes"]:
            self._images[size["url"].rsplit("/", 1)[1]] = self.uploads[index]
        return [photo]

    def _wall_create_comment(self, params: dict[str, str]) -> dict[str, Any]:
        """wall.createComment (vk-api-schema wall/methods.json): a comment under post
        `post_id` of wall `owner_id`, as the community (`from_group` = its id) when asked;
        `guid` makes a repeated call return the comment it made the first time."""
        group = self._group_of(params)
        owner_id = _int_param(params, "owner_id") if params.get("owner_id") else 0
        post_id = _int_param(params, "post_id")
        if post_id < 0:
            raise _VKError(100, "post_id is invalid")
        if owner_id != -group:
            # A community token reaches its own wall only [??: VK's exact error not captured].
            raise _VKError(WALL_ACCESS_REPLIES)
        message = params.get("message", "")
        if not message.strip() and not params.get("attachments"):
            raise _VKError(100, "message is empty or invalid")
        from_group = _int_param(params, "from_group") if params.get("from_group") else 0
        if from_group and from_group != group:
            raise _VKError(100, "from_group is invalid")
        guid = params.get("guid") or None
        if guid is not None and (group, guid) in self._by_guid:
            earlier = self._by_guid[(group, guid)]
            return {"comment_id": earlier.id, "parents_stack": earlier.parents_stack}
        reply_to = (
            _int_param(params, "reply_to_comment") if params.get("reply_to_comment") else None
        )
        if reply_to is not None and not any(
            c.id == reply_to and c.owner_id == owner_id and c.post_id == post_id
            for c in self.comments
        ):
            raise _VKError(100, "reply_to_comment is invalid")
        author = -group if from_group else 0  # a community token comments as the community
        comment = self._add_comment(owner_id, post_id, author, message, reply_to)
        comment.guid = guid
        comment.params = dict(params)
        if guid is not None:
            self._by_guid[(group, guid)] = comment
        # VK sends the community's own comment to its event stream too.
        self.push(self._envelope("wall_reply_new", comment.as_object(), group))
        return {"comment_id": comment.id, "parents_stack": comment.parents_stack}

    # ----------------------------------------------------------------- helpers

    def _envelope(
        self, event_type: str, obj: dict[str, Any], group_id: int | None = None
    ) -> dict[str, Any]:
        return {
            "group_id": self.group_id if group_id is None else group_id,
            "type": event_type,
            "event_id": secrets.token_hex(20),
            "v": API_VERSION,
            "object": copy.deepcopy(obj),
        }

    def _new_message_id(self) -> int:
        message_id = self._next_message_id
        self._next_message_id += 1
        return message_id

    def _new_cmid(self, peer_id: int) -> int:
        self._cmids[peer_id] = self._cmids.get(peer_id, 0) + 1
        return self._cmids[peer_id]

    def _photo_object(self, owner_id: int, photo_id: int, access_key: str) -> dict[str, Any]:
        sizes = [
            {
                "type": kind,
                "url": f"{self.url}/img/{owner_id}_{photo_id}_{kind}.jpg",
                "width": width,
                "height": height,
            }
            for kind, width, height in PHOTO_SIZES
        ]
        return {
            "album_id": -3,
            "date": int(time.time()),
            "id": photo_id,
            "owner_id": owner_id,
            "access_key": access_key,
            "sizes": sizes,
            "text": "",
            "has_tags": False,
        }

    def _localize_urls(self, value: Any) -> Any:
        """Point photo URLs of VK's CDN (https://sun9-*.userapi.com/...) at this fake."""
        if isinstance(value, dict):
            return {k: self._localize_urls(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._localize_urls(v) for v in value]
        if isinstance(value, str) and value.startswith("https://sun9-"):
            name = value.split("?", 1)[0].rsplit("/", 1)[-1]
            return f"{self.url}/img/{name}"
        return value


def _to_int(raw: str, name: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise _VKError(100, f"{name} not integer") from None


def _int_param(params: dict[str, str], name: str) -> int:
    if not params.get(name):
        raise _VKError(100, f"{name} is undefined")
    return _to_int(params[name], name)


def _check_keyboard(raw: str) -> dict[str, Any]:
    """The parsed keyboard, or _VKError 911 where VK's documented limits are broken."""
    try:
        keyboard = json.loads(raw)
    except ValueError:
        raise _VKError(911, "not JSON") from None
    if not isinstance(keyboard, dict) or not isinstance(keyboard.get("buttons"), list):
        raise _VKError(911, "no buttons array")
    limits = INLINE_KEYBOARD if keyboard.get("inline") else STANDARD_KEYBOARD
    rows = keyboard["buttons"]
    if len(rows) > limits.rows:
        raise _VKError(911, f"{len(rows)} rows > {limits.rows}")
    total = 0
    for row in rows:
        if not isinstance(row, list):
            raise _VKError(911, "a row is not an array")
        if len(row) > limits.per_row:
            raise _VKError(911, f"{len(row)} buttons in a row > {limits.per_row}")
        total += len(row)
        for button in row:
            _check_button(button)
    if total > limits.buttons:
        raise _VKError(911, f"{total} buttons > {limits.buttons}")
    return keyboard


def _check_button(button: Any) -> None:
    action = button.get("action") if isinstance(button, dict) else None
    if not isinstance(action, dict) or action.get("type") not in BUTTON_TYPES:
        raise _VKError(911, f"bad action in {button!r}")
    kind = action["type"]
    if kind in ("text", "callback", "open_link"):
        label = action.get("label")
        if not isinstance(label, str) or not label or len(label) > BUTTON_LABEL_MAX_CHARS:
            raise _VKError(911, f"bad label {label!r}")
    if kind == "open_link" and not isinstance(action.get("link"), str):
        raise _VKError(911, "open_link without link")
    if "payload" in action:
        _check_button_payload(action["payload"])
    color = button.get("color")
    if color is not None and color not in BUTTON_COLORS:
        raise _VKError(911, f"bad color {color!r}")


def _check_button_payload(payload: Any) -> None:
    # Documented as a JSON string; VK also takes a JSON object in its place (vk-io issue 452),
    # which is what vkbottle sends for a dict payload. Its JSON text counts towards 255.
    if isinstance(payload, str):
        text = payload
        try:
            json.loads(payload)
        except ValueError:
            raise _VKError(911, f"payload is not JSON: {payload!r}") from None
    elif isinstance(payload, dict | list):
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    else:
        raise _VKError(911, f"payload {payload!r}")
    if len(text) > BUTTON_PAYLOAD_MAX_CHARS:
        raise _VKError(911, f"payload of {len(text)} characters > {BUTTON_PAYLOAD_MAX_CHARS}")


def iter_payload_names() -> Iterator[str]:
    """Names of the update payloads (everything but the Callback API confirmation and the
    schema excerpt tests/test_vk_wall_schema.py checks against)."""
    for path in sorted(PAYLOADS_DIR.glob("*.json")):
        if path.stem not in ("confirmation", "wall_schema"):
            yield path.stem
