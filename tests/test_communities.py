"""Every door of the community (SPEC §14, issue 18): several communities (bots) per messenger.

The acceptance of the issue, against the fake servers: two VK communities (the district's and
Сергино's) and two Telegram bots (the district's and Сергино's). A resident writing to
Сергино's community is not asked for the settlement, their appeal goes to Сергино's
administrator, who is reached through the bot they wrote to, and the answer comes back
through Сергино's community, not the district's. Beside it: the configuration of
communities, the one webhook path per messenger telling communities apart, and a deep link
naming a settlement.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from bot.app import App
from bot.channels.ok import OkChannel
from bot.config import ConfigError, load_config
from handlers import texts
from tests.conftest import Clock, make_config
from tests.deployments import (
    ADMIN,
    DISTRICT,
    DISTRICT_BOT,
    RESIDENT,
    SERGINO,
    SERGINO_BOT,
    SERGINO_BOT_ID,
    SERGINO_TOKEN,
    Deployment,
    TgStaff,
    VkResident,
    deployment_config,
    two_by_two,
)
from tests.fakes.ok import TOKEN as DISTRICT_OK
from tests.fakes.ok import FakeOK
from tests.fakes.router import TokenRouter
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVK


@pytest.fixture
async def deployment(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch, storage_url: str
) -> AsyncIterator[Deployment]:
    """On each backend (SQLite, PostgreSQL where APPEALS_TEST_POSTGRES_URL names one)."""
    monkeypatch.chdir(tmp_path)
    async with two_by_two(tmp_path, clock, storage_url=storage_url) as found:
        yield found


async def file_in_sergino(resident: VkResident) -> int:
    """The whole dialogue in Сергино's community: no settlement question on the way."""
    await resident.say("Начать", payload='{"command":"start"}')
    await resident.press("Подать обращение")
    await resident.press("Согласен")
    replies = await resident.press("Дороги")
    assert texts.ASK_SETTLEMENT not in replies[-1].text  # straight on to the description
    await resident.say("Яма на дороге у школы, глубокая")
    for label in ("Пропустить", "Пропустить", "Оставить как есть", "Пропустить"):
        await resident.press(label)
    confirmation = resident.inbox[-1]
    assert "Населённый пункт: Сергино" in confirmation.text
    assert texts.CHANGE_SETTLEMENT in resident.labels()
    replies = await resident.press("Отправить")
    return int(replies[0].text.split("№")[1].split()[0])


# --- the acceptance --------------------------------------------------------------------------


async def test_a_settlement_community_files_answers_and_is_answered_through_itself(
    deployment: Deployment,
) -> None:
    """Acceptance: Сергино's community, Сергино's bot, Сергино's administrator."""
    vk = deployment.vk
    admin = TgStaff(deployment, ADMIN, deployment.sergino_bot)
    await admin.say("/start")  # the official wrote to Сергино's bot, not the district's
    resident = VkResident(deployment, RESIDENT, SERGINO)
    greeting = await resident.say("Здравствуйте")
    assert "населённый пункт Сергино" in greeting[-1].text  # the greeting names it

    number = await file_in_sergino(resident)

    # Every word to the resident came from Сергино's community, none from the district's.
    assert {m.group_id for m in resident.inbox} == {SERGINO}
    [(settlement, community)] = await deployment.rows(
        f"SELECT settlement, community FROM appeals WHERE id = {number}"
    )
    assert (settlement, community) == ("sergino", str(SERGINO))
    # The card reached the administrator through the bot they wrote to.
    card = admin.inbox[-1]
    assert card.text.startswith(f"Новое обращение №{number}")
    assert deployment.district_bot.messages_to(ADMIN) == []

    await admin.say(f"/reply {number} Яму засыплем до пятницы.")
    answer = resident.inbox[-1]
    assert answer.text.startswith(f"Ответ на обращение №{number}")
    assert answer.group_id == SERGINO  # back through Сергино's community
    assert vk.messages_to(RESIDENT, DISTRICT) == []

    # The same person writing to the district's community is answered there, and asked
    # for the settlement as ever; their appeal's news still goes through Сергино's.
    district = VkResident(deployment, RESIDENT, DISTRICT)
    await district.say("Подать обращение")
    await district.press("Дороги")
    assert district.inbox[-1].group_id == DISTRICT
    assert texts.ASK_SETTLEMENT in district.inbox[-1].text
    await district.say("Отмена")
    await TgStaff(deployment, ADMIN, deployment.sergino_bot).say(f"/close {number}")
    assert resident.inbox[-1].text.startswith(f"Обращение №{number} закрыто")
    assert resident.inbox[-1].group_id == SERGINO

    # The outbox names the community of every message; VK's idempotency keys are per
    # community too (a random_id is the community's own).
    by_community = await deployment.rows(
        "SELECT platform, community, count(*) FROM outbox GROUP BY platform, community"
    )
    assert ("vk", str(SERGINO)) in {(p, c) for p, c, _ in by_community}
    assert ("tg", SERGINO_BOT_ID) in {(p, c) for p, c, _ in by_community}
    assert ("vk", "") in {(p, c) for p, c, _ in by_community}  # the district's chat


async def test_the_confirmation_can_still_change_the_settlement(deployment: Deployment) -> None:
    resident = VkResident(deployment, RESIDENT, SERGINO)
    await resident.say("Подать обращение")
    await resident.press("Согласен")
    await resident.press("Дороги")
    await resident.say("Яма на дороге у школы, глубокая")
    for label in ("Пропустить", "Пропустить", "Оставить как есть", "Пропустить"):
        await resident.press(label)
    replies = await resident.press(texts.CHANGE_SETTLEMENT)
    assert texts.ASK_SETTLEMENT in replies[-1].text
    replies = await resident.press("Андра")
    assert "Населённый пункт: Андра" in replies[-1].text  # back at the summary
    await resident.press("Отправить")
    [(settlement,)] = await deployment.rows("SELECT settlement FROM appeals")
    assert settlement == "andra"


async def test_back_from_the_description_skips_the_settlement(deployment: Deployment) -> None:
    resident = VkResident(deployment, RESIDENT, SERGINO)
    await resident.say("Подать обращение")
    await resident.press("Согласен")
    await resident.press("Дороги")
    replies = await resident.press("Назад")
    assert texts.ASK_CATEGORY in replies[-1].text


async def test_a_problem_written_first_is_offered_with_only_the_topic_left(
    deployment: Deployment,
) -> None:
    resident = VkResident(deployment, RESIDENT, SERGINO)
    replies = await resident.say("Здравствуйте! У нас третий день нет воды в доме")
    assert "населённый пункт Сергино" in replies[-1].text
    assert texts.INTAKE_OFFER_SETTLEMENT in replies[-1].text
    await resident.press("Подать обращение")
    await resident.press("Согласен")
    replies = await resident.press("ЖКХ")
    assert texts.DESCRIPTION_KEPT.split("\n")[0] in replies[-1].text


# --- one path per messenger ------------------------------------------------------------------


@pytest.fixture
async def callback_deployment(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Deployment]:
    monkeypatch.chdir(tmp_path)
    vk = FakeVK(DISTRICT, hold_seconds=0.05)
    router = TokenRouter()
    district_bot = FakeTelegram(DISTRICT_BOT, hold_seconds=0.05)
    sergino_bot = FakeTelegram(SERGINO_BOT, hold_seconds=0.05)
    for fake in (vk, district_bot, sergino_bot, router):
        await fake.start()
    vk.add_community(SERGINO, SERGINO_TOKEN)
    router.add(DISTRICT_BOT, district_bot)
    router.add(SERGINO_BOT, sergino_bot)
    config = deployment_config(
        tmp_path,
        vk,
        router,
        mode="callback",
        callback_secret="district-secret",
        confirmation_code="district-code",
        communities=[
            {
                "group_id": SERGINO,
                "token": SERGINO_TOKEN,
                "settlement": "sergino",
                "callback_secret": "sergino-secret",
                "confirmation_code": "sergino-code",
            }
        ],
    )
    config = config.model_copy(
        update={
            "telegram": config.telegram.model_copy(
                update={
                    "mode": "webhook",
                    "webhook_url": "https://bot.example.ru/tg/webhook",
                    "webhook_secret": SecretStr("district-hook"),
                    "communities": [
                        config.telegram.communities[0].model_copy(
                            update={"webhook_secret": SecretStr("sergino-hook")}
                        )
                    ],
                }
            )
        }
    )
    found = Deployment(vk, district_bot, sergino_bot, router, config, clock)
    await found.start()
    yield found
    await found.stop()
    for fake in (router, sergino_bot, district_bot, vk):
        await fake.stop()


async def test_one_vk_callback_path_serves_both_communities(
    callback_deployment: Deployment,
) -> None:
    deployment = callback_deployment
    assert deployment.app is not None
    url = f"http://127.0.0.1:{deployment.app.web.port}/vk/callback"
    vk = deployment.vk
    update = vk.message_new(RESIDENT, "Здравствуйте", group_id=SERGINO)
    vk._streams[SERGINO].clear()  # delivered by the Callback API below, not by a long poll
    async with aiohttp.ClientSession() as http:
        for group, code in ((DISTRICT, "district-code"), (SERGINO, "sergino-code")):
            async with http.post(url, json={"type": "confirmation", "group_id": group}) as r:
                assert (r.status, await r.text()) == (200, code)
        # Сергино's update with the district's secret: refused; with its own: taken.
        async with http.post(url, json=dict(update, secret="district-secret")) as r:
            assert r.status == 403
        async with http.post(url, json=dict(update, secret="sergino-secret")) as r:
            assert (r.status, await r.text()) == (200, "ok")
        # A community the configuration does not have: «ok», and nothing is kept.
        stranger = dict(update, group_id=999, secret="sergino-secret", event_id="x" * 40)
        async with http.post(url, json=stranger) as r:
            assert (r.status, await r.text()) == (200, "ok")
    await deployment.settle()
    [greeting] = vk.messages_to(RESIDENT)
    assert greeting.group_id == SERGINO and "Сергино" in greeting.text
    assert await deployment.rows("SELECT community FROM inbox") == [(str(SERGINO),)]


async def test_one_telegram_webhook_path_serves_both_bots(
    callback_deployment: Deployment,
) -> None:
    deployment = callback_deployment
    assert deployment.app is not None
    url = f"http://127.0.0.1:{deployment.app.web.port}/tg/webhook"
    for bot, secret in ((deployment.district_bot, "district-hook"),):
        await bot.wait_for(lambda bot=bot: bot.webhook is not None, what="setWebhook")
        assert bot.webhook is not None and bot.webhook["secret_token"] == secret
    sergino = deployment.sergino_bot
    await sergino.wait_for(lambda: sergino.webhook is not None, what="setWebhook")
    assert sergino.webhook is not None and sergino.webhook["secret_token"] == "sergino-hook"

    update = sergino.message(RESIDENT, "/start")
    for wrong in ("wrong-hook", None):
        status, _ = await sergino.post_webhook(url, update, wrong)
        assert status == 403
    status, _ = await sergino.post_webhook(url, update, "sergino-hook")
    assert status == 200
    await sergino.wait_for(lambda: bool(sergino.messages_to(RESIDENT)), what="a greeting")
    assert "населённый пункт Сергино" in sergino.messages_to(RESIDENT)[-1].text
    assert deployment.district_bot.messages_to(RESIDENT) == []
    # The two bots' update ids are their own: the same id from the district's bot is news.
    same_id = dict(update)
    status, _ = await deployment.district_bot.post_webhook(url, same_id, "district-hook")
    assert status == 200
    await deployment.district_bot.wait_for(
        lambda: bool(deployment.district_bot.messages_to(RESIDENT)), what="a greeting"
    )
    assert "Сергино" not in deployment.district_bot.messages_to(RESIDENT)[-1].text


# --- configuration ---------------------------------------------------------------------------

BASE = """
[bot]
name = "Администрация"
privacy_policy_url = "https://example.ru/privacy"
privacy_policy_version = "1"

[[categories]]
code = "roads"
title = "Дороги"

[[settlements]]
code = "sergino"
title = "Сергино"
organisation = "Администрация Сергино"
"""


def problems(tmp_path: Path, text: str) -> tuple[str, ...]:
    path = tmp_path / "config.toml"
    path.write_text(BASE + text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def test_a_community_without_its_token_is_named(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
[vk]
enabled = true
token = "main"
group_id = 1

[[vk.communities]]
group_id = 2
token = "second"

[[vk.communities]]
group_id = 3
""",
    )
    assert found == ("vk.communities[1].token: required for every [[vk.communities]]",)


def test_two_communities_with_one_id_are_refused(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
[vk]
enabled = true
token = "main"
group_id = 1

[[vk.communities]]
group_id = 2
token = "second"

[[vk.communities]]
group_id = 2
token = "third"

[[vk.communities]]
group_id = 1
token = "fourth"

[telegram]
enabled = true
token = "111:main"

[[telegram.communities]]
token = "111:another-secret"
""",
    )
    assert "vk.communities[1].group_id: duplicate community id 2 (already used by " in found[0]
    assert found[1] == (
        "vk.communities[2].group_id: duplicate community id 1 (already used by the main section)"
    )
    assert found[2].startswith("telegram.communities[0].token: duplicate bot id 111")
    assert all("main" not in p.split(":", 1)[1] or "section" in p for p in found)  # no token


def test_a_community_names_a_settlement_that_exists(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
[max]
enabled = true
token = "t"
settlement = "nowhere"

[[max.communities]]
bot_id = 5
token = "u"
settlement = "sergino"
comments = true
""",
    )
    assert found == (
        "max.communities[0].invite_url: required when comments = true: /invite links to it",
    )
    found = problems(
        tmp_path,
        """
[max]
enabled = true
token = "t"
settlement = "nowhere"
""",
    )
    assert found == ("max.settlement: unknown settlement code 'nowhere' (codes: sergino)",)


def test_webhook_secrets_tell_the_bots_apart_so_they_differ(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
[telegram]
enabled = true
token = "111:main"
mode = "webhook"
webhook_url = "https://bot.example.ru/tg/webhook"
webhook_secret = "same"

[[telegram.communities]]
token = "222:other"
webhook_secret = "same"

[[telegram.communities]]
token = "333:third"
""",
    )
    assert found == (
        "telegram.communities[0].webhook_secret: the same secret as another community: "
        "each must have its own",
        'telegram.communities[1].webhook_secret: required when telegram.mode = "webhook"',
    )


def test_a_community_token_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        BASE
        + """
[ok]
enabled = true
token = "main"
webhook_url = "https://bot.example.ru/ok/webhook"
webhook_secret = "main-secret-0123456789"

[[ok.communities]]
group_id = 70000001
settlement = "sergino"
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("APPEALS_OK__COMMUNITIES__0__TOKEN", "from-the-environment")
    monkeypatch.setenv("APPEALS_OK__COMMUNITIES__0__WEBHOOK_SECRET", "second-secret-012345")
    config = load_config(path)
    [community] = config.ok.communities
    assert community.token.get_secret_value() == "from-the-environment"
    assert community.settlement == "sergino"  # the file's keys of that entry stay
    assert [(c.platform, c.key, c.settlement) for c in config.communities()] == [
        ("ok", "", ""),
        ("ok", "70000001", "sergino"),
    ]


def test_without_communities_everything_is_the_main_section(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(BASE + '\n[vk]\nenabled = true\ntoken = "t"\ngroup_id = 5\n', "utf-8")
    config = load_config(path)
    assert [(c.platform, c.key, c.settlement) for c in config.communities()] == [("vk", "", "")]


async def test_one_ok_webhook_path_serves_both_groups(tmp_path: Path, clock: Clock) -> None:
    """OK signs nothing: each group's webhook address ends with its own secret, on the one
    path; a reply goes out with the token of the group the resident wrote to."""
    second_token = "tkn2SERGINO:second-ok-group-token"
    district, sergino = FakeOK(), FakeOK(second_token, group_id="group:70000001234567")
    router = TokenRouter()
    for fake in (district, sergino, router):
        await fake.start()
    router.add(DISTRICT_OK, district)
    router.add(second_token, sergino)
    config = make_config(
        tmp_path / "appeals.db",
        ok={
            "enabled": True,
            "token": DISTRICT_OK,
            "api_url": router.url,
            "webhook_url": "https://bot.example.ru/ok/webhook",
            "webhook_secret": "district-ok-secret-0123",
            "send_rate": 0,
            "communities": [
                {
                    "group_id": 70000001234567,
                    "token": second_token,
                    "webhook_secret": "sergino-ok-secret-0123",
                    "settlement": "sergino",
                }
            ],
        },
        web={"port": 0},
    )
    app = App(config, [OkChannel(config.ok)], clock=clock)
    await app.start()
    try:
        await sergino.wait_for(lambda: bool(sergino.subscriptions), what="a subscription")
        assert sergino.subscriptions[0]["url"].endswith("/sergino-ok-secret-0123")
        base = f"http://127.0.0.1:{app.web.port}/ok/webhook"
        body = sergino.message_created("user:575662066926", "Здравствуйте")
        status, _ = await sergino.deliver(body, f"{base}/not-a-group-secret-00")
        assert status == 404
        status, _ = await sergino.deliver(body, f"{base}/sergino-ok-secret-0123")
        assert status == 200
        chat = sergino.chat_of("user:575662066926")
        await sergino.wait_for(lambda: bool(sergino.messages_to(chat)), what="a greeting")
        assert "населённый пункт Сергино" in sergino.messages_to(chat)[-1].text
        assert district.messages_to(chat) == []
    finally:
        await app.stop()
        for fake in (router, sergino, district):
            await fake.stop()


async def test_each_community_resumes_from_its_own_position(deployment: Deployment) -> None:
    """A long poll per community, each saving its own ts: what a community received while
    the bot was down is handled at the next start, the other's too."""
    assert deployment.app is not None
    await VkResident(deployment, RESIDENT, SERGINO).say("Здравствуйте")
    await VkResident(deployment, RESIDENT + 1, DISTRICT).say("Здравствуйте")
    keys = {key for (key,) in await deployment.rows("SELECT key FROM channel_state")}
    assert {"vk.longpoll.ts", f"vk.longpoll.ts.{SERGINO}"} <= keys
    await deployment.app.stop()
    vk = deployment.vk
    vk.message_new(RESIDENT, "Подать обращение", group_id=SERGINO)  # while the bot is down
    vk.message_new(RESIDENT + 1, "Подать обращение", group_id=DISTRICT)
    await deployment.start()
    await vk.wait_for(
        lambda: len(vk.messages_to(RESIDENT)) == 2 and len(vk.messages_to(RESIDENT + 1)) == 2,
        what="both answered",
    )
    assert "Согласие" in vk.messages_to(RESIDENT, SERGINO)[-1].text
    assert "Согласие" in vk.messages_to(RESIDENT + 1, DISTRICT)[-1].text
