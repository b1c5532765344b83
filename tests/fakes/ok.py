"""A fake Odnoklassniki group-messages Bot API (Graph API) on 127.0.0.1 that speaks the wire
format the notes describe, and that POSTs webhooks to the bot as OK does: methods under
/graph/, the photo upload URL (/upload) and photo downloads (/img/).

What real OK does, and so what this fake does, is taken from the shared notes:
messenger-apis.md §2 (OK Bot API) and §6 (emulator checklist). The notes mark each fact [DOC]
(official docs), [3P] (third-party code only) or [??] (not confirmed); comments here repeat the
mark. Where the docs are silent the fake is *stricter* than OK is likely to be (limits, unknown
fields, empty messages), so a bot that passes here does not rely on a guess; every such choice
is a named constant or a comment marked [??].

Routes: GET /graph/me/info, GET /graph/me/subscriptions, POST /graph/me/subscribe,
POST /graph/me/unsubscribe, POST /graph/me/messages/{chat_id} and POST /graph/{chat_id}/messages
(both documented forms of sending), POST /graph/{chat_id}/answer?callbackId=...,
GET /graph/me/fileUploadUrl?type=..., GET /graph/me/chat/{chat_id}. Anything else under /graph/
answers error 3 (METHOD).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from tests.fakes.base import LoopbackFake

TOKEN = "tkn1TEST:CQABPOJKAKEKEKEKE"  # the shape of a group token (§2.2 [DOC example])
PAYLOADS_DIR = Path(__file__).resolve().parent.parent / "payloads" / "ok"

# Pseudo route names: `fail_method` / `drop_connections` / `calls_of` also take these.
# "messages" names both ways of sending (/graph/me/messages/{chat} and /graph/{chat}/messages).
MESSAGES = "messages"
UPLOAD = "upload"
IMAGE = "img"

# Limits of a sent message. Only ATTACHMENTS_MAX is documented (§2.5 [DOC] "max 5"); the rest
# are not (§2.5: "text length, rate limits — not found"), so the fake is conservative and every
# one of them is a guess to check against the live API.
TEXT_MAX_CHARS = 4000  # [??] one third-party client cuts at 3900; the real limit is unknown
ATTACHMENTS_MAX = 5  # [DOC]
BUTTON_TEXT_MAX_CHARS = 64  # [??]
BUTTON_PAYLOAD_MAX_CHARS = 256  # [??]
BUTTONS_MAX = 30  # [??] (MAX's third-party limits are 30 rows x 7; OK's are unknown)
BUTTONS_PER_ROW_MAX = 7  # [??]
URL_IMAGES_PER_MESSAGE_MAX = 1  # [DOC] "only one URL-image per request" (§2.7)

# Button types and intents (§2.5 [3P]: node-ok-bot-api and two other integrations).
BUTTON_TYPES = frozenset({"CALLBACK", "LINK", "REQUEST_CONTACT", "REQUEST_GEO_LOCATION"})
INTENTS = frozenset({"DEFAULT", "POSITIVE", "NEGATIVE"})
# What a bot may attach to a message it sends; the other documented types (SHARE, CONTACT,
# LOCATION, MUSIC, CALL, PRESENT, STICKER) are things people send, and the fake refuses
# them outgoing [??].
UPLOADED_TYPES = frozenset({"IMAGE", "FILE", "VIDEO", "AUDIO"})  # fileUploadUrl `type` [DOC]
PRIVACY_WARNINGS = frozenset({"SCREENSHOT", "SCREENCAST"})  # [DOC]
SENDER_ACTIONS = frozenset(
    {"mark_seen", "typing_on", "sending_photo", "sending_video", "sending_audio"}
)  # [DOC]
MESSAGE_FIELDS = frozenset({"text", "attachment", "attachments", "reply_to", "privacyWarning"})

# The webhook must be answered with HTTP 200 within 5 s, else OK redelivers later (§2.3 [DOC]).
WEBHOOK_TIMEOUT_SECONDS = 5.0

# The "traditional OK API error format" of Bot API v2 (§2.6 [DOC]): {"error_code", "error_msg"}
# plus the header `invocation-error: <code>` [3P]. Codes and names are those of the OK REST API
# [3P: the odnoklassniki Ruby gem's Error::Code]; which code Graph answers in which case, and the
# HTTP status of an error (200 here), are [??].
ERRORS: dict[int, tuple[str, str]] = {
    1: ("UNKNOWN", "Unknown error"),
    2: ("SERVICE", "Service temporary unavailable"),
    3: ("METHOD", "Method does not exist"),
    4: ("REQUEST", "Failed to process request due to invalid request"),
    7: ("ACTION_BLOCKED", "The requested action is temporarily blocked"),
    8: ("FLOOD_BLOCKED", "The execution of method is blocked due to flood"),
    9: ("IP_BLOCKED", "The execution of method is blocked by IP address"),
    10: ("PERMISSION_DENIED", "Permission denied"),
    11: ("LIMIT_REACHED", "Method invocation limit reached"),
    21: ("NOT_MULTIPART", "Not a multi-part request"),
    100: ("PARAM", "Missing or invalid parameter"),
    102: ("PARAM_SESSION_EXPIRED", "Session expired"),  # wording as in §2.10 [??]
    103: ("PARAM_SESSION_KEY", "Invalid session key"),
    300: ("NOT_FOUND", "Not found"),  # [??] the text
}
SESSION_EXPIRED = 102
PARAM = 100
NOT_FOUND = 300
METHOD = 3

FIRST_SEQ = 98211023614189660  # §2.4 [DOC example]
FIRST_MID = 0x15CEA67D78D2059  # the part after the dot in "mid:C3ecb9d02a600.15cea67d78d2059"
# Real photo URLs are on OK's CDN (i.mycdn.me); payload files use them, the fake serves them.
CDN_PREFIX = "https://i.mycdn.me/"

# A JPEG start and end marker: enough for a type sniffer, not a decodable picture.
TINY_JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    b"\xff\xdb\x00\x43\x00" + bytes(range(1, 65)) + b"\xff\xd9"
)


@dataclass
class SentMessage:
    """One message the bot sent: through either send route, or as the answer to a CALLBACK press
    (then `callback_id` is set). `attachments` are the attachments as sent *except* the inline
    keyboard, whose buttons (rows of button objects) are in `keyboard`. `body` is the whole JSON
    request body, `path` the request path."""

    chat_id: str
    text: str
    attachments: list[dict[str, Any]]
    keyboard: list[list[dict[str, Any]]] | None
    message_id: str
    path: str
    body: dict[str, Any]
    callback_id: str | None = None
    reply_to: str | None = None
    timestamp: int = 0


@dataclass(frozen=True)
class _Failure:
    kind: Literal["error", "raw", "drop"]
    code: int = 0
    status: int = 200
    message: str | None = None
    body: str | None = None


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    name: str


@dataclass
class _Callback:
    chat_id: str
    user_id: str
    payload: str
    answers: int = 0


class _OKError(Exception):
    """Raised inside a route implementation; becomes an OK error answer."""

    def __init__(self, code: int, detail: str | None = None) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


def error_body(code: int, detail: str | None = None) -> dict[str, Any]:
    """{"error_code", "error_msg"} as OK's REST API words it: "NAME : text"."""
    name, text = ERRORS.get(code, ERRORS[1])
    return {"error_code": code, "error_msg": f"{name} : {detail or text}"}


def load_payload(name: str) -> dict[str, Any]:
    """A real-shaped webhook body from tests/payloads/ok/ (`name` with or without `.json`)."""
    file_name = name if name.endswith(".json") else f"{name}.json"
    data: dict[str, Any] = json.loads((PAYLOADS_DIR / file_name).read_text("utf-8"))
    return data


def iter_payload_names() -> Iterator[str]:
    for path in sorted(PAYLOADS_DIR.glob("*.json")):
        yield path.stem


def user_id_of(user: str | int) -> str:
    """The prefixed user id ("user:575662066926") of a prefixed id, bare digits or an int."""
    raw = str(user)
    digits = raw.removeprefix("user:")
    if not digits.isdigit():
        raise ValueError(f"not an OK user id: {user!r}")
    return f"user:{digits}"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _routes() -> tuple[_Route, ...]:
    chat = r"(?P<chat>chat:[^/]+)"
    table = (
        ("GET", r"/graph/me/info", "info"),
        ("GET", r"/graph/me/subscriptions", "subscriptions"),
        ("POST", r"/graph/me/subscribe", "subscribe"),
        ("POST", r"/graph/me/unsubscribe", "unsubscribe"),
        ("GET", r"/graph/me/fileUploadUrl", "fileUploadUrl"),
        ("GET", r"/graph/me/chat/(?P<chat>[^/]+)", "chat"),
        # The old form takes any last segment: a wrong chat id is NOT_FOUND, not METHOD.
        ("POST", r"/graph/me/messages/(?P<chat>[^/]+)", MESSAGES),
        ("POST", rf"/graph/{chat}/messages", MESSAGES),
        ("POST", rf"/graph/{chat}/answer", "answer"),
    )
    return tuple(_Route(m, re.compile(p), n) for m, p, n in table)


ROUTES = _routes()


def _route_of(method: str, path: str) -> tuple[_Route | None, str | None]:
    for route in ROUTES:
        match = route.pattern.fullmatch(path)
        if match and route.method == method:
            return route, match.groupdict().get("chat")
    return None, None


def _matches(suffix: str, path: str, name: str) -> bool:
    """Whether a request is meant by `suffix`: its route name ("messages" covers both send
    forms), a path suffix on segment boundaries ("subscribe" is not a suffix of
    "/graph/me/unsubscribe"), or a "/segment/" fragment anywhere in the path ("/messages/"
    also covers both send forms)."""
    if suffix == name:
        return True
    if len(suffix) > 1 and suffix.startswith("/") and suffix.endswith("/"):
        return suffix in f"{path}/"
    tail = suffix if suffix.startswith("/") else f"/{suffix}"
    return path.endswith(tail)


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class FakeOK(LoopbackFake):
    """A fake OK Bot API; see the module docstring. Start it, set `[ok] api_url` to `url`, make
    webhook bodies with `message_created` / `message_callback` / `chat_started` and `deliver`
    them to the subscribed URL, then inspect `calls` / `sent` / `callback_answers`."""

    def __init__(
        self,
        token: str = TOKEN,
        *,
        group_id: str = "group:57000000000001",
        group_name: str = "Администрация района",
    ) -> None:
        self.token = token
        self.group_id = group_id
        self.group_name = group_name
        self.url = ""
        # Chats the bot may write to besides the dialogs of people who wrote (message_created,
        # message_callback, chat_started or a delivered body teach the fake those).
        self.known_chats: set[str] = set()
        self.group_chats: set[str] = set()  # chats GET /me/chat/{id} calls GROUP_CHAT
        self.users: dict[str, str] = {}  # user id -> name, as webhooks carried it
        self.images: dict[str, bytes] = {}  # what /img/<name> serves (TINY_JPEG if absent)
        self.webhook_timeout = WEBHOOK_TIMEOUT_SECONDS
        self.clock: Callable[[], float] = time.time  # webhook timestamps (ms) come from it
        # What the bot did, in order.
        self.calls: list[dict[str, Any]] = []
        self.sent: list[SentMessage] = []
        self.subscriptions: list[dict[str, Any]] = []
        self.callback_answers: list[dict[str, Any]] = []
        self.sender_actions: list[dict[str, str]] = []
        self.uploads: list[bytes] = []
        self.downloads: list[str] = []  # names requested under /img/
        # Every webhook POSTed: {"url", "body", "status", "text"} (status 0: no HTTP answer).
        self.deliveries: list[dict[str, Any]] = []
        # Every error the fake answered: (path, error_code, why).
        self.answered_errors: list[tuple[str, int, str]] = []
        # Bugs inside the fake itself (answered 500 instead of raising).
        self.errors: list[str] = []

        self._dialogs: dict[str, str] = {}  # chat id -> the user whose dialog it is
        self._callbacks: dict[str, _Callback] = {}
        self._tokens: dict[str, bytes] = {}  # attachment token -> the file's bytes
        self._upload_slots: dict[str, tuple[str, str | None]] = {}  # id -> (type, token)
        self._failures: list[tuple[str, _Failure]] = []
        self._next_seq = FIRST_SEQ
        self._next_mid = FIRST_MID
        self._next_photo_id = 912_345_678_901
        self._runner: web.AppRunner | None = None

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        app = web.Application(middlewares=[self._guard], client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/graph/{tail:.*}", self._handle_graph)
        app.router.add_post("/upload", self._handle_upload)
        app.router.add_get("/img/{name}", self._handle_image)
        await self._serve(app)

    async def stop(self) -> None:
        await self._close()

    # ----------------------------------------------------------------- what the bot did

    def calls_of(self, path_suffix: str) -> list[dict[str, Any]]:
        """Calls whose path ends with `path_suffix` (whole segments: "subscribe",
        "/graph/me/info"), whose route is named so ("messages": both send forms, "answer"), or
        whose path holds it as a "/segment/" fragment ("/messages/": both send forms)."""
        return [c for c in self.calls if _matches(path_suffix, c["path"], c["route"])]

    def messages_to(self, chat_id: str) -> list[SentMessage]:
        return [m for m in self.sent if m.chat_id == chat_id]

    def bytes_of(self, attachment: dict[str, Any]) -> bytes | None:
        """The file behind an IMAGE/FILE attachment the fake knows (by token, or a URL it
        serves); None for a foreign URL."""
        payload = attachment.get("payload") or {}
        token = payload.get("token")
        if isinstance(token, str) and token in self._tokens:
            return self._tokens[token]
        url = payload.get("url")
        prefix = f"{self.url}/img/"
        if isinstance(url, str) and self.url and url.startswith(prefix):
            name = urlsplit(url).path.rsplit("/", 1)[-1]
            return self.images.get(name, TINY_JPEG)
        return None

    async def wait_sent(self, count: int, within: float = 5.0) -> list[SentMessage]:
        """Until at least `count` messages were sent in total; returns them all."""
        await self.wait_for(lambda: len(self.sent) >= count, within, f"{count} sent messages")
        return list(self.sent)

    # ----------------------------------------------------------------- webhook bodies

    def chat_of(self, user_id: str) -> str:
        """The dialog chat between the group and `user_id`: "chat:C" + 12 hex digits, stable
        for a user (the real ids look so, §2.2 [DOC]; how OK derives them is unknown)."""
        user = user_id_of(user_id)
        digest = hashlib.sha1(f"{self.group_id}|{user}".encode()).hexdigest()
        return f"chat:C{digest[:12]}"

    def message_created(
        self,
        user_id: str,
        text: str = "",
        *,
        name: str = "Иван Петров",
        chat_id: str | None = None,
        attachments: list[dict[str, Any]] | None = None,
        shape: Literal["current", "2017"] = "current",
    ) -> dict[str, Any]:
        """A MESSAGE_CREATED body from `user_id` in their dialog (or `chat_id`), with a fresh
        mid and seq; returns it without sending (see `deliver`). `shape="2017"` gives the
        official 2017 example's shape: no webhookType, no sender name (§2.4 [DOC])."""
        user = user_id_of(user_id)
        chat = chat_id or self.chat_of(user)
        message: dict[str, Any] = {"text": text, "seq": self._new_seq(), "mid": self._new_mid(chat)}
        if attachments:
            message["attachments"] = copy.deepcopy(attachments)
        sender: dict[str, Any] = {"user_id": user}
        body: dict[str, Any] = {}
        if shape == "current":  # webhookType and sender.name: §2.4 [3P]
            body["webhookType"] = "MESSAGE_CREATED"
            sender["name"] = name
        body.update(
            sender=sender,
            recipient={"chat_id": chat},
            message=message,
            timestamp=self._now_ms(),
        )
        self.users[user] = name
        self._absorb(body)
        return body

    def message_callback(
        self,
        user_id: str,
        payload: str,
        *,
        placement: Literal["top", "message"] = "top",
        chat_id: str | None = None,
        name: str | None = None,
        mid: str | None = None,
    ) -> dict[str, Any]:
        """A MESSAGE_CALLBACK body: `user_id` pressed the CALLBACK button carrying `payload`.
        The button must be on a message the bot sent to that chat (the latest such one gives
        `mid`), else ValueError, unless `mid` is given (a button the fake never saw).
        `placement="top"` puts `payload` and `mid` at the top level (§2.10 [3P]); "message"
        puts them in `message` (as node-ok-bot-api reads it [3P]); `callbackId` stays at the
        top in both [??]."""
        user = user_id_of(user_id)
        chat = chat_id or self.chat_of(user)
        if mid is None:
            mid = self._mid_with_button(chat, payload)
        callback_id = self._new_callback_id()
        body: dict[str, Any] = {
            "webhookType": "MESSAGE_CALLBACK",
            "sender": {"user_id": user, "name": name or self.users.get(user, "Иван Петров")},
            "recipient": {"chat_id": chat},
            "timestamp": self._now_ms(),
            "callbackId": callback_id,
        }
        if placement == "top":
            body.update(payload=payload, mid=mid)
        else:
            body["message"] = {"mid": mid, "payload": payload}
        self._absorb(body)
        return body

    def chat_started(
        self,
        user_id: str,
        *,
        name: str = "Иван Петров",
        chat_id: str | None = None,
        payload: str | None = None,
    ) -> dict[str, Any]:
        """A CHAT_SYSTEM body of type CHAT_STARTED: the person opened the chat through the
        group's special link (§2.4 [DOC] meaning, [3P] shape); `payload` is put at the top
        level when given [??]."""
        user = user_id_of(user_id)
        chat = chat_id or self.chat_of(user)
        body: dict[str, Any] = {
            "webhookType": "CHAT_SYSTEM",
            "type": "CHAT_STARTED",
            "sender": {"user_id": user, "name": name},
            "recipient": {"chat_id": chat},
            "timestamp": self._now_ms(),
        }
        if payload is not None:
            body["payload"] = payload
        self.users[user] = name
        self._absorb(body)
        return body

    def image(self, photo_id: str | None = None) -> dict[str, Any]:
        """An IMAGE attachment as people send it: payload {id, token, url} (§2.4 [DOC]) whose
        url this fake serves (GET /img/<id>; bytes from `images`, else TINY_JPEG) and whose
        token the bot may send back. Needs a started fake (the url has its port)."""
        if not self.url:
            raise RuntimeError("FakeOK.image() needs a started fake")
        if photo_id is None:
            photo_id = str(self._next_photo_id)
            self._next_photo_id += 1
        token = self._new_token()
        self._tokens[token] = self.images.get(photo_id, TINY_JPEG)
        # Real CDN addresses carry no file extension; neither do these.
        url = f"{self.url}/img/{photo_id}?fn=w_612"
        return {"type": "IMAGE", "payload": {"id": photo_id, "token": token, "url": url}}

    def from_payload(self, name: str, *, user_id: str | None = None) -> dict[str, Any]:
        """A body from tests/payloads/ok/ with fresh mid, seq, callbackId and timestamp, the
        sender moved to `user_id` (and its dialog) if given, and CDN URLs served by this fake.
        Returns it without sending."""
        body = load_payload(name)
        if user_id is not None:
            user = user_id_of(user_id)
            body.setdefault("sender", {})["user_id"] = user
            body["recipient"] = {"chat_id": self.chat_of(user)}
        chat = body.get("recipient", {}).get("chat_id", "chat:C000000000000")
        if "timestamp" in body:
            body["timestamp"] = self._now_ms()
        if "callbackId" in body:
            body["callbackId"] = self._new_callback_id()
        if "mid" in body:
            body["mid"] = self._new_mid(chat)
        message = body.get("message")
        if isinstance(message, dict):
            if "mid" in message:
                message["mid"] = self._new_mid(chat)
            if "seq" in message:
                message["seq"] = self._new_seq()
            for attachment in message.get("attachments", []):
                self._localize(attachment)
        self._absorb(body)
        return body

    async def deliver(self, body: dict[str, Any], url: str | None = None) -> tuple[int, str]:
        """POST `body` as JSON to `url` (by default the latest subscribed webhook URL), as OK
        does, waiting at most `webhook_timeout` seconds (OK wants HTTP 200 within 5 s, §2.3
        [DOC]). Returns (status, text); status 0 when no HTTP answer came (timeout, refused)."""
        if url is None:
            if not self.subscriptions:
                raise AssertionError("FakeOK.deliver: nobody subscribed to webhooks")
            url = str(self.subscriptions[-1]["url"])
        self._absorb(body)
        # [??] the Content-Type (and any other header) OK's webhook requests carry.
        headers = {"Content-Type": "application/json;charset=utf-8"}
        timeout = aiohttp.ClientTimeout(total=self.webhook_timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(url, data=_dumps(body).encode(), headers=headers) as response,
            ):
                status, text = response.status, await response.text(errors="replace")
        except TimeoutError:
            status, text = 0, f"no answer within {self.webhook_timeout}s"
        except aiohttp.ClientError as exc:
            status, text = 0, repr(exc)
        self.deliveries.append({"url": url, "body": body, "status": status, "text": text})
        return status, text

    # ----------------------------------------------------------------- failure injection

    def fail_method(
        self,
        path_suffix: str,
        error_code: int,
        times: int = 1,
        *,
        http_status: int = 200,
        error_msg: str | None = None,
        body: str | None = None,
    ) -> None:
        """The next `times` requests matching `path_suffix` (see `calls_of`; UPLOAD and IMAGE
        name the upload and download routes) answer {"error_code", "error_msg"} with header
        `invocation-error`. With `body` or a non-200 `http_status`, that raw answer instead
        (e.g. 502 with an HTML page, or 429); a raw answer without `body` carries the error
        JSON under that status."""
        raw = body is not None or http_status != 200
        failure = _Failure("raw" if raw else "error", error_code, http_status, error_msg, body)
        self._failures.extend([(path_suffix, failure)] * times)

    def drop_connections(self, path_suffix: str, times: int = 1) -> None:
        """The next `times` requests matching `path_suffix` get their connection closed
        unanswered."""
        self._failures.extend([(path_suffix, _Failure("drop"))] * times)

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
            answer = self._error_response(request.path, 1, "fake failed, see FakeOK.errors")
            answer.set_status(500)
            return answer

    def _take_failure(self, path: str, name: str) -> _Failure | None:
        for index, (suffix, failure) in enumerate(self._failures):
            if _matches(suffix, path, name):
                del self._failures[index]
                return failure
        return None

    def _failure_response(self, request: web.Request, failure: _Failure) -> web.StreamResponse:
        if failure.kind == "drop":
            transport = request.transport
            if transport is not None:
                transport.abort()
            return web.Response(status=200)
        if failure.kind == "raw":
            self.answered_errors.append((request.path, failure.code, "injected raw answer"))
            if failure.body is not None:
                html = failure.body.lstrip().startswith("<")
                return web.Response(
                    status=failure.status,
                    text=failure.body,
                    content_type="text/html" if html else "application/json",
                )
            answer = self._error_response(request.path, failure.code, "injected", failure.message)
            answer.set_status(failure.status)
            return answer
        return self._error_response(request.path, failure.code, "injected", failure.message)

    def _error_response(
        self, path: str, code: int, why: str, detail: str | None = None
    ) -> web.Response:
        self.answered_errors.append((path, code, detail or why))
        return web.Response(
            text=_dumps(error_body(code, detail)),
            content_type="application/json",
            headers={"invocation-error": str(code)},
        )

    @staticmethod
    async def _read_json(request: web.Request) -> tuple[dict[str, Any] | None, str | None]:
        """The JSON object a POST carries, or an error text. Content-Type must be
        application/json (charset optional), as every documented POST sends it (§2.2 [DOC])."""
        if request.method != "POST":
            return None, None
        raw = await request.read()
        if request.content_type != "application/json":
            return None, f"Content-Type must be application/json, not {request.content_type!r}"
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None, "the body is not JSON"
        if not isinstance(data, dict):
            return None, "the body is not a JSON object"
        return data, None

    # ----------------------------------------------------------------- routes

    async def _handle_graph(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        query = dict(request.query)
        body, body_error = await self._read_json(request)
        route, chat = _route_of(request.method, path)
        name = route.name if route else ""
        self.calls.append(
            {"method": request.method, "path": path, "query": query, "body": body, "route": name}
        )
        failure = self._take_failure(path, name)
        if failure is not None:
            return self._failure_response(request, failure)
        if query.get("access_token") != self.token:
            # Missing and wrong tokens alike; the exact code OK uses for each is [??].
            return self._error_response(path, SESSION_EXPIRED, "bad access_token")
        if body_error is not None:  # [??] how OK answers a non-JSON body
            return self._error_response(path, PARAM, "bad body", body_error)
        if route is None:  # [??] code and wording for an unknown Graph path
            return self._error_response(path, METHOD, "unknown route", f"{request.method} {path}")
        try:
            result = self._execute(route.name, chat, query, body or {}, path)
        except _OKError as error:
            return self._error_response(path, error.code, error.detail or "", error.detail)
        return web.Response(text=_dumps(result), content_type="application/json")

    def _execute(
        self, name: str, chat: str | None, query: dict[str, str], body: dict[str, Any], path: str
    ) -> dict[str, Any]:
        if name == "info":
            return {"name": self.group_name, "group_id": self.group_id}  # [DOC]
        if name == "subscriptions":
            return {"subscriptions": copy.deepcopy(self.subscriptions)}  # [DOC]
        if name == "subscribe":
            return self._subscribe(body)
        if name == "unsubscribe":
            return self._unsubscribe(body)
        if name == "fileUploadUrl":
            return self._file_upload_url(query)
        if name == "chat":
            return self._chat_info(str(chat))
        if name == MESSAGES:
            return self._send(str(chat), body, path)
        if name == "answer":
            return self._answer(str(chat), query, body, path)
        raise AssertionError(f"route {name} has no implementation")

    def _subscribe(self, body: dict[str, Any]) -> dict[str, Any]:
        url = body.get("url")
        if body.get("longPolling"):  # documented, but its updates call is not (§2.3 [??])
            raise _OKError(PARAM, "the fake implements webhooks only, not longPolling")
        if not _is_http_url(url):
            raise _OKError(PARAM, f"url must be an http(s) address, not {url!r}")
        if not any(s["url"] == url for s in self.subscriptions):  # once per URL [??]
            self.subscriptions.append({"url": url, "time": int(self.clock() * 1000)})
        return {"success": True}

    def _unsubscribe(self, body: dict[str, Any]) -> dict[str, Any]:
        url = body.get("url")
        if not isinstance(url, str):
            raise _OKError(PARAM, "url is required")
        # An URL that was not subscribed still answers success [??].
        self.subscriptions = [s for s in self.subscriptions if s["url"] != url]
        return {"success": True}

    def _file_upload_url(self, query: dict[str, str]) -> dict[str, Any]:
        kind = query.get("type", "")
        if kind not in UPLOADED_TYPES:
            raise _OKError(PARAM, f"type must be one of {sorted(UPLOADED_TYPES)}, not {kind!r}")
        slot = secrets.token_hex(8)
        answer: dict[str, Any] = {"url": f"{self.url}/upload?type={kind}&id={slot}"}
        token = None
        if kind != "IMAGE":  # other types get their token here (§2.7 [DOC] "token"?) [??]
            token = self._new_token()
            answer["token"] = token
        self._upload_slots[slot] = (kind, token)
        return answer

    def _chat_info(self, chat: str) -> dict[str, Any]:
        self._check_chat(chat)
        user = self._dialogs.get(chat)
        now = int(self.clock() * 1000)
        info: dict[str, Any] = {  # §2.8 [DOC] shape; a dialog's field values are [??]
            "type": "GROUP_CHAT" if chat in self.group_chats else "DIALOG",
            "status": "ACTIVE",
            "chat_id": chat,
            "group_id": self.group_id,
            "lastEventTime": now,
            "participants": {user: now} if user else {},
        }
        if user:
            info["owner_id"] = user
        return info

    def _send(self, chat: str, body: dict[str, Any], path: str) -> dict[str, Any]:
        recipient = body.get("recipient")
        if not isinstance(recipient, dict):
            raise _OKError(PARAM, "recipient is required")
        if "chat_id" not in recipient:
            # user_id / user_ids recipients are documented (§2.5) but not what the bot uses.
            raise _OKError(PARAM, "the fake implements recipient.chat_id only")
        if recipient["chat_id"] != chat:
            raise _OKError(PARAM, f"recipient.chat_id {recipient['chat_id']!r} != {chat!r}")
        self._check_chat(chat)
        if "sender_action" in body:
            action = body["sender_action"]
            if action not in SENDER_ACTIONS or "message" in body:
                raise _OKError(PARAM, f"sender_action {action!r}")
            self.sender_actions.append({"chat_id": chat, "action": action})
            return {"success": True}
        message = self._record(chat, body, path, callback_id=None)
        return {"success": True, "message_id": message.message_id}  # [??] §2.5

    def _answer(
        self, chat: str, query: dict[str, str], body: dict[str, Any], path: str
    ) -> dict[str, Any]:
        callback_id = query.get("callbackId", "")
        callback = self._callbacks.get(callback_id)
        if callback is None:  # [??] how OK answers an unknown or missing callbackId
            raise _OKError(PARAM, f"unknown callbackId {callback_id!r}")
        if callback.chat_id != chat:
            raise _OKError(PARAM, f"callbackId {callback_id!r} is not from {chat}")
        recipient = body.get("recipient")
        if recipient is not None and recipient != {"chat_id": chat}:
            raise _OKError(PARAM, f"recipient {recipient!r} is not {chat}")
        message = self._record(chat, body, path, callback_id=callback_id)
        callback.answers += 1
        self.callback_answers.append(
            {
                "chat_id": chat,
                "callback_id": callback_id,
                "payload": callback.payload,
                "message": copy.deepcopy(body.get("message")),
                "message_id": message.message_id,
            }
        )
        return {"success": True}

    def _record(
        self, chat: str, body: dict[str, Any], path: str, *, callback_id: str | None
    ) -> SentMessage:
        message = body.get("message")
        if not isinstance(message, dict):
            raise _OKError(PARAM, "message is required")
        text, attachments, keyboard = self._check_message(message)
        reply_to = message.get("reply_to")
        sent = SentMessage(
            chat_id=chat,
            text=text,
            attachments=attachments,
            keyboard=keyboard,
            message_id=self._new_mid(chat),
            path=path,
            body=copy.deepcopy(body),
            callback_id=callback_id,
            reply_to=reply_to,
            timestamp=int(self.clock() * 1000),
        )
        self.sent.append(sent)
        return sent

    # ----------------------------------------------------------------- validation

    def _check_chat(self, chat: str) -> None:
        if chat not in self._dialogs and chat not in self.known_chats:
            raise _OKError(NOT_FOUND, "chat not found")  # [??] code and wording

    def _check_message(
        self, message: dict[str, Any]
    ) -> tuple[str, list[dict[str, Any]], list[list[dict[str, Any]]] | None]:
        unknown = set(message) - MESSAGE_FIELDS
        if unknown:  # stricter than OK is likely to be [??]: catches misspelt fields
            raise _OKError(PARAM, f"unknown message fields {sorted(unknown)}")
        text = message.get("text", "")
        if not isinstance(text, str):
            raise _OKError(PARAM, "text must be a string")
        if len(text) > TEXT_MAX_CHARS:
            raise _OKError(PARAM, f"text of {len(text)} characters > {TEXT_MAX_CHARS} [??]")
        if "attachment" in message and "attachments" in message:  # "attachment or attachments"
            raise _OKError(PARAM, "give attachment or attachments, not both")
        if "attachment" in message:
            items: Any = [message["attachment"]]
        else:
            items = message.get("attachments", [])
        if not isinstance(items, list):
            raise _OKError(PARAM, "attachments must be a list")
        if len(items) > ATTACHMENTS_MAX:
            raise _OKError(PARAM, f"{len(items)} attachments > {ATTACHMENTS_MAX}")
        reply_to = message.get("reply_to")
        if reply_to is not None and not isinstance(reply_to, str):
            raise _OKError(PARAM, "reply_to must be a message id string")
        warning = message.get("privacyWarning")
        if warning is not None and warning not in PRIVACY_WARNINGS:
            raise _OKError(PARAM, f"privacyWarning {warning!r}")

        attachments: list[dict[str, Any]] = []
        keyboard: list[list[dict[str, Any]]] | None = None
        url_images = 0
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("payload"), dict):
                raise _OKError(PARAM, f"attachment {item!r} needs type and payload")
            kind = item.get("type")
            if kind == "INLINE_KEYBOARD":
                if keyboard is not None:  # [??] one keyboard per message
                    raise _OKError(PARAM, "more than one INLINE_KEYBOARD")
                keyboard = _check_keyboard(item["payload"])
            elif kind in UPLOADED_TYPES:
                url_images += self._check_file(kind, item["payload"])
                attachments.append(copy.deepcopy(item))
            else:
                raise _OKError(PARAM, f"attachment type {kind!r} cannot be sent [??]")
        if url_images > URL_IMAGES_PER_MESSAGE_MAX:
            raise _OKError(PARAM, f"{url_images} images by URL > {URL_IMAGES_PER_MESSAGE_MAX}")
        if not text.strip() and not attachments:  # a keyboard alone is not a message [??]
            raise _OKError(PARAM, "message is empty")
        return text, attachments, keyboard

    def _check_file(self, kind: str, payload: dict[str, Any]) -> int:
        """1 for an image given by URL, else 0; _OKError for a token the fake never issued."""
        token, url = payload.get("token"), payload.get("url")
        if token is not None:
            if token not in self._tokens:
                raise _OKError(PARAM, f"{kind} token {token!r} is unknown")
            return 0
        if kind == "IMAGE" and url is not None:  # [DOC] IMAGE by URL
            if not _is_http_url(url):
                raise _OKError(PARAM, f"image url {url!r}")
            return 1
        raise _OKError(PARAM, f"{kind} payload needs a token" + (" or url" * (kind == "IMAGE")))

    # ----------------------------------------------------------------- upload and download

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        failure = self._take_failure(request.path, UPLOAD)
        if failure is not None:
            return self._failure_response(request, failure)
        slot = self._upload_slots.get(request.query.get("id", ""))
        if slot is None:  # [??] how OK's upload host answers a stale or forged URL
            return self._error_response(request.path, PARAM, "bad upload url", "upload id")
        if not request.content_type.startswith("multipart/"):
            return self._error_response(request.path, 21, "not multipart")
        form = await request.post()
        files = [v.file.read() for v in form.values() if isinstance(v, web.FileField)]
        if not files:
            return self._error_response(request.path, PARAM, "no file", "no file in the request")
        kind, token = slot
        if kind != "IMAGE":
            assert token is not None
            self.uploads.append(files[0])
            self._tokens[token] = files[0]
            return web.json_response({"token": token})  # [??]
        photos: dict[str, dict[str, str]] = {}
        for data in files:  # photosV2-style answer (§2.7 [3P])
            self.uploads.append(data)
            new_token = self._new_token()
            self._tokens[new_token] = data
            photos[str(self._next_photo_id)] = {"token": new_token}
            self._next_photo_id += 1
        return web.json_response({"photos": photos})

    async def _handle_image(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        failure = self._take_failure(request.path, IMAGE)
        if failure is not None:
            return self._failure_response(request, failure)
        self.downloads.append(name)
        return web.Response(body=self.images.get(name, TINY_JPEG), content_type="image/jpeg")

    # ----------------------------------------------------------------- helpers

    def _absorb(self, body: dict[str, Any]) -> None:
        """Learn what OK would know from a webhook body: the dialog exists, the sender's name,
        an open callback, tokens of images people sent."""
        sender = body.get("sender") or {}
        chat = (body.get("recipient") or {}).get("chat_id")
        user = sender.get("user_id")
        if isinstance(chat, str) and isinstance(user, str):
            self._dialogs.setdefault(chat, user)
            if isinstance(sender.get("name"), str):
                self.users.setdefault(user, sender["name"])
        raw_message = body.get("message")
        message: dict[str, Any] = raw_message if isinstance(raw_message, dict) else {}
        callback_id = body.get("callbackId")
        if isinstance(callback_id, str) and isinstance(chat, str) and isinstance(user, str):
            payload = body.get("payload", message.get("payload", ""))
            self._callbacks.setdefault(callback_id, _Callback(chat, user, str(payload)))
        attachments = message.get("attachments")
        for attachment in attachments if isinstance(attachments, list) else []:
            payload = attachment.get("payload") if isinstance(attachment, dict) else None
            token = payload.get("token") if isinstance(payload, dict) else None
            if isinstance(token, str) and token not in self._tokens:
                self._tokens[token] = TINY_JPEG

    def _localize(self, attachment: dict[str, Any]) -> None:
        """Point an attachment's CDN URL at this fake (/img/<id or a hash of the URL>)."""
        payload = attachment.get("payload")
        if not isinstance(payload, dict):
            return
        url = payload.get("url")
        if isinstance(url, str) and url.startswith(CDN_PREFIX):
            name = str(payload.get("id") or hashlib.sha1(url.encode()).hexdigest()[:12])
            payload["url"] = f"{self.url}/img/{name}?fn=w_612"

    def _mid_with_button(self, chat: str, payload: str) -> str:
        for message in reversed(self.messages_to(chat)):
            for row in message.keyboard or []:
                if any(b.get("type") == "CALLBACK" and b.get("payload") == payload for b in row):
                    return message.message_id
        raise ValueError(
            f"no CALLBACK button with payload {payload!r} was sent to {chat}; "
            "pass mid= to press one the fake never saw"
        )

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _new_seq(self) -> int:
        self._next_seq += 1
        return self._next_seq

    def _new_mid(self, chat: str) -> str:
        self._next_mid += 1
        return f"mid:{chat.removeprefix('chat:')}.{self._next_mid:x}"

    @staticmethod
    def _new_callback_id() -> str:
        return secrets.token_urlsafe(12)  # [??] the real format is unknown

    @staticmethod
    def _new_token() -> str:
        return secrets.token_urlsafe(24)  # [??] the real format is unknown


def _check_keyboard(payload: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The button rows of an INLINE_KEYBOARD payload {"keyboard": {"buttons": [[...]]}}
    (§2.5 [3P]); _OKError where the fake's conservative limits are broken."""
    keyboard = payload.get("keyboard")
    rows = keyboard.get("buttons") if isinstance(keyboard, dict) else None
    if not isinstance(rows, list) or not rows:
        raise _OKError(PARAM, "INLINE_KEYBOARD payload needs keyboard.buttons rows")
    total = 0
    for row in rows:
        if not isinstance(row, list) or not row:
            raise _OKError(PARAM, "a keyboard row must be a non-empty list")
        if len(row) > BUTTONS_PER_ROW_MAX:
            raise _OKError(PARAM, f"{len(row)} buttons in a row > {BUTTONS_PER_ROW_MAX} [??]")
        total += len(row)
        for button in row:
            _check_button(button)
    if total > BUTTONS_MAX:
        raise _OKError(PARAM, f"{total} buttons > {BUTTONS_MAX} [??]")
    return copy.deepcopy(rows)


def _check_button(button: Any) -> None:
    if not isinstance(button, dict) or button.get("type") not in BUTTON_TYPES:
        raise _OKError(PARAM, f"button {button!r}: type must be one of {sorted(BUTTON_TYPES)}")
    text = button.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > BUTTON_TEXT_MAX_CHARS:
        raise _OKError(PARAM, f"button text {text!r}: 1-{BUTTON_TEXT_MAX_CHARS} characters [??]")
    intent = button.get("intent")
    if intent is not None and intent not in INTENTS:
        raise _OKError(PARAM, f"button intent {intent!r}")
    kind = button["type"]
    if kind == "CALLBACK":
        payload = button.get("payload")
        if not isinstance(payload, str) or not payload or len(payload) > BUTTON_PAYLOAD_MAX_CHARS:
            raise _OKError(
                PARAM, f"CALLBACK payload {payload!r}: 1-{BUTTON_PAYLOAD_MAX_CHARS} characters [??]"
            )
    elif kind == "LINK":
        if not _is_http_url(button.get("url")):
            raise _OKError(PARAM, f"LINK url {button.get('url')!r}")
    elif kind == "REQUEST_GEO_LOCATION":
        quick = button.get("quick")
        if quick is not None and not isinstance(quick, bool):
            raise _OKError(PARAM, f"quick {quick!r}")
