"""The fake MAX Bot API (tests/fakes/max.py) speaks MAX's wire format as the official schema gives
it: (a) its answers, the updates it builds and every payload in tests/payloads/max/ are checked
against a hand-copied description of schema.yaml 0.0.33 (below, each object with the schema path
it comes from), and its limits agree with that description; (b) maxapi itself, over real HTTP,
sends through it, polls it, uploads to it and receives its webhook pushes (skipped while maxapi
is not installed); (c) its failure injection does what it says."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.fakes.max import (
    ANSWER_CALLBACK,
    BOT_ID,
    GET_CHAT,
    GET_UPDATES,
    GET_UPLOAD_URL,
    SEND_MESSAGE,
    TOKEN,
    UPLOAD,
    FakeMax,
    iter_payload_names,
    load_payload,
)
from tests.fakes.vk import TINY_JPEG

try:
    from maxapi import Bot, Dispatcher
    from maxapi.client.default import DefaultConnectionProperties
    from maxapi.enums.message_link_type import MessageLinkType
    from maxapi.exceptions.max import InvalidToken, MaxApiError
    from maxapi.methods.types.getted_updates import get_update_model
    from maxapi.types import (
        BotStarted,
        CallbackButton,
        InputMediaBuffer,
        MessageCallback,
        MessageCreated,
        NewMessageLink,
        RequestGeoLocationButton,
    )
    from maxapi.utils.inline_keyboard import InlineKeyboardBuilder
    from maxapi.webhook.aiohttp import AiohttpMaxWebhook

    HAVE_MAXAPI = True
except ImportError:
    HAVE_MAXAPI = False

needs_maxapi = pytest.mark.skipif(
    not HAVE_MAXAPI, reason="maxapi not installed (pip install -e '.[test]' after issue 17 adds it)"
)

USER = 40213377
OFFICIAL = 51000001
SECRET = "s3cret_Token-42"


# ====================================================================== the schema, hand-copied
# schema.yaml 0.0.33 of github.com/max-messenger/api-schema, components/schemas/<name>: the
# required fields, the types and the limits the bot meets. Properties the bot never sees (stat,
# markup details, video details) are left as "any"; fields beyond these are allowed, as the
# schema does not forbid them (real payloads carry e.g. User.name, bot_started.user_id).


@dataclass(frozen=True)
class F:
    """A property: its kind (int, num, str, bool, obj, list, dict, any) and its limits."""

    kind: str
    ref: str = ""  # obj: the object's name
    item: F | None = None  # list, dict: the items' rule
    nullable: bool = False
    enum: tuple[str, ...] = ()
    min_len: int | None = None
    max_len: int | None = None
    pattern: str | None = None
    min_items: int | None = None
    max_items: int | None = None


@dataclass(frozen=True)
class Obj:
    source: str  # where in schema.yaml
    required: tuple[str, ...] = ()
    fields: dict[str, F] = field(default_factory=dict)
    discriminator: str = ""
    mapping: dict[str, str] = field(default_factory=dict)
    extra: Callable[[dict[str, Any], str], list[str]] | None = None


INT, NUM, STR, BOOL, ANY = F("int"), F("num"), F("str"), F("bool"), F("any")
INT_N, STR_N = F("int", nullable=True), F("str", nullable=True)


def ref(name: str, *, nullable: bool = False) -> F:
    return F("obj", ref=name, nullable=nullable)


def list_of(item: F, *, nullable: bool = False, **limits: Any) -> F:
    return F("list", item=item, nullable=nullable, **limits)


CHAT_TYPE = ("dialog", "chat", "channel")  # components/schemas/ChatType.enum
CHAT_STATUS = ("active", "removed", "left", "closed", "suspended")  # ChatStatus.enum
LINK_TYPE = ("forward", "reply")  # MessageLinkType.enum
TEXT_FORMAT = ("markdown", "html")  # TextFormat.enum
USER_FIELDS = {
    "user_id": INT,
    "first_name": STR,
    "last_name": STR_N,
    "username": STR_N,
    "is_bot": BOOL,
    "last_activity_time": INT_N,
}
WITH_PHOTO = {
    "description": F("str", nullable=True, max_len=16000),
    "avatar_url": STR_N,
    "full_avatar_url": STR_N,
}
BUTTON = ("type", "text")
BUTTON_FIELDS = {"type": STR, "text": F("str", min_len=1, max_len=128)}


def keyboard_size(payload: dict[str, Any], where: str) -> list[str]:
    """NOT in schema.yaml 0.0.33: 30 rows, 7 a row, 210 buttons (issue 17, SPEC §13)."""
    rows = payload.get("buttons")
    if not isinstance(rows, list):
        return []
    problems = []
    if len(rows) > 30:
        problems.append(f"{where}.buttons: {len(rows)} rows > 30")
    for r, row in enumerate(rows):
        if isinstance(row, list) and len(row) > 7:
            problems.append(f"{where}.buttons[{r}]: {len(row)} buttons > 7")
    if sum(len(row) for row in rows if isinstance(row, list)) > 210:
        problems.append(f"{where}.buttons: more than 210 buttons")
    return problems


SCHEMA: dict[str, Obj] = {
    # --------------------------------------------------------------- users, chats, errors
    "User": Obj("components/schemas/User", ("user_id", "first_name", "is_bot"), USER_FIELDS),
    "UserWithPhoto": Obj(
        "components/schemas/UserWithPhoto (allOf User)",
        ("user_id", "first_name", "is_bot"),
        {**USER_FIELDS, **WITH_PHOTO},
    ),
    "BotInfo": Obj(
        "components/schemas/BotInfo (allOf UserWithPhoto)",
        ("user_id", "first_name", "is_bot"),
        {
            **USER_FIELDS,
            **WITH_PHOTO,
            "commands": list_of(ref("BotCommand"), nullable=True, max_items=32),
        },
    ),
    "BotCommand": Obj(
        "components/schemas/BotCommand",
        ("name",),
        {
            "name": F("str", min_len=1, max_len=64),
            "description": F("str", nullable=True, min_len=1, max_len=128),
        },
    ),
    "Chat": Obj(
        "components/schemas/Chat",
        ("chat_id", "type", "status", "last_event_time", "participants_count", "is_public"),
        {
            "chat_id": INT,
            "type": F("str", enum=CHAT_TYPE),
            "status": F("str", enum=CHAT_STATUS),
            "title": STR_N,
            "icon": ref("Image", nullable=True),
            "last_event_time": INT,
            "participants_count": INT,
            "owner_id": INT_N,
            "is_public": BOOL,
            "link": STR_N,
            "description": STR_N,
            "dialog_with_user": ref("UserWithPhoto", nullable=True),
            "messages_count": INT_N,
        },
    ),
    "Image": Obj("components/schemas/Image", ("url",), {"url": STR}),
    "Error": Obj(
        "components/schemas/Error", ("code", "message"), {"code": STR, "message": STR, "error": STR}
    ),
    "SimpleQueryResult": Obj(
        "components/schemas/SimpleQueryResult", ("success",), {"success": BOOL, "message": STR}
    ),
    # --------------------------------------------------------------- messages
    "Recipient": Obj(
        "components/schemas/Recipient",
        ("chat_type",),
        {
            "chat_id": INT_N,
            "chat_type": F("str", enum=CHAT_TYPE),
            "user_id": INT_N,
            "post_id": STR_N,
        },
    ),
    "Message": Obj(
        "components/schemas/Message",
        ("recipient", "body", "timestamp"),
        {
            "sender": ref("User", nullable=True),
            "recipient": ref("Recipient"),
            "timestamp": INT,
            "link": ref("LinkedMessage", nullable=True),
            "body": ref("MessageBody"),
            "stat": ANY,
            "url": STR_N,
        },
    ),
    "MessageBody": Obj(
        "components/schemas/MessageBody",
        ("mid", "seq"),
        {
            "mid": F("str", min_len=1),
            "seq": INT,
            "text": STR_N,
            "attachments": list_of(ref("Attachment"), nullable=True),
            "markup": F("list", item=ANY, nullable=True),
        },
    ),
    "LinkedMessage": Obj(
        "components/schemas/LinkedMessage",
        ("type", "message"),
        {
            "type": F("str", enum=LINK_TYPE),
            "sender": ref("User", nullable=True),
            "chat_id": INT,
            "message": ref("MessageBody"),
        },
    ),
    "SendMessageResult": Obj(
        "components/schemas/SendMessageResult", ("message",), {"message": ref("Message")}
    ),
    # --------------------------------------------------------------- received attachments
    "Attachment": Obj(
        "components/schemas/Attachment (discriminator type)",
        ("type",),
        {"type": STR},
        "type",
        {
            "image": "PhotoAttachment",
            "location": "LocationAttachment",
            "inline_keyboard": "InlineKeyboardAttachment",
            "contact": "ContactAttachment",
            "video": "MediaAttachment",
            "audio": "MediaAttachment",
            "file": "MediaAttachment",
            "sticker": "MediaAttachment",
            "share": "MediaAttachment",
        },
    ),
    "PhotoAttachment": Obj(
        "components/schemas/PhotoAttachment", ("payload",), {"payload": ref("PhotoPayload")}
    ),
    "PhotoPayload": Obj(
        "components/schemas/PhotoAttachmentPayload",
        ("photo_id", "url", "token"),
        {"photo_id": INT, "token": STR, "url": STR},
    ),
    "LocationAttachment": Obj(
        "components/schemas/LocationAttachment",
        ("latitude", "longitude"),
        {"latitude": NUM, "longitude": NUM},
    ),
    "InlineKeyboardAttachment": Obj(
        "components/schemas/InlineKeyboardAttachment", ("payload",), {"payload": ref("Keyboard")}
    ),
    "Keyboard": Obj(
        "components/schemas/Keyboard",
        ("buttons",),
        {"buttons": list_of(list_of(ref("Button")))},
    ),
    "ContactAttachment": Obj(
        "components/schemas/ContactAttachment", ("payload",), {"payload": ref("ContactPayload")}
    ),
    "ContactPayload": Obj(
        "components/schemas/ContactAttachmentPayload",
        (),
        {"vcf_info": STR_N, "hash": STR_N, "max_info": ref("User", nullable=True)},
    ),
    "MediaAttachment": Obj(
        "components/schemas/{Video,Audio,File,Sticker,Share}Attachment", ("payload",)
    ),
    # --------------------------------------------------------------- buttons
    "Button": Obj(
        "components/schemas/Button (discriminator type)",
        BUTTON,
        BUTTON_FIELDS,
        "type",
        {
            "callback": "CallbackButton",
            "link": "LinkButton",
            "request_geo_location": "RequestGeoLocationButton",
            "request_contact": "PlainButton",
            "message": "PlainButton",
            "open_app": "OpenAppButton",
            "clipboard": "ClipboardButton",
        },
    ),
    "CallbackButton": Obj(
        "components/schemas/CallbackButton", ("payload",), {"payload": F("str", max_len=1024)}
    ),
    "ClipboardButton": Obj(
        "components/schemas/ClipboardButton", ("payload",), {"payload": F("str", max_len=1024)}
    ),
    "LinkButton": Obj("components/schemas/LinkButton", ("url",), {"url": F("str", max_len=2048)}),
    "RequestGeoLocationButton": Obj(
        "components/schemas/RequestGeoLocationButton", (), {"quick": BOOL}
    ),
    "PlainButton": Obj("components/schemas/{RequestContact,Message}Button"),
    "OpenAppButton": Obj(
        "components/schemas/OpenAppButton",
        ("web_app",),
        {"web_app": STR, "payload": F("str", nullable=True, max_len=512, pattern=r"[\w-]*")},
    ),
    # --------------------------------------------------------------- what the bot sends
    "NewMessageBody": Obj(
        "components/schemas/NewMessageBody",
        (),
        {
            "text": F("str", nullable=True, max_len=4000),
            "attachments": list_of(ref("AttachmentRequest"), nullable=True),
            "link": ref("NewMessageLink", nullable=True),
            "notify": BOOL,
            "format": F("str", nullable=True, enum=TEXT_FORMAT),
        },
    ),
    # "Unlike NewMessageBody, attachments are not allowed" (SPEC §14: an answer under a
    # comment); a key the schema does not list is refused.
    "NewCommentBody": Obj(
        "components/schemas/NewCommentBody",
        (),
        {
            "text": F("str", nullable=True, max_len=4000),
            "link": ref("NewMessageLink", nullable=True),
            "format": F("str", nullable=True, enum=TEXT_FORMAT),
        },
        extra=lambda value, where: [
            f"{where}: NewCommentBody has no {key}"
            for key in value
            if key not in ("text", "link", "format")
        ],
    ),
    "NewMessageLink": Obj(
        "components/schemas/NewMessageLink",
        ("type", "mid"),
        {"type": F("str", enum=LINK_TYPE), "mid": F("str", min_len=1)},
    ),
    "AttachmentRequest": Obj(
        "components/schemas/AttachmentRequest (discriminator type)",
        ("type",),
        {"type": STR},
        "type",
        {
            "image": "PhotoAttachmentRequest",
            "inline_keyboard": "InlineKeyboardAttachmentRequest",
            "location": "LocationAttachment",
            "video": "UploadedAttachmentRequest",
            "audio": "UploadedAttachmentRequest",
            "file": "UploadedAttachmentRequest",
            "sticker": "MediaAttachment",
            "contact": "MediaAttachment",
            "share": "MediaAttachment",
        },
    ),
    "PhotoAttachmentRequest": Obj(
        "components/schemas/PhotoAttachmentRequest",
        ("payload",),
        {"payload": ref("PhotoRequestPayload")},
    ),
    "PhotoRequestPayload": Obj(
        "components/schemas/PhotoAttachmentRequestPayload",
        (),
        {
            "url": F("str", nullable=True, min_len=1),
            "token": STR_N,
            "photos": F("dict", item=ref("PhotoToken"), nullable=True),
        },
    ),
    "PhotoToken": Obj("components/schemas/PhotoToken", ("token",), {"token": STR}),
    "UploadedAttachmentRequest": Obj(
        "components/schemas/{Video,Audio,File}AttachmentRequest + UploadedInfo",
        ("payload",),
        {"payload": ref("UploadedInfo")},
    ),
    "UploadedInfo": Obj("components/schemas/UploadedInfo", (), {"token": STR}),
    "InlineKeyboardAttachmentRequest": Obj(
        "components/schemas/InlineKeyboardAttachmentRequest",
        ("payload",),
        {"payload": ref("KeyboardRequest")},
    ),
    "KeyboardRequest": Obj(
        "components/schemas/InlineKeyboardAttachmentRequestPayload",
        ("buttons",),
        {"buttons": list_of(list_of(ref("Button")), min_items=1)},
        extra=keyboard_size,
    ),
    "CallbackAnswer": Obj(
        "components/schemas/CallbackAnswer",
        (),
        {"message": ref("NewMessageBody", nullable=True), "notification": STR_N},
    ),
    "SubscriptionRequestBody": Obj(
        "components/schemas/SubscriptionRequestBody",
        ("url",),
        {
            "url": STR,
            "secret": F("str", min_len=5, max_len=256, pattern=r"[A-Za-z0-9_-]+"),
            "update_types": list_of(STR),
        },
    ),
    # --------------------------------------------------------------- subscriptions, uploads
    "Subscription": Obj(
        "components/schemas/Subscription",
        ("url", "time"),
        {"url": STR, "time": INT, "update_types": list_of(F("str", min_len=1), nullable=True)},
    ),
    "GetSubscriptionsResult": Obj(
        "components/schemas/GetSubscriptionsResult",
        ("subscriptions",),
        {"subscriptions": list_of(ref("Subscription"))},
    ),
    "UploadEndpoint": Obj(
        "components/schemas/UploadEndpoint", ("url",), {"url": STR, "token": STR_N}
    ),
    # --------------------------------------------------------------- updates
    "UpdateList": Obj(
        "components/schemas/UpdateList",
        ("updates",),
        {"updates": list_of(ref("Update")), "marker": INT_N},
    ),
    "Update": Obj(
        "components/schemas/Update (discriminator update_type)",
        ("update_type", "timestamp"),
        {"update_type": STR, "timestamp": INT},
        "update_type",
        {
            "message_created": "MessageCreatedUpdate",
            "message_callback": "MessageCallbackUpdate",
            "bot_started": "BotStartedUpdate",
            "bot_stopped": "BotStoppedUpdate",
        },
    ),
    "MessageCreatedUpdate": Obj(
        "components/schemas/MessageCreatedUpdate",
        ("message",),
        {"message": ref("Message"), "user_locale": STR_N},
    ),
    "MessageCallbackUpdate": Obj(
        "components/schemas/MessageCallbackUpdate",
        ("callback",),
        {
            "callback": ref("Callback"),
            "message": ref("Message", nullable=True),
            "user_locale": STR_N,
        },
    ),
    "Callback": Obj(
        "components/schemas/Callback",
        ("timestamp", "callback_id", "user"),
        {"timestamp": INT, "callback_id": STR, "payload": STR, "user": ref("User")},
    ),
    "BotStartedUpdate": Obj(
        "components/schemas/BotStartedUpdate",
        ("chat_id", "user"),
        {
            "chat_id": INT,
            "user": ref("User"),
            "payload": F("str", nullable=True, max_len=512),
            "user_locale": STR,
        },
    ),
    "BotStoppedUpdate": Obj(
        "components/schemas/BotStoppedUpdate",
        ("chat_id", "user"),
        {"chat_id": INT, "user": ref("User"), "user_locale": STR},
    ),
}


def problems(value: Any, name: str, where: str = "$") -> list[str]:
    """What in `value` disagrees with the object `name` of SCHEMA ([] if nothing)."""
    obj = SCHEMA[name]
    if not isinstance(value, dict):
        return [f"{where}: {name} must be an object"]
    found = [f"{where}: {name} lacks required {key}" for key in obj.required if key not in value]
    for key, rule in obj.fields.items():
        if key in value:
            found += _field_problems(value[key], rule, f"{where}.{key}")
    if obj.extra is not None:
        found += obj.extra(value, where)
    if obj.discriminator:
        tag = value.get(obj.discriminator)
        target = obj.mapping.get(tag) if isinstance(tag, str) else None
        if target is None:
            found.append(f"{where}.{obj.discriminator}: {tag!r} is not a known {name}")
        else:
            found += problems(value, target, where)
    return found


def _field_problems(value: Any, rule: F, where: str) -> list[str]:
    if value is None:
        return [] if rule.nullable or rule.kind == "any" else [f"{where}: must not be null"]
    kind = rule.kind
    if kind == "any":
        return []
    if kind == "obj":
        return problems(value, rule.ref, where)
    checks: dict[str, Callable[[Any], bool]] = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "num": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        "bool": lambda v: isinstance(v, bool),
        "list": lambda v: isinstance(v, list),
        "dict": lambda v: isinstance(v, dict),
    }
    if not checks[kind](value):
        return [f"{where}: must be {kind}, not {type(value).__name__}"]
    found: list[str] = []
    if kind == "str":
        if rule.min_len is not None and len(value) < rule.min_len:
            found.append(f"{where}: shorter than {rule.min_len}")
        if rule.max_len is not None and len(value) > rule.max_len:
            found.append(f"{where}: longer than {rule.max_len}")
        if rule.enum and value not in rule.enum:
            found.append(f"{where}: {value!r} not in {rule.enum}")
        if rule.pattern and not re.fullmatch(rule.pattern, value):
            found.append(f"{where}: does not match {rule.pattern}")
    elif kind == "list":
        if rule.min_items is not None and len(value) < rule.min_items:
            found.append(f"{where}: fewer than {rule.min_items} items")
        if rule.max_items is not None and len(value) > rule.max_items:
            found.append(f"{where}: more than {rule.max_items} items")
        assert rule.item is not None
        for index, item in enumerate(value):
            found += _field_problems(item, rule.item, f"{where}[{index}]")
    elif kind == "dict" and rule.item is not None:
        for key, item in value.items():
            found += _field_problems(item, rule.item, f"{where}.{key}")
    return found


# ====================================================================== helpers


@pytest.fixture
async def fake() -> AsyncIterator[FakeMax]:
    async with FakeMax(hold_seconds=1.0) as server:
        yield server
    assert server.errors == []  # the fake itself never failed


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    http: aiohttp.ClientSession,
    fake: FakeMax,
    verb: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    body: Any = None,
    token: str | None = TOKEN,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, Any, Mapping[str, str]]:
    """One request as a client of the Bot API would make it: (status, decoded body, headers)."""
    sent_headers = dict(headers or {})
    if token is not None:
        sent_headers["Authorization"] = token
    query = {k: str(v) for k, v in (params or {}).items()}
    async with http.request(
        verb, fake.url + path, params=query, json=body, headers=sent_headers
    ) as response:
        text = await response.text()
        data = json.loads(text) if response.content_type == "application/json" else text
        return response.status, data, response.headers


async def poll(http: aiohttp.ClientSession, fake: FakeMax, **params: Any) -> dict[str, Any]:
    params.setdefault("timeout", 0)
    status, data, _ = await call(http, fake, "GET", "/updates", params=params)
    assert status == 200, data
    assert problems(data, "UpdateList") == []
    result: dict[str, Any] = data
    return result


def keyboard(rows: list[list[dict[str, Any]]]) -> dict[str, Any]:
    return {"type": "inline_keyboard", "payload": {"buttons": rows}}


def cb(text: str, payload: str) -> dict[str, Any]:
    return {"type": "callback", "text": text, "payload": payload}


async def send(
    http: aiohttp.ClientSession, fake: FakeMax, body: dict[str, Any], user_id: int = USER
) -> tuple[int, Any, Mapping[str, str]]:
    return await call(http, fake, "POST", "/messages", params={"user_id": user_id}, body=body)


# ====================================================================== (a) shapes and limits


def test_the_description_catches_what_it_should() -> None:
    message = load_payload("message_created_text")["message"]
    assert problems(message, "Message") == []
    assert problems({**message, "body": None}, "Message") == ["$.body: must not be null"]
    without_body = {k: v for k, v in message.items() if k != "body"}
    assert problems(without_body, "Message") == ["$: Message lacks required body"]
    assert problems({"text": "я" * 4001}, "NewMessageBody") == ["$.text: longer than 4000"]
    long_button = {"type": "inline_keyboard", "payload": {"buttons": [[cb("я" * 129, "p")]]}}
    assert problems(long_button, "AttachmentRequest") == [
        "$.payload.buttons[0][0].text: longer than 128"
    ]
    started = {**load_payload("bot_started_payload"), "payload": "x" * 513}
    assert problems(started, "Update") == ["$.payload: longer than 512"]
    assert problems({"update_type": "mystery", "timestamp": 1}, "Update") != []
    assert problems(keyboard([[cb("a", "b")]] * 31), "AttachmentRequest") == [
        "$.payload.buttons: 31 rows > 30"
    ]


@pytest.mark.parametrize("name", list(iter_payload_names()))
def test_every_payload_file_matches_the_schema(name: str) -> None:
    assert problems(load_payload(name), "Update") == []


async def test_updates_the_fake_builds_match_the_schema(
    fake: FakeMax, http: aiohttp.ClientSession
) -> None:
    fake.bot_started(USER, "sergino")
    fake.message(USER, "Не горит фонарь")
    photo_update = fake.message(USER, "Фото", photos=[TINY_JPEG + b"1"])
    fake.message(USER, location=(62.2521, 66.0413))
    fake.message(USER, contact="+79001234567")
    status, answer, _ = await send(
        http, fake, {"text": "Меню", "attachments": [keyboard([[cb("Подать", "menu:new")]])]}
    )
    assert status == 200, answer
    mid = answer["message"]["body"]["mid"]
    fake.message(USER, "Ответ на ваше сообщение", reply_to=mid)
    fake.callback(USER, "menu:new")
    fake.bot_stopped(USER)
    for name in iter_payload_names():
        fake.push_payload(name, user_id=OFFICIAL)

    updates = (await poll(http, fake, limit=1000))["updates"]

    assert [u["update_type"] for u in updates[:8]] == [
        "bot_started",
        "message_created",
        "message_created",
        "message_created",
        "message_created",
        "message_created",
        "message_callback",
        "bot_stopped",
    ]
    assert len(updates) == 8 + len(list(iter_payload_names()))
    started, text, photo, place, contact, reply, pressed, _ = updates[:8]
    assert started["payload"] == "sergino" and started["chat_id"] == fake.dialog_id(USER)
    assert text["message"]["body"]["text"] == "Не горит фонарь"
    assert text["message"]["recipient"] == {
        "chat_id": fake.dialog_id(USER),
        "chat_type": "dialog",
        "user_id": BOT_ID,
    }
    image = photo["message"]["body"]["attachments"][0]
    assert image["type"] == "image" and image["payload"]["url"].startswith(fake.url)
    assert photo == photo_update
    async with http.get(image["payload"]["url"]) as response:  # served without the token
        assert await response.read() == TINY_JPEG + b"1"
    assert place["message"]["body"]["attachments"] == [
        {"type": "location", "latitude": 62.2521, "longitude": 66.0413}
    ]
    vcf = contact["message"]["body"]["attachments"][0]["payload"]["vcf_info"]
    assert "TEL;TYPE=cell:+79001234567" in vcf
    assert reply["message"]["link"]["type"] == "reply"
    assert reply["message"]["link"]["message"]["mid"] == mid
    assert reply["message"]["link"]["sender"]["user_id"] == BOT_ID
    assert pressed["callback"]["payload"] == "menu:new"
    assert pressed["message"]["body"]["mid"] == mid
    # A pushed payload's image moved onto the fake, so the bot can fetch it.
    moved = next(u for u in updates[8:] if "image" in json.dumps(u))
    assert moved["message"]["body"]["attachments"][0]["payload"]["url"].startswith(fake.url)


async def test_get_me_is_bot_info(fake: FakeMax, http: aiohttp.ClientSession) -> None:
    status, me, _ = await call(http, fake, "GET", "/me")
    assert status == 200
    assert problems(me, "BotInfo") == []
    assert me["user_id"] == BOT_ID and me["is_bot"] is True


async def test_a_sent_message_is_answered_and_recorded(
    fake: FakeMax, http: aiohttp.ClientSession
) -> None:
    fake.add_user(USER)
    body = {
        "text": "Выберите категорию",
        "attachments": [
            keyboard(
                [
                    [cb("ЖКХ", "cat:housing"), cb("Дороги", "cat:roads")],
                    [{"type": "request_geo_location", "text": "Отправить место", "quick": False}],
                    [{"type": "request_contact", "text": "Поделиться телефоном"}],
                    [{"type": "link", "text": "Госуслуги", "url": "https://pos.gosuslugi.ru/"}],
                ]
            )
        ],
        "format": "markdown",
        "notify": True,
    }
    assert problems(body, "NewMessageBody") == []

    status, answer, _ = await send(http, fake, body)

    assert status == 200, answer
    assert problems(answer, "SendMessageResult") == []
    message = answer["message"]
    assert message["sender"]["user_id"] == BOT_ID and message["sender"]["is_bot"] is True
    assert message["recipient"] == {
        "chat_id": fake.dialog_id(USER),
        "chat_type": "dialog",
        "user_id": USER,
    }
    assert message["body"]["text"] == "Выберите категорию"
    assert message["body"]["attachments"][0]["type"] == "inline_keyboard"
    [sent] = fake.messages_to(USER)
    assert sent.mid == message["body"]["mid"] and sent.query == {"user_id": str(USER)}
    assert sent.button_texts == [
        "ЖКХ",
        "Дороги",
        "Отправить место",
        "Поделиться телефоном",
        "Госуслуги",
    ]
    assert sent.format == "markdown" and sent.notify is True

    status, by_chat, _ = await call(
        http,
        fake,
        "POST",
        "/messages",
        params={"chat_id": fake.dialog_id(USER)},
        body={"text": "По chat_id"},
    )
    assert status == 200 and by_chat["message"]["recipient"]["user_id"] == USER

    status, replied, _ = await send(
        http, fake, {"text": "Ответ", "link": {"type": "reply", "mid": sent.mid}}
    )
    assert status == 200
    assert replied["message"]["link"]["message"]["mid"] == sent.mid
    assert problems(replied, "SendMessageResult") == []


def _rows(count: int, per_row: int, text: str = "Кнопка", payload: str = "p") -> dict[str, Any]:
    return keyboard([[cb(text, payload) for _ in range(per_row)] for _ in range(count)])


ACCEPTED: dict[str, dict[str, Any]] = {
    "text of 4000 characters": {"text": "я" * 4000},
    "button text of 128": {"attachments": [_rows(1, 1, text="я" * 128)]},
    "callback payload of 1024": {"attachments": [_rows(1, 1, payload="p" * 1024)]},
    "30 rows": {"attachments": [_rows(30, 1)]},
    "7 buttons a row": {"attachments": [_rows(1, 7)]},
    "210 buttons": {"attachments": [_rows(30, 7)]},
    "a keyboard without text": {"attachments": [_rows(1, 1)]},
}
REJECTED: dict[str, dict[str, Any]] = {
    "text of 4001 characters": {"text": "я" * 4001},
    "empty button text": {"attachments": [_rows(1, 1, text="")]},
    "button text of 129": {"attachments": [_rows(1, 1, text="я" * 129)]},
    "callback payload of 1025": {"attachments": [_rows(1, 1, payload="p" * 1025)]},
    "callback without payload": {"attachments": [keyboard([[{"type": "callback", "text": "x"}]])]},
    "31 rows": {"attachments": [_rows(31, 1)]},
    "8 buttons a row": {"attachments": [_rows(1, 8)]},
    "an empty keyboard": {"attachments": [keyboard([])]},
    "unknown button type": {"attachments": [keyboard([[{"type": "magic", "text": "x"}]])]},
    "link button without url": {"attachments": [keyboard([[{"type": "link", "text": "x"}]])]},
    "unknown format": {"text": "x", "format": "bbcode"},
    "unknown link type": {"text": "x", "link": {"type": "quote", "mid": "mid.1"}},
    "link without mid": {"text": "x", "link": {"type": "reply"}},
    "location without longitude": {"attachments": [{"type": "location", "latitude": 1.0}]},
    "image without payload": {"attachments": [{"type": "image"}]},
    "unknown attachment type": {"attachments": [{"type": "hologram", "payload": {}}]},
}


@pytest.mark.parametrize("name", list(ACCEPTED))
async def test_bodies_within_the_limits_are_accepted(
    name: str, fake: FakeMax, http: aiohttp.ClientSession
) -> None:
    fake.add_user(USER)
    body = ACCEPTED[name]
    assert problems(body, "NewMessageBody") == []
    status, answer, _ = await send(http, fake, body)
    assert status == 200, answer
    assert problems(answer, "SendMessageResult") == []


@pytest.mark.parametrize("name", list(REJECTED))
async def test_bodies_beyond_the_limits_are_refused_as_the_schema_says(
    name: str, fake: FakeMax, http: aiohttp.ClientSession
) -> None:
    fake.add_user(USER)
    body = REJECTED[name]
    assert problems(body, "NewMessageBody") != []  # the description refuses it too
    status, answer, _ = await send(http, fake, body)
    assert status == 400
    assert problems(answer, "Error") == []
    assert answer["code"] == "proto.payload"
    assert fake.sent == []


async def test_bad_requests_and_unreachable_users(
    fake: FakeMax, http: aiohttp.ClientSession
) -> None:
    fake.add_user(USER)
    status, answer, _ = await call(http, fake, "POST", "/messages", body={"text": "x"})
    assert status == 400 and answer["code"] == "proto.payload"  # neither user_id nor chat_id
    status, answer, _ = await send(http, fake, {})
    assert status == 400  # nothing to send [??: MAX's exact answer]
    status, answer, _ = await send(http, fake, {"text": "x"}, user_id=OFFICIAL)
    assert (status, answer["code"]) == (403, "chat.denied")  # never wrote to the bot
    fake.bot_stopped(USER)
    status, answer, _ = await send(http, fake, {"text": "x"})
    assert (status, answer["code"]) == (403, "chat.denied")  # stopped the bot
    fake.bot_started(USER)
    status, _, _ = await send(http, fake, {"text": "x"})
    assert status == 200
    status, answer, _ = await send(http, fake, {"text": "x", "link": {"type": "reply", "mid": "m"}})
    assert status == 400 and "link.mid" in answer["message"]
    assert problems(answer, "Error") == []


async def test_authorization_is_the_bare_token_in_the_header(
    fake: FakeMax, http: aiohttp.ClientSession
) -> None:
    refused = [
        await call(http, fake, "GET", "/me", token=None),
        await call(http, fake, "GET", "/me", token=f"Bearer {TOKEN}"),
        await call(http, fake, "GET", "/me", token="another-token"),
        await call(http, fake, "GET", "/me", token=None, params={"access_token": TOKEN}),
    ]
    for status, answer, _ in refused:
        assert status == 401
        assert answer == {"code": "verify.token", "message": "Invalid access_token"}
    status, _, _ = await call(http, fake, "GET", "/me")
    assert status == 200


async def test_long_poll_marker_commits_what_came_before(
    fake: FakeMax, http: aiohttp.ClientSession
) -> None:
    for text in ("один", "два", "три"):
        fake.message(USER, text)

    first = await poll(http, fake)
    again = await poll(http, fake)  # no marker: everything since the last commitment

    texts = [u["message"]["body"]["text"] for u in first["updates"]]
    assert texts == ["один", "два", "три"]
    assert again == first
    marker = first["marker"]
    committed = await poll(http, fake, marker=marker)
    assert committed == {"updates": [], "marker": marker}
    assert fake.pending_updates() == []
    fake.message(USER, "четыре")
    later = await poll(http, fake, marker=marker)
    assert [u["message"]["body"]["text"] for u in later["updates"]] == ["четыре"]
    assert later["marker"] == marker + 1
    assert (await poll(http, fake))["updates"] == later["updates"]  # not committed yet


async def test_long_poll_types_limit_and_ranges(fake: FakeMax, http: aiohttp.ClientSession) -> None:
    fake.bot_started(USER)
    fake.message(USER, "a")
    fake.message(USER, "b")
    fake.callback(USER, "x")

    only_messages = await poll(http, fake, types="message_created,message_callback")
    one = await poll(http, fake, limit=1)

    assert [u["update_type"] for u in only_messages["updates"]] == [
        "message_created",
        "message_created",
        "message_callback",
    ]
    assert [u["update_type"] for u in one["updates"]] == ["bot_started"]
    after_one = await poll(http, fake, marker=one["marker"], limit=10)
    assert len(after_one["updates"]) == 3
    for params in ({"limit": 0}, {"limit": 1001}, {"timeout": 91}, {"timeout": -1}):
        status, answer, _ = await call(http, fake, "GET", "/updates", params=params)
        assert status == 400 and problems(answer, "Error") == [], params


async def test_long_poll_holds_until_an_update_arrives(
    fake: FakeMax, http: aiohttp.ClientSession
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    empty = await poll(http, fake, timeout=30)  # held for hold_seconds (1.0) at most
    assert empty["updates"] == [] and loop.time() - started >= 0.9

    waiting = asyncio.create_task(poll(http, fake, timeout=30))
    await fake.wait_polled()
    started = loop.time()
    fake.message(USER, "сейчас")
    answer = await waiting

    assert loop.time() - started < 0.5
    assert answer["updates"][0]["message"]["body"]["text"] == "сейчас"


async def test_a_long_poll_the_client_gave_up_on_ends(fake: FakeMax) -> None:
    fake.hold_seconds = None  # hold for the whole timeout asked for, as MAX does
    timeout = aiohttp.ClientTimeout(total=0.3)
    async with aiohttp.ClientSession(timeout=timeout) as impatient:
        with pytest.raises(TimeoutError):
            await poll(impatient, fake, timeout=30)
    await fake.wait_for(lambda: fake.holding == 0, within=2.0, what="the held poll to end")
    fake.message(USER, "никому")
    assert fake.delivered_updates == 0 and len(fake.pending_updates()) == 1


async def test_subscriptions_and_polling_exclude_each_other(http: aiohttp.ClientSession) -> None:
    async with FakeMax(hold_seconds=0.2) as fake:
        url = "http://127.0.0.1:9/max/webhook"
        body = {"url": url, "secret": SECRET, "update_types": ["message_created"]}
        assert problems(body, "SubscriptionRequestBody") == []
        status, answer, _ = await call(http, fake, "POST", "/subscriptions", body=body)
        assert status == 200 and problems(answer, "SimpleQueryResult") == []
        status, listed, _ = await call(http, fake, "GET", "/subscriptions")
        assert problems(listed, "GetSubscriptionsResult") == []
        assert [s["url"] for s in listed["subscriptions"]] == [url]
        assert "secret" not in listed["subscriptions"][0]

        status, answer, _ = await call(http, fake, "GET", "/updates", params={"timeout": 0})
        assert status == 405 and problems(answer, "Error") == []

        for secret in ("abc", "has space", "кириллица", "x" * 257):
            status, _, _ = await call(
                http, fake, "POST", "/subscriptions", body={"url": url, "secret": secret}
            )
            assert status == 400, secret
        status, _, _ = await call(http, fake, "DELETE", "/subscriptions")
        assert status == 400  # url is required
        status, answer, _ = await call(http, fake, "DELETE", "/subscriptions", params={"url": url})
        assert status == 200 and answer == {"success": True}
        assert (await poll(http, fake))["updates"] == []
        assert fake.errors == []

    async with FakeMax(strict_webhook_urls=True) as strict:
        status, _, _ = await call(http, strict, "POST", "/subscriptions", body={"url": url})
        assert status == 400  # MAX wants https on port 443
        status, _, _ = await call(
            http, strict, "POST", "/subscriptions", body={"url": "https://bot.example.ru/max"}
        )
        assert status == 200


async def test_webhook_pushes_carry_the_secret(fake: FakeMax) -> None:
    seen: list[tuple[str | None, dict[str, Any]]] = []

    async def hook(request: web.Request) -> web.Response:
        secret = request.headers.get("X-Max-Bot-Api-Secret")
        seen.append((secret, await request.json()))
        return web.Response(status=200 if secret == SECRET else 403)

    app = web.Application()
    app.router.add_post("/max/webhook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/max/webhook"
    try:
        update = fake.message(USER, "через вебхук", push=False)
        assert await fake.post_webhook(url, update, "wrong-secret") == (403, "")
        assert (await fake.post_webhook(url, update, None))[0] == 403
        assert (await fake.post_webhook(url, update, SECRET))[0] == 200
        fake.subscriptions.append(
            {"url": url, "time": 1, "update_types": ["bot_started"], "secret": SECRET}
        )
        assert await fake.deliver_webhook(update) == []  # not a type it subscribed to
        assert await fake.deliver_webhook(fake.bot_started(USER, push=False)) == [(url, 200, "")]
    finally:
        await runner.cleanup()

    assert [s for s, _ in seen] == ["wrong-secret", None, SECRET, SECRET]
    assert seen[2][1] == update and problems(seen[2][1], "Update") == []
    assert fake.delivered_updates == 2


async def test_upload_then_send_retrying_while_the_file_is_processed(
    fake: FakeMax, http: aiohttp.ClientSession
) -> None:
    fake.add_user(USER)
    fake.not_ready_times = 2
    status, endpoint, _ = await call(http, fake, "POST", "/uploads", params={"type": "image"})
    assert status == 200 and problems(endpoint, "UploadEndpoint") == []
    assert endpoint["url"].startswith(fake.url) and "token" not in endpoint
    form = aiohttp.FormData()
    form.add_field("data", TINY_JPEG, filename="photo.jpg", content_type="image/jpeg")
    async with http.post(endpoint["url"], data=form) as response:  # no token needed there
        assert response.status == 200
        uploaded = await response.json()
    [(photo_id, photo)] = uploaded["photos"].items()
    token = photo["token"]
    body = {"text": "Фото", "attachments": [{"type": "image", "payload": {"token": token}}]}
    assert problems(body, "NewMessageBody") == []

    answers = [await send(http, fake, body) for _ in range(3)]

    assert [(s, a.get("code")) for s, a, _ in answers] == [
        (400, "attachment.not.ready"),
        (400, "attachment.not.ready"),
        (200, None),
    ]
    assert problems(answers[0][1], "Error") == []
    assert fake.not_ready_refusals == 2 and len(fake.sent) == 1
    image = answers[2][1]["message"]["body"]["attachments"][0]
    assert image["payload"]["photo_id"] == int(photo_id) and image["payload"]["token"] == token
    async with http.get(image["payload"]["url"]) as response:
        assert await response.read() == TINY_JPEG
    assert fake.uploads[0].type == "image" and fake.uploads[0].filename == "photo.jpg"

    async with http.post(endpoint["url"], data=b"again") as response:
        assert response.status == 404  # an upload URL serves once
    status, answer, _ = await call(http, fake, "POST", "/uploads", params={"type": "photo"})
    assert status == 400 and "image" in answer["message"]  # type=photo is no longer supported
    status, video, _ = await call(http, fake, "POST", "/uploads", params={"type": "video"})
    assert status == 200 and video["token"]  # video and audio get their token at once
    unknown = {"attachments": [{"type": "image", "payload": {"token": "nope"}}]}
    assert (await send(http, fake, unknown))[0] == 400
    bare = aiohttp.FormData()
    bare.add_field("file", b"x", filename="x.jpg")
    _, grant, _ = await call(http, fake, "POST", "/uploads", params={"type": "image"})
    async with http.post(grant["url"], data=bare) as response:
        assert response.status == 400  # the file goes in field "data"


async def test_callback_answers(fake: FakeMax, http: aiohttp.ClientSession) -> None:
    fake.add_user(USER)
    _, answer, _ = await send(
        http, fake, {"text": "Решён?", "attachments": [keyboard([[cb("Да", "rate:yes")]])]}
    )
    mid = answer["message"]["body"]["mid"]
    pressed = fake.callback(USER, "rate:yes")
    callback_id = pressed["callback"]["callback_id"]

    def answer_callback(params: dict[str, Any], body: Any) -> Any:
        return call(http, fake, "POST", "/answers", params=params, body=body)

    note = {"notification": "Спасибо за оценку"}
    replace = {"message": {"text": "Спасибо!", "attachments": []}}
    assert problems(note, "CallbackAnswer") == [] and problems(replace, "CallbackAnswer") == []
    status, result, _ = await answer_callback({"callback_id": callback_id}, note)
    assert status == 200 and problems(result, "SimpleQueryResult") == []
    status, _, _ = await answer_callback({"callback_id": callback_id}, replace)
    assert status == 200
    assert [a["notification"] for a in fake.callback_answers] == ["Спасибо за оценку", None]
    assert fake.callback_answers[0]["mid"] == mid
    assert fake.edits[-1]["body"]["text"] == "Спасибо!"

    status, refused, _ = await answer_callback({"callback_id": "unknown"}, note)
    assert (status, refused["message"]) == (400, "callback_id: Callback identifier is invalid")
    status, _, _ = await answer_callback({"callback_id": callback_id}, {})
    assert status == 400  # neither message nor notification
    status, _, _ = await answer_callback({}, note)
    assert status == 400


async def test_get_chat_of_a_dialog(fake: FakeMax, http: aiohttp.ClientSession) -> None:
    fake.add_user(USER)
    status, chat, _ = await call(http, fake, "GET", f"/chats/{fake.dialog_id(USER)}")
    assert status == 200 and problems(chat, "Chat") == []
    assert chat["type"] == "dialog" and chat["dialog_with_user"]["user_id"] == USER
    status, missing, _ = await call(http, fake, "GET", "/chats/-70801090403050")
    assert status == 404 and problems(missing, "Error") == []
    status, missing, _ = await call(http, fake, "GET", "/videos/abc")
    assert status == 404 and problems(missing, "Error") == []
    status, wrong_verb, _ = await call(http, fake, "GET", "/messages")
    assert status == 405 and problems(wrong_verb, "Error") == []


# ====================================================================== (c) failure injection


async def test_an_injected_429_carries_a_retry_hint_then_service_resumes(
    fake: FakeMax, http: aiohttp.ClientSession
) -> None:
    fake.add_user(USER)
    fake.fail_method(SEND_MESSAGE, 429, retry_after=3)

    status, answer, headers = await send(http, fake, {"text": "раз"})
    assert status == 429 and headers["Retry-After"] == "3"
    assert problems(answer, "Error") == [] and answer["code"] == "too.many.requests"
    assert fake.sent == []
    status, _, _ = await send(http, fake, {"text": "раз"})
    assert status == 200 and len(fake.sent) == 1


async def test_injected_server_errors(fake: FakeMax, http: aiohttp.ClientSession) -> None:
    fake.add_user(USER)
    fake.fail_method(SEND_MESSAGE, 500)
    fake.fail_method(SEND_MESSAGE, 502, body="<html><body>502 Bad Gateway</body></html>")
    fake.fail_method(GET_UPDATES, 503, times=2)

    status, answer, _ = await send(http, fake, {"text": "x"})
    assert status == 500 and problems(answer, "Error") == []
    status, page, headers = await send(http, fake, {"text": "x"})
    assert status == 502 and headers["Content-Type"].startswith("text/html") and "502" in page
    for _ in range(2):
        status, answer, _ = await call(http, fake, "GET", "/updates", params={"timeout": 0})
        assert status == 503 and problems(answer, "Error") == []
    assert (await send(http, fake, {"text": "x"}))[0] == 200
    assert (await poll(http, fake))["updates"] == []
    assert len(fake.sent) == 1
    assert [(op, status) for op, status, _ in fake.answered_errors] == [
        (SEND_MESSAGE, 500),
        (SEND_MESSAGE, 502),
        (GET_UPDATES, 503),
        (GET_UPDATES, 503),
    ]


async def test_dropped_connections_before_and_after_processing(
    fake: FakeMax, http: aiohttp.ClientSession
) -> None:
    fake.add_user(USER)
    fake.drop_connections(SEND_MESSAGE)
    with pytest.raises(aiohttp.ClientConnectionError):
        await send(http, fake, {"text": "до"})
    assert fake.sent == []

    fake.drop_connections(SEND_MESSAGE, after_processing=True)
    with pytest.raises(aiohttp.ClientConnectionError):
        await send(http, fake, {"text": "после"})
    assert [m.text for m in fake.sent] == ["после"]  # shown, though the bot cannot know

    fake.drop_connections(GET_UPDATES, times=5)
    fake.fail_method(SEND_MESSAGE, 503, times=5)
    fake.heal()
    assert (await send(http, fake, {"text": "снова"}))[0] == 200
    assert (await poll(http, fake))["updates"] == []


async def test_rate_limits_answer_429(fake: FakeMax, http: aiohttp.ClientSession) -> None:
    fake.add_user(USER)
    fake.per_chat_limit = 2  # "no more than two messages a second into one dialog"
    statuses = [(await send(http, fake, {"text": str(i)}))[0] for i in range(3)]
    assert statuses == [200, 200, 429] and fake.rate_errors == 1


# ====================================================================== (b) maxapi over real HTTP


def make_bot(fake: FakeMax, token: str = TOKEN, **kwargs: Any) -> Bot:
    """maxapi's Bot pointed at the fake (maxapi: connection/base.py set_api_url), with short
    retry delays (its defaults: backoff 1/2/4 s, 2 s after an upload, 2 s between attempts)."""
    bot = Bot(
        token,
        default_connection=DefaultConnectionProperties(retry_backoff_factor=0.01),
        after_input_media_delay=0.01,
        after_upload_retry_delay=0.01,
        **kwargs,
    )
    bot.set_api_url(fake.url + "/")
    return bot


@contextlib.asynccontextmanager
async def maxapi_bot(fake: FakeMax, **kwargs: Any) -> AsyncIterator[Bot]:
    bot = make_bot(fake, **kwargs)
    try:
        yield bot
    finally:
        await bot.close_session()


@needs_maxapi
@pytest.mark.parametrize("name", list(iter_payload_names()))
async def test_maxapi_parses_every_payload_file(name: str) -> None:
    payload = load_payload(name)
    model = await get_update_model(payload, Bot(TOKEN, auto_requests=False))
    assert model is not None
    assert model.update_type == payload["update_type"]


@needs_maxapi
async def test_maxapi_sends_through_the_fake(fake: FakeMax) -> None:
    fake.add_user(USER)
    async with maxapi_bot(fake) as bot:
        me = await bot.get_me()
        builder = InlineKeyboardBuilder()
        builder.row(CallbackButton(text="Подать обращение", payload="menu:new"))
        builder.row(RequestGeoLocationButton(text="Отправить место"))
        sent = await bot.send_message(
            user_id=USER, text="Здравствуйте", attachments=[builder.as_markup()]
        )
        assert sent is not None
        mid = sent.message.body.mid
        await bot.send_message(
            user_id=USER,
            text="Ответ на ваше сообщение",
            link=NewMessageLink(type=MessageLinkType.REPLY, mid=mid),
        )
        too_wide = InlineKeyboardBuilder()
        too_wide.row(*[CallbackButton(text=str(i), payload=str(i)) for i in range(8)])
        with pytest.raises(MaxApiError) as refused:
            await bot.send_message(user_id=USER, text="8 в ряд", attachments=[too_wide.as_markup()])
        calls_before = len(fake.calls)
        with pytest.raises(ValueError, match="4000"):  # maxapi refuses len >= 4000 itself
            await bot.send_message(user_id=USER, text="я" * 4000)
        assert len(fake.calls) == calls_before

    assert me.user_id == BOT_ID and me.is_bot
    assert {c["authorization"] for c in fake.calls} == {TOKEN}  # the bare token, a header
    assert all("access_token" not in c["query"] for c in fake.calls)
    first, reply = fake.sent
    assert first.mid == mid and first.query == {"user_id": str(USER)}
    assert first.button_texts == ["Подать обращение", "Отправить место"]
    assert reply.link == {"type": "reply", "mid": mid}
    for body in (c["json"] for c in fake.calls_of(SEND_MESSAGE)):
        assert problems(body, "NewMessageBody") == [] or body["text"] == "8 в ряд"
    assert refused.value.code == 400
    assert isinstance(refused.value.raw, dict) and refused.value.raw["code"] == "proto.payload"


@needs_maxapi
async def test_maxapi_with_a_wrong_token_raises_invalid_token(fake: FakeMax) -> None:
    async with maxapi_bot(fake, token="wrong") as bot:
        with pytest.raises(InvalidToken):
            await bot.get_me()


@needs_maxapi
async def test_maxapi_manages_subscriptions(fake: FakeMax) -> None:
    url = "https://bot.example.ru/max/webhook"
    async with maxapi_bot(fake) as bot:
        subscribed = await bot.subscribe_webhook(url, secret=SECRET)
        listed = await bot.get_subscriptions()
        await bot.unsubscribe_webhook(url)
    assert subscribed.success
    assert [s.url for s in listed.subscriptions] == [url]
    assert problems(fake.calls_of("subscribe")[0]["json"], "SubscriptionRequestBody") == []
    assert fake.subscriptions == []


@needs_maxapi
async def test_maxapi_polls_and_handles_every_kind_of_update(fake: FakeMax) -> None:
    fake.add_user(USER)
    dp = Dispatcher()
    got: list[Any] = []

    @dp.message_created()
    async def on_message(event: MessageCreated) -> None:
        got.append(event)

    @dp.message_callback()
    async def on_callback(event: MessageCallback) -> None:
        got.append(event)
        await event.bot.send_callback(event.callback.callback_id, notification="Принято")

    @dp.bot_started()
    async def on_start(event: BotStarted) -> None:
        got.append(event)

    async with maxapi_bot(fake) as bot:
        menu = InlineKeyboardBuilder()
        menu.row(CallbackButton(text="Подать обращение", payload="menu:new"))
        sent = await bot.send_message(user_id=USER, text="Меню", attachments=[menu.as_markup()])
        assert sent is not None
        mid = sent.message.body.mid
        polling = asyncio.create_task(dp.start_polling(bot))
        try:
            await fake.wait_polled()
            fake.bot_started(USER, "sergino")
            fake.message(USER, "Не горит фонарь")
            fake.message(USER, "Фото", photos=1)
            fake.message(USER, location=(62.2521, 66.0413))
            fake.message(USER, "Ответ", reply_to=mid)
            fake.callback(USER, "menu:new")
            await fake.wait_for(lambda: len(got) == 6, what="6 handled updates")
            await fake.wait_calls(ANSWER_CALLBACK)
            await fake.wait_for(lambda: not fake.pending_updates(), what="the marker committed")
            photo_url = got[2].message.body.attachments[0].payload.url
            assert await bot.download_bytes(photo_url) == TINY_JPEG
        finally:
            await dp.stop_polling()
            with contextlib.suppress(asyncio.CancelledError):
                await polling

    started, text, photo, place, reply, pressed = got
    assert started.payload == "sergino" and started.user.user_id == USER
    assert text.message.body.text == "Не горит фонарь"
    assert text.message.sender.user_id == USER
    assert photo.message.body.attachments[0].type == "image"
    location = place.message.body.attachments[0]
    assert (location.latitude, location.longitude) == (62.2521, 66.0413)
    assert reply.message.link.type == "reply" and reply.message.link.message.mid == mid
    assert pressed.callback.payload == "menu:new"
    assert fake.callback_answers[0]["notification"] == "Принято"
    assert problems(fake.calls_of(ANSWER_CALLBACK)[0]["json"], "CallbackAnswer") == []
    polls = fake.polls
    assert polls[0].get("marker") is None  # maxapi starts without a marker ...
    assert any("marker" in p for p in polls[1:])  # ... and then passes the one it got
    assert fake.calls_of(GET_CHAT)  # maxapi fetches the chat of every update (auto_requests)


@needs_maxapi
async def test_maxapi_uploads_and_retries_until_the_file_is_ready(fake: FakeMax) -> None:
    fake.add_user(USER)
    fake.not_ready_times = 2
    async with maxapi_bot(fake) as bot:
        photo = InputMediaBuffer(buffer=TINY_JPEG, filename="photo")
        await bot.send_message(user_id=USER, text="Фото к обращению", attachments=[photo])
        fake.not_ready_times = 9  # more than maxapi's 5 attempts
        with pytest.raises(RuntimeError):
            await bot.send_message(user_id=USER, attachments=[InputMediaBuffer(TINY_JPEG)])

    assert fake.calls_of(GET_UPLOAD_URL)[0]["query"] == {"type": "image"}
    assert fake.calls_of(UPLOAD)[0]["upload"]["type"] == "image"
    assert fake.uploads[0].data == TINY_JPEG
    assert fake.not_ready_refusals == 2 + 5
    [sent] = fake.sent
    token = sent.attachments[0]["payload"]["token"]
    assert sent.attachments == [{"type": "image", "payload": {"token": token}}]
    assert problems(fake.calls_of(SEND_MESSAGE)[0]["json"], "NewMessageBody") == []


@needs_maxapi
async def test_maxapi_on_injected_failures(fake: FakeMax) -> None:
    fake.add_user(USER)
    async with maxapi_bot(fake) as bot:
        fake.fail_method(SEND_MESSAGE, 503)  # maxapi retries 502/503/504 (client/default.py)
        await bot.send_message(user_id=USER, text="после 503")
        fake.drop_connections(SEND_MESSAGE)  # and connection errors
        await bot.send_message(user_id=USER, text="после обрыва")
        assert [m.text for m in fake.sent] == ["после 503", "после обрыва"]

        fake.fail_method(SEND_MESSAGE, 429, retry_after=2)  # not retried: raised at once
        with pytest.raises(MaxApiError) as too_many:
            await bot.send_message(user_id=USER, text="429")
        fake.fail_method(SEND_MESSAGE, 500)  # not retried either
        with pytest.raises(MaxApiError) as internal:
            await bot.send_message(user_id=USER, text="500")

        fake.drop_connections(SEND_MESSAGE, after_processing=True)
        await bot.send_message(user_id=USER, text="дважды")

    assert too_many.value.code == 429
    assert (
        isinstance(too_many.value.raw, dict) and too_many.value.raw["code"] == "too.many.requests"
    )
    assert internal.value.code == 500
    # maxapi resends a POST whose answer was lost: the resident sees it twice.
    assert [m.text for m in fake.sent][-2:] == ["дважды", "дважды"]


@needs_maxapi
async def test_maxapi_webhook_checks_the_secret(fake: FakeMax) -> None:
    fake.add_user(USER)
    dp = Dispatcher()
    got: list[str] = []

    @dp.message_created()
    async def on_message(event: MessageCreated) -> None:
        got.append(event.message.body.text or "")

    async with maxapi_bot(fake) as bot:
        webhook = AiohttpMaxWebhook(dp=dp, bot=bot, secret=SECRET)
        runner = web.AppRunner(webhook.create_app(path="/max/webhook"))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/max/webhook"
        try:
            update = fake.message(USER, "через вебхук", push=False)
            wrong = await fake.post_webhook(url, update, "wrong-secret")
            missing = await fake.post_webhook(url, update, None)
            right = await fake.post_webhook(url, update, SECRET)
            await fake.wait_for(lambda: got == ["через вебхук"], what="the handler")
        finally:
            await runner.cleanup()

    assert wrong[0] == 403 and missing[0] == 403 and right[0] == 200
