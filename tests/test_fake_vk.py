"""The fake VK server (tests/fakes/vk.py) speaks VK's wire format: vkbottle itself, over real
HTTP, sends through it, listens to its long poll, survives its failures and parses every
payload in tests/payloads/vk/."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from vkbottle import (
    API,
    AiohttpClient,
    BlockingRequestRescheduler,
    Bot,
    BotPolling,
    CaptchaError,
    GroupEventType,
    Keyboard,
    PhotoMessageUploader,
    Text,
    VKAPIError,
)
from vkbottle.bot import Message, MessageEvent

from tests.fakes.vk import (
    LONG_POLL,
    TINY_JPEG,
    FakeVK,
    iter_payload_names,
    load_payload,
)

USER = 198765432
TOKEN = "vk1.a.fake-group-token"


@pytest.fixture
async def fake() -> AsyncIterator[FakeVK]:
    async with FakeVK() as server:
        yield server
    assert server.errors == []  # the fake itself never failed


def make_api(fake: FakeVK, **kwargs: Any) -> API:
    api = API(TOKEN, http_client=AiohttpClient(), **kwargs)
    api.API_URL = fake.api_url
    return api


@pytest.fixture
async def api(fake: FakeVK, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[API]:
    monkeypatch.chdir(tmp_path)  # vkbottle writes .vkbottle/bot-polling/ into the cwd
    client = make_api(fake)
    yield client
    await client.http_client.close()


@contextlib.asynccontextmanager
async def polling_bot(bot: Bot) -> AsyncIterator[None]:
    """Run `bot` against the fake; stop() alone would wait for the current long poll."""
    task = asyncio.create_task(bot.run_polling())
    try:
        yield
    finally:
        bot.polling.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def make_bot(fake: FakeVK, api: API) -> Bot:
    return Bot(api=api, polling=BotPolling(api=api, group_id=fake.group_id, wait=1))


# ------------------------------------------------------------------ API methods


async def test_send_round_trip_with_keyboard_and_random_id_dedup(fake: FakeVK, api: API) -> None:
    keyboard = Keyboard(one_time=False).add(Text("Подать обращение", '{"p":"menu:new"}')).get_json()

    first = await api.messages.send(
        peer_id=USER, random_id=555, message="Здравствуйте!", keyboard=keyboard
    )
    again = await api.messages.send(peer_id=USER, random_id=555, message="Здравствуйте!")
    other = await api.messages.send(peer_id=USER, random_id=0, message="Второе")

    assert isinstance(first, int)
    assert again == first  # VK's dedup: a repeated non-zero random_id is the same message
    assert other != first
    [sent, second] = fake.messages_to(USER)
    assert (sent.text, sent.random_id, sent.message_id) == ("Здравствуйте!", 555, first)
    assert sent.keyboard is not None
    assert sent.keyboard["buttons"][0][0]["action"]["label"] == "Подать обращение"
    assert second.conversation_message_id == sent.conversation_message_id + 1
    call = fake.calls_of("messages.send")[0]
    assert (call["access_token"], call["v"]) == (TOKEN, "5.199")


async def test_message_answer_uses_peer_ids_and_gets_a_list(fake: FakeVK, api: API) -> None:
    # vkbottle-types annotates messages.send as int; with peer_ids it returns the list
    items: Any = await api.messages.send(peer_ids=[USER], random_id=0, message="Ответ")
    [item] = items

    assert (item.peer_id, item.message_id) == (USER, fake.sent[0].message_id)


async def test_groups_and_users_have_the_5_199_shape(fake: FakeVK, api: API) -> None:
    fake.users[USER] = ("Иван", "Петров")

    groups = await api.groups.get_by_id()
    users = await api.users.get(user_ids=[USER, 5])

    assert groups.groups[0].id == fake.group_id
    assert [(u.id, u.first_name, u.last_name) for u in users] == [
        (USER, "Иван", "Петров"),
        (5, "Имя5", "Фамилия5"),
    ]


def _button(label: str = "Да", payload: Any = '{"p":"yes"}') -> dict[str, Any]:
    return {"action": {"type": "text", "label": label, "payload": payload}, "color": "primary"}


def _keyboard(rows: list[list[dict[str, Any]]], *, inline: bool = False) -> str:
    return json.dumps({"one_time": False, "inline": inline, "buttons": rows})


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"message": "без random_id"}, 100),
        ({"random_id": 1, "message": ""}, 100),
        ({"random_id": 1, "message": "я" * 4097}, 914),
        ({"random_id": 1, "message": "x", "keyboard": "{not json"}, 911),
        ({"random_id": 1, "message": "x", "keyboard": _keyboard([[_button()] * 6])}, 911),
        ({"random_id": 1, "message": "x", "keyboard": _keyboard([[_button()]] * 11)}, 911),
        ({"random_id": 1, "message": "x", "keyboard": _keyboard([[_button()] * 5] * 9)}, 911),
        (
            {"random_id": 1, "message": "x", "keyboard": _keyboard([[_button()]] * 7, inline=True)},
            911,
        ),
        (
            {
                "random_id": 1,
                "message": "x",
                "keyboard": _keyboard([[_button()] * 4] * 3, inline=True),
            },
            911,
        ),
        ({"random_id": 1, "message": "x", "keyboard": _keyboard([[_button("д" * 41)]])}, 911),
        ({"random_id": 1, "message": "x", "keyboard": _keyboard([[_button(payload="menu")]])}, 911),
        (
            {
                "random_id": 1,
                "message": "x",
                "keyboard": _keyboard([[_button(payload=json.dumps({"p": "x" * 250}))]]),
            },
            911,
        ),
        (
            {
                "random_id": 1,
                "message": "x",
                "keyboard": json.dumps({"buttons": [[{"action": {"type": "vkpay"}}]]}),
            },
            911,
        ),
    ],
    ids=[
        "no-random_id",
        "empty",
        "4097-chars",
        "keyboard-not-json",
        "6-per-row",
        "11-rows",
        "45-buttons",
        "inline-7-rows",
        "inline-12-buttons",
        "label-41",
        "payload-not-json",
        "payload-over-255",
        "unsupported-type",
    ],
)
async def test_send_rejections_are_vk_errors(
    fake: FakeVK, api: API, params: dict[str, Any], code: int
) -> None:
    with pytest.raises(VKAPIError[code]):
        await api.messages.send(peer_id=USER, **params)

    assert fake.sent == []
    assert fake.answered_errors[-1][:2] == ("messages.send", code)


async def test_accepted_keyboards_at_the_limits(fake: FakeVK, api: API) -> None:
    standard = _keyboard([[_button()] * 5] * 8)  # 40 buttons
    inline = _keyboard([[_button()] * 5, [_button()] * 5], inline=True)  # 10 buttons
    object_payload = _keyboard([[_button(payload={"p": "menu:new"})]])  # what vkbottle sends
    callback_and_location = json.dumps(
        {
            "inline": True,
            "buttons": [
                [{"action": {"type": "callback", "label": "Статус", "payload": '{"p":"s"}'}}],
                [{"action": {"type": "location", "payload": '{"p":"geo"}'}}],
                [{"action": {"type": "open_link", "label": "Сайт", "link": "https://example.org"}}],
            ],
        }
    )
    for random_id, keyboard in enumerate((standard, inline, object_payload, callback_and_location)):
        await api.messages.send(
            peer_id=USER, random_id=random_id + 1, message="x", keyboard=keyboard
        )

    assert len(fake.sent) == 4


async def test_missing_token_and_unknown_method(fake: FakeVK, api: API) -> None:
    with pytest.raises(VKAPIError[3]):
        await api.request("messages.fly", {})
    no_token = API("", http_client=api.http_client)
    no_token.API_URL = fake.api_url
    with pytest.raises(VKAPIError[5], match="no access_token passed"):
        await no_token.request("users.get", {"user_ids": "1"})


# ------------------------------------------------------------------ long poll with a bot


async def test_bot_answers_a_message_delivered_by_long_poll(fake: FakeVK, api: API) -> None:
    bot = make_bot(fake, api)

    @bot.on.message()
    async def echo(message: Message) -> None:
        await message.answer(f"эхо: {message.text}")

    async with polling_bot(bot):
        await fake.wait_for_poll()
        fake.message_new(USER, "Привет")
        [reply] = await fake.wait_sent(1)

    assert (reply.peer_id, reply.text, reply.random_id) == (USER, "эхо: Привет", 0)
    assert [c["method"] for c in fake.calls] == ["groups.getLongPollServer", "messages.send"]
    assert fake.delivered_events == 1


def _check_photo(message: Message) -> None:
    [attachment] = message.attachments or []
    assert attachment.photo is not None and attachment.photo.sizes
    assert len(attachment.photo.sizes) > 3


def _check_geo(message: Message) -> None:
    assert message.geo is not None and message.geo.coordinates is not None
    assert message.geo.coordinates.latitude == pytest.approx(56.838011)


def _check_sticker(message: Message) -> None:
    [attachment] = message.attachments or []
    assert attachment.sticker is not None and attachment.sticker.sticker_id == 9019


def _check_reply(message: Message) -> None:
    assert message.reply_message is not None
    assert message.reply_message.from_id == -777
    assert message.reply_message.conversation_message_id == 26


CHECKS = {
    "message_new_text": lambda m: m.text.startswith("Яма"),
    "message_new_payload": lambda m: m.get_payload_json() == {"p": "menu:new"},
    "message_new_photo": _check_photo,
    "message_new_geo": _check_geo,
    "message_new_sticker": _check_sticker,
    "message_new_reply": _check_reply,
}


@pytest.mark.parametrize("name", [n for n in iter_payload_names() if n.startswith("message_new")])
async def test_payload_files_parse_in_vkbottle(fake: FakeVK, api: API, name: str) -> None:
    bot = make_bot(fake, api)
    received: list[Message] = []

    @bot.on.message()
    async def collect(message: Message) -> None:
        received.append(message)

    async with polling_bot(bot):
        await fake.wait_for_poll()
        fake.push_payload(name)
        await fake.wait_for(lambda: bool(received), what="the handler")

    [message] = received
    assert message.peer_id == USER and message.group_id == fake.group_id
    assert CHECKS[name](message) is not False


async def test_downloading_the_largest_photo_size(fake: FakeVK, api: API) -> None:
    update = fake.push_payload("message_new_photo")
    sizes = update["object"]["message"]["attachments"][0]["photo"]["sizes"]
    largest = max(sizes, key=lambda s: s["width"] * s["height"])

    content = await api.http_client.request_content(largest["url"])

    assert largest["type"] == "z" and content == TINY_JPEG
    assert fake.downloads == [largest["url"].rsplit("/", 1)[1]]


async def test_callback_press_and_snackbar_answer(fake: FakeVK, api: API) -> None:
    bot = make_bot(fake, api)
    pressed: list[dict[str, Any] | None] = []

    @bot.on.raw_event(GroupEventType.MESSAGE_EVENT, dataclass=MessageEvent)
    async def press(event: MessageEvent) -> None:
        pressed.append(event.payload)
        await event.show_snackbar("Принято")

    async with polling_bot(bot):
        await fake.wait_for_poll()
        update = fake.message_event(USER, {"p": "menu:status"})
        await fake.wait_for(lambda: bool(fake.seen_event_answers), what="the event answer")

    assert pressed == [{"p": "menu:status"}]
    [answer] = fake.seen_event_answers
    assert answer["event_id"] == update["object"]["event_id"]
    assert json.loads(answer["event_data"]) == {"type": "show_snackbar", "text": "Принято"}


# ------------------------------------------------------------------ long poll failures


async def test_listen_recovers_from_failed_1_2_3(fake: FakeVK, api: API) -> None:
    events = BotPolling(api=api, group_id=fake.group_id, wait=1).listen()

    async def next_updates() -> list[dict[str, Any]]:
        event = await asyncio.wait_for(anext(events), 5)
        updates: list[dict[str, Any]] = event["updates"]
        return updates

    # failed 1: continue with the ts it returns, same key.
    task = asyncio.create_task(next_updates())
    await fake.wait_for_poll()
    key, ts = fake.polls[-1]["key"], fake.polls[-1]["ts"]
    fake.fail_next_poll(1)
    one = fake.message_new(USER, "один")
    assert await task == [one]
    assert (fake.polls[-1]["key"], fake.polls[-1]["ts"]) == (key, ts)

    # failed 2: a new key from groups.getLongPollServer, the old ts is kept.
    task = asyncio.create_task(next_updates())
    await fake.wait_for_poll()
    ts = fake.polls[-1]["ts"]
    fake.fail_next_poll(2)
    two = fake.message_new(USER, "два")
    assert await task == [two]
    assert fake.polls[-1]["key"] != key and fake.polls[-1]["ts"] == ts
    old_key = await api.http_client.request_json(
        f"{fake.url}/lp", method="POST", params={"act": "a_check", "key": key, "ts": ts}
    )
    assert old_key == {"failed": 2}

    # failed 3: new key and ts; what was queued before the new ts is lost, as on VK.
    task = asyncio.create_task(next_updates())
    await fake.wait_for_poll()
    fake.fail_next_poll(3)
    fake.message_new(USER, "потеряно")
    await fake.wait_for(lambda: len(fake.calls_of("groups.getLongPollServer")) == 3)
    three = fake.message_new(USER, "три")
    assert await task == [three]
    assert fake.delivered_events == 3
    await events.aclose()


async def test_old_ts_redelivers_the_same_events(fake: FakeVK, api: API) -> None:
    events = BotPolling(api=api, group_id=fake.group_id, wait=1).listen()
    task = asyncio.create_task(anext(events))
    await fake.wait_for_poll()
    first = [fake.message_new(USER, "а"), fake.message_new(USER, "б")]
    assert (await task)["updates"] == first

    fake.fail_next_poll(1, ts="0")  # "history outdated" pointing back: VK delivers again
    again = await asyncio.wait_for(anext(events), 5)

    assert [u["event_id"] for u in again["updates"]] == [u["event_id"] for u in first]
    await events.aclose()


async def test_group_id_lookup_and_batches_of_100(fake: FakeVK, api: API) -> None:
    polling = BotPolling(api=api, wait=1)  # no group_id: vkbottle asks groups.getById
    events = polling.listen()
    task = asyncio.create_task(anext(events))
    await fake.wait_for_poll()
    pushed = [fake.message_new(USER, f"№{n}") for n in range(150)]

    first = (await asyncio.wait_for(task, 5))["updates"]
    second = (await asyncio.wait_for(anext(events), 5))["updates"]

    assert polling.group_id == fake.group_id
    assert [c["method"] for c in fake.calls] == ["groups.getById", "groups.getLongPollServer"]
    assert (len(first), len(second)) == (100, 50)
    assert first + second == pushed
    await events.aclose()


async def test_listen_retries_a_dropped_long_poll_keeping_ts(fake: FakeVK, api: API) -> None:
    events = BotPolling(api=api, group_id=fake.group_id, wait=1).listen()
    fake.drop_connections(LONG_POLL)
    fake.fail_method(LONG_POLL, 0, http_status=502, body="<html><h1>502 Bad Gateway</h1></html>")
    task = asyncio.create_task(anext(events))
    await fake.wait_for_poll()
    update = fake.message_new(USER, "после сбоя")

    assert (await asyncio.wait_for(task, 5))["updates"] == [update]
    assert len(fake.calls_of("groups.getLongPollServer")) == 1
    assert {p["ts"] for p in fake.polls} == {"0"}
    await events.aclose()


# ------------------------------------------------------------------ injected method failures


@pytest.mark.parametrize("code", [6, 9, 10, 901, 902, 911, 914, 100, 5])
async def test_injected_error_raises_vkapierror(fake: FakeVK, api: API, code: int) -> None:
    fake.fail_method("messages.send", code)

    with pytest.raises(VKAPIError[code]) as raised:
        await api.messages.send(peer_id=USER, random_id=7, message="текст")
    await api.messages.send(peer_id=USER, random_id=7, message="текст")  # only once

    assert raised.value.code == code and raised.value.error_msg
    assert raised.value.request_params["method"] == "messages.send"
    assert len(fake.sent) == 1


async def test_injected_errors_with_extra_fields_and_texts(fake: FakeVK, api: API) -> None:
    fake.fail_method("messages.send", 901, times=2)
    fake.fail_method("users.get", 14)

    for _ in range(2):
        with pytest.raises(VKAPIError[901], match="without permission"):
            await api.messages.send(peer_id=USER, random_id=0, message="x")
    with pytest.raises(CaptchaError):
        await api.users.get(user_ids=[1])


async def test_dropped_connection_is_a_client_error(fake: FakeVK, api: API) -> None:
    fake.drop_connections("messages.send")

    with pytest.raises(aiohttp.ClientConnectionError):
        await api.messages.send(peer_id=USER, random_id=3, message="x")

    assert fake.sent == [] and len(fake.calls) == 1


async def test_html_502_is_retried_once_by_vkbottle(fake: FakeVK) -> None:
    # vkbottle reschedules a non-JSON answer once (after 5 s by default; 0 s here), and a
    # second non-JSON answer in a row raises VKAPIError[1] "Unknown response from ...".
    api = make_api(fake, request_rescheduler=BlockingRequestRescheduler(delay=0))
    html = "<html><h1>502 Bad Gateway</h1></html>"
    try:
        fake.fail_method("users.get", 0, http_status=502, body=html)
        users = await api.users.get(user_ids=[1])
        fake.fail_method("users.get", 0, times=2, http_status=502, body=html)
        with pytest.raises(VKAPIError[1], match="Unknown response"):
            await api.users.get(user_ids=[1])
    finally:
        await api.http_client.close()

    assert users[0].id == 1
    assert len(fake.calls_of("users.get")) == 4


# ------------------------------------------------------------------ photos


async def test_photo_upload_round_trip(fake: FakeVK, api: API) -> None:
    data = TINY_JPEG + b"appeal photo"

    photo = await PhotoMessageUploader(api).raw_upload(data, peer_id=USER)
    attachment = PhotoMessageUploader.generate_attachment_string(
        "photo", photo["owner_id"], photo["id"], photo.get("access_key")
    )
    await api.messages.send(peer_id=USER, random_id=9, attachment=attachment)
    largest = max(photo["sizes"], key=lambda s: s["width"] * s["height"])

    assert fake.uploads == [data]
    assert attachment == f"photo-{fake.group_id}_{photo['id']}_{photo['access_key']}"
    assert fake.sent[0].attachment == attachment and fake.sent[0].text == ""
    assert await api.http_client.request_content(largest["url"]) == data


async def test_photo_attachment_helper_is_what_vkbottle_parses(fake: FakeVK, api: API) -> None:
    bot = make_bot(fake, api)
    received: list[Message] = []

    @bot.on.message()
    async def collect(message: Message) -> None:
        received.append(message)

    async with polling_bot(bot):
        await fake.wait_for_poll()
        fake.message_new(USER, attachments=[fake.photo_attachment(USER, 457239100)])
        await fake.wait_for(lambda: bool(received), what="the handler")

    assert received[0].get_attachment_strings() == [
        f"photo{USER}_457239100_{received[0].attachments[0].photo.access_key}"  # type: ignore[index,union-attr]
    ]


def test_confirmation_payload_is_the_callback_api_shape() -> None:
    assert load_payload("confirmation") == {"type": "confirmation", "group_id": 777}
