"""The fake OK Bot API (tests/fakes/ok.py) speaks the Graph API wire format of the notes
(messenger-apis.md §2): plain aiohttp, as the bot's own client will, subscribes through it, sends
messages and keyboards, answers button presses, uploads photos, trips over its errors, and
receives its webhook posts; every payload in tests/payloads/ok/ is real-shaped."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

import aiohttp
import pytest
from aiohttp import web

from tests.fakes.ok import (
    ATTACHMENTS_MAX,
    BUTTON_PAYLOAD_MAX_CHARS,
    BUTTON_TEXT_MAX_CHARS,
    BUTTONS_MAX,
    BUTTONS_PER_ROW_MAX,
    IMAGE,
    MESSAGES,
    TEXT_MAX_CHARS,
    TINY_JPEG,
    TOKEN,
    UPLOAD,
    FakeOK,
    iter_payload_names,
    load_payload,
)

USER = "user:575662066926"
OTHER = "user:561234567890"
HOOK = "https://bot.example.ru/ok/webhook/Zq8s-secret-0123456789"
HTML_502 = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"

Reply = tuple[int, dict[str, str], Any]
Call = Callable[..., Awaitable[Reply]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOK]:
    async with FakeOK() as server:
        yield server
    assert server.errors == []  # the fake itself never failed


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def call(fake: FakeOK, session: aiohttp.ClientSession) -> Call:
    """call(method, path, body=None, token=TOKEN, **query) -> (status, headers, JSON or text),
    made as the bot's own client would: token in the query, JSON bodies."""

    async def request(
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        token: str | None = TOKEN,
        **query: str,
    ) -> Reply:
        params = dict(query)
        if token is not None:
            params["access_token"] = token
        kwargs: dict[str, Any] = {"params": params}
        if body is not None:
            kwargs["json"] = body  # Content-Type: application/json
        async with session.request(method, f"{fake.url}{path}", **kwargs) as response:
            if response.content_type == "application/json":
                data: Any = await response.json()
            else:
                data = await response.text()
            return response.status, dict(response.headers), data

    return request


def keyboard(*rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "INLINE_KEYBOARD", "payload": {"keyboard": {"buttons": list(rows)}}}


def button(text: str, payload: str, **extra: Any) -> dict[str, Any]:
    return {"type": "CALLBACK", "text": text, "payload": payload, **extra}


def send_body(chat: str, **message: Any) -> dict[str, Any]:
    return {"recipient": {"chat_id": chat}, "message": message}


@contextlib.asynccontextmanager
async def bot_app(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """A tiny aiohttp app standing in for the bot; yields its webhook URL."""
    app = web.Application()
    app.router.add_post("/ok/webhook/{secret}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/ok/webhook/Zq8s-secret-0123456789"
    finally:
        await runner.cleanup()


# ------------------------------------------------------------------ basics


async def test_me_info_and_the_recorded_call(fake: FakeOK, call: Call) -> None:
    status, headers, data = await call("GET", "/graph/me/info")

    assert status == 200 and "invocation-error" not in headers
    assert data == {"name": "Администрация района", "group_id": "group:57000000000001"}
    assert fake.calls == [
        {
            "method": "GET",
            "path": "/graph/me/info",
            "query": {"access_token": TOKEN},
            "body": None,
            "route": "info",
        }
    ]
    assert fake.calls_of("info") == fake.calls_of("/graph/me/info") == fake.calls


@pytest.mark.parametrize("token", [None, "", "tkn1TEST:WRONG"])
async def test_missing_or_wrong_token_is_session_expired(
    fake: FakeOK, call: Call, token: str | None
) -> None:
    status, headers, data = await call("GET", "/graph/me/info", token=token)

    assert status == 200
    assert data == {"error_code": 102, "error_msg": "PARAM_SESSION_EXPIRED : Session expired"}
    assert headers["invocation-error"] == "102"
    assert fake.answered_errors[-1][:2] == ("/graph/me/info", 102)


async def test_posts_must_be_json_objects(fake: FakeOK, session: aiohttp.ClientSession) -> None:
    url = f"{fake.url}/graph/me/subscribe"
    params = {"access_token": TOKEN}
    answers = []
    for data, content_type in [
        ('{"url": "https://bot.example.ru/ok"}', "text/plain"),
        ("url=https://bot.example.ru/ok", "application/x-www-form-urlencoded"),
        ("{not json", "application/json"),
        ('["https://bot.example.ru/ok"]', "application/json;charset=utf-8"),
    ]:
        headers = {"Content-Type": content_type}
        async with session.post(url, params=params, data=data, headers=headers) as response:
            answers.append(await response.json())
    headers = {"Content-Type": "application/json;charset=utf-8"}  # as the docs send it
    body = '{"url": "https://bot.example.ru/ok"}'
    async with session.post(url, params=params, data=body, headers=headers) as response:
        accepted = await response.json()

    assert [a["error_code"] for a in answers] == [100] * 4
    assert answers[0]["error_msg"].startswith("PARAM : Content-Type must be application/json")
    assert accepted == {"success": True}
    assert fake.calls_of("subscribe")[0]["body"] is None  # it could not be parsed
    assert fake.calls_of("subscribe")[-1]["body"] == {"url": "https://bot.example.ru/ok"}


async def test_unknown_route_is_a_method_error(fake: FakeOK, call: Call) -> None:
    _, headers, wrong_verb = await call("GET", "/graph/me/subscribe")
    _, _, unknown = await call("POST", "/graph/me/updates", {})

    assert wrong_verb["error_code"] == unknown["error_code"] == 3
    assert headers["invocation-error"] == "3"
    assert unknown["error_msg"] == "METHOD : POST /graph/me/updates"


# ------------------------------------------------------------------ subscriptions


async def test_subscribe_list_unsubscribe(fake: FakeOK, call: Call) -> None:
    first = await call("POST", "/graph/me/subscribe", {"url": HOOK})
    twice = await call("POST", "/graph/me/subscribe", {"url": HOOK})
    _, _, listed = await call("GET", "/graph/me/subscriptions")

    assert first[::2] == twice[::2] == (200, {"success": True})
    [subscription] = listed["subscriptions"]  # one per URL
    assert subscription["url"] == HOOK
    assert isinstance(subscription["time"], int) and subscription["time"] > 10**12  # ms
    assert fake.subscriptions == listed["subscriptions"]

    _, _, gone = await call("POST", "/graph/me/unsubscribe", {"url": HOOK})
    _, _, after = await call("GET", "/graph/me/subscriptions")

    assert gone == {"success": True}
    assert after == {"subscriptions": []} and fake.subscriptions == []
    assert len(fake.calls_of("subscribe")) == 2 and len(fake.calls_of("unsubscribe")) == 1


async def test_preseeded_subscription_is_listed(fake: FakeOK, call: Call) -> None:
    fake.subscriptions.append({"url": HOOK, "time": 1498577751487})

    _, _, listed = await call("GET", "/graph/me/subscriptions")

    assert listed == {"subscriptions": [{"url": HOOK, "time": 1498577751487}]}


@pytest.mark.parametrize(
    "body",
    [{}, {"url": "ftp://bot.example.ru/ok"}, {"url": "bot.example.ru/ok"}, {"url": 5}],
)
async def test_subscribe_refuses_what_is_not_an_http_url(
    fake: FakeOK, call: Call, body: dict[str, Any]
) -> None:
    _, _, data = await call("POST", "/graph/me/subscribe", body)

    assert data["error_code"] == 100 and fake.subscriptions == []


# ------------------------------------------------------------------ sending


async def test_send_with_inline_keyboard_through_both_routes(fake: FakeOK, call: Call) -> None:
    fake.message_created(USER, "Здравствуйте")
    chat = fake.chat_of(USER)
    buttons = keyboard(
        [button("Статус", "status:17", intent="POSITIVE")],
        [{"type": "LINK", "text": "Сайт", "url": "https://example.org", "intent": "DEFAULT"}],
    )
    body = send_body(chat, text="Ваше обращение № 17 принято", attachment=buttons)

    _, _, old_style = await call("POST", f"/graph/me/messages/{chat}", body)
    _, _, chat_style = await call("POST", f"/graph/{chat}/messages", body)

    assert old_style["success"] is chat_style["success"] is True
    first, second = fake.messages_to(chat)
    assert [first.message_id, second.message_id] == [
        old_style["message_id"],
        chat_style["message_id"],
    ]
    assert re.fullmatch(r"mid:C[0-9a-f]{12}\.[0-9a-f]+", first.message_id)
    assert first.message_id != second.message_id
    assert first.text == "Ваше обращение № 17 принято"
    assert first.keyboard == buttons["payload"]["keyboard"]["buttons"]
    assert first.attachments == [] and first.callback_id is None
    assert (first.path, second.path) == (f"/graph/me/messages/{chat}", f"/graph/{chat}/messages")
    assert first.body == body
    assert fake.calls_of(MESSAGES) == fake.calls_of("/messages/") == fake.calls[-2:]
    assert fake.calls_of(f"{chat}/messages") == fake.calls[-1:]
    assert fake.calls_of("/me/") == fake.calls[-2:-1] and fake.calls_of("/") == []


def test_chat_of_is_a_stable_dialog_id(fake: FakeOK) -> None:
    chat = fake.chat_of(USER)

    assert re.fullmatch(r"chat:C[0-9a-f]{12}", chat)
    assert fake.chat_of("575662066926") == chat != fake.chat_of(OTHER)
    assert fake.message_created(USER)["recipient"] == {"chat_id": chat}


async def test_send_to_an_unknown_chat_is_not_found(fake: FakeOK, call: Call) -> None:
    stranger = fake.chat_of(OTHER)
    body = send_body(stranger, text="Здравствуйте")

    _, headers, refused = await call("POST", f"/graph/{stranger}/messages", body)
    fake.known_chats.add(stranger)
    _, _, accepted = await call("POST", f"/graph/{stranger}/messages", body)

    assert refused == {"error_code": 300, "error_msg": "NOT_FOUND : chat not found"}
    assert headers["invocation-error"] == "300"
    assert accepted["success"] is True and len(fake.messages_to(stranger)) == 1


async def test_sender_action_is_recorded_not_sent(fake: FakeOK, call: Call) -> None:
    fake.message_created(USER, "?")
    chat = fake.chat_of(USER)
    body = {"recipient": {"chat_id": chat}, "sender_action": "typing_on"}

    _, _, data = await call("POST", f"/graph/me/messages/{chat}", body)

    assert data == {"success": True}
    assert fake.sender_actions == [{"chat_id": chat, "action": "typing_on"}] and fake.sent == []


def _rows(count: int, per_row: int) -> list[list[dict[str, Any]]]:
    return [[button(f"{r}.{c}", f"p{r}.{c}") for c in range(per_row)] for r in range(count)]


@pytest.mark.parametrize(
    ("message", "why"),
    [
        ({"text": "я" * (TEXT_MAX_CHARS + 1)}, "characters"),
        ({"text": ""}, "empty"),
        ({"text": "   "}, "empty"),
        ({"text": "", "attachment": keyboard([button("Да", "yes")])}, "empty"),
        ({"text": "x", "attachment": {}, "attachments": []}, "not both"),
        ({"text": "x", "atachment": {}}, "unknown message fields"),
        ({"text": "x", "reply_to": 17}, "reply_to"),
        ({"text": "x", "privacyWarning": "SCREENSHOTS"}, "privacyWarning"),
        (
            {
                "text": "x",
                "attachments": [
                    {"type": "IMAGE", "payload": {"url": f"https://example.org/{n}.jpg"}}
                    for n in range(ATTACHMENTS_MAX + 1)
                ],
            },
            "attachments >",
        ),
        (
            {
                "text": "x",
                "attachments": [
                    {"type": "IMAGE", "payload": {"url": "https://example.org/1.jpg"}},
                    {"type": "IMAGE", "payload": {"url": "https://example.org/2.jpg"}},
                ],
            },
            "images by URL",
        ),
        ({"attachment": {"type": "IMAGE", "payload": {"token": "never-issued"}}}, "unknown"),
        ({"attachment": {"type": "IMAGE", "payload": {}}}, "needs a token or url"),
        ({"attachment": {"type": "LOCATION", "payload": {"latitude": 1}}}, "cannot be sent"),
        ({"attachment": {"type": "IMAGE"}}, "needs type and payload"),
        (
            {
                "text": "x",
                "attachments": [keyboard([button("a", "a")]), keyboard([button("b", "b")])],
            },
            "more than one",
        ),
        ({"text": "x", "attachment": keyboard()}, "keyboard.buttons"),
        ({"text": "x", "attachment": keyboard([])}, "non-empty"),
        ({"text": "x", "attachment": keyboard(*_rows(1, BUTTONS_PER_ROW_MAX + 1))}, "in a row"),
        ({"text": "x", "attachment": keyboard(*_rows(BUTTONS_MAX // 5 + 1, 5))}, "buttons >"),
        (
            {"text": "x", "attachment": keyboard([button("я" * (BUTTON_TEXT_MAX_CHARS + 1), "p")])},
            "button text",
        ),
        ({"text": "x", "attachment": keyboard([button("", "p")])}, "button text"),
        (
            {
                "text": "x",
                "attachment": keyboard([button("t", "p" * (BUTTON_PAYLOAD_MAX_CHARS + 1))]),
            },
            "CALLBACK payload",
        ),
        ({"text": "x", "attachment": keyboard([button("t", "")])}, "CALLBACK payload"),
        ({"text": "x", "attachment": keyboard([button("t", "p", intent="GREEN")])}, "intent"),
        ({"text": "x", "attachment": keyboard([{"type": "LINK", "text": "t"}])}, "LINK url"),
        ({"text": "x", "attachment": keyboard([{"type": "TEXT", "text": "t"}])}, "type must"),
    ],
)
async def test_send_validation(fake: FakeOK, call: Call, message: dict[str, Any], why: str) -> None:
    fake.message_created(USER, "?")
    chat = fake.chat_of(USER)

    _, headers, data = await call(
        "POST", f"/graph/{chat}/messages", {"recipient": {"chat_id": chat}, "message": message}
    )

    assert data["error_code"] == 100 and headers["invocation-error"] == "100"
    assert data["error_msg"].startswith("PARAM : ") and why in data["error_msg"]
    assert fake.sent == []


async def test_limits_themselves_are_accepted(fake: FakeOK, call: Call) -> None:
    fake.message_created(USER, "?")
    chat = fake.chat_of(USER)
    rows = _rows(BUTTONS_MAX // BUTTONS_PER_ROW_MAX, BUTTONS_PER_ROW_MAX)
    rows.append([button("я" * BUTTON_TEXT_MAX_CHARS, "p" * BUTTON_PAYLOAD_MAX_CHARS)])
    photos = [fake.image() for _ in range(ATTACHMENTS_MAX - 1)]
    body = send_body(chat, text="я" * TEXT_MAX_CHARS, attachments=[*photos, keyboard(*rows)])

    _, _, data = await call("POST", f"/graph/{chat}/messages", body)

    assert data["success"] is True
    [sent] = fake.sent
    assert sent.attachments == photos and sent.keyboard == rows


@pytest.mark.parametrize(
    "recipient",
    [None, {"chat_id": "chat:C000000000000"}, {"user_id": USER}, {"user_ids": [USER]}],
)
async def test_recipient_must_be_the_chat_of_the_path(
    fake: FakeOK, call: Call, recipient: dict[str, Any] | None
) -> None:
    fake.message_created(USER, "?")
    chat = fake.chat_of(USER)
    body: dict[str, Any] = {"message": {"text": "x"}}
    if recipient is not None:
        body["recipient"] = recipient

    _, _, data = await call("POST", f"/graph/me/messages/{chat}", body)

    assert data["error_code"] == 100 and fake.sent == []


# ------------------------------------------------------------------ injected failures


async def test_injected_error_then_success(fake: FakeOK, call: Call) -> None:
    fake.message_created(USER, "?")
    chat = fake.chat_of(USER)
    fake.fail_method(MESSAGES, 8, times=2)  # "messages" covers both send routes
    body = send_body(chat, text="x")

    answers = [
        await call("POST", f"/graph/me/messages/{chat}", body),
        await call("POST", f"/graph/{chat}/messages", body),
        await call("POST", f"/graph/{chat}/messages", body),
    ]

    flood = {
        "error_code": 8,
        "error_msg": "FLOOD_BLOCKED : The execution of method is blocked due to flood",
    }
    assert [a[2] for a in answers[:2]] == [flood, flood]
    assert answers[0][1]["invocation-error"] == "8"
    assert answers[2][2]["success"] is True
    assert len(fake.sent) == 1 and len(fake.calls_of(MESSAGES)) == 3


async def test_injected_error_with_own_text_and_by_path_suffix(fake: FakeOK, call: Call) -> None:
    fake.fail_method("/graph/me/info", 2, error_msg="try later")
    fake.fail_method("subscribe", 10)  # a whole segment: unsubscribe is not hit

    _, _, info = await call("GET", "/graph/me/info")
    _, _, unsubscribe = await call("POST", "/graph/me/unsubscribe", {"url": HOOK})
    _, _, subscribe = await call("POST", "/graph/me/subscribe", {"url": HOOK})

    assert info == {"error_code": 2, "error_msg": "SERVICE : try later"}
    assert unsubscribe == {"success": True}
    assert subscribe["error_code"] == 10 and fake.subscriptions == []


async def test_injected_raw_answers(fake: FakeOK, call: Call) -> None:
    fake.fail_method("info", 0, http_status=502, body=HTML_502)
    fake.fail_method("info", 11, http_status=429)

    bad_gateway = await call("GET", "/graph/me/info")
    too_many = await call("GET", "/graph/me/info")
    fine = await call("GET", "/graph/me/info")

    assert bad_gateway[0] == 502 and bad_gateway[2] == HTML_502
    assert bad_gateway[1]["Content-Type"].startswith("text/html")
    assert too_many[0] == 429 and too_many[2]["error_code"] == 11
    assert too_many[1]["invocation-error"] == "11"
    assert fine[0] == 200 and fine[2]["group_id"] == fake.group_id


async def test_dropped_connection_is_a_client_error(fake: FakeOK, call: Call) -> None:
    fake.message_created(USER, "?")
    chat = fake.chat_of(USER)
    fake.drop_connections(MESSAGES)

    with pytest.raises(aiohttp.ClientConnectionError):
        await call("POST", f"/graph/{chat}/messages", send_body(chat, text="x"))
    _, _, data = await call("POST", f"/graph/{chat}/messages", send_body(chat, text="x"))

    assert data["success"] is True and len(fake.sent) == 1
    assert len(fake.calls_of(MESSAGES)) == 2


# ------------------------------------------------------------------ button presses


@pytest.mark.parametrize("placement", ["top", "message"])
async def test_callback_press_and_its_answer(
    fake: FakeOK, call: Call, placement: Literal["top", "message"]
) -> None:
    fake.message_created(USER, "Статус?")
    chat = fake.chat_of(USER)
    body = send_body(
        chat, text="Обращение № 17", attachment=keyboard([button("Статус", "status:17")])
    )
    _, _, sent = await call("POST", f"/graph/{chat}/messages", body)

    press = fake.message_callback(USER, "status:17", placement=placement)
    answer = {"message": {"text": "Обращение № 17: в работе"}}
    status, _, data = await call(
        "POST", f"/graph/{chat}/answer", answer, callbackId=press["callbackId"]
    )

    assert press["webhookType"] == "MESSAGE_CALLBACK"
    assert press["sender"] == {"user_id": USER, "name": "Иван Петров"}
    assert press["recipient"] == {"chat_id": chat}
    where = press if placement == "top" else press["message"]
    assert (where["payload"], where["mid"]) == ("status:17", sent["message_id"])
    assert (status, data) == (200, {"success": True})
    [recorded] = fake.callback_answers
    assert recorded["callback_id"] == press["callbackId"] and recorded["payload"] == "status:17"
    assert recorded["message"] == answer["message"] and recorded["chat_id"] == chat
    reply = fake.messages_to(chat)[-1]
    assert (reply.text, reply.callback_id) == ("Обращение № 17: в работе", press["callbackId"])
    assert reply.message_id == recorded["message_id"]


async def test_answer_needs_a_known_callback_of_that_chat(fake: FakeOK, call: Call) -> None:
    fake.message_created(USER, "?")
    fake.message_created(OTHER, "?")
    chat, other_chat = fake.chat_of(USER), fake.chat_of(OTHER)
    press = fake.message_callback(USER, "status:17", mid="mid:C000000000000.1")
    answer = {"message": {"text": "ok"}}

    _, _, unknown = await call("POST", f"/graph/{chat}/answer", answer, callbackId="nope")
    _, _, missing = await call("POST", f"/graph/{chat}/answer", answer)
    _, _, elsewhere = await call(
        "POST", f"/graph/{other_chat}/answer", answer, callbackId=press["callbackId"]
    )
    _, _, empty = await call(
        "POST", f"/graph/{chat}/answer", {"message": {}}, callbackId=press["callbackId"]
    )

    assert [d["error_code"] for d in (unknown, missing, elsewhere, empty)] == [100] * 4
    assert fake.callback_answers == [] and fake.sent == []


def test_press_needs_a_button_the_bot_sent(fake: FakeOK) -> None:
    with pytest.raises(ValueError, match="no CALLBACK button"):
        fake.message_callback(USER, "status:17")

    forged = fake.message_callback(USER, "status:99", mid="mid:C000000000000.1")
    assert forged["payload"] == "status:99" and forged["mid"] == "mid:C000000000000.1"


# ------------------------------------------------------------------ photos


async def test_photo_upload_round_trip(
    fake: FakeOK, call: Call, session: aiohttp.ClientSession
) -> None:
    fake.message_created(USER, "?")
    chat = fake.chat_of(USER)
    data = TINY_JPEG + b"appeal photo"

    _, _, slot = await call("GET", "/graph/me/fileUploadUrl", type="IMAGE")
    form = aiohttp.FormData()
    form.add_field("pic1", data, filename="photo.jpg", content_type="image/jpeg")
    async with session.post(slot["url"], data=form) as response:
        uploaded = await response.json()
    [(photo_id, photo)] = uploaded["photos"].items()
    attachment = {"type": "IMAGE", "payload": {"token": photo["token"]}}
    _, _, sent = await call(
        "POST", f"/graph/{chat}/messages", send_body(chat, attachment=attachment)
    )

    assert slot["url"].startswith(f"{fake.url}/upload?")
    assert photo_id.isdigit() and fake.uploads == [data]
    assert sent["success"] is True
    assert fake.sent[0].attachments == [attachment] and fake.sent[0].text == ""
    assert fake.bytes_of(attachment) == data


async def test_upload_refusals(fake: FakeOK, call: Call, session: aiohttp.ClientSession) -> None:
    _, _, bad_type = await call("GET", "/graph/me/fileUploadUrl", type="PHOTO")
    _, _, slot = await call("GET", "/graph/me/fileUploadUrl", type="IMAGE")
    async with session.post(slot["url"], data=b"raw bytes") as response:
        not_multipart = await response.json()
    form = aiohttp.FormData()
    form.add_field("pic1", TINY_JPEG, filename="photo.jpg")
    async with session.post(f"{fake.url}/upload?type=IMAGE&id=forged", data=form) as response:
        forged = await response.json()
    fake.fail_method(UPLOAD, 0, http_status=502, body=HTML_502)
    async with session.post(slot["url"], data=form) as response:
        bad_gateway = response.status

    assert bad_type["error_code"] == 100
    assert not_multipart["error_code"] == 21 and forged["error_code"] == 100
    assert bad_gateway == 502 and fake.uploads == []


async def test_image_attachment_is_served_and_can_be_sent_back(
    fake: FakeOK, call: Call, session: aiohttp.ClientSession
) -> None:
    fake.images["912345678901"] = TINY_JPEG + b"pothole"
    image = fake.image("912345678901")
    body = fake.message_created(USER, "Яма на дороге", attachments=[image])
    chat = body["recipient"]["chat_id"]

    async with session.get(image["payload"]["url"]) as response:
        served = (response.status, response.content_type, await response.read())
    _, _, sent = await call("POST", f"/graph/{chat}/messages", send_body(chat, attachment=image))
    by_url = {"type": "IMAGE", "payload": {"url": "https://example.org/photo.jpg"}}
    _, _, sent_by_url = await call(
        "POST", f"/graph/{chat}/messages", send_body(chat, attachment=by_url)
    )

    assert image["type"] == "IMAGE" and set(image["payload"]) == {"id", "token", "url"}
    assert body["message"]["attachments"] == [image]
    assert served == (200, "image/jpeg", TINY_JPEG + b"pothole")
    assert fake.downloads == ["912345678901"]
    assert sent["success"] is sent_by_url["success"] is True
    assert fake.bytes_of(image) == TINY_JPEG + b"pothole" and fake.bytes_of(by_url) is None


async def test_image_download_failure_injection(
    fake: FakeOK, session: aiohttp.ClientSession
) -> None:
    url = fake.image("1")["payload"]["url"]
    fake.fail_method(IMAGE, 0, http_status=404, body="not found")

    async with session.get(url) as response:
        missing = response.status
    async with session.get(url) as response:
        found = response.status

    assert (missing, found) == (404, 200) and fake.downloads == ["1"]


async def test_chat_info_of_a_dialog(fake: FakeOK, call: Call) -> None:
    fake.message_created(USER, "?")
    chat = fake.chat_of(USER)

    _, _, info = await call("GET", f"/graph/me/chat/{chat}")
    _, _, unknown = await call("GET", f"/graph/me/chat/{fake.chat_of(OTHER)}")

    assert info["chat_id"] == chat and info["type"] == "DIALOG" and info["status"] == "ACTIVE"
    assert info["group_id"] == fake.group_id and USER in info["participants"]
    assert unknown["error_code"] == 300


# ------------------------------------------------------------------ webhooks


async def test_webhook_post_reaches_the_bot(fake: FakeOK, call: Call) -> None:
    received: list[tuple[str, dict[str, Any]]] = []

    async def webhook(request: web.Request) -> web.Response:
        received.append((request.content_type, await request.json()))
        return web.Response(text="ok")

    async with bot_app(webhook) as url:
        await call("POST", "/graph/me/subscribe", {"url": url})
        body = fake.message_created(USER, "Не вывозят мусор", name="Мария Иванова")
        status, text = await fake.deliver(body)

    assert (status, text) == (200, "ok")
    assert received == [("application/json", body)]
    assert body["webhookType"] == "MESSAGE_CREATED"
    assert body["sender"] == {"user_id": USER, "name": "Мария Иванова"}
    assert body["message"]["text"] == "Не вывозят мусор"
    assert fake.deliveries == [{"url": url, "body": body, "status": 200, "text": "ok"}]


async def test_webhook_failures_are_reported_not_raised(fake: FakeOK) -> None:
    async def slow(request: web.Request) -> web.Response:
        if request.query.get("slow"):
            await asyncio.sleep(1)
        return web.Response(status=500 if request.query.get("fail") else 200)

    body = fake.message_created(USER, "?")
    fake.webhook_timeout = 0.2
    async with bot_app(slow) as url:
        failed = await fake.deliver(body, f"{url}?fail=1")
        timed_out = await fake.deliver(body, f"{url}?slow=1")
        again = await fake.deliver(body, url)  # a redelivery: the same mid
    refused = await fake.deliver(body, url)  # the app is gone

    assert failed[0] == 500 and again[0] == 200
    assert timed_out[0] == 0 and "within 0.2s" in timed_out[1]
    assert refused[0] == 0
    assert [d["status"] for d in fake.deliveries] == [500, 0, 200, 0]


async def test_deliver_without_subscription_is_a_test_error(fake: FakeOK) -> None:
    with pytest.raises(AssertionError, match="nobody subscribed"):
        await fake.deliver(fake.message_created(USER, "?"))


def test_message_created_is_real_shaped(fake: FakeOK) -> None:
    first = fake.message_created("575662066926", "раз")
    second = fake.message_created(USER, "два", chat_id="chat:C3ecb9d02a600")
    legacy = fake.message_created(USER, "три", shape="2017")

    assert first["sender"]["user_id"] == USER
    assert first["message"]["mid"] != second["message"]["mid"]
    assert second["message"]["seq"] > first["message"]["seq"]
    assert second["message"]["mid"].startswith("mid:C3ecb9d02a600.")
    assert first["timestamp"] > 10**12  # milliseconds
    assert "attachments" not in first["message"]
    assert "webhookType" not in legacy and legacy["sender"] == {"user_id": USER}


def test_chat_started_body(fake: FakeOK) -> None:
    body = fake.chat_started(USER)

    assert body["webhookType"] == "CHAT_SYSTEM" and body["type"] == "CHAT_STARTED"
    assert body["recipient"] == {"chat_id": fake.chat_of(USER)}


# ------------------------------------------------------------------ payload files


@pytest.mark.parametrize("name", list(iter_payload_names()))
def test_payload_files_are_real_shaped(name: str) -> None:
    body = load_payload(name)

    assert body["sender"]["user_id"].startswith("user:")
    assert body["recipient"]["chat_id"].startswith("chat:C")
    assert isinstance(body["timestamp"], int) and body["timestamp"] > 10**12
    if name == "message_created_2017":
        assert "webhookType" not in body and set(body["sender"]) == {"user_id"}
    else:
        assert body["webhookType"] in {"MESSAGE_CREATED", "MESSAGE_CALLBACK", "CHAT_SYSTEM"}
        assert isinstance(body["sender"]["name"], str)
    message = body.get("message", {})
    for mid in (body.get("mid"), message.get("mid")):
        assert mid is None or re.fullmatch(r"mid:C[0-9a-f]+\.[0-9a-f]+", mid)
    for attachment in message.get("attachments", []):
        assert set(attachment) == {"type", "payload"}


def test_payload_shapes_per_kind() -> None:
    image = load_payload("message_created_image")["message"]["attachments"][0]
    location = load_payload("message_created_location")["message"]["attachments"][0]
    top = load_payload("message_callback_top")
    inner = load_payload("message_callback_in_message")

    assert image["type"] == "IMAGE" and {"id", "url"} <= set(image["payload"])
    assert location == {
        "type": "LOCATION",
        "payload": {"latitude": 56.838011, "longitude": 60.597474},
    }
    assert top["payload"] == inner["message"]["payload"] == "status:17"
    assert "callbackId" in top and "callbackId" in inner and "payload" not in inner
    assert load_payload("chat_system")["type"] == "CHAT_STARTED"


async def test_from_payload_freshens_ids_and_serves_its_photo(
    fake: FakeOK, call: Call, session: aiohttp.ClientSession
) -> None:
    original = load_payload("message_created_image")
    body = fake.from_payload("message_created_image", user_id=OTHER)
    press = fake.from_payload("message_callback_in_message")
    chat = fake.chat_of(OTHER)
    [image] = body["message"]["attachments"]

    async with session.get(image["payload"]["url"]) as response:
        photo = await response.read()
    _, _, sent = await call("POST", f"/graph/{chat}/messages", send_body(chat, text="Принято"))
    answer = {"message": {"text": "ok"}}
    _, _, answered = await call(
        "POST",
        f"/graph/{press['recipient']['chat_id']}/answer",
        answer,
        callbackId=press["callbackId"],
    )

    assert body["sender"]["user_id"] == OTHER and body["recipient"] == {"chat_id": chat}
    assert body["message"]["mid"] != original["message"]["mid"]
    assert body["message"]["mid"].startswith(f"mid:{chat.removeprefix('chat:')}.")
    assert body["timestamp"] > original["timestamp"]
    assert image["payload"]["url"].startswith(f"{fake.url}/img/912345678901")
    assert photo == TINY_JPEG and sent["success"] is True
    assert press["callbackId"] != "cb-7f2b" and answered == {"success": True}
