"""The Odnoklassniki channel end to end: our OK client doing real HTTP against a fake OK
Bot API on 127.0.0.1 that also posts webhooks to the bot (issue «Odnoklassniki channel»)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import App
from bot.channels.memory import MemoryChannel
from bot.channels.ok import OkChannel
from bot.config import Config
from handlers import texts
from tests.conftest import Clock, make_config
from tests.fakes.ok import TOKEN, FakeOK, SentMessage

SECRET = "Ok-webhook_secret-1234567890"
RESIDENT = "user:575662066926"
ADMIN_VK = "600"  # the administrator of Сергино writes from VK (an in-memory channel here)


class OkPerson:
    def __init__(self, bot: OkBot, user_id: str) -> None:
        self.bot = bot
        self.user_id = user_id

    @property
    def chat(self) -> str:
        return self.bot.fake.chat_of(self.user_id)

    @property
    def inbox(self) -> list[SentMessage]:
        """What the bot sent to this chat, without the acknowledgements of button presses."""
        return [m for m in self.bot.fake.messages_to(self.chat) if m.callback_id is None]

    async def _exchange(self, body: dict[str, Any]) -> list[SentMessage]:
        seen = len(self.inbox)
        status, _ = await self.bot.fake.deliver(body, self.bot.webhook_url)
        assert status == 200
        await self.bot.fake.wait_for(lambda: len(self.inbox) > seen, what="a reply")
        await self.bot.app.settle()
        return self.inbox[seen:]

    async def say(self, text: str = "", **fields: Any) -> list[SentMessage]:
        return await self._exchange(self.bot.fake.message_created(self.user_id, text, **fields))

    async def press(self, label: str, placement: str = "top") -> list[SentMessage]:
        for message in reversed(self.inbox):
            for row in message.keyboard or []:
                for button in row:
                    if button.get("text") == label:
                        body = self.bot.fake.message_callback(
                            self.user_id, button["payload"], placement=placement
                        )
                        return await self._exchange(body)
        raise AssertionError(f"no button {label!r}")


class OkBot:
    def __init__(self, fake: FakeOK, config: Config, clock: Clock) -> None:
        self.fake = fake
        self.config = config
        self.clock = clock
        self.vk = MemoryChannel("vk")
        self.app = App(config, [OkChannel(config.ok), self.vk], clock=clock)
        self.webhook_url = ""

    async def start(self) -> None:
        await self.app.start()
        self.webhook_url = f"http://127.0.0.1:{self.app.web.port}/ok/webhook/{SECRET}"

    def person(self, user_id: str) -> OkPerson:
        return OkPerson(self, user_id)


def ok_config(tmp_path: Path, fake: FakeOK) -> Config:
    config = make_config(
        tmp_path / "appeals.db",
        ok={
            "enabled": True,
            "token": TOKEN,
            "api_url": fake.url,
            "webhook_url": "https://bot.example.ru/ok/webhook",
            "webhook_secret": SECRET,
            "send_rate": 0,  # no pacing here: the limits are tested on their own
        },
        web={"port": 0},
    )
    settlements = [
        s.model_copy(update={"admins": [f"vk:{ADMIN_VK}"] if s.code == "sergino" else []})
        for s in config.settlements
    ]
    return config.model_copy(update={"settlements": settlements})


@pytest.fixture
async def fake() -> AsyncIterator[FakeOK]:
    server = FakeOK()
    await server.start()
    yield server
    await server.stop()
    assert server.errors == []


@pytest.fixture
async def ok(tmp_path: Path, fake: FakeOK, clock: Clock) -> AsyncIterator[OkBot]:
    bot = OkBot(fake, ok_config(tmp_path, fake), clock)
    await bot.start()
    yield bot
    await bot.app.stop()


async def file_on_ok(resident: OkPerson) -> int:
    await resident.say("Здравствуйте")
    await resident.press("Подать обращение")
    await resident.press("Согласен", placement="message")  # the other documented placement
    await resident.press("Дороги")
    await resident.press("Сергино")
    await resident.say("Сломан светофор на перекрёстке у рынка")
    for label in ("Пропустить", "Пропустить", "Оставить как есть", "Пропустить"):
        await resident.press(label)
    replies = await resident.press("Отправить")
    return int(replies[0].text.split("№")[1].split()[0])


async def test_a_resident_files_by_pressing_buttons(ok: OkBot) -> None:
    resident = ok.person(RESIDENT)
    number = await file_on_ok(resident)
    async with ok.app.db.transaction() as tx:
        appeal = await tx.appeals.get(number)
    assert appeal is not None
    assert (appeal.platform, appeal.chat_id) == ("ok", resident.chat)
    assert appeal.contact_name == "Иван Петров"
    assert ok.fake.callback_answers  # presses acknowledged
    assert any(ok.vk.sent_to(ADMIN_VK))  # the administrator on VK got the card


async def test_an_answer_from_another_platform_arrives_in_the_ok_chat(ok: OkBot) -> None:
    resident = ok.person(RESIDENT)
    number = await file_on_ok(resident)
    await ok.vk.receive(ADMIN_VK, f"/reply {number} Светофор починят сегодня.")
    await ok.app.settle()
    answer = resident.inbox[-1]
    assert answer.text.startswith(f"Ответ на обращение №{number}")
    assert "Светофор починят сегодня." in answer.text
    assert answer.keyboard is not None
    assert [b["text"] for b in answer.keyboard[0]] == ["Вопрос решён", "Вопрос не решён"]


async def test_subscribes_at_start_up(ok: OkBot) -> None:
    await ok.fake.wait_for(lambda: bool(ok.fake.subscriptions), what="a subscription")
    assert [s["url"] for s in ok.fake.subscriptions] == [
        f"https://bot.example.ru/ok/webhook/{SECRET}"
    ]


async def test_an_existing_subscription_is_kept(tmp_path: Path, fake: FakeOK, clock: Clock) -> None:
    url = f"https://bot.example.ru/ok/webhook/{SECRET}"
    fake.subscriptions.append({"url": url, "time": 1498577751487})
    bot = OkBot(fake, ok_config(tmp_path, fake), clock)
    await bot.start()
    try:
        channel = bot.app.channels["ok"]
        assert isinstance(channel, OkChannel)
        [subscribing] = channel._tasks
        await fake.wait_for(subscribing.done, what="the subscription step to end")
        assert fake.calls_of("/me/subscriptions")
        assert fake.calls_of("/me/subscribe") == []
        assert len(fake.subscriptions) == 1
    finally:
        await bot.app.stop()


async def test_malformed_and_wrong_path_webhooks_are_refused(ok: OkBot) -> None:
    resident = ok.person(RESIDENT)
    body = ok.fake.message_created(RESIDENT, "Здравствуйте")
    base = f"http://127.0.0.1:{ok.app.web.port}"
    async with aiohttp.ClientSession() as http:
        for path in ("/ok/webhook", "/ok/webhook/guess", f"/ok/webhook/{SECRET}x"):
            async with http.post(base + path, json=body) as response:
                assert response.status in (404, 405)
        async with http.post(ok.webhook_url, data=b"{not json") as response:
            assert response.status == 400
        # JSON on the secret path is OK's own, of a shape we do not know: answered 200 (or
        # OK resends it for hours and may drop the subscription), logged, and ignored.
        for odd in (b"[]", b'{"sender": {}}', b'{"recipient": {"chat_id": 1}}'):
            async with http.post(ok.webhook_url, data=odd) as response:
                assert response.status == 200
    # The one good update after them is answered, and only it.
    status, _ = await ok.fake.deliver(body, ok.webhook_url)
    assert status == 200
    await ok.app.settle()
    assert len(resident.inbox) == 1
    assert len(ok.fake.sent) == 1


async def test_a_redelivered_webhook_changes_nothing(ok: OkBot) -> None:
    resident = ok.person(RESIDENT)
    body = ok.fake.message_created(RESIDENT, "Здравствуйте")
    for _ in range(3):  # OK retries when it did not hear back in time
        status, _ = await ok.fake.deliver(body, ok.webhook_url)
        assert status == 200
    await ok.app.settle()  # every accepted update is handled and its replies sent
    assert len(resident.inbox) == 1


async def test_unknown_shapes_are_ignored(ok: OkBot) -> None:
    resident = ok.person(RESIDENT)
    body = {
        "webhookType": "MESSAGE_REACTION",
        "sender": {"user_id": RESIDENT},
        "recipient": {"chat_id": "chat:C1"},
        "timestamp": 1735689600000,
    }
    status, _ = await ok.fake.deliver(body, ok.webhook_url)
    assert status == 200
    status, _ = await ok.fake.deliver(
        ok.fake.message_created(RESIDENT, "Здравствуйте"), ok.webhook_url
    )
    assert status == 200
    await ok.app.settle()
    assert len(resident.inbox) == 1  # the message's greeting, nothing for the reaction
    assert len(ok.fake.sent) == 1


async def test_photos_and_the_chat_start(ok: OkBot) -> None:
    resident = ok.person(RESIDENT)
    replies = await resident._exchange(
        {
            "webhookType": "CHAT_SYSTEM",
            "type": "CHAT_STARTED",
            "sender": {"user_id": RESIDENT, "name": "Иван Петров"},
            "recipient": {"chat_id": resident.chat},
            "timestamp": 1735689600000,
        }
    )
    assert "канал обратной связи" in replies[0].text
    await resident.press("Подать обращение")
    await resident.press("Согласен")
    await resident.press("Благоустройство")
    await resident.press("Сергино")
    await resident.say("Сломанная скамейка в парке", attachments=[ok.fake.image("p1")])
    await resident.press("Пропустить")
    assert "Фото" in resident.inbox[-1].text or "фото" in resident.inbox[-1].text


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        ({"error_code": 2}, True),  # service temporarily unavailable
        ({"error_code": 9999}, True),
        ({"error_code": 300}, False),  # not found: the chat is gone
        ({"error_code": 102}, False),  # the token expired
        ({"error_code": 0, "http_status": 502, "body": "<html>Bad Gateway</html>"}, True),
        ({"error_code": 0, "http_status": 429, "body": "slow down"}, True),
    ],
)
async def test_send_errors_are_classified(
    ok: OkBot, error: dict[str, Any], retryable: bool
) -> None:
    resident = ok.person(RESIDENT)
    await resident.say("Здравствуйте")
    code = error.pop("error_code")
    ok.fake.fail_method("/messages/", code, **error)
    await ok.fake.deliver(ok.fake.message_created(RESIDENT, "Ещё раз"), ok.webhook_url)
    await ok.fake.wait_for(lambda: len(ok.fake.calls_of("/messages/")) >= 2)
    await ok.app.settle()
    async with ok.app.db.transaction() as tx:
        pending, failed = await tx.outbox.count("pending"), await tx.outbox.count("failed")
    assert (pending, failed) == ((1, 0) if retryable else (0, 1))


async def test_long_text_is_split(ok: OkBot) -> None:
    resident = ok.person(RESIDENT)
    number = await file_on_ok(resident)
    seen = len(resident.inbox)
    await ok.vk.receive(ADMIN_VK, f"/reply {number} " + "Очень подробный ответ. " * 400)
    await ok.app.settle()
    parts = resident.inbox[seen:]
    assert len(parts) >= 3
    assert all(len(p.text) <= 3900 for p in parts)
    assert parts[-1].keyboard is not None and all(p.keyboard is None for p in parts[:-1])
    assert texts.RATE_PROMPT in parts[-1].text


async def test_k_passing_failures_then_exactly_one_delivery(ok: OkBot) -> None:
    resident = ok.person(RESIDENT)
    await resident.say("Здравствуйте")
    ok.fake.fail_method("/messages/", 2, times=1)  # service temporarily unavailable
    ok.fake.fail_method("/messages/", 0, times=1, http_status=502, body="<html>502</html>")
    ok.fake.drop_connections("/messages/", times=1)
    seen = len(resident.inbox)
    await ok.fake.deliver(ok.fake.message_created(RESIDENT, "Ещё раз"), ok.webhook_url)
    await ok.fake.wait_for(lambda: len(ok.fake.calls_of("/messages/")) >= 2)
    for _ in range(4):  # each retry falls due when the (test) clock says so
        await ok.app.settle()
        ok.clock.advance(minutes=5)
    await ok.app.settle()
    assert len(resident.inbox) == seen + 1  # delivered, exactly once
    assert len(ok.fake.calls_of("/messages/")) == 1 + 3 + 1  # greeting, 3 failures, success
    async with ok.app.db.transaction() as tx:
        assert await tx.outbox.count("pending") == 0


async def test_several_photos_reach_an_official_on_ok(
    tmp_path: Path, fake: FakeOK, clock: Clock
) -> None:
    """OK takes one image by URL per message and refuses the whole message past it (issue
    14, item 19): every photo is uploaded instead, those received on OK included."""
    config = ok_config(tmp_path, fake)
    settlements = [
        s.model_copy(update={"admins": ["ok:70900"]}) if s.code == "sergino" else s
        for s in config.settlements
    ]
    bot = OkBot(fake, config.model_copy(update={"settlements": settlements}), clock)
    await bot.start()
    try:
        official = bot.person("user:70900")
        await official.say("Начать")  # the official wrote to the group once
        resident = bot.person(RESIDENT)
        await resident.say("Здравствуйте")
        for label in ("Подать обращение", "Согласен", "Благоустройство", "Сергино"):
            await resident.press(label)
        photos = [fake.image("p1"), fake.image("p2"), fake.image("p3")]
        await resident.say("Сломанная скамейка в парке", attachments=photos)
        for label in ("Пропустить", "Готово", "Оставить как есть", "Пропустить", "Отправить"):
            await resident.press(label)
        await bot.app.settle()
        [card] = [m for m in official.inbox if "Сломанная скамейка" in m.text]
        images = [a for a in card.attachments if a["type"] == "IMAGE"]
        assert len(images) == 3
        assert all("token" in a["payload"] for a in images)
        async with bot.app.db.transaction() as tx:
            assert await tx.outbox.count("failed") == 0
    finally:
        await bot.app.stop()


async def test_commands_from_a_group_chat_are_not_answered(
    tmp_path: Path, fake: FakeOK, clock: Clock
) -> None:
    """Issue 14, item 21: a staff command from a group chat would be answered into that
    group. Commands are taken from a person's own dialog with the group only, as on VK and
    Telegram; OK's webhook does not say the chat's type, so the bot asks OK once a chat."""
    config = ok_config(tmp_path, fake)
    settlements = [
        s.model_copy(update={"admins": ["ok:70900"]}) if s.code == "sergino" else s
        for s in config.settlements
    ]
    bot = OkBot(fake, config.model_copy(update={"settlements": settlements}), clock)
    await bot.start()
    try:
        group = "chat:G7f3a9c0d1e2b"
        fake.group_chats.add(group)
        for user, text in (("user:70900", "/list all"), (RESIDENT, "/forget")):
            body = fake.message_created(user, text, chat_id=group)
            status, _ = await fake.deliver(body, bot.webhook_url)
            assert status == 200
        official = bot.person("user:70900")
        await official.say("/list all")  # in private: answered
        await official.say("Здравствуйте")  # not a command: OK is not asked about the chat
        await bot.app.settle()
        assert fake.messages_to(group) == []
        assert len(fake.calls_of("/me/chat/")) == 2  # once per chat, for commands only
    finally:
        await bot.app.stop()
