"""Tokens and secrets never appear in the logs (SPEC §10; issue 7, item 5 «a test greps the
log»), and a resident's phone never at INFO or above (bot/logs.py keeps phones out), in
either log format: every loguru record is captured both as the readable line and as the
JSON line of `--log-format json` (issue 20), and both are searched.

The app runs against the three fake servers, in-process, with every log line captured: loguru
at DEBUG through the product's own format (backtrace and diagnose off, as bot/logs.py sets
them up: tracebacks without variable values), and the standard library's logging (aiohttp,
aiogram, asyncio) at DEBUG on the root logger. Residents talk on all three messengers, one
gives the phone «+79123456789», sends fail in passing and for good, connections are cut,
polls fail, and webhooks come with wrong secrets. Then every captured line is searched:
tokens and secrets at every level, the phone at INFO and above.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from loguru import logger

from bot.app import App
from bot.channels.ok import OkChannel
from bot.channels.telegram import TelegramChannel
from bot.channels.vk import VkChannel
from bot.config import Config
from bot.logs import FORMAT, json_line
from tests.conftest import make_config
from tests.fakes.ok import FakeOK
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVK

GROUP = 777
VK_TOKEN = "vk1.a.SECRETvkTOKEN-Qw8e7r6tY5u4i3o2p1"
TG_TOKEN = "987654:AAH-SECRETtgTOKEN-x9Kq2LmZ7pRt"
OK_TOKEN = "tkn1SECRETokTOKEN:ZZQ9x7Lw5Vb3Nm1"
VK_CALLBACK_SECRET = "SECRETvkCallback-H7j6k5"
TG_WEBHOOK_SECRET = "SECRETtgWebhook_G4f3d2"
OK_WEBHOOK_SECRET = "SECRETokWebhook-F1e2d3c4b5"
VK_CONFIRMATION = "d8e3f1a0"
PHONE = "+79123456789"

VK_RESIDENT, VK_ADMIN = 81001, 81002
TG_RESIDENT, TG_ADMIN = 82001, 82002
OK_RESIDENT = "user:83001"
WITHIN = 15.0  # seconds to wait for a reply; the retries of failed sends take about 1 s

# Every secret, and its distinctive part (a token's "987654:" prefix is the bot's public id).
SECRETS = {
    "vk token": VK_TOKEN,
    "vk token (key part)": VK_TOKEN.removeprefix("vk1.a."),
    "telegram token": TG_TOKEN,
    "telegram token (key part)": TG_TOKEN.split(":", 1)[1],
    "ok token": OK_TOKEN,
    "ok token (key part)": OK_TOKEN.split(":", 1)[1],
    "vk callback secret": VK_CALLBACK_SECRET,
    "telegram webhook secret": TG_WEBHOOK_SECRET,
    "ok webhook secret": OK_WEBHOOK_SECRET,
}


# --- capturing every log line --------------------------------------------------------------


@dataclass
class Line:
    source: str  # "loguru" or "logging"
    level: int  # the standard library's numbers: DEBUG 10, INFO 20, WARNING 30…
    text: str  # as written, traceback included


@dataclass
class Capture:
    lines: list[Line] = field(default_factory=list)

    def loguru(self, message: Any) -> None:
        record = message.record
        level = logging.getLevelName(record["level"].name)
        number = level if isinstance(level, int) else record["level"].no
        self.lines.append(Line("loguru", number, str(message)))
        self.lines.append(Line("loguru-json", number, json_line(record)))

    def levels(self) -> Counter[str]:
        return Counter(f"{line.source} {logging.getLevelName(line.level)}" for line in self.lines)


class _Collect(logging.Handler):
    def __init__(self, capture: Capture) -> None:
        super().__init__(level=logging.DEBUG)
        self.capture = capture
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.capture.lines.append(Line("logging", record.levelno, self.format(record)))


@contextlib.contextmanager
def capturing() -> Iterator[Capture]:
    capture = Capture()
    sink_id = logger.add(
        capture.loguru, level="DEBUG", format=FORMAT, backtrace=False, diagnose=False
    )
    root = logging.getLogger()
    handler = _Collect(capture)
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        logger.remove(sink_id)


def digits_only(text: str) -> str:
    return re.sub(r"[\s\-()]", "", text)


def assert_clean(capture: Capture) -> None:
    """No secret in any line; the phone in no line at INFO or above; every JSON line is one
    line holding one object with the time, the level and the message."""
    assert len(capture.lines) > 20  # the capture worked: the app logged a lot
    json_lines = [line.text for line in capture.lines if line.source == "loguru-json"]
    assert len(json_lines) > 10
    for text in json_lines:
        assert "\n" not in text
        entry = json.loads(text)
        assert {"time", "level", "message", "logger"} <= set(entry), text
    leaks = [
        (name, line.source, logging.getLevelName(line.level), line.text[:300])
        for line in capture.lines
        for name, secret in SECRETS.items()
        if secret in line.text
    ]
    assert leaks == []
    phones = [
        (line.source, logging.getLevelName(line.level), line.text[:300])
        for line in capture.lines
        if line.level >= logging.INFO and PHONE.removeprefix("+7") in digits_only(line.text)
    ]
    assert phones == []


# --- the app and the people ------------------------------------------------------------------


def config_for(
    tmp_path: Path, vk: FakeVK, tg: FakeTelegram, ok: FakeOK, *, webhooks: bool
) -> Config:
    config = make_config(
        tmp_path / "appeals.db",
        vk={
            "enabled": True,
            "token": VK_TOKEN,
            "group_id": GROUP,
            "api_url": vk.api_url,
            "mode": "callback" if webhooks else "longpoll",
            "callback_path": "/vk/callback",
            "callback_secret": VK_CALLBACK_SECRET,
            "confirmation_code": VK_CONFIRMATION,
            "send_rate": 0,  # no pacing against a local fake: rates are not under test here
        },
        telegram={
            "enabled": True,
            "token": TG_TOKEN,
            "api_url": tg.url,
            "mode": "webhook" if webhooks else "polling",
            "webhook_path": "/tg/hook",
            "webhook_url": "https://bot.example/tg/hook",
            "webhook_secret": TG_WEBHOOK_SECRET,
            "send_rate": 0,
            "per_chat_rate": 0,
        },
        ok={
            "enabled": True,
            "token": OK_TOKEN,
            "api_url": ok.url,
            "webhook_url": "https://bot.example/ok/webhook",
            "webhook_secret": OK_WEBHOOK_SECRET,
            "send_rate": 0,
        },
        web={"port": 0},
        delivery={"max_backoff_seconds": 0.3},  # retries within the test's patience
        limits={"messages_per_minute": 1_000_000},  # flood control is not under test here
    )
    admins = {"sergino": [f"vk:{VK_ADMIN}", f"tg:{TG_ADMIN}"]}
    settlements = [
        s.model_copy(update={"admins": admins.get(s.code, [])}) for s in config.settlements
    ]
    moderators = config.moderators.model_copy(update={"ids": [f"tg:{TG_ADMIN}"]})
    return config.model_copy(update={"settlements": settlements, "moderators": moderators})


@dataclass
class World:
    app: App
    vk: FakeVK
    tg: FakeTelegram
    ok: FakeOK
    webhooks: bool

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.app.web.port}"

    @property
    def ok_url(self) -> str:
        return f"{self.base}/ok/webhook/{OK_WEBHOOK_SECRET}"


async def until(predicate: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WITHIN
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"waited {WITHIN}s in vain for {what}")
        await asyncio.sleep(0.01)


async def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        await r.read()
        return r.status


async def vk_say(w: World, user_id: int, text: str) -> None:
    update = w.vk.message_new(user_id, text)
    if w.webhooks:
        body = json.dumps(dict(update, secret=VK_CALLBACK_SECRET)).encode()
        assert await post(f"{w.base}/vk/callback", body) == 200


async def tg_say(w: World, user_id: int, text: str | None = None, **fields: Any) -> None:
    update = w.tg.message(user_id, text, **fields)
    if w.webhooks:
        status, _ = await w.tg.post_webhook(f"{w.base}/tg/hook", update, TG_WEBHOOK_SECRET)
        assert status == 200


async def ok_say(w: World, user: str, text: str) -> None:
    status, _ = await w.ok.deliver(w.ok.message_created(user, text), w.ok_url)
    assert status == 200


Say = Callable[[str], Awaitable[None]]
Inbox = Callable[[], list[str]]


async def exchange(say: Say, inbox: Inbox, text: str, expect: str) -> None:
    seen = len(inbox())
    await say(text)
    await until(lambda: any(expect in t for t in inbox()[seen:]), f"{expect!r} after {text!r}")


async def file_an_appeal(say: Say, inbox: Inbox, phone: Say | None = None) -> None:
    """The whole dialogue by typed labels (a typed label presses its button), with the phone
    typed in, or shared by `phone`, and a wrong phone on the way."""
    steps = [
        ("Начать", "Выберите, что вы хотите сделать"),
        ("Подать обращение", "Вы даёте согласие?"),
        ("Согласен", "Выберите тему обращения"),
        ("Дороги", "Выберите населённый пункт"),
        ("Сергино", "Опишите проблему"),
        ("Яма на дороге возле дома культуры, глубокая", "Укажите адрес"),
        ("Пропустить", "Приложите фото"),
        ("Пропустить", "Как к вам обращаться?"),
        ("Оставить как есть", "Телефон для связи"),
    ]
    for text, expect in steps:
        await exchange(say, inbox, text, expect)
    await exchange(say, inbox, f"{PHONE}0", "Не похоже на российский номер")
    if phone is not None:
        await exchange(phone, inbox, PHONE, "Проверьте обращение")
    else:
        await exchange(say, inbox, PHONE, "Проверьте обращение")
    await exchange(say, inbox, "Отправить", "зарегистрировано")


async def run_world(
    tmp_path: Path, webhooks: bool, scenario: Callable[[World], Awaitable[None]]
) -> Capture:
    with capturing() as capture:
        async with FakeVK(GROUP, hold_seconds=0.05) as vk:
            tg = FakeTelegram(TG_TOKEN, hold_seconds=0.05)
            ok = FakeOK(OK_TOKEN)
            async with tg, ok:
                tg.known_chats.add(TG_ADMIN)  # the official once pressed /start
                config = config_for(tmp_path, vk, tg, ok, webhooks=webhooks)
                channels = [
                    VkChannel(config.vk),
                    TelegramChannel(config.telegram),
                    OkChannel(config.ok),
                ]
                app = App(config, channels)  # the real clock: retries fall due by themselves
                await app.start()
                try:
                    await scenario(World(app, vk, tg, ok, webhooks))
                finally:
                    await app.stop()
                assert vk.errors == [] and tg.errors == [] and ok.errors == []
    return capture


async def outbox_count(app: App, status: str) -> int:
    async with app.db.transaction() as tx:
        return int(await tx.outbox.count(status))


# --- the tests -------------------------------------------------------------------------------


async def test_no_secret_in_any_log_line_with_polling(tmp_path: Path) -> None:
    faults: Counter[str] = Counter()

    async def scenario(w: World) -> None:
        await w.vk.wait_for_poll()
        await w.tg.wait_polled()
        await until(lambda: bool(w.ok.subscriptions), "the OK subscription")

        def vk_inbox() -> list[str]:
            return [m.text for m in w.vk.messages_to(VK_RESIDENT)]

        def tg_inbox() -> list[str]:
            return [m.text or m.caption or "" for m in w.tg.messages_to(TG_RESIDENT)]

        def ok_inbox() -> list[str]:
            return [m.text for m in w.ok.messages_to(w.ok.chat_of(OK_RESIDENT))]

        # Failures on the way, of every kind the channels know.
        w.vk.fail_next_poll(2)
        w.vk.fail_method("messages.send", 6)  # passing
        w.vk.drop_connections("messages.send")
        w.tg.fail_method("getUpdates", 502, body="<html>502 Bad Gateway</html>")
        w.tg.fail_method("sendMessage", 429, retry_after=1)
        w.tg.drop_connections("sendMessage")
        w.ok.fail_method("messages", 2)  # SERVICE: passing
        w.ok.drop_connections("messages")
        faults.update(
            [
                "vk long poll failed 2",
                "vk error 6",
                "vk connection cut",
                "telegram getUpdates 502",
                "telegram 429 retry_after",
                "telegram connection cut",
                "ok error 2",
                "ok connection cut",
            ]
        )

        await file_an_appeal(lambda t: vk_say(w, VK_RESIDENT, t), vk_inbox)

        async def tg_phone(_: str) -> None:
            await tg_say(w, TG_RESIDENT, contact_phone=PHONE)  # a shared contact

        await file_an_appeal(lambda t: tg_say(w, TG_RESIDENT, t), tg_inbox, tg_phone)
        await file_an_appeal(lambda t: ok_say(w, OK_RESIDENT, t), ok_inbox)

        # Failures for good while the cards (which carry the phone) and answers go out.
        w.vk.fail_method("messages.send", 901)
        w.tg.fail_method("sendMessage", 403)
        w.ok.fail_method("messages", 102)  # a bad token
        faults.update(["vk error 901", "telegram 403 blocked", "ok error 102"])
        await vk_say(w, VK_ADMIN, f"/reply 1 Перезвоните по номеру {PHONE}")
        await tg_say(w, TG_ADMIN, "/reply 2 Ответ готов")
        await tg_say(w, TG_ADMIN, "/reply 3 Ответ готов")
        await until(lambda: not w.vk._failures.get("messages.send"), "the VK failure served")
        await asyncio.sleep(0)
        await w.app.settle()

        async def settled() -> bool:
            return await outbox_count(w.app, "pending") == 0

        loop = asyncio.get_running_loop()
        deadline = loop.time() + WITHIN
        while not await settled():
            assert loop.time() < deadline, "the outbox was not emptied"
            await asyncio.sleep(0.05)
        assert await outbox_count(w.app, "failed") >= 3  # the final failures happened

        # A webhook with the wrong secret, and a malformed one.
        assert await post(f"{w.base}/ok/webhook/{OK_WEBHOOK_SECRET[:-1]}x", b"{}") == 404
        assert await post(w.ok_url, b"{not json") == 400
        faults.update(["ok webhook wrong secret", "ok webhook malformed"])

    capture = await run_world(tmp_path, False, scenario)
    print(f"\nsecrets, polling: faults {dict(faults)}; lines {dict(capture.levels())}")
    assert_clean(capture)


async def test_no_secret_in_any_log_line_with_webhooks(tmp_path: Path) -> None:
    refused: Counter[str] = Counter()

    async def scenario(w: World) -> None:
        await until(lambda: w.tg.webhook is not None, "the Telegram webhook to be set")
        await until(lambda: bool(w.ok.subscriptions), "the OK subscription")
        vk_url, tg_url = f"{w.base}/vk/callback", f"{w.base}/tg/hook"
        update = w.vk.message_new(VK_RESIDENT, f"Здравствуйте, мой телефон {PHONE}")

        # Near misses of every secret, and none at all.
        for wrong in (None, "", VK_CALLBACK_SECRET[:-1], VK_CALLBACK_SECRET + "x"):
            body = dict(update, **({"secret": wrong} if wrong is not None else {}))
            assert await post(vk_url, json.dumps(body).encode()) == 403
            refused["vk callback"] += 1
        tg_update = w.tg.message(TG_RESIDENT, f"Мой телефон {PHONE}")
        for wrong_tg in (None, "", TG_WEBHOOK_SECRET[:-1], TG_WEBHOOK_SECRET.upper()):
            status, _ = await w.tg.post_webhook(tg_url, tg_update, wrong_tg)
            assert status == 403
            refused["telegram webhook"] += 1
        for wrong_ok in (OK_WEBHOOK_SECRET[:-1], OK_WEBHOOK_SECRET + "x", ""):
            url = f"{w.base}/ok/webhook/{wrong_ok}"
            status, _ = await w.ok.deliver(w.ok.message_created(OK_RESIDENT, PHONE), url)
            assert status == 404  # the router knows only the path with the secret
            refused["ok webhook"] += 1
        confirmation = json.dumps({"type": "confirmation", "group_id": GROUP}).encode()
        assert await post(vk_url, confirmation) == 200

        # Then the right secrets: the same messages are handled.
        right = json.dumps(dict(update, secret=VK_CALLBACK_SECRET)).encode()
        assert await post(vk_url, right) == 200
        status, _ = await w.tg.post_webhook(tg_url, tg_update, TG_WEBHOOK_SECRET)
        assert status == 200
        await ok_say(w, OK_RESIDENT, f"Мой телефон {PHONE}")
        await until(lambda: bool(w.vk.messages_to(VK_RESIDENT)), "the VK reply")
        await until(lambda: bool(w.tg.messages_to(TG_RESIDENT)), "the Telegram reply")
        chat = w.ok.chat_of(OK_RESIDENT)
        await until(lambda: bool(w.ok.messages_to(chat)), "the OK reply")

        # Hostile bodies with the right secrets: a lone surrogate beside the phone (JSON
        # "\ud83d"), and JSON nested too deep, which makes aiohttp log a traceback today
        # (see test_normalizers_fuzz.test_deeply_nested_json_is_a_bad_request).
        text = f"Мой телефон {PHONE} \ud83d"
        vk_body = dict(w.vk.message_new(VK_RESIDENT, text), secret=VK_CALLBACK_SECRET)
        tg_body = w.tg.message(TG_RESIDENT, text)
        ok_body = w.ok.message_created(OK_RESIDENT, text)
        tg_secret = {"X-Telegram-Bot-Api-Secret-Token": TG_WEBHOOK_SECRET}
        seen = (len(w.vk.sent), len(w.tg.sent), len(w.ok.sent))
        assert await post(vk_url, json.dumps(vk_body).encode()) == 200
        assert await post(tg_url, json.dumps(tg_body).encode(), tg_secret) == 200
        assert await post(w.ok_url, json.dumps(ok_body).encode()) == 200
        await until(
            lambda: (
                (len(w.vk.sent), len(w.tg.sent), len(w.ok.sent)) > seen
                and len(w.vk.sent) > seen[0]
                and len(w.tg.sent) > seen[1]
                and len(w.ok.sent) > seen[2]
            ),
            "replies to the lone surrogates",
        )
        deep = b"[" * 100_000 + b"]" * 100_000
        for url, headers in ((vk_url, {}), (tg_url, tg_secret), (w.ok_url, {})):
            assert await post(url, deep, headers) in (400, 500)
            refused["deeply nested JSON"] += 1

    capture = await run_world(tmp_path, True, scenario)
    print(f"\nsecrets, webhooks: refused {dict(refused)}; lines {dict(capture.levels())}")
    assert refused == {
        "vk callback": 4,
        "telegram webhook": 4,
        "ok webhook": 3,
        "deeply nested JSON": 3,
    }
    assert_clean(capture)


def test_the_search_can_fail() -> None:
    """The assertions are not vacuous: a token at DEBUG and a phone at INFO are caught."""
    with capturing() as capture:
        for number in range(60):
            logger.debug("filler {}", number)
        logger.debug("calling with token {}", TG_TOKEN)
    with pytest.raises(AssertionError, match="telegram token"):
        assert_clean(capture)
    with capturing() as capture:
        for number in range(60):
            # Both ways: alone, this test has no interception of the standard logging
            # into loguru (the app's log set-up is what installs it).
            logging.getLogger("some.library").debug("filler %s", number)
            logger.debug("filler {}", number)
        logger.debug("a phone at DEBUG is allowed: {}", PHONE)
        logging.getLogger("some.library").info("phone 8 (912) 345-67-89")
    with pytest.raises(AssertionError, match="phone 8"):
        assert_clean(capture)


async def test_an_ok_webhook_of_unknown_shape_does_not_log_the_phone(tmp_path: Path) -> None:
    with capturing() as capture:
        async with FakeVK(GROUP) as vk, FakeTelegram(TG_TOKEN) as tg, FakeOK(OK_TOKEN) as ok:
            config = config_for(tmp_path, vk, tg, ok, webhooks=True)
            app = App(config, [OkChannel(config.ok)])
            await app.start()
            try:
                body = ok.message_created(OK_RESIDENT, f"Исправлю: мой телефон {PHONE}")
                body["webhookType"] = "MESSAGE_EDITED"  # a kind the bot does not know
                url = f"http://127.0.0.1:{app.web.port}/ok/webhook/{OK_WEBHOOK_SECRET}"
                status, _ = await ok.deliver(body, url)
                assert status == 200
                await until(
                    lambda: any("no known shape" in line.text for line in capture.lines),
                    "the OK channel to ignore it",
                )
                for number in range(60):  # enough lines for assert_clean's sanity check
                    logger.debug("filler {}", number)
            finally:
                await app.stop()
    assert_clean(capture)
