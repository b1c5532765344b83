"""The Telegram channel end to end: aiogram doing real HTTP against a fake Bot API server
on 127.0.0.1, the real app on a SQLite file (SPEC §3 `tg` row, issue «Telegram channel»)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.channels.telegram import TelegramChannel
from bot.channels.vk import VkChannel
from bot.config import Config
from handlers import texts
from storage.models import Status
from tests.conftest import Clock, make_config
from tests.fakes.telegram import TOKEN, FakeTelegram, SentMessage
from tests.fakes.vk import FakeVK

RESIDENT = 5001
ADMIN = 5002  # administrator of Сергино, on Telegram
MODERATOR = 5003
SECRET = "hook-Secret_123"


class TgPerson:
    """Someone in a private chat with the bot; `say` / `press` return the bot's replies."""

    def __init__(self, harness: TgBot, user_id: int) -> None:
        self.harness = harness
        self.user_id = user_id

    @property
    def fake(self) -> FakeTelegram:
        return self.harness.fake

    @property
    def inbox(self) -> list[SentMessage]:
        return self.fake.messages_to(self.user_id)

    async def _exchange(self, push: Any) -> list[SentMessage]:
        seen = len(self.inbox)
        update = push()
        if self.harness.webhook_url:
            status, _ = await self.fake.post_webhook(self.harness.webhook_url, update, SECRET)
            assert status == 200
        await self.fake.wait_for(lambda: len(self.inbox) > seen, what="a reply")
        await self.harness.app.settle()
        return self.inbox[seen:]

    async def say(self, text: str | None = None, **fields: Any) -> list[SentMessage]:
        return await self._exchange(lambda: self.fake.message(self.user_id, text, **fields))

    def _markup_with(self, label: str) -> tuple[SentMessage, dict[str, Any]]:
        for message in reversed(self.inbox):
            markup = message.reply_markup or {}
            for row in markup.get("inline_keyboard", []) + markup.get("keyboard", []):
                for button in row:
                    if button.get("text") == label:
                        return message, button
        raise AssertionError(f"no button {label!r} shown to {self.user_id}")

    async def press(self, label: str) -> list[SentMessage]:
        """An inline button as a callback query; a reply-keyboard button sends its label."""
        message, button = self._markup_with(label)
        if "callback_data" in button:
            return await self._exchange(
                lambda: self.fake.callback(self.user_id, button["callback_data"], message)
            )
        return await self.say(label)


class TgBot:
    def __init__(self, fake: FakeTelegram, config: Config, clock: Clock) -> None:
        self.fake = fake
        self.config = config
        self.clock = clock
        self.webhook_url = ""
        self.app = App(config, [], clock=clock)

    async def start(self, *extra: Any) -> None:
        self.app = App(
            self.config, [TelegramChannel(self.config.telegram), *extra], clock=self.clock
        )
        await self.app.start()
        if self.config.telegram.mode == "webhook":
            self.webhook_url = (
                f"http://127.0.0.1:{self.app.web.port}{self.config.telegram.webhook_path}"
            )

    def person(self, user_id: int) -> TgPerson:
        return TgPerson(self, user_id)


def tg_config(tmp_path: Path, fake: FakeTelegram, **telegram: Any) -> Config:
    config = make_config(
        tmp_path / "appeals.db",
        # no pacing here: the limits are tested on their own (tests/test_burst.py)
        telegram={
            "enabled": True,
            "token": TOKEN,
            "api_url": fake.url,
            "send_rate": 0,
            "per_chat_rate": 0,
            **telegram,
        },
        web={"port": 0},
    )
    admins = {"sergino": [f"tg:{ADMIN}"], "andra": ["vk:600"]}
    settlements = [
        s.model_copy(update={"admins": admins.get(s.code, [])}) for s in config.settlements
    ]
    moderators = config.moderators.model_copy(update={"ids": [f"tg:{MODERATOR}"]})
    return config.model_copy(update={"settlements": settlements, "moderators": moderators})


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram(hold_seconds=0.05)
    await server.start()
    server.known_chats.update({ADMIN, MODERATOR})  # the officials once pressed /start
    yield server
    await server.stop()
    assert server.errors == []


@pytest.fixture
async def tg(tmp_path: Path, fake: FakeTelegram, clock: Clock) -> AsyncIterator[TgBot]:
    bot = TgBot(fake, tg_config(tmp_path, fake), clock)
    await bot.start()
    yield bot
    await bot.app.stop()


async def file_on_tg(resident: TgPerson, description: str = "Не горит фонарь у школы") -> int:
    await resident.say("/start")
    await resident.press("Подать обращение")  # the main menu: a reply keyboard
    await resident.press("Согласен")  # inline buttons from here on: callback queries
    await resident.press("Дороги")
    await resident.press("Сергино")
    await resident.say(description)
    await resident.press("Пропустить")
    await resident.press("Пропустить")
    await resident.press("Оставить как есть")
    await resident.press("Пропустить")
    replies = await resident.press("Отправить")
    return int(replies[0].text.split("№")[1].split()[0])


async def appeal_of(bot: TgBot, number: int) -> Any:
    async with bot.app.db.transaction() as tx:
        return await tx.appeals.get(number)


async def test_a_resident_files_by_pressing_inline_buttons(tg: TgBot) -> None:
    resident = tg.person(RESIDENT)
    number = await file_on_tg(resident)
    appeal = await appeal_of(tg, number)
    assert (appeal.platform, appeal.chat_id) == ("tg", str(RESIDENT))
    assert appeal.contact_name == "Иван Петров"
    assert len(tg.fake.callback_answers) >= 8  # every press stopped its spinner
    menu = resident.inbox[-1].reply_markup
    assert menu is not None and "keyboard" in menu  # the main menu is a reply keyboard
    assert menu.get("is_persistent") is True


async def test_an_administrator_answers_by_reply_and_by_quote(tg: TgBot) -> None:
    resident, admin = tg.person(RESIDENT), tg.person(ADMIN)
    number = await file_on_tg(resident)
    [card] = admin.inbox
    assert card.text is not None and card.text.startswith(f"Новое обращение №{number}")
    await admin.say(f"/reply {number} Фонарь заменят завтра.")
    assert admin.inbox[-1].text == texts.REPLIED.format(number=number)
    assert "Фонарь заменят завтра." in (resident.inbox[-1].text or "")
    await admin.say("И ещё: проверим соседние.", reply_to=card)
    assert "И ещё: проверим соседние." in (resident.inbox[-1].text or "")
    await resident.press("Вопрос не решён")
    assert (await appeal_of(tg, number)).status is Status.IN_PROGRESS


async def test_photo_and_location_reach_the_appeal(tg: TgBot) -> None:
    resident = tg.person(RESIDENT)
    await resident.say("Подать обращение")
    await resident.press("Согласен")
    await resident.press("ЖКХ")
    await resident.press("Талинка")
    await resident.say(photo=True, caption="Течёт крыша в подъезде дома 3")
    await resident.say(location=(61.41, 65.59))
    for label in ("Готово", "Пропустить"):
        await resident.press(label)
    await resident.say(contact_phone="+79123456789")
    await resident.press("Отправить")
    appeal = await appeal_of(tg, 1)
    assert appeal.text == "Течёт крыша в подъезде дома 3"
    assert (appeal.latitude, appeal.longitude) == (61.41, 65.59)
    assert appeal.contact_phone == "+79123456789"
    [photo] = appeal.photos
    assert photo.platform == "tg" and photo.url is None  # a file id: its URL holds the token
    moderator = tg.person(MODERATOR)  # Талинка has no admin: the moderator gets the card
    kinds = [m.method for m in moderator.inbox]
    assert kinds == ["sendPhoto", "sendMessage"]  # the photo first, the card to quote last


async def test_stickers_and_groups(tg: TgBot) -> None:
    resident = tg.person(RESIDENT)
    await resident.say("Подать обращение")
    replies = await resident.say(sticker=True)
    assert texts.HINT_UNSUPPORTED in (replies[0].text or "")
    before = len(tg.fake.sent)
    tg.fake.message(RESIDENT, "Привет всем", chat_type="group")
    # The bot confirms an update (asks for the next offset) only once it is handled.
    await tg.fake.wait_for(lambda: not tg.fake.pending_updates(), what="the update confirmed")
    await tg.app.settle()
    assert len(tg.fake.sent) == before  # group chats are not residents' chats


@pytest.mark.parametrize(
    "content",
    [
        {"checklist": {"title": "Дела", "tasks": [{"id": 1, "text": "Вынести мусор"}]}},
        {"paid_media": {"star_count": 5, "paid_media": [{"type": "preview"}]}},
        {"brand_new_kind_of_content": {"x": 1}},
    ],
)
async def test_content_the_dialogue_cannot_read_is_said_so(
    tg: TgBot, content: dict[str, Any]
) -> None:
    """Issue 14: a checklist or paid media once became an empty text."""
    resident = tg.person(RESIDENT)
    await resident.say("Подать обращение")
    person = {"id": RESIDENT, "is_bot": False, "first_name": "Иван"}
    message = {
        "message_id": 9999,
        "from": person,
        "chat": {"id": RESIDENT, "type": "private", "first_name": "Иван"},
        "date": 1772431200,
        **content,
    }
    replies = await resident._exchange(lambda: tg.fake.push({"message": message}))
    assert texts.HINT_UNSUPPORTED in (replies[0].text or "")


async def test_commands_are_published(tg: TgBot) -> None:
    def scopes() -> set[str]:
        return {str(c.get("scope")) for c in tg.fake.calls_of("setMyCommands")}

    await tg.fake.wait_for(
        lambda: any(str(ADMIN) in s for s in scopes()), within=20, what="staff commands"
    )
    assert any("default" in s for s in scopes())


async def test_retry_after_is_honoured(tg: TgBot) -> None:
    resident = tg.person(RESIDENT)
    tg.fake.fail_method("sendMessage", 429, retry_after=30)
    tg.fake.message(RESIDENT, "Здравствуйте")
    await tg.fake.wait_for(lambda: bool(tg.fake.calls_of("sendMessage")))
    await tg.app.settle()  # the failed send is recorded with its retry time
    assert resident.inbox == []
    tg.clock.advance(seconds=25)  # backoff alone would be due by now; retry_after is not
    await tg.app.delivery.drain()
    assert resident.inbox == []
    tg.clock.advance(seconds=6)
    await tg.app.delivery.drain()
    assert "канал обратной связи" in (resident.inbox[-1].text or "")


async def test_long_text_is_split_by_utf16(tg: TgBot) -> None:
    resident, admin = tg.person(RESIDENT), tg.person(ADMIN)
    number = await file_on_tg(resident)
    answer = "Ответ 🚧 " * 900  # 8,100 characters, 9,000 UTF-16 units
    seen = len(resident.inbox)
    await admin.say(f"/reply {number} {answer}")
    await tg.fake.wait_for(lambda: len(resident.inbox) >= seen + 3)
    parts = resident.inbox[seen:]
    assert all(len((p.text or "").encode("utf-16-le")) // 2 <= 4096 for p in parts)
    assert parts[-1].reply_markup is not None


async def test_webhook_mode(tmp_path: Path, fake: FakeTelegram, clock: Clock) -> None:
    config = tg_config(
        tmp_path,
        fake,
        mode="webhook",
        webhook_url="https://bot.example/tg",
        webhook_secret=SECRET,
        webhook_path="/tg/hook",
    )
    bot = TgBot(fake, config, clock)
    await bot.start()
    try:
        await fake.wait_for(lambda: fake.webhook is not None)
        assert fake.webhook is not None
        assert fake.webhook["url"] == "https://bot.example/tg"
        assert fake.webhook["secret_token"] == SECRET
        update = fake.message(RESIDENT, "Здравствуйте")
        for secret in (None, "wrong"):
            status, _ = await fake.post_webhook(bot.webhook_url, update, secret)
            assert status == 403
        await bot.app.settle()  # a 403 stored nothing: nothing to handle, nothing sent
        assert fake.messages_to(RESIDENT) == []
        resident = bot.person(RESIDENT)
        replies = await resident.say("Подать обращение")
        assert "Согласие" in (replies[0].text or "")
        status, _ = await fake.post_webhook(bot.webhook_url, update, SECRET)  # a retry
        assert status == 200
        await bot.app.settle()
        assert len(fake.messages_to(RESIDENT)) == 2  # the first update once, nothing more
        assert fake.calls_of("getUpdates") == []
    finally:
        await bot.app.stop()


async def test_a_telegram_resident_answered_from_vk(
    tmp_path: Path, fake: FakeTelegram, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    vk_fake = FakeVK(777, hold_seconds=0.05)
    await vk_fake.start()
    config = tg_config(tmp_path, fake)
    vk_section = type(config.vk).model_validate(
        {
            **config.vk.model_dump(),
            "enabled": True,
            "token": "vk-token",
            "group_id": 777,
            "api_url": vk_fake.api_url,
        }
    )
    config = config.model_copy(update={"vk": vk_section})
    bot = TgBot(fake, config, clock)
    await bot.start(VkChannel(config.vk))
    try:
        await vk_fake.wait_for_poll()
        resident = bot.person(RESIDENT)
        await resident.say("Подать обращение")
        await resident.press("Согласен")
        await resident.press("Дороги")
        await resident.press("Андра")  # administered from VK
        await resident.say(photo=True, caption="Разбитый тротуар у магазина")
        for label in ("Пропустить", "Готово", "Пропустить", "Пропустить", "Отправить"):
            await resident.press(label)
        await vk_fake.wait_for(lambda: bool(vk_fake.messages_to(600)))
        [card] = vk_fake.messages_to(600)
        assert card.attachment and card.attachment.startswith("photo")  # re-uploaded
        vk_fake.message_new(600, "/reply 1 Отремонтируем до конца недели.")
        await fake.wait_for(
            lambda: "Отремонтируем" in (resident.inbox[-1].text or ""), what="the answer"
        )
        answer = resident.inbox[-1]
        assert (answer.text or "").startswith("Ответ на обращение №1")
        assert "Администрация городского поселения Андра" in (answer.text or "")
        assert [m for m in vk_fake.sent if "Отремонтируем" in m.text] == []  # only in Telegram
    finally:
        await bot.app.stop()
        await vk_fake.stop()


def test_the_response_models_of_our_calls_survive_garbage_collection() -> None:
    """pydantic caches `Response[Message]` weakly; the channel holds the types it calls, so
    aiogram does not rebuild one for nearly every send (bench/RESULTS.md)."""
    import gc
    import weakref

    from aiogram.methods import GetUpdates, SendMessage
    from aiogram.methods.base import Response

    import bot.channels.telegram  # noqa: F401  (holds the types)

    held = [
        weakref.ref(Response[method.__returning__])  # type: ignore[name-defined]
        for method in (SendMessage, GetUpdates)
    ]
    gc.collect()
    assert all(ref() is not None for ref in held)
