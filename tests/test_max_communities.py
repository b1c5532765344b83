"""MAX and the doors of the community (SPEC §13, §14, issue 18): a deep link naming a
settlement presets it (`bot_started` payload), comments under a channel's posts become
comment items answered under them (`comment_created`, sendComment), and two bots share the one
webhook path, told apart by their secrets. Against the fake MAX Bot API built from the
official schema (tests/fakes/max.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from handlers import texts
from tests.conftest import Clock
from tests.fakes.max import SEND_COMMENT, TOKEN, FakeMax
from tests.fakes.router import TokenRouter
from tests.test_fake_max import problems
from tests.test_max import ADMIN, MODERATOR, RESIDENT, MaxBot, max_config

SECOND_TOKEN = "second_max_bot_token-0123456789abcdef"
SECOND_BOT_ID = 700100300
CHANNEL = -70000000001
INVITE = "https://max.ru/appeals_test_bot"


@pytest.fixture
async def fake() -> AsyncIterator[FakeMax]:
    server = FakeMax(hold_seconds=0.05)
    await server.start()
    for user_id in (ADMIN, MODERATOR):
        server.add_user(user_id, "Ольга", "Сотрудник")
    yield server
    await server.stop()
    assert server.errors == []
    for call in server.calls_of(SEND_COMMENT):  # what the bot posted has the schema's shape
        assert problems(call["json"], "NewCommentBody") == [], call["json"]


@pytest.fixture
async def mx(tmp_path: Path, fake: FakeMax, clock: Clock) -> AsyncIterator[MaxBot]:
    config = max_config(tmp_path, fake, comments=True, invite_url=INVITE, settlement="sergino")
    bot = MaxBot(fake, config, clock)
    await bot.start()
    yield bot
    await bot.app.stop()


async def rows(bot: MaxBot, sql: str) -> list[Any]:
    await bot.app.settle()
    async with bot.app.db.read() as tx:
        conn = tx.appeals._conn  # the repositories' connection: a read of the test's own
        return [tuple(row) for row in await conn.fetchall(sql)]


# --- a deep link names the settlement --------------------------------------------------------


@pytest.fixture
async def plain(tmp_path: Path, fake: FakeMax, clock: Clock) -> AsyncIterator[MaxBot]:
    bot = MaxBot(fake, max_config(tmp_path, fake), clock)
    await bot.start()
    yield bot
    await bot.app.stop()


async def test_a_deep_link_presets_the_settlement(plain: MaxBot) -> None:
    resident = plain.person(RESIDENT)
    [greeting] = await resident.start("sergino")  # https://max.ru/<bot>?start=sergino
    assert "населённый пункт Сергино" in (greeting.text or "")
    await resident.press("Подать обращение")
    await resident.press("Согласен")
    replies = await resident.press("Дороги")
    assert texts.ASK_SETTLEMENT not in (replies[-1].text or "")
    await resident.say("Не горит фонарь у школы на Лесной")
    for label in ("Пропустить", "Пропустить", "Оставить как есть", "Пропустить"):
        await resident.press(label)
    assert texts.CHANGE_SETTLEMENT in resident.labels
    await resident.press("Отправить")
    assert await rows(plain, "SELECT settlement FROM appeals") == [("sergino",)]


async def test_a_deep_link_outlives_the_greeting_into_an_offer(plain: MaxBot) -> None:
    resident = plain.person(RESIDENT)
    await resident.start("SERGINO")  # a code in any case
    replies = await resident.say("Во дворе дома 3 по Лесной третий день нет света")
    assert texts.INTAKE_OFFER_SETTLEMENT in (replies[-1].text or "")
    await resident.press("Подать обращение")
    await resident.press("Согласен")
    replies = await resident.press("ЖКХ")
    assert texts.ASK_SETTLEMENT not in (replies[-1].text or "")


async def test_a_link_to_no_settlement_is_the_usual_start(plain: MaxBot) -> None:
    resident = plain.person(RESIDENT)
    [greeting] = await resident.start("promo-2026")
    assert "населённый пункт" not in (greeting.text or "")
    await resident.press("Подать обращение")
    await resident.press("Согласен")
    replies = await resident.press("Дороги")
    assert texts.ASK_SETTLEMENT in (replies[-1].text or "")


# --- comments under a channel's posts --------------------------------------------------------


async def comment(bot: MaxBot, text: str) -> str:
    before = bot.fake.delivered_updates
    update = bot.fake.comment(RESIDENT, text, channel_id=CHANNEL)
    await bot.fake.wait_for(lambda: bot.fake.delivered_updates > before, what="the comment")
    await bot.app.settle()
    return str(update["message"]["body"]["mid"])


async def test_a_comment_is_answered_under_it(mx: MaxBot) -> None:
    admin = mx.person(ADMIN)
    mid = await comment(mx, "Когда откроют каток у школы?")
    [(number, kind, settlement)] = await rows(mx, "SELECT id, kind, settlement FROM appeals")
    assert (kind, settlement) == ("comment", "sergino")
    card = admin.inbox[-1].text or ""
    assert card.startswith(f"Комментарий под постом №{number}")
    assert texts.CARD_COMMENT_PUBLIC in card

    await admin.say(f"/reply {number} Каток откроем в субботу.")
    [posted] = mx.fake.sent_comments
    assert posted["post_id"] == "mid.post-1"
    assert posted["link"] == {"type": "reply", "mid": mid}
    assert posted["text"].startswith("Каток откроем в субботу.")
    await mx.app.settle()  # the bot's own comment came back: no item
    assert await rows(mx, "SELECT id, status FROM appeals") == [(number, "answered")]

    second = await comment(mx, "А где записаться в секцию?")
    await admin.say(f"/invite {number + 1}")
    invitation = mx.fake.sent_comments[-1]
    assert invitation["link"]["mid"] == second and INVITE in invitation["text"]


async def test_an_edited_comment_follows_and_a_removed_one_closes(mx: MaxBot) -> None:
    mid = await comment(mx, "Не горит фонарь")
    before = mx.fake.delivered_updates
    mx.fake.comment_edited(mid, "Не горит фонарь у дома 7 по Лесной")
    mx.fake.comment_removed(mid)
    await mx.fake.wait_for(lambda: mx.fake.delivered_updates >= before + 2, what="two updates")
    assert await rows(mx, "SELECT text, status FROM appeals") == [
        ("Не горит фонарь у дома 7 по Лесной", "closed")
    ]
    assert await rows(mx, "SELECT deleted_at IS NOT NULL FROM comments") == [(1,)]


# --- two bots, one webhook path --------------------------------------------------------------


async def test_two_bots_share_the_webhook_path(tmp_path: Path, fake: FakeMax, clock: Clock) -> None:
    second = FakeMax(SECOND_TOKEN, bot_id=SECOND_BOT_ID, hold_seconds=0.05)
    router = TokenRouter()
    await second.start()
    await router.start()
    router.add(TOKEN, fake)
    router.add(SECOND_TOKEN, second)
    config = max_config(
        tmp_path,
        fake,
        api_url=router.url,
        mode="webhook",
        webhook_url="https://bot.example.ru/max/webhook",
        webhook_secret="district-max-hook",
        communities=[
            {
                "bot_id": SECOND_BOT_ID,
                "token": SECOND_TOKEN,
                "settlement": "sergino",
                "webhook_secret": "sergino-max-hook",
            }
        ],
    )
    bot = MaxBot(fake, config, clock)
    await bot.start()
    try:
        await second.wait_calls("subscribe")
        [subscription] = second.subscriptions
        assert subscription["secret"] == "sergino-max-hook"
        update = second.bot_started(RESIDENT, push=False)
        status, _ = await second.post_webhook(bot.webhook_url, update, "wrong-hook")
        assert status == 403
        status, _ = await second.post_webhook(bot.webhook_url, update, "sergino-max-hook")
        assert status == 200
        await second.wait_for(lambda: bool(second.messages_to(RESIDENT)), what="a greeting")
        assert "населённый пункт Сергино" in (second.messages_to(RESIDENT)[-1].text or "")
        assert fake.messages_to(RESIDENT) == []  # not through the district's bot
    finally:
        await bot.app.stop()
        await router.stop()
        await second.stop()
