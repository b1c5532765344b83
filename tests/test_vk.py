"""The VK channel end to end: vkbottle doing real HTTP against a fake VK API on 127.0.0.1,
the real app on a SQLite file (SPEC §3 `vk` row, issue «VK channel»)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import App
from bot.channels.base import Channel
from bot.channels.memory import MemoryChannel
from bot.channels.vk import VkChannel
from bot.config import Config
from handlers import texts
from handlers.messages import Photo
from storage.models import Status
from tests.conftest import Clock, make_config
from tests.fakes.vk import IMAGE, FakeVK, SentMessage

GROUP = 777
ADMIN = 600  # administrator of Сергино, on VK
RESIDENT = 1001


class VkPerson:
    """Someone writing to the community; `say` / `press` return the bot's replies."""

    def __init__(self, bot: VkBot, user_id: int) -> None:
        self.bot = bot
        self.user_id = user_id
        self.seen = 0

    @property
    def inbox(self) -> list[SentMessage]:
        return self.bot.fake.messages_to(self.user_id)

    async def _exchange(self, push: Any) -> list[SentMessage]:
        self.seen = len(self.inbox)
        push()
        await self.bot.fake.wait_for(lambda: len(self.inbox) > self.seen, what="a reply")
        await self.bot.app.settle()
        new = self.inbox[self.seen :]
        self.seen = len(self.inbox)
        return new

    async def say(self, text: str = "", **fields: Any) -> list[SentMessage]:
        return await self._exchange(lambda: self.bot.fake.message_new(self.user_id, text, **fields))

    def button(self, label: str) -> dict[str, Any]:
        for message in reversed(self.inbox):
            for row in (message.keyboard or {}).get("buttons", []):
                for button in row:
                    if button["action"].get("label") == label:
                        return dict(button["action"])
        raise AssertionError(f"no button {label!r} shown to {self.user_id}")

    async def press(self, label: str) -> list[SentMessage]:
        """Press a button as VK delivers it: a text button as message_new with its payload
        string, a callback button as message_event with the payload object."""
        action = self.button(label)
        if action["type"] == "callback":
            payload = json.loads(action["payload"])
            return await self._exchange(lambda: self.bot.fake.message_event(self.user_id, payload))
        return await self.say(label, payload=action["payload"])

    @property
    def text(self) -> str:
        return "\n".join(m.text for m in self.inbox[-3:])


class VkBot:
    def __init__(self, fake: FakeVK, config: Config, clock: Clock) -> None:
        self.fake = fake
        self.config = config
        self.clock = clock
        self.extra: list[Channel] = []
        self.app = App(config, [VkChannel(config.vk)], clock=clock)

    async def start(self, *extra: Channel) -> None:
        self.extra = list(extra)
        self.app = App(self.config, [VkChannel(self.config.vk), *extra], clock=self.clock)
        await self.app.start()

    async def restart(self) -> None:
        await self.app.stop()
        await self.start(*self.extra)

    def person(self, user_id: int) -> VkPerson:
        return VkPerson(self, user_id)


def vk_config(tmp_path: Path, fake: FakeVK, **vk: Any) -> Config:
    config = make_config(
        tmp_path / "appeals.db",
        vk={
            "enabled": True,
            "token": "vk1.a.secret-token",
            "group_id": GROUP,
            "api_url": fake.api_url,
            "send_rate": 0,  # no pacing here: the limits are tested on their own
            **vk,
        },
        web={"port": 0},
    )
    settlements = [
        s.model_copy(update={"admins": [f"vk:{ADMIN}"] if s.code == "sergino" else []})
        for s in config.settlements
    ]
    moderators = config.moderators.model_copy(update={"ids": ["tg:900"]})
    return config.model_copy(update={"settlements": settlements, "moderators": moderators})


@pytest.fixture
async def fake() -> AsyncIterator[FakeVK]:
    server = FakeVK(GROUP, hold_seconds=0.05)
    await server.start()
    yield server
    await server.stop()
    assert server.errors == []


@pytest.fixture
async def vk(
    tmp_path: Path, fake: FakeVK, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[VkBot]:
    monkeypatch.chdir(tmp_path)
    bot = VkBot(fake, vk_config(tmp_path, fake), clock)
    await bot.start()
    await fake.wait_for_poll()
    yield bot
    await bot.app.stop()


async def file_on_vk(
    resident: VkPerson, description: str = "Яма на дороге у школы, глубокая"
) -> int:
    await resident.say("Начать", payload='{"command":"start"}')
    await resident.press("Подать обращение")
    if any(
        b["action"].get("label") == "Согласен"
        for row in (resident.inbox[-1].keyboard or {}).get("buttons", [])
        for b in row
    ):
        await resident.press("Согласен")
    await resident.press("Дороги")
    await resident.press("Сергино")
    await resident.say(description)
    await resident.press("Пропустить")
    await resident.press("Пропустить")
    await resident.press("Оставить как есть")
    await resident.press("Пропустить")
    replies = await resident.press("Отправить")
    return int(replies[0].text.split("№")[1].split()[0])


async def stored(bot: VkBot, number: int) -> Any:
    async with bot.app.db.transaction() as tx:
        return await tx.appeals.get(number)


async def test_a_resident_files_an_appeal_by_pressing_buttons(vk: VkBot) -> None:
    vk.fake.users[RESIDENT] = ("Иван", "Петров")
    resident = vk.person(RESIDENT)
    number = await file_on_vk(resident)
    assert "зарегистрировано" in resident.inbox[-1].text
    appeal = await stored(vk, number)
    assert appeal.platform == "vk" and appeal.chat_id == str(RESIDENT)
    assert (appeal.category, appeal.settlement) == ("roads", "sergino")
    assert appeal.contact_name == "Иван Петров"  # from users.get
    assert len(vk.fake.calls_of("users.get")) == 1  # cached after the first message
    random_ids = [m.random_id for m in vk.fake.sent]
    assert all(random_ids) and len(set(random_ids)) == len(random_ids)
    assert vk.fake.answered_errors == []  # every keyboard within VK's limits


async def test_an_administrator_on_vk_answers(vk: VkBot) -> None:
    resident, admin = vk.person(RESIDENT), vk.person(ADMIN)
    number = await file_on_vk(resident)
    [card] = admin.inbox
    assert card.text.startswith(f"Новое обращение №{number}")
    answer = await admin.say(f"/reply {number} Яму засыплем до пятницы.")
    assert answer[0].text == texts.REPLIED.format(number=number)
    relayed = resident.inbox[-1]
    assert relayed.text.startswith(f"Ответ на обращение №{number}")
    assert relayed.keyboard is not None and relayed.keyboard["inline"] is True
    await resident.press("Вопрос решён")  # a callback button: message_event
    assert vk.fake.seen_event_answers  # the spinner was stopped
    assert (await stored(vk, number)).status is Status.CLOSED


async def test_quote_reply_answers_the_quoted_appeal(vk: VkBot) -> None:
    resident, admin = vk.person(RESIDENT), vk.person(ADMIN)
    number = await file_on_vk(resident)
    [card] = admin.inbox
    await admin.say("Засыплем завтра.", reply_message=vk.fake.quote(card))
    assert admin.inbox[-1].text == texts.REPLIED.format(number=number)
    assert "Засыплем завтра." in resident.inbox[-1].text


async def test_photo_and_location_reach_the_appeal(vk: VkBot) -> None:
    resident = vk.person(RESIDENT)
    await resident.say("Подать обращение")
    await resident.press("Согласен")
    await resident.press("Благоустройство")
    await resident.press("Андра")
    photo = vk.fake.photo_attachment(RESIDENT, 5)
    await resident.say("Сломана скамейка в сквере у почты", attachments=[photo])
    geo = {"type": "point", "coordinates": {"latitude": 61.82, "longitude": 65.49}}
    await resident.say("", geo=geo)
    for label in ("Готово", "Пропустить", "Пропустить", "Отправить"):
        await resident.press(label)
    appeal = await stored(vk, 1)
    assert (appeal.latitude, appeal.longitude) == (61.82, 65.49)
    [stored_photo] = appeal.photos
    key = photo["photo"]["access_key"]
    assert stored_photo.ref == f"photo{RESIDENT}_5_{key}"
    assert stored_photo.url.endswith(".jpg")


async def test_long_text_is_split_and_the_keyboard_rides_last(vk: VkBot) -> None:
    resident, admin = vk.person(RESIDENT), vk.person(ADMIN)
    number = await file_on_vk(resident)
    long_answer = " ".join(f"слово{i}" for i in range(1500))  # about 12,000 characters
    before = len(resident.inbox)
    await admin.say(f"/reply {number} {long_answer}")
    await vk.fake.wait_for(lambda: len(resident.inbox) >= before + 3)
    parts = resident.inbox[before:]
    assert all(len(p.text) <= 4096 for p in parts)
    assert [p.keyboard is not None for p in parts] == [False] * (len(parts) - 1) + [True]
    joined = " ".join(p.text for p in parts)
    assert " ".join(joined.split()).endswith(long_answer.split()[-1] + " " + texts.RATE_PROMPT)
    assert all(w in joined for w in ("слово0", "слово777", "слово1499"))


async def test_long_poll_failures_are_survived(vk: VkBot) -> None:
    resident = vk.person(RESIDENT)
    for code in (1, 2, 3):
        vk.fake.fail_next_poll(code)
        await vk.fake.wait_for(lambda: not vk.fake._poll_failures, what="the failure served")
        await vk.fake.wait_for_poll()
        replies = await resident.say("Здравствуйте")
        assert "канал обратной связи" in replies[-1].text
    assert len(vk.fake.calls_of("groups.getLongPollServer")) >= 3  # new keys after 2 and 3


async def test_redelivered_updates_change_nothing(vk: VkBot) -> None:
    resident = vk.person(RESIDENT)
    await resident.say("Здравствуйте")
    before = len(resident.inbox)
    vk.fake.fail_next_poll(1, ts="0")  # VK hands out its history again
    await vk.fake.wait_for(lambda: vk.fake.delivered_events >= 2, what="a redelivery")
    # The next long poll comes only once the redelivered batch is handled: someone else's
    # message, answered, shows that it was.
    await vk.person(RESIDENT + 1).say("Здравствуйте")
    await vk.app.settle()
    assert len(resident.inbox) == before


async def test_restart_resumes_from_the_saved_ts(vk: VkBot) -> None:
    resident = vk.person(RESIDENT)
    await resident.say("Здравствуйте")
    await vk.app.stop()
    vk.fake.message_new(RESIDENT, "Подать обращение")  # arrives while the bot is down
    await vk.start()
    await vk.fake.wait_for(lambda: "Согласие" in resident.inbox[-1].text, what="the consent")


async def test_send_errors_are_classified(vk: VkBot) -> None:
    resident = vk.person(RESIDENT)
    vk.fake.fail_method("messages.send", 6, times=2)  # too many requests: retried
    vk.fake.message_new(RESIDENT, "Здравствуйте")
    await vk.fake.wait_for(lambda: len(vk.fake.answered_errors) == 1)
    await vk.app.settle()
    assert resident.inbox == []
    for _ in range(2):  # the retries are due only when the (test) clock says so
        vk.clock.advance(minutes=5)
        await vk.app.delivery.drain()
    assert [code for _, code, _ in vk.fake.answered_errors] == [6, 6]
    assert "канал обратной связи" in resident.inbox[-1].text
    vk.fake.fail_method("messages.send", 901)  # the user never allowed messages: final
    vk.fake.message_new(RESIDENT, "Ещё раз")
    await vk.fake.wait_for(lambda: len(vk.fake.answered_errors) == 3)
    await vk.app.settle()
    async with vk.app.db.transaction() as tx:
        assert await tx.outbox.count("failed") == 1
        assert await tx.outbox.count("pending") == 0


async def test_a_resend_of_the_same_row_is_not_a_duplicate(vk: VkBot) -> None:
    resident = vk.person(RESIDENT)
    await resident.say("Здравствуйте")
    # As if the process had died after sending but before marking the row sent:

    def unmark() -> None:  # in a thread: the bot's transaction in progress needs the loop
        with sqlite3.connect(vk.config.storage.sqlite_path, timeout=10) as raw:
            raw.execute("UPDATE outbox SET status = 'pending'")

    await asyncio.to_thread(unmark)
    await vk.app.delivery.drain()
    assert len(vk.fake.calls_of("messages.send")) == 2  # it was sent again…
    assert len(resident.inbox) == 1  # VK recognised the random_id


async def test_photos_from_another_messenger_are_reuploaded(
    tmp_path: Path, fake: FakeVK, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    bot = VkBot(fake, vk_config(tmp_path, fake), clock)
    telegram = MemoryChannel("tg")
    await bot.start(telegram)
    try:
        image = fake.photo_attachment(1, 1)["photo"]["sizes"][-1]["url"]
        await telegram.receive("55", "Подать обращение")
        await telegram.receive("55", payload="consent:yes")
        await telegram.receive("55", payload="cat:roads")
        await telegram.receive("55", payload="st:sergino")
        await telegram.receive(
            "55",
            "Разбит асфальт на перекрёстке",
            photos=(Photo("tg", "AgAC-1", image), Photo("tg", "AgAC-2", None)),
        )
        for payload in ("skip", "done", "skip", "skip", "send"):
            await telegram.receive("55", payload=payload)
        await bot.app.settle()
        [card] = fake.messages_to(ADMIN)
        assert card.attachment is not None and card.attachment.startswith("photo")
        assert fake.uploads  # photos.getMessagesUploadServer → upload → saveMessagesPhoto
        assert texts.PHOTOS_ONLY in card.text  # the one without a URL is named, not dropped
        fake.fail_method(IMAGE, 500, http_status=500, body="down")
        await telegram.receive("55", "Дополнение", photos=(Photo("tg", "AgAC-3", image),))
        await telegram.receive("55", payload="add:1")
        await bot.app.settle()
        assert image in fake.messages_to(ADMIN)[-1].text  # upload failed: sent as a link
    finally:
        await bot.app.stop()


async def test_callback_mode(
    tmp_path: Path, fake: FakeVK, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = vk_config(
        tmp_path,
        fake,
        mode="callback",
        callback_secret="s3cret",
        confirmation_code="d8e3f1a0",
        callback_path="/vk/callback",
    )
    bot = VkBot(fake, config, clock)
    await bot.start()
    url = f"http://127.0.0.1:{bot.app.web.port}/vk/callback"
    update = fake.message_new(RESIDENT, "Здравствуйте")
    fake._updates.clear()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json={"type": "confirmation", "group_id": GROUP}) as r:
                assert (r.status, await r.text()) == (200, "d8e3f1a0")
            for secret in (None, "wrong"):
                body = dict(update, **({"secret": secret} if secret else {}))
                async with http.post(url, json=body) as r:
                    assert r.status == 403
            async with http.post(url, data=b"{not json") as r:
                assert r.status == 400
            await bot.app.settle()
            assert fake.messages_to(RESIDENT) == []  # nothing was processed
            for _ in range(2):  # VK retries: the same event twice
                async with http.post(url, json=dict(update, secret="s3cret")) as r:
                    assert (r.status, await r.text()) == (200, "ok")
            await fake.wait_for(lambda: len(fake.messages_to(RESIDENT)) == 1)
            await bot.app.settle()  # every accepted update handled, every reply sent
            assert len(fake.messages_to(RESIDENT)) == 1
        assert fake.calls_of("groups.getLongPollServer") == []
    finally:
        await bot.app.stop()


async def test_a_long_poll_batch_is_handled_together_in_order_per_resident(vk: VkBot) -> None:
    """Twenty residents in one long-poll answer, the first of them writing twice: each gets
    the greeting, the twice-writer's two messages are handled in the order written, and the
    twenty updates share commits instead of an fsync each (storage/db.py, lanes.py)."""
    people = [5000 + n for n in range(20)]
    for user in people:  # no await in between: the waiting long poll answers with all 21
        vk.fake.message_new(user, "Здравствуйте")
    vk.fake.message_new(people[0], "Подать обращение")
    commits_before = vk.app.db.commits
    await vk.fake.wait_for(
        lambda: (
            all(vk.fake.messages_to(user) for user in people)
            and len(vk.fake.messages_to(people[0])) >= 2
        ),
        what="every reply",
    )
    await vk.app.settle()
    first = [m.text for m in vk.fake.messages_to(people[0])]
    assert "Согласие" in first[-1]  # «Подать обращение» came second and was answered second
    assert vk.app.db.commits - commits_before < len(people)
