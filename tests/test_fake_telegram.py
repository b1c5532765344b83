"""The fake Telegram Bot API (tests/fakes/telegram.py) speaks Telegram's wire format: aiogram
itself, over real HTTP, sends through it, polls it, receives its webhook pushes, trips over its
errors as it would over Telegram's, and parses every payload in tests/payloads/telegram/."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import TelegramMethod
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from tests.fakes.telegram import (
    FILE,
    GROUP_CHAT_ID,
    TINY_JPEG,
    TOKEN,
    FakeTelegram,
    iter_payload_names,
    load_payload,
)

USER = 5081234567  # above 2**32, as new Telegram ids are
OTHER = 5099000001
WEBHOOK_URL = "https://bot.example.ru/tg/webhook"
SECRET = "s3cret_Token-42"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server
    assert server.errors == []  # the fake itself never failed


def make_bot(fake: FakeTelegram, token: str = TOKEN) -> Bot:
    return Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.url)))


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    client = make_bot(fake)
    yield client
    await client.session.close()


@contextlib.asynccontextmanager
async def polling(dp: Dispatcher, bot: Bot, fake: FakeTelegram) -> AsyncIterator[None]:
    """Run `dp` polling the fake until the block ends; the session stays open for the test."""
    task = asyncio.create_task(
        dp.start_polling(bot, polling_timeout=10, handle_signals=False, close_bot_session=False)
    )
    try:
        await fake.wait_polled()
        yield
    finally:
        with contextlib.suppress(RuntimeError):  # "polling is not started" if it never did
            await dp.stop_polling()
        await task


def inline(*rows: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=text, callback_data=data) for text, data in row]
            for row in rows
        ]
    )


# ------------------------------------------------------------------ sending


async def test_get_me_is_the_bot_of_the_token(fake: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()

    assert (me.id, me.is_bot, me.username) == (bot.id, True, "appeals_test_bot")
    assert fake.calls == [{"method": "getMe"}]


async def test_send_message_round_trip_with_an_inline_keyboard(
    fake: FakeTelegram, bot: Bot
) -> None:
    fake.message(USER, "/start")

    sent = await bot.send_message(
        USER,
        "Обращение №17 принято",
        reply_markup=inline([("Статус", "status:17"), ("Отозвать", "withdraw:17")]),
    )

    assert isinstance(sent, Message)
    assert (sent.chat.id, sent.chat.type, sent.text) == (USER, "private", "Обращение №17 принято")
    assert sent.from_user is not None and sent.from_user.id == bot.id
    assert sent.message_id == 2  # ids count per chat: the /start was 1
    assert sent.reply_markup is not None
    assert sent.reply_markup.inline_keyboard[0][1].callback_data == "withdraw:17"
    [record] = fake.messages_to(USER)
    assert (record.method, record.text, record.message_id) == ("sendMessage", sent.text, 2)
    assert record.reply_markup == {
        "inline_keyboard": [
            [
                {"text": "Статус", "callback_data": "status:17"},
                {"text": "Отозвать", "callback_data": "withdraw:17"},
            ]
        ]
    }
    call = fake.calls_of("sendMessage")[0]
    assert call["chat_id"] == str(USER)  # form fields stay text; JSON fields are parsed
    assert call["reply_markup"] == record.reply_markup


async def test_reply_keyboard_is_sent_but_not_echoed_in_the_message(
    fake: FakeTelegram, bot: Bot
) -> None:
    fake.message(USER, "Здравствуйте")
    keyboard = ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text="📞 Отправить телефон", request_contact=True)],
            [KeyboardButton(text="📍 Где проблема", request_location=True)],
        ],
        resize_keyboard=True,
        one_time_keyboard=True,
    )

    sent = await bot.send_message(USER, "Поделитесь телефоном", reply_markup=keyboard)

    assert sent.reply_markup is None  # Message.reply_markup is only ever an inline keyboard
    markup = fake.sent[0].reply_markup
    assert markup is not None
    assert markup["keyboard"][0][0] == {"text": "📞 Отправить телефон", "request_contact": True}
    assert markup["resize_keyboard"] is True and markup["one_time_keyboard"] is True
    assert fake.sent[0].params["reply_markup"].startswith('{"keyboard":')


async def test_only_chats_that_wrote_or_were_registered_exist(fake: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(USER, "Привет")
    fake.message(OTHER, "Привет", chat_type="group")  # OTHER is known from a group only
    with pytest.raises(TelegramForbiddenError, match="can't initiate conversation"):
        await bot.send_message(OTHER, "Привет")
    fake.known_chats.add(USER)

    await bot.send_message(USER, "Привет")

    assert [m.chat_id for m in fake.sent] == [USER]
    assert fake.answered_errors[0] == ("sendMessage", 400, "Bad Request: chat not found")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("я" * 4096, None),
        ("я" * 4097, "message is too long"),
        ("😀" * 2048, None),  # 4096 UTF-16 code units
        ("😀" * 2049, "message is too long"),  # 2049 characters, 4098 units
        ("", "message text is empty"),  # aiogram leaves an empty text out of the form
        (" \n ", "message text is empty"),
    ],
    ids=[
        "4096-cyrillic",
        "4097-cyrillic",
        "4096-units-emoji",
        "4098-units-emoji",
        "empty",
        "blank",
    ],
)
async def test_text_length_counts_utf16_code_units(
    fake: FakeTelegram, bot: Bot, text: str, error: str | None
) -> None:
    fake.known_chats.add(USER)

    if error is None:
        await bot.send_message(USER, text)
        assert fake.sent[0].text == text
    else:
        with pytest.raises(TelegramBadRequest, match=error):
            await bot.send_message(USER, text)
        assert fake.sent == []


@pytest.mark.parametrize(
    ("button", "error"),
    [
        ({"callback_data": "x" * 64}, None),
        ({"callback_data": "я" * 32}, None),  # 64 bytes
        ({"callback_data": "x" * 65}, "BUTTON_DATA_INVALID"),
        ({"callback_data": "я" * 33}, "BUTTON_DATA_INVALID"),  # 33 characters, 66 bytes
        ({"url": "https://admin.example.ru/appeals/17"}, None),
        ({}, "Text buttons are unallowed in the inline keyboard"),
        ({"url": "https://example.ru", "callback_data": "a"}, "exactly one"),
    ],
    ids=[
        "64-bytes",
        "64-bytes-cyrillic",
        "65-bytes",
        "66-bytes-cyrillic",
        "url",
        "text-only",
        "two-actions",
    ],
)
async def test_inline_buttons_are_validated(
    fake: FakeTelegram, bot: Bot, button: dict[str, str], error: str | None
) -> None:
    fake.known_chats.add(USER)
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Кнопка", **button)]])

    if error is None:
        await bot.send_message(USER, "Выберите", reply_markup=markup)
        assert len(fake.sent) == 1
    else:
        with pytest.raises(TelegramBadRequest, match=error):
            await bot.send_message(USER, "Выберите", reply_markup=markup)
        assert fake.sent == []


async def test_html_parse_mode_is_parsed_and_checked(fake: FakeTelegram, bot: Bot) -> None:
    fake.known_chats.add(USER)

    sent = await bot.send_message(USER, "<b>Обращение №17</b> &lt;важно&gt;", parse_mode="HTML")
    long = await bot.send_message(USER, "<b>" + "я" * 4096 + "</b>", parse_mode="HTML")

    assert sent.text == "Обращение №17 <важно>"
    assert long.text == "я" * 4096  # the limit counts the text after entity parsing
    with pytest.raises(TelegramBadRequest, match='Unsupported start tag "" at byte offset 9'):
        await bot.send_message(USER, "цена < 5 ₽", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match='Unsupported start tag "br"'):
        await bot.send_message(USER, "строка<br>строка", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="Can't find end tag"):
        await bot.send_message(USER, "<b>жирный", parse_mode="HTML")


async def test_raw_calls_json_body_and_method_names_in_any_case(fake: FakeTelegram) -> None:
    fake.known_chats.add(USER)
    markup = {"inline_keyboard": [[{"text": "Да", "callback_data": "yes"}]]}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{fake.url}/bot{TOKEN}/SENDMESSAGE",
            json={"chat_id": USER, "text": "JSON", "reply_markup": markup},
        ) as response:
            sent = await response.json()
        async with http.get(f"{fake.url}/bot{TOKEN}/getme") as response:
            me = await response.json()
        async with http.post(f"{fake.url}/bot{TOKEN}/sendTelepathy") as response:
            unknown = (response.status, await response.json())

    assert sent["ok"] is True and sent["result"]["text"] == "JSON"
    assert fake.calls_of("sendMessage")[0]["reply_markup"] == markup
    assert me["result"]["username"] == "appeals_test_bot"
    assert unknown == (404, {"ok": False, "error_code": 404, "description": "Not Found"})


async def test_a_malformed_body_is_a_bad_request_not_a_fake_bug(fake: FakeTelegram) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{fake.url}/bot{TOKEN}/sendMessage",
            data=b"{not json",
            headers={"Content-Type": "application/json"},
        ) as response,
    ):
        answer = (response.status, await response.json())

    assert answer[0] == 400 and answer[1]["ok"] is False
    assert fake.errors == []


async def test_wrong_token_is_unauthorized(fake: FakeTelegram) -> None:
    stranger = make_bot(fake, "654321:another-bot-token")
    try:
        with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
            await stranger.get_me()
    finally:
        await stranger.session.close()


# ------------------------------------------------------------------ getUpdates


async def test_get_updates_offset_confirms_for_good(fake: FakeTelegram, bot: Bot) -> None:
    first = fake.message(USER, "раз")
    fake.message(USER, "два")
    third = fake.message(USER, "три")

    page = await bot.get_updates(limit=2)
    rest = await bot.get_updates(offset=page[-1].update_id + 1)
    again = await bot.get_updates()  # no offset: nothing new is confirmed
    await bot.get_updates(offset=third["update_id"] + 1)
    gone = await bot.get_updates()

    assert [u.message.text for u in page if u.message] == ["раз", "два"]
    assert page[0].update_id == first["update_id"]
    assert [u.update_id for u in rest] == [third["update_id"]]
    assert [u.update_id for u in again] == [third["update_id"]]
    assert gone == []
    assert fake.pending_updates() == []


async def test_allowed_updates_filter_and_are_remembered(fake: FakeTelegram, bot: Bot) -> None:
    fake.message(USER, "/start")
    await bot.send_message(USER, "Меню", reply_markup=inline([("Статус", "status:1")]))
    fake.callback(USER, "status:1")
    fake.block(USER)

    only_callbacks = await bot.get_updates(allowed_updates=["callback_query"])
    still = await bot.get_updates()  # the setting stays until changed
    everything = await bot.get_updates(allowed_updates=[])

    assert [u.callback_query.data for u in only_callbacks if u.callback_query] == ["status:1"]
    assert [u.update_id for u in still] == [u.update_id for u in only_callbacks]
    assert [u.event_type for u in everything] == ["message", "callback_query", "my_chat_member"]


async def test_get_updates_is_held_briefly_and_woken_by_a_push(
    fake: FakeTelegram, bot: Bot
) -> None:
    started = time.monotonic()
    empty = await bot.get_updates(timeout=30)  # the fake holds hold_seconds, not 30 s
    waited = time.monotonic() - started

    held = asyncio.create_task(bot.get_updates(timeout=30))
    await fake.wait_polled()
    fake.message(USER, "Вы тут?")
    delivered = await asyncio.wait_for(held, 1)

    assert empty == [] and 0.15 < waited < 1.0
    assert [u.message.text for u in delivered if u.message] == ["Вы тут?"]
    assert await bot.get_updates() != []  # short polling (no timeout) answers at once


async def test_a_second_poller_terminates_the_first(fake: FakeTelegram, bot: Bot) -> None:
    fake.hold_seconds = 5
    first = asyncio.create_task(bot.get_updates(timeout=30))
    await fake.wait_polled()

    await bot.get_updates()

    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await first


async def test_a_dispatcher_polls_answers_and_handles_a_button(
    fake: FakeTelegram, bot: Bot
) -> None:
    dp = Dispatcher()
    answered: list[str] = []

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(f"эхо: {message.text}", reply_markup=inline([("Статус", "st:1")]))

    @dp.callback_query()
    async def pressed(query: CallbackQuery) -> None:
        answered.append(query.data or "")
        await query.answer("В работе", show_alert=True)

    async with polling(dp, bot, fake):
        fake.message(USER, "Привет")
        [reply] = await fake.wait_sent(1)
        fake.callback(USER, "st:1", reply)
        await fake.wait_for(lambda: bool(fake.callback_answers), what="a callback answer")

    assert reply.text == "эхо: Привет"
    assert answered == ["st:1"]
    [answer] = fake.callback_answers
    assert (answer["text"], answer["show_alert"]) == ("В работе", "true")
    polls = fake.calls_of("getUpdates")
    assert polls[0]["timeout"] == "10"
    assert set(polls[0]["allowed_updates"]) == {"message", "callback_query"}
    assert any(p.get("offset") for p in polls[1:])  # later polls confirm what was handled


async def test_answer_callback_query_needs_an_open_query(fake: FakeTelegram, bot: Bot) -> None:
    fake.message(USER, "/start")
    sent = await bot.send_message(USER, "Меню", reply_markup=inline([("Статус", "status:1")]))
    update = fake.callback(USER, "status:1")

    await bot.answer_callback_query(update["callback_query"]["id"], text="Готово")

    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(update["callback_query"]["id"])  # answered already
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_callback_query("1234")
    with pytest.raises(ValueError, match="no button"):
        fake.callback(USER, "status:2")  # the bot never showed such a button
    assert update["callback_query"]["message"]["message_id"] == sent.message_id
    assert fake.callback_answers == [
        {"callback_query_id": update["callback_query"]["id"], "text": "Готово"}
    ]


async def test_edit_reply_markup_changes_the_shown_buttons(fake: FakeTelegram, bot: Bot) -> None:
    fake.message(USER, "/start")
    sent = await bot.send_message(USER, "Меню", reply_markup=inline([("Статус", "status:1")]))
    record = fake.sent[0]

    edited = await bot.edit_message_reply_markup(
        chat_id=USER, message_id=sent.message_id, reply_markup=inline([("Оценить", "rate:1")])
    )

    assert isinstance(edited, Message) and edited.edit_date is not None
    assert record.reply_markup == {
        "inline_keyboard": [[{"text": "Оценить", "callback_data": "rate:1"}]]
    }
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(
            chat_id=USER, message_id=sent.message_id, reply_markup=inline([("Оценить", "rate:1")])
        )
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_reply_markup(chat_id=USER, message_id=999)
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_reply_markup(chat_id=USER, message_id=1)  # the person's /start
    with pytest.raises(ValueError, match="no button"):
        fake.callback(USER, "status:1", record)  # that button is gone
    assert fake.callback(USER, "rate:1", record)["callback_query"]["message"]["reply_markup"]


# ------------------------------------------------------------------ injected failures


async def test_injected_429_raises_retry_after(fake: FakeTelegram, bot: Bot) -> None:
    fake.known_chats.add(USER)
    fake.fail_method("sendMessage", 429, retry_after=7)

    with pytest.raises(TelegramRetryAfter) as raised:
        await bot.send_message(USER, "Ответ по обращению")
    await bot.send_message(USER, "Ответ по обращению")  # only once

    assert raised.value.retry_after == 7
    assert "Too Many Requests: retry after 7" in str(raised.value)
    assert len(fake.sent) == 1 and len(fake.calls_of("sendMessage")) == 2


async def test_blocked_by_the_user_is_403(fake: FakeTelegram, bot: Bot) -> None:
    fake.message(USER, "/start")
    fake.fail_method("sendMessage", 403)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(USER, "x")

    fake.block(USER)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(USER, "x")
    fake.unblock(USER)
    await bot.send_message(USER, "С возвращением")

    assert [m.text for m in fake.sent] == ["С возвращением"]


async def test_writing_again_unblocks_and_groups_can_kick_the_bot(
    fake: FakeTelegram, bot: Bot
) -> None:
    fake.message(USER, "/start")
    fake.block(USER)
    fake.message(USER, "/start")  # "Restart" unblocks first
    fake.message(OTHER, "всем привет", chat_type="supergroup")
    group = fake.message(OTHER, "ещё", chat_type="supergroup")["message"]["chat"]["id"]
    fake.push(
        {
            "my_chat_member": {
                "chat": {"id": group, "title": "Соседи", "type": "supergroup"},
                "from": {"id": OTHER, "is_bot": False, "first_name": "Анна"},
                "date": int(time.time()),
                "old_chat_member": {"user": fake.bot_user, "status": "member"},
                "new_chat_member": {"user": fake.bot_user, "status": "left"},
            }
        }
    )

    await bot.send_message(USER, "Снова на связи")
    with pytest.raises(TelegramForbiddenError, match="bot was kicked from the supergroup chat"):
        await bot.send_message(group, "x")

    kinds = [u.event_type for u in await bot.get_updates(allowed_updates=[])]
    assert kinds[:4] == ["message", "my_chat_member", "my_chat_member", "message"]


async def test_injected_400_and_5xx(fake: FakeTelegram, bot: Bot) -> None:
    fake.known_chats.add(USER)
    fake.fail_method("sendMessage", 400)
    fake.fail_method("sendMessage", 500)
    fake.fail_method("sendMessage", 502)
    fake.fail_method("sendMessage", 400, description="Bad Request: PEER_ID_INVALID")

    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(USER, "x")
    with pytest.raises(TelegramServerError, match="Internal Server Error"):
        await bot.send_message(USER, "x")
    with pytest.raises(TelegramServerError, match="Bad Gateway"):
        await bot.send_message(USER, "x")
    with pytest.raises(TelegramBadRequest, match="PEER_ID_INVALID"):
        await bot.send_message(USER, "x")


async def test_an_html_502_is_a_decode_error_in_aiogram(fake: FakeTelegram, bot: Bot) -> None:
    # nginx in front of the Bot API can answer a bare HTML page; aiogram cannot read it as
    # JSON and raises ClientDecodeError, not TelegramServerError.
    fake.known_chats.add(USER)
    fake.fail_method("sendMessage", 502, body="<html><h1>502 Bad Gateway</h1></html>")

    with pytest.raises(ClientDecodeError):
        await bot.send_message(USER, "x")


async def test_dropped_connection_is_a_network_error(fake: FakeTelegram, bot: Bot) -> None:
    fake.known_chats.add(USER)
    fake.drop_connections("sendMessage")

    with pytest.raises(TelegramNetworkError):
        await bot.send_message(USER, "x")

    assert fake.sent == [] and len(fake.calls) == 1


# ------------------------------------------------------------------ photos and files


async def test_send_photo_by_file_id_url_and_upload(fake: FakeTelegram, bot: Bot) -> None:
    update = fake.message(USER, photo=True, caption="Яма у остановки")
    largest = update["message"]["photo"][-1]
    data = TINY_JPEG + b"uploaded appeal photo"

    by_id = await bot.send_photo(USER, largest["file_id"], caption="Переслано модератору")
    by_url = await bot.send_photo(USER, "https://city.example.ru/map/17.jpg")
    by_upload = await bot.send_photo(USER, BufferedInputFile(data, filename="appeal.jpg"))

    assert [m.photo for m in fake.sent] == [
        largest["file_id"],
        "https://city.example.ru/map/17.jpg",
        f"upload:{len(data)}",
    ]
    assert fake.sent[0].caption == by_id.caption == "Переслано модератору"
    assert by_id.photo is not None and by_id.photo[-1].file_unique_id == largest["file_unique_id"]
    assert by_url.photo is not None and len(by_url.photo) == 4
    assert by_upload.photo is not None
    sizes = [(p.width, p.height) for p in by_upload.photo]
    assert sizes == sorted(sizes)  # the largest is last
    assert fake.uploads == [data]
    assert fake.calls_of("sendPhoto")[2]["photo"] == f"upload:{len(data)}"
    downloaded = await bot.download(by_upload.photo[-1].file_id)
    assert downloaded is not None and downloaded.read() == data


async def test_send_photo_rejections(fake: FakeTelegram, bot: Bot) -> None:
    fake.known_chats.add(USER)
    fake.unreachable_urls.add("https://gone.example.ru/1.jpg")

    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(USER, "AgACAgIAAxkBAAIBunknown")
    with pytest.raises(TelegramBadRequest, match="failed to get HTTP URL content"):
        await bot.send_photo(USER, "https://gone.example.ru/1.jpg")
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(USER, BufferedInputFile(b"not a picture", filename="a.jpg"))
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(
            USER, BufferedInputFile(TINY_JPEG, filename="a.jpg"), caption="я" * 1025
        )
    assert fake.sent == []


async def test_get_file_and_download_a_received_photo(fake: FakeTelegram, bot: Bot) -> None:
    fake.message(USER, photo=True)
    [update] = await bot.get_updates()
    assert update.message is not None and update.message.photo is not None
    largest = update.message.photo[-1]

    file = await bot.get_file(largest.file_id)
    assert file.file_path is not None
    content = await bot.download_file(file.file_path)

    assert (largest.width, largest.height) == (1280, 960)
    assert file.file_path.startswith("photos/") and file.file_size == largest.file_size
    assert content is not None and content.read() == fake.files[largest.file_id]
    assert fake.downloads == [file.file_path]
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("AgACAgIAAxkBAAIBunknown")


async def test_failed_download_is_an_http_error(fake: FakeTelegram, bot: Bot) -> None:
    update = fake.message(USER, photo=True)
    file = await bot.get_file(update["message"]["photo"][-1]["file_id"])
    assert file.file_path is not None
    fake.fail_method(FILE, 502)

    with pytest.raises(aiohttp.ClientResponseError):
        await bot.download_file(file.file_path)


async def test_send_media_group_of_two_to_ten(fake: FakeTelegram, bot: Bot) -> None:
    update = fake.message(USER, photo=True)
    file_id = update["message"]["photo"][-1]["file_id"]
    upload = BufferedInputFile(TINY_JPEG, filename="2.jpg")

    messages = await bot.send_media_group(
        USER,
        [
            InputMediaPhoto(media=file_id, caption="Фото к обращению №17"),
            InputMediaPhoto(media=upload),
        ],
    )

    assert len(messages) == 2 and messages[0].media_group_id == messages[1].media_group_id
    assert [m.photo for m in fake.sent] == [file_id, f"upload:{len(TINY_JPEG)}"]
    assert fake.sent[0].caption == "Фото к обращению №17" and fake.sent[1].caption is None
    assert fake.calls_of("sendMediaGroup")[0]["media"][1]["media"] == f"upload:{len(TINY_JPEG)}"
    with pytest.raises(TelegramBadRequest):
        await bot.send_media_group(USER, [InputMediaPhoto(media=file_id)])


# ------------------------------------------------------------------ webhook and commands


async def test_set_delete_webhook_and_commands_are_recorded(fake: FakeTelegram, bot: Bot) -> None:
    fake.message(USER, "раньше")
    await bot.set_webhook(
        WEBHOOK_URL, secret_token=SECRET, allowed_updates=["message", "callback_query"]
    )
    info = await bot.get_webhook_info()
    with pytest.raises(TelegramConflictError, match="webhook is active"):
        await bot.get_updates()
    await bot.set_my_commands([BotCommand(command="start", description="Начать")])
    await bot.set_my_commands(
        [BotCommand(command="queue", description="Очередь обращений")],
        scope=BotCommandScopeChat(chat_id=USER),
    )
    await bot.delete_webhook(drop_pending_updates=True)

    assert fake.webhook is None
    assert fake.calls_of("setWebhook")[0]["secret_token"] == SECRET
    assert (info.url, info.pending_update_count) == (WEBHOOK_URL, 1)
    assert info.allowed_updates == ["message", "callback_query"]
    assert fake.commands_for() == [{"command": "start", "description": "Начать"}]
    assert fake.commands_for("chat", chat_id=USER)[0]["command"] == "queue"
    assert set(fake.commands) == {'{"type":"default"}', f'{{"chat_id":{USER},"type":"chat"}}'}
    assert await bot.get_updates() == []  # drop_pending_updates dropped the message


async def test_set_webhook_remembers_url_secret_and_updates(fake: FakeTelegram, bot: Bot) -> None:
    await bot.set_webhook(WEBHOOK_URL, secret_token=SECRET, allowed_updates=["message"])

    assert fake.webhook == {
        "url": WEBHOOK_URL,
        "secret_token": SECRET,
        "allowed_updates": ["message"],
        "max_connections": 40,
        "drop_pending_updates": False,
    }


@pytest.mark.parametrize(
    ("url", "secret", "error"),
    [
        ("http://bot.example.ru/tg", None, "An HTTPS URL must be provided"),
        ("https://bot.example.ru:8080/tg", None, "only on ports 80, 88, 443 or 8443"),
        ("https://127.0.0.1/tg", None, "IP address 127.0.0.1 is reserved"),
        (WEBHOOK_URL, TOKEN, "secret token contains unallowed characters"),
    ],
    ids=["http", "port", "loopback", "secret-with-colon"],
)
async def test_set_webhook_rejections(
    fake: FakeTelegram, bot: Bot, url: str, secret: str | None, error: str
) -> None:
    with pytest.raises(TelegramBadRequest, match=error):
        await bot.set_webhook(url, secret_token=secret)

    assert fake.webhook is None


async def test_set_webhook_twice_within_a_second_is_429(fake: FakeTelegram, bot: Bot) -> None:
    await bot.set_webhook(WEBHOOK_URL)

    with pytest.raises(TelegramRetryAfter) as raised:
        await bot.set_webhook(WEBHOOK_URL)

    assert raised.value.retry_after == 1
    fake.set_webhook_interval = 0
    assert await bot.set_webhook(WEBHOOK_URL) is True


@contextlib.asynccontextmanager
async def webhook_server(handler: SimpleRequestHandler) -> AsyncIterator[str]:
    app = web.Application()
    handler.register(app, path="/tg/webhook")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/tg/webhook"
    finally:
        await runner.cleanup()


async def test_webhook_push_reaches_the_bot_with_the_secret(fake: FakeTelegram, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(f"получено: {message.text}")

    handler = SimpleRequestHandler(dispatcher=dp, bot=bot, secret_token=SECRET)
    async with webhook_server(handler) as url:
        update = fake.message(USER, "Через вебхук")
        wrong = await fake.post_webhook(url, update, "not-the-secret")
        status, body = await fake.post_webhook(url, update, SECRET)
        [reply] = await fake.wait_sent(1)

    assert wrong == (401, "Unauthorized")
    assert (status, body) == (200, "{}")
    assert reply.text == "получено: Через вебхук" and reply.chat_id == USER
    assert fake.pending_updates() == []  # delivered, so getUpdates would not repeat it


async def test_a_method_in_the_webhook_answer_is_executed(fake: FakeTelegram, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.message()
    async def reply_in_answer(message: Message) -> TelegramMethod[Any]:
        return message.answer("ответ в теле вебхука", reply_markup=inline([("Ок", "ok")]))

    handler = SimpleRequestHandler(dispatcher=dp, bot=bot, handle_in_background=False)
    async with webhook_server(handler) as url:
        status, _ = await fake.post_webhook(url, fake.message(USER, "Привет"), None)

    assert status == 200
    assert [(m.text, m.reply_markup) for m in fake.sent] == [
        ("ответ в теле вебхука", {"inline_keyboard": [[{"text": "Ок", "callback_data": "ok"}]]})
    ]


# ------------------------------------------------------------------ updates the fake builds


async def test_message_helper_builds_what_aiogram_parses(fake: FakeTelegram, bot: Bot) -> None:
    fake.message(USER, "/start@appeals_test_bot")
    fake.message(USER, location=(56.838011, 60.597465))
    fake.message(USER, contact_phone="79123456789")
    fake.message(USER, sticker=True)
    await bot.send_message(USER, "Уточните адрес ответом на это сообщение")
    fake.message(USER, "ул. Ленина, 5", reply_to=fake.sent[0])
    fake.message(OTHER, "в группе", chat_type="group")

    updates = await bot.get_updates()
    messages = [u.message for u in updates if u.message]

    start, location, contact, sticker, reply, group = messages
    assert start.entities is not None and start.entities[0].type == "bot_command"
    assert start.entities[0].length == len("/start@appeals_test_bot")
    assert location.location is not None and location.location.latitude == 56.838011
    assert contact.contact is not None
    assert (contact.contact.phone_number, contact.contact.user_id) == ("79123456789", USER)
    assert sticker.sticker is not None and sticker.sticker.file_id in fake.files
    assert reply.reply_to_message is not None
    assert reply.reply_to_message.from_user is not None
    assert reply.reply_to_message.from_user.id == bot.id
    assert reply.reply_to_message.message_id == fake.sent[0].message_id
    assert (group.chat.id, group.chat.type) == (GROUP_CHAT_ID, "group")
    assert start.from_user is not None and start.from_user.language_code == "ru"
    assert [m.message_id for m in messages[:4]] == [1, 2, 3, 4]


@pytest.mark.parametrize("name", list(iter_payload_names()))
async def test_payload_files_parse_in_aiogram(fake: FakeTelegram, bot: Bot, name: str) -> None:
    raw = load_payload(name)
    Update.model_validate(raw, context={"bot": bot})  # the file as it is

    pushed = fake.push_payload(name, user_id=OTHER)
    [update] = await bot.get_updates(allowed_updates=[])

    assert update.update_id == pushed["update_id"]
    assert update.event_type == next(k for k in raw if k != "update_id")
    user = update.event.from_user if hasattr(update.event, "from_user") else None
    assert user is not None and user.id == OTHER


async def test_payload_photo_and_reply_and_button_work_with_the_fake(
    fake: FakeTelegram, bot: Bot
) -> None:
    photo = fake.push_payload("message_photo")["message"]["photo"]
    reply = fake.push_payload("message_reply")["message"]
    press = fake.push_payload("callback_query")["callback_query"]
    fake.push_payload("my_chat_member_blocked")

    downloaded = await bot.download(photo[-1]["file_id"])
    await bot.answer_callback_query(press["id"])
    await bot.edit_message_reply_markup(chat_id=USER, message_id=press["message"]["message_id"])

    assert downloaded is not None and len(downloaded.read()) == photo[-1]["file_size"]
    assert reply["message_id"] > reply["reply_to_message"]["message_id"]
    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(USER, "Вы нас заблокировали")
