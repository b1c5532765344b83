"""The MAX channel end to end: maxapi doing real HTTP against the fake MAX Bot API on 127.0.0.1
(tests/fakes/max.py, built from the official schema), the real app on a SQLite file (SPEC §13,
issue 17). Every request the bot sent is checked against the schema's shapes at the end of each
test (`fake` fixture)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.channels.base import Channel
from bot.channels.max import MARKER_KEY, MaxChannel
from bot.channels.telegram import TelegramChannel
from bot.channels.vk import VkChannel
from bot.config import Config
from handlers import texts
from storage.models import Status
from tests.conftest import Clock, make_config
from tests.fakes import telegram as fake_tg
from tests.fakes.max import (
    ANSWER_CALLBACK,
    GET_UPDATES,
    GET_UPLOAD_URL,
    SEND_MESSAGE,
    TOKEN,
    FakeMax,
    SentMessage,
)
from tests.fakes.vk import FakeVK
from tests.test_fake_max import problems

RESIDENT = 40_213_377
ADMIN = 51_000_001  # administrator of Сергино, on MAX
MODERATOR = 51_000_009
TG_ADMIN = 5002  # administrator of Андра, on Telegram
VK_ADMIN = 600
SECRET = "max-hook_Secret42"
MENU = ["Подать обращение", "Мои обращения", "Справка"]


class MaxPerson:
    """Someone in a dialog with the bot on MAX; `say` / `press` return the bot's replies."""

    def __init__(self, bot: MaxBot, user_id: int) -> None:
        self.bot = bot
        self.user_id = user_id

    @property
    def fake(self) -> FakeMax:
        return self.bot.fake

    @property
    def inbox(self) -> list[SentMessage]:
        return self.fake.messages_to(self.user_id)

    @property
    def text(self) -> str:
        return "\n".join(m.text or "" for m in self.inbox[-3:])

    @property
    def labels(self) -> list[str]:
        return self.inbox[-1].button_texts if self.inbox else []

    async def _exchange(self, build: Callable[[bool], dict[str, Any]]) -> list[SentMessage]:
        seen = len(self.inbox)
        if self.bot.webhook_url:
            update = build(False)
            status, _ = await self.fake.post_webhook(self.bot.webhook_url, update, SECRET)
            assert status == 200
        else:
            build(True)
        await self.fake.wait_for(lambda: len(self.inbox) > seen, what="a reply")
        await self.bot.app.settle()
        return self.inbox[seen:]

    async def start(self, payload: str | None = None) -> list[SentMessage]:
        return await self._exchange(
            lambda push: self.fake.bot_started(self.user_id, payload, push=push)
        )

    async def say(self, text: str = "", **fields: Any) -> list[SentMessage]:
        return await self._exchange(
            lambda push: self.fake.message(self.user_id, text, push=push, **fields)
        )

    def button(self, label: str) -> tuple[SentMessage, dict[str, Any]]:
        for message in reversed(self.inbox):
            for row in message.buttons or []:
                for button in row:
                    if button.get("text") == label:
                        return message, button
        raise AssertionError(f"no button {label!r} shown to {self.user_id}")

    async def press(self, label: str) -> list[SentMessage]:
        message, button = self.button(label)
        assert button["type"] == "callback"
        return await self._exchange(
            lambda push: self.fake.callback(
                self.user_id, button["payload"], mid=message.mid, push=push
            )
        )


class MaxBot:
    def __init__(self, fake: FakeMax, config: Config, clock: Clock) -> None:
        self.fake = fake
        self.config = config
        self.clock = clock
        self.webhook_url = ""
        self.extra: list[Channel] = []
        self.app = App(config, [], clock=clock)

    async def start(self, *extra: Channel) -> None:
        self.extra = list(extra)
        channel = MaxChannel(self.config.max, poll_interval=0, after_upload_retry_delay=0.01)
        self.app = App(self.config, [channel, *extra], clock=self.clock)
        await self.app.start()
        if self.config.max.mode == "webhook":
            self.webhook_url = f"http://127.0.0.1:{self.app.web.port}{self.config.max.webhook_path}"
        else:
            await self.fake.wait_polled()

    async def restart(self) -> None:
        await self.app.stop()
        await self.start(*self.extra)

    def person(self, user_id: int) -> MaxPerson:
        return MaxPerson(self, user_id)


def max_config(tmp_path: Path, fake: FakeMax, **section: Any) -> Config:
    config = make_config(
        tmp_path / "appeals.db",
        # no pacing here: the limits are tested on their own (tests/test_burst.py)
        max={
            "enabled": True,
            "token": TOKEN,
            "api_url": fake.url,
            "send_rate": 0,
            "per_chat_rate": 0,
            **section,
        },
        web={"port": 0},
    )
    admins = {
        "sergino": [f"max:{ADMIN}"],
        "andra": [f"tg:{TG_ADMIN}"],
        "talinka": [f"vk:{VK_ADMIN}"],
    }
    settlements = [
        s.model_copy(update={"admins": admins.get(s.code, [])}) for s in config.settlements
    ]
    moderators = config.moderators.model_copy(update={"ids": [f"max:{MODERATOR}"]})
    return config.model_copy(update={"settlements": settlements, "moderators": moderators})


@pytest.fixture
async def fake() -> AsyncIterator[FakeMax]:
    server = FakeMax(hold_seconds=0.05)
    await server.start()
    for user_id in (ADMIN, MODERATOR):
        server.add_user(user_id, "Ольга", "Сотрудник")  # the officials once pressed «Начать»
    yield server
    await server.stop()
    assert server.errors == []
    for call in server.calls_of(SEND_MESSAGE):  # the bot's requests have the schema's shapes
        assert problems(call["json"], "NewMessageBody") == [], call["json"]
    for call in server.calls_of(ANSWER_CALLBACK):
        assert problems(call["json"], "CallbackAnswer") == []


@pytest.fixture
async def mx(tmp_path: Path, fake: FakeMax, clock: Clock) -> AsyncIterator[MaxBot]:
    bot = MaxBot(fake, max_config(tmp_path, fake), clock)
    await bot.start()
    yield bot
    await bot.app.stop()


async def file_on_max(resident: MaxPerson, settlement: str = "Сергино") -> int:
    await resident.start()
    await resident.press("Подать обращение")
    await resident.press("Согласен")
    await resident.press("Дороги")
    await resident.press(settlement)
    await resident.say("Не горит фонарь у школы на Лесной")
    await resident.press("Пропустить")  # place
    await resident.press("Пропустить")  # photos
    await resident.press("Оставить как есть")
    await resident.press("Пропустить")  # phone
    replies = await resident.press("Отправить")
    return int((replies[0].text or "").split("№")[1].split()[0])


async def appeal_of(bot: MaxBot, number: int) -> Any:
    async with bot.app.db.transaction() as tx:
        return await tx.appeals.get(number)


# --- the dialogue on MAX ---------------------------------------------------------------------


async def test_the_start_shows_the_menu_as_callback_buttons(mx: MaxBot) -> None:
    resident = mx.person(RESIDENT)
    [greeting] = await resident.start()
    assert "канал обратной связи" in (greeting.text or "")
    assert resident.labels == MENU
    assert {b["type"] for row in greeting.buttons or [] for b in row} == {"callback"}
    assert greeting.query == {"user_id": str(RESIDENT)}


async def test_a_resident_files_by_pressing_buttons(mx: MaxBot) -> None:
    resident = mx.person(RESIDENT)
    number = await file_on_max(resident)
    appeal = await appeal_of(mx, number)
    assert (appeal.platform, appeal.chat_id) == ("max", str(RESIDENT))
    assert appeal.contact_name == "Иван Петров"
    assert appeal.category == "roads" and appeal.settlement == "sergino"
    assert f"Обращение №{number} зарегистрировано" in resident.text
    assert resident.labels == MENU
    # every press was answered (POST /answers), so MAX stops showing it as pending
    await mx.fake.wait_for(lambda: len(mx.fake.callback_answers) == 9, what="callback answers")
    [card] = mx.fake.messages_to(ADMIN)
    assert (card.text or "").startswith(f"Новое обращение №{number}")


async def test_typed_labels_numbers_back_and_cancel(mx: MaxBot) -> None:
    resident = mx.person(RESIDENT)
    await resident.say("Здравствуйте")
    await resident.say(" подать ОБРАЩЕНИЕ ")
    await resident.say("1")  # Согласен
    await resident.say("3")  # Дороги
    assert "населённый пункт" in resident.text
    await resident.press("Назад")
    assert "Выберите тему" in resident.text
    await resident.press("ЖКХ")
    await resident.say("сергино")
    await resident.say("Течёт крыша в подъезде дома 3")
    await resident.say("2")  # a house number on the free-text place step, not a button
    assert "Приложите фото" in resident.text
    await resident.say("/cancel")
    assert texts.CANCELLED in resident.text and resident.labels == MENU
    async with mx.app.db.transaction() as tx:
        assert await tx.drafts.get("max", str(RESIDENT)) is None


def with_attachment(update: dict[str, Any], attachment: dict[str, Any]) -> dict[str, Any]:
    update["message"]["body"]["attachments"] = [attachment]
    update["message"]["body"]["text"] = ""
    return update


@pytest.mark.parametrize(
    "attachment",
    [
        {"type": "sticker", "payload": {"url": "https://i.oneme.ru/s", "code": "x1"}},
        {"type": "audio", "payload": {"url": "https://vu.okcdn.ru/a", "token": "t"}},
        {"type": "file", "payload": {"url": "https://fu.oneme.ru/f", "token": "t"}},
        {"type": "poll_of_the_future", "payload": {"question": "?"}},
    ],
)
async def test_content_the_dialogue_cannot_read_is_said_so(
    mx: MaxBot, attachment: dict[str, Any]
) -> None:
    resident = mx.person(RESIDENT)
    await resident.say("Подать обращение")
    replies = await resident._exchange(
        lambda push: (mx.fake.push if push else dict)(
            with_attachment(mx.fake.message(RESIDENT, push=False), attachment)
        )
    )
    assert texts.HINT_UNSUPPORTED in (replies[0].text or "")


async def test_group_chats_and_bots_are_not_residents(mx: MaxBot) -> None:
    update = mx.fake.message(RESIDENT, "Привет всем", push=False)
    update["message"]["recipient"]["chat_type"] = "chat"
    mx.fake.push(update)
    robot = mx.fake.message(RESIDENT + 1, "Я бот", push=False)
    robot["message"]["sender"]["is_bot"] = True
    mx.fake.push(robot)
    # The marker moves past an update only once it is handled.
    await mx.fake.wait_for(lambda: not mx.fake.pending_updates(), what="the marker committed")
    await mx.app.settle()
    assert mx.fake.sent == []


async def test_my_appeals_help_and_resume(mx: MaxBot) -> None:
    resident = mx.person(RESIDENT)
    number = await file_on_max(resident)
    await resident.press("Мои обращения")
    assert f"№{number}" in resident.text
    await resident.press("Справка")
    assert mx.config.bot.formal_appeal_url in resident.text
    await resident.press("Подать обращение")
    await resident.press("Благоустройство")
    await mx.restart()  # the draft survives a restart of the service
    mx.clock.advance(minutes=31)  # and a resident who comes back later is asked
    await resident.say("Здравствуйте")
    assert "незавершённое обращение" in resident.text
    await resident.press("Продолжить")
    assert "населённый пункт" in resident.text


# --- acceptance: across messengers -----------------------------------------------------------


def with_section(config: Config, name: str, **values: Any) -> Config:
    section = getattr(config, name)
    return config.model_copy(
        update={name: type(section).model_validate({**section.model_dump(), **values})}
    )


async def test_a_max_resident_with_photo_and_place_answered_from_telegram(
    tmp_path: Path, fake: FakeMax, clock: Clock
) -> None:
    """Every step on MAX, a photo and a shared location; the Telegram administrator of Андра
    gets the card with the photo and answers with /reply; the answer and the rating buttons
    come back to the MAX chat."""
    tg_fake = fake_tg.FakeTelegram(hold_seconds=0.05)
    await tg_fake.start()
    tg_fake.known_chats.add(TG_ADMIN)
    config = with_section(
        max_config(tmp_path, fake),
        "telegram",
        enabled=True,
        token=fake_tg.TOKEN,
        api_url=tg_fake.url,
        send_rate=0,
        per_chat_rate=0,
    )
    bot = MaxBot(fake, config, clock)
    await bot.start(TelegramChannel(config.telegram))
    try:
        resident = bot.person(RESIDENT)
        await resident.start()
        await resident.press("Подать обращение")
        await resident.press("Согласен")
        await resident.press("Благоустройство")
        await resident.press("Андра")
        await resident.say("Сломана скамейка в сквере у почты", photos=1)
        place = resident.inbox[-1]
        assert place.buttons and place.buttons[0][0]["type"] == "request_geo_location"
        await resident.say(location=(62.2521, 66.0413))
        await resident.say(photos=1)
        assert "Фото добавлено (2 из 5)" in resident.text
        await resident.press("Готово")
        await resident.press("Оставить как есть")
        phone = resident.inbox[-1]
        assert phone.buttons and phone.buttons[0][0]["type"] == "request_contact"
        await resident.say(contact="+7 912 345-67-89")
        assert "Телефон: +79123456789" in resident.text
        await resident.press("Отправить")
        async with bot.app.db.transaction() as tx:
            appeal = await tx.appeals.get(1)
        assert appeal is not None and appeal.settlement == "andra"
        assert (appeal.latitude, appeal.longitude) == (62.2521, 66.0413)
        assert [p.platform for p in appeal.photos] == ["max", "max"]
        assert appeal.contact_phone == "+79123456789"

        await tg_fake.wait_for(
            lambda: any(m.method == "sendMessage" for m in tg_fake.messages_to(TG_ADMIN))
        )
        card = tg_fake.messages_to(TG_ADMIN)
        assert [m.method for m in card] == ["sendPhoto", "sendPhoto", "sendMessage"]
        assert all((m.photo or "").startswith("upload:") for m in card[:2])  # fetched from MAX
        assert len(fake.downloads) == 2

        seen = len(resident.inbox)
        tg_fake.message(TG_ADMIN, "/reply 1 Скамейку починят в четверг.")
        await fake.wait_for(lambda: len(resident.inbox) > seen, what="the answer on MAX")
        await bot.app.settle()
        [answer] = resident.inbox[seen:]
        assert (answer.text or "").startswith("Ответ на обращение №1")
        assert "Скамейку починят в четверг." in (answer.text or "")
        assert answer.button_texts == ["Вопрос решён", "Вопрос не решён"]
        await resident.press("Вопрос решён")
        async with bot.app.db.transaction() as tx:
            rated = await tx.appeals.get(1)
        assert rated is not None and rated.status is Status.CLOSED
    finally:
        await bot.app.stop()
        await tg_fake.stop()


async def test_a_max_administrator_answers_a_vk_resident_by_replying_to_the_card(
    tmp_path: Path, fake: FakeMax, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    vk_fake = FakeVK(777, hold_seconds=0.05)
    await vk_fake.start()
    config = with_section(
        max_config(tmp_path, fake),
        "vk",
        enabled=True,
        token="vk1.a.token",
        group_id=777,
        api_url=vk_fake.api_url,
        send_rate=0,
    )
    bot = MaxBot(fake, config, clock)
    await bot.start(VkChannel(config.vk))
    try:
        await vk_fake.wait_for_poll()
        for text in ("Подать обращение", "1", "Дороги", "Сергино"):
            vk_fake.message_new(1001, text)
            await vk_fake.wait_for(lambda: bool(vk_fake.messages_to(1001)))
            await bot.app.settle()
        for text in ("Яма на дороге у дома культуры", "Пропустить", "Пропустить"):
            vk_fake.message_new(1001, text)
            await bot.app.settle()
            await vk_fake.wait_delivered(len(vk_fake.sent))
        for text in ("Пропустить", "Пропустить", "Отправить"):
            vk_fake.message_new(1001, text)
            await bot.app.settle()
        await fake.wait_for(lambda: bool(fake.messages_to(ADMIN)), what="the card on MAX")
        await bot.app.settle()  # the card's mid is recorded
        [card] = fake.messages_to(ADMIN)
        assert (card.text or "").startswith("Новое обращение №1")

        admin = bot.person(ADMIN)
        replies = await admin.say("Засыплем яму в среду.", reply_to=card.mid)
        assert replies[-1].text == texts.REPLIED.format(number=1)
        await vk_fake.wait_for(
            lambda: any("Засыплем яму" in m.text for m in vk_fake.messages_to(1001)),
            what="the answer on VK",
        )
        [answer] = [m for m in vk_fake.messages_to(1001) if "Засыплем яму" in m.text]
        assert answer.text.startswith("Ответ на обращение №1")
        # A quote of something that is not one of the bot's cards is not an answer.
        own = fake.message(ADMIN, "заметка", push=False)
        fake.push(own)
        await admin.say("Это не ответ", reply_to=own["message"]["body"]["mid"])
        assert not any("Это не ответ" in m.text for m in vk_fake.messages_to(1001))
    finally:
        await bot.app.stop()
        await vk_fake.stop()


# --- acceptance: webhook, failures -----------------------------------------------------------


async def test_webhook_checks_the_secret_and_handles_a_resend_once(
    tmp_path: Path, fake: FakeMax, clock: Clock
) -> None:
    config = max_config(
        tmp_path,
        fake,
        mode="webhook",
        webhook_url="https://bot.example.ru/max/webhook",
        webhook_secret=SECRET,
    )
    bot = MaxBot(fake, config, clock)
    await bot.start()
    try:
        await fake.wait_for(lambda: bool(fake.subscriptions), what="the subscription")
        [subscription] = fake.subscriptions
        assert subscription["url"] == "https://bot.example.ru/max/webhook"
        assert subscription["secret"] == SECRET
        assert set(subscription["update_types"]) == {
            "message_created",
            "message_callback",
            "bot_started",
        }
        update = fake.message(RESIDENT, "Здравствуйте", push=False)
        for secret in (None, "wrong-secret", SECRET + "x"):
            status, _ = await fake.post_webhook(bot.webhook_url, update, secret)
            assert status == 403
        await bot.app.settle()
        async with bot.app.db.transaction() as tx:
            assert await tx.inbox.pending_count() == 0  # nothing was even stored
        assert fake.messages_to(RESIDENT) == []
        for _ in range(3):  # MAX resends what it thinks was not delivered
            status, _ = await fake.post_webhook(bot.webhook_url, update, SECRET)
            assert status == 200
        await fake.wait_for(lambda: bool(fake.messages_to(RESIDENT)), what="the greeting")
        await bot.app.settle()
        assert len(fake.messages_to(RESIDENT)) == 1
        resident = bot.person(RESIDENT)
        await resident.press("Подать обращение")  # a press through the webhook too
        assert "Согласие" in resident.text
        assert fake.calls_of(GET_UPDATES) == []
    finally:
        await bot.app.stop()


async def delivered_once(bot: MaxBot, text: str) -> None:
    """The resident's one message containing `text` arrives exactly once."""
    resident = bot.person(RESIDENT)
    await bot.fake.wait_for(lambda: any(text in (m.text or "") for m in resident.inbox), what=text)
    await bot.app.settle()
    assert len([m for m in resident.inbox if text in (m.text or "")]) == 1


async def test_429_with_a_retry_hint_is_honoured_and_sends_once(mx: MaxBot) -> None:
    mx.fake.fail_method(SEND_MESSAGE, 429, retry_after=30)
    mx.fake.message(RESIDENT, "Здравствуйте")
    await mx.fake.wait_calls(SEND_MESSAGE)
    await mx.app.settle()  # the failed send is recorded with its retry time
    assert mx.fake.messages_to(RESIDENT) == []
    mx.clock.advance(seconds=25)  # the backoff alone would be due by now; the hint is not
    await mx.app.delivery.drain()
    assert mx.fake.messages_to(RESIDENT) == []
    mx.clock.advance(seconds=6)
    await mx.app.delivery.drain()
    await delivered_once(mx, "канал обратной связи")


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_retried_and_send_once(mx: MaxBot, status: int) -> None:
    mx.fake.fail_method(SEND_MESSAGE, status, times=2)
    mx.fake.message(RESIDENT, "Здравствуйте")
    await mx.fake.wait_calls(SEND_MESSAGE)
    for _ in range(2):
        await mx.app.settle()
        mx.clock.advance(seconds=5)
        await mx.app.delivery.drain()
    await delivered_once(mx, "канал обратной связи")
    assert len(mx.fake.calls_of(SEND_MESSAGE)) == 3  # maxapi retried nothing by itself


async def test_a_dropped_connection_is_retried_and_sends_once(mx: MaxBot) -> None:
    mx.fake.drop_connections(SEND_MESSAGE)
    mx.fake.message(RESIDENT, "Здравствуйте")
    await mx.fake.wait_calls(SEND_MESSAGE)
    await mx.app.settle()
    mx.clock.advance(seconds=5)
    await mx.app.delivery.drain()
    await delivered_once(mx, "канал обратной связи")


async def test_a_forbidden_chat_is_final(mx: MaxBot) -> None:
    """A resident who stopped the bot (403 chat.denied) is not retried for hours."""
    number = await file_on_max(mx.person(RESIDENT))
    mx.fake.bot_stopped(RESIDENT)
    await mx.fake.wait_for(lambda: not mx.fake.pending_updates())
    await mx.app.settle()
    admin = mx.person(ADMIN)
    await admin.say(f"/reply {number} Ответ")
    async with mx.app.db.transaction() as tx:
        assert await tx.outbox.count("failed") == 1


async def test_long_text_is_split_and_the_keyboard_rides_last(mx: MaxBot) -> None:
    resident, admin = mx.person(RESIDENT), mx.person(ADMIN)
    number = await file_on_max(resident)
    seen = len(resident.inbox)
    await admin.say(f"/reply {number} " + "Ответ по существу. " * 500)  # 9,500 characters
    await mx.fake.wait_for(lambda: len(resident.inbox) >= seen + 3)
    parts = resident.inbox[seen:]
    assert all(len(p.text or "") <= 3999 for p in parts)
    assert [bool(p.buttons) for p in parts] == [False, False, True]


async def test_a_partly_sent_long_message_is_not_sent_again_from_the_start(mx: MaxBot) -> None:
    """MAX has no idempotency key: a retry after the second part failed sends only the rest."""
    from bot.channels.base import SendError
    from handlers.messages import Outgoing

    channel = mx.app.channels["max"]
    mx.fake.add_user(RESIDENT)
    message = Outgoing("max", str(RESIDENT), "Подробный ответ. " * 400, outbox_id=42)
    mx.fake.per_chat_limit = 1  # the second part, at once after the first, gets 429
    with pytest.raises(SendError) as refused:
        await channel.send(message)
    assert refused.value.retryable
    assert len(mx.fake.messages_to(RESIDENT)) == 1
    mx.fake.per_chat_limit = 0
    ids = await channel.send(message)
    parts = mx.fake.messages_to(RESIDENT)
    assert len(parts) == 2 and ids == [p.mid for p in parts]
    assert " ".join(p.text or "" for p in parts).split() == message.text.split()


async def test_the_marker_is_saved_past_handled_updates_and_a_restart_resumes(
    mx: MaxBot,
) -> None:
    resident = mx.person(RESIDENT)
    await resident.say("Здравствуйте")
    async with mx.app.db.transaction() as tx:
        saved = await tx.channel_state.get(MARKER_KEY)
    assert saved is not None and mx.fake.pending_updates() == []
    await mx.app.stop()
    mx.fake.message(RESIDENT, "Подать обращение")  # while the bot is down
    await mx.start()
    await mx.fake.wait_for(lambda: "Согласие" in resident.text, what="the consent")
    assert mx.fake.polls[-1].get("marker") is not None
    assert any(p.get("marker") == saved for p in mx.fake.polls)


async def test_a_photo_from_telegram_is_uploaded_or_sent_as_a_link(mx: MaxBot) -> None:
    """A photo another messenger received reaches a MAX official: uploaded (MAX refuses it
    while it is processed; maxapi tries again), or a link once MAX gives up."""
    from handlers.messages import Outgoing, Photo

    channel = mx.app.channels["max"]
    url = f"{mx.fake.url}/img/{next(iter(mx.fake.images), 0)}"
    mx.fake.message(RESIDENT, "фото", photos=1)  # an image this fake serves
    await mx.fake.wait_for(lambda: bool(mx.fake.images))
    photo_id = next(iter(mx.fake.images))
    url = f"{mx.fake.url}/img/{photo_id}"
    mx.fake.not_ready_times = 2
    await channel.send(
        Outgoing("max", str(ADMIN), "Новое обращение №7", photos=(Photo("vk", "photo1_2", url),))
    )
    [sent] = mx.fake.messages_to(ADMIN)
    assert sent.attachments[0]["type"] == "image" and "token" in sent.attachments[0]["payload"]
    assert mx.fake.calls_of(GET_UPLOAD_URL)[0]["query"] == {"type": "image"}
    mx.fake.not_ready_times = 50  # more than maxapi waits
    await channel.send(
        Outgoing("max", str(ADMIN), "Новое обращение №8", photos=(Photo("vk", "photo1_3", url),))
    )
    card, links = mx.fake.messages_to(ADMIN)[1:]
    assert card.text == "Новое обращение №8" and not card.attachments
    assert links.text == url
