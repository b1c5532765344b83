"""Communities configured by the keys SPEC §10 names: `[[max.communities]]` and
`[[ok.communities]]` with token, settlement and webhook_secret only. Their ids (the key of each
community everywhere) are learned from the platforms with their own tokens at start
(bot/community_ids.py): MAX `GET /me` -> `user_id`, OK `GET /graph/me/info` -> `group_id`.
Real HTTP against the fake servers; the failures through the real command line."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App
from bot.channels.max import MaxChannel
from bot.channels.ok import OkChannel
from bot.cli import example_config_path, main
from bot.community_ids import ids_to_learn, learn_community_ids
from bot.config import Config, ConfigError
from tests.conftest import Clock, make_config
from tests.fakes.max import GET_ME, FakeMax
from tests.fakes.max import TOKEN as DISTRICT_MAX
from tests.fakes.ok import TOKEN as DISTRICT_OK
from tests.fakes.ok import FakeOK
from tests.fakes.router import TokenRouter
from tests.test_max import RESIDENT, MaxBot, max_config
from tests.test_max_communities import rows

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parent.parent
SERGINO_MAX = "sergino_max_bot_token-0123456789abcdef"
SERGINO_BOT_ID = 700100300
SERGINO_OK = "tkn2SERGINO:second-ok-group-token"
SERGINO_GROUP = 70000001234567
REFUSED = "refused_token-never-in-any-message-0123"
START_WITHIN = 60.0  # seconds a process may take to come up and go (imports, a slow machine)


@pytest.fixture
async def max_fakes() -> AsyncIterator[tuple[FakeMax, FakeMax, TokenRouter]]:
    """The district's bot and Сергино's, behind one api_url."""
    district = FakeMax(hold_seconds=0.05)
    sergino = FakeMax(SERGINO_MAX, bot_id=SERGINO_BOT_ID, hold_seconds=0.05)
    router = TokenRouter()
    for fake in (district, sergino, router):
        await fake.start()
    router.add(DISTRICT_MAX, district)
    router.add(SERGINO_MAX, sergino)
    yield district, sergino, router
    for fake in (router, sergino, district):
        await fake.stop()
    assert district.errors == [] and sergino.errors == []


def max_with(tmp_path: Path, district: FakeMax, router: TokenRouter, *entries: dict) -> Config:
    return max_config(tmp_path, district, api_url=router.url, communities=list(entries))


# --- MAX: learned, then used everywhere ------------------------------------------------------


async def test_a_max_bot_without_bot_id_learns_it_and_answers_through_itself(
    tmp_path: Path, clock: Clock, max_fakes: tuple[FakeMax, FakeMax, TokenRouter]
) -> None:
    district, sergino, router = max_fakes
    config = max_with(tmp_path, district, router, {"token": SERGINO_MAX, "settlement": "sergino"})
    assert [u.entry for u in ids_to_learn(config)] == ["max.communities[0]"]

    config = await learn_community_ids(config, "config.toml")
    [entry] = config.max.communities
    assert entry.bot_id == SERGINO_BOT_ID
    assert len(sergino.calls_of(GET_ME)) == 1  # asked with Сергино's own token
    assert district.calls_of(GET_ME) == []
    assert ("max", str(SERGINO_BOT_ID), "sergino") in [
        (c.platform, c.key, c.settlement) for c in config.communities()
    ]

    bot = MaxBot(district, config, clock)
    await bot.start()
    try:
        await sergino.wait_polled()
        sergino.bot_started(RESIDENT)
        await sergino.wait_for(lambda: bool(sergino.messages_to(RESIDENT)), what="a greeting")
        assert "населённый пункт Сергино" in (sergino.messages_to(RESIDENT)[-1].text or "")
        assert district.messages_to(RESIDENT) == []  # not through the district's bot
        assert await rows(bot, "SELECT DISTINCT community FROM outbox") == [(str(SERGINO_BOT_ID),)]
        keys = {key for (key,) in await rows(bot, "SELECT key FROM channel_state")}
        assert f"max.polling.marker.{SERGINO_BOT_ID}" in keys
    finally:
        await bot.app.stop()


async def test_an_id_written_in_the_file_is_used_without_asking(
    tmp_path: Path, max_fakes: tuple[FakeMax, FakeMax, TokenRouter]
) -> None:
    district, sergino, router = max_fakes
    config = max_with(tmp_path, district, router, {"token": SERGINO_MAX, "bot_id": 5})
    assert ids_to_learn(config) == []
    assert await learn_community_ids(config, "config.toml") is config
    assert sergino.calls_of(GET_ME) == [] and district.calls_of(GET_ME) == []


async def test_two_bots_of_one_id_are_refused(
    tmp_path: Path, max_fakes: tuple[FakeMax, FakeMax, TokenRouter]
) -> None:
    """Two tokens answering for one bot are one community: refused as two equal bot_id
    keys in the file are, learned or written."""
    district, _, router = max_fakes
    twin = FakeMax("twin_max_bot_token-0123456789abcdef", bot_id=SERGINO_BOT_ID)
    await twin.start()
    router.add(twin.token, twin)
    try:
        config = max_with(
            tmp_path,
            district,
            router,
            {"token": SERGINO_MAX},
            {"token": twin.token},
            {"token": "third-max-bot-token", "bot_id": SERGINO_BOT_ID},
        )
        with pytest.raises(ConfigError) as caught:
            await learn_community_ids(config, "config.toml")
    finally:
        await twin.stop()
    assert caught.value.problems == (
        f"max.communities[1].bot_id: duplicate bot id {SERGINO_BOT_ID} (already used by "
        "communities[0]); the id was learned from its token",
        f"max.communities[2].bot_id: duplicate bot id {SERGINO_BOT_ID} (already used by "
        "communities[0])",
    )


async def test_a_channel_is_not_built_on_an_unknown_id(tmp_path: Path) -> None:
    """The composition root learns first; a channel never keys a community by 0."""
    fake = FakeMax()  # not started: nothing is asked of it
    fake.url = "http://127.0.0.1:9"
    config = max_config(tmp_path, fake, communities=[{"token": SERGINO_MAX}])
    assert [c.key for c in config.communities()] == [""]  # unknown: not a community yet
    with pytest.raises(ValueError, match=r"max.communities\[0\]: the bot's id is not known"):
        MaxChannel(config.max)


# --- OK ---------------------------------------------------------------------------------------


def ok_config(tmp_path: Path, api_url: str, *entries: dict) -> Config:
    return make_config(
        tmp_path / "appeals.db",
        ok={
            "enabled": True,
            "token": DISTRICT_OK,
            "api_url": api_url,
            "webhook_url": "https://bot.example.ru/ok/webhook",
            "webhook_secret": "district-ok-secret-0123",
            "send_rate": 0,
            "communities": list(entries),
        },
        web={"port": 0},
    )


async def test_an_ok_group_without_group_id_learns_it_and_answers_through_itself(
    tmp_path: Path, clock: Clock
) -> None:
    district, sergino = FakeOK(), FakeOK(SERGINO_OK, group_id=f"group:{SERGINO_GROUP}")
    router = TokenRouter()
    for fake in (district, sergino, router):
        await fake.start()
    router.add(DISTRICT_OK, district)
    router.add(SERGINO_OK, sergino)
    secret = "sergino-ok-secret-0123"
    config = ok_config(
        tmp_path,
        router.url,
        {"token": SERGINO_OK, "webhook_secret": secret, "settlement": "sergino"},
    )
    app: App | None = None
    try:
        config = await learn_community_ids(config, "config.toml")
        assert config.ok.communities[0].group_id == SERGINO_GROUP
        assert len(sergino.calls_of("/graph/me/info")) == 1
        assert district.calls_of("/graph/me/info") == []

        app = App(config, [OkChannel(config.ok)], clock=clock)
        await app.start()
        await sergino.wait_for(lambda: bool(sergino.subscriptions), what="a subscription")
        body = sergino.message_created("user:575662066926", "Здравствуйте")
        url = f"http://127.0.0.1:{app.web.port}/ok/webhook/{secret}"
        status, _ = await sergino.deliver(body, url)
        assert status == 200
        chat = sergino.chat_of("user:575662066926")
        await sergino.wait_for(lambda: bool(sergino.messages_to(chat)), what="a greeting")
        assert "населённый пункт Сергино" in sergino.messages_to(chat)[-1].text
        assert district.messages_to(chat) == []
        await app.settle()
        async with app.db.read() as tx:
            conn = tx.appeals._conn
            found = [tuple(r) for r in await conn.fetchall("SELECT DISTINCT community FROM outbox")]
        assert found == [(str(SERGINO_GROUP),)]
    finally:
        if app is not None:
            await app.stop()
        for fake in (router, sergino, district):
            await fake.stop()
    assert district.errors == [] and sergino.errors == []


async def test_two_ok_groups_of_one_id_are_refused(tmp_path: Path) -> None:
    first = FakeOK(SERGINO_OK, group_id=f"group:{SERGINO_GROUP}")
    second = FakeOK("tkn3TWIN:twin-ok-group-token", group_id=f"group:{SERGINO_GROUP}")
    router = TokenRouter()
    for fake in (first, second, router):
        await fake.start()
    router.add(SERGINO_OK, first)
    router.add(second.token, second)
    config = ok_config(
        tmp_path,
        router.url,
        {"token": SERGINO_OK, "webhook_secret": "sergino-ok-secret-0123"},
        {"token": second.token, "webhook_secret": "twin-ok-secret-012345"},
    )
    try:
        with pytest.raises(ConfigError) as caught:
            await learn_community_ids(config, "config.toml")
    finally:
        for fake in (router, second, first):
            await fake.stop()
    assert caught.value.problems == (
        f"ok.communities[1].group_id: duplicate group id {SERGINO_GROUP} (already used by "
        "communities[0]); the id was learned from its token",
    )


# --- the command line --------------------------------------------------------------------------


def write_config(tmp_path: Path, section: str, keys: dict[str, str], tables: str) -> Path:
    """The example with `section` switched on, its `keys` set (TOML values) and `tables`
    ([[section.communities]], TOML text) added."""
    text = example_config_path().read_text("utf-8")
    text = text.replace('url = "sqlite:///appeals.db"', f'url = "sqlite:///{tmp_path}/a.db"', 1)
    head, sep, rest = text.partition(f"\n[{section}]\n")
    body, nxt, tail = rest.partition("\n[")
    for key, value in {"enabled": "true", **keys}.items():
        body, count = re.subn(rf"^{key} = .*$", f"{key} = {value}", body, count=1, flags=re.M)
        assert count == 1, key
    path = tmp_path / "config.toml"
    path.write_text(head + sep + body + nxt + tail + "\n" + tables, "utf-8")
    return path


def max_file(tmp_path: Path, api_url: str, token: str) -> Path:
    keys = {"token": f'"{DISTRICT_MAX}"', "api_url": f'"{api_url}"'}
    tables = f'''[[max.communities]]
token = "{token}"
settlement = "sergino"
webhook_secret = "sergino-max-hook"
'''
    return write_config(tmp_path, "max", keys, tables)


def ok_file(tmp_path: Path, api_url: str, token: str) -> Path:
    keys = {
        "token": f'"{DISTRICT_OK}"',
        "api_url": f'"{api_url}"',
        "webhook_url": '"https://bot.example.ru/ok/webhook"',
        "webhook_secret": '"district-ok-secret-0123"',
    }
    tables = f'''[[ok.communities]]
token = "{token}"
webhook_secret = "sergino-ok-secret-0123"
settlement = "sergino"
'''
    return write_config(tmp_path, "ok", keys, tables)


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("APPEALS_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


async def run_bot(config: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--config",
        str(config),
        cwd=ROOT,
        env=clean_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finished(process: asyncio.subprocess.Process) -> tuple[int, str]:
    try:
        _, err = await asyncio.wait_for(process.communicate(), START_WITHIN)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError("the bot did not stop by itself") from None
    assert process.returncode is not None
    return process.returncode, err.decode("utf-8", "replace")


@pytest.mark.parametrize("platform", ["max", "ok"])
async def test_a_refused_token_stops_the_start_with_one_line(tmp_path: Path, platform: str) -> None:
    fake: FakeMax | FakeOK = FakeMax() if platform == "max" else FakeOK()
    await fake.start()  # it knows the district's token only: REFUSED is refused
    try:
        file = max_file if platform == "max" else ok_file
        config = file(tmp_path, fake.url, REFUSED)
        code, err = await finished(await run_bot(config))
    finally:
        await fake.stop()
    assert code == 1, err
    assert "Traceback" not in err and REFUSED not in err
    [line] = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(err.splitlines()) == 1, err  # nothing but that line
    if platform == "max":
        assert line == (
            f"error: {config}: max.communities[0]: could not learn the bot's id "
            "(GET /me: 401 Unauthorized); check its token, or set bot_id = <the bot's id> "
            "in the file"
        )
    else:
        assert line.startswith(
            f"error: {config}: ok.communities[0]: could not learn the group's id "
            "(GET /graph/me/info: OK error 102"
        )
        assert line.endswith(
            "; check its token, or set group_id = <the number of its "
            "address ok.ru/group/…> in the file"
        )


async def test_run_learns_the_id_and_serves_the_bot(
    tmp_path: Path, max_fakes: tuple[FakeMax, FakeMax, TokenRouter]
) -> None:
    """`appeals-bot run` itself: the id learned before the channels start (logged), and a
    message to that bot answered through it."""
    _, sergino, router = max_fakes
    config = max_file(tmp_path, router.url, SERGINO_MAX)
    process = await run_bot(config)
    try:
        await sergino.wait_polled(within=START_WITHIN)
        sergino.bot_started(RESIDENT)
        await sergino.wait_for(
            lambda: bool(sergino.messages_to(RESIDENT)), within=30, what="a greeting"
        )
        assert "населённый пункт Сергино" in (sergino.messages_to(RESIDENT)[-1].text or "")
        process.send_signal(signal.SIGTERM)
        code, err = await finished(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 0, err
    assert f"learned the id of max.communities[0] from its token: max {SERGINO_BOT_ID}" in err
    assert SERGINO_MAX not in err


@pytest.mark.parametrize(("platform", "key"), [("max", "bot_id"), ("ok", "group_id")])
def test_check_config_stays_offline_and_says_the_id_is_learned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: str, key: str
) -> None:
    """The keys SPEC §10 names (token, settlement, webhook_secret) are the whole entry: the
    file is valid, and no platform is asked (nothing listens on port 9)."""
    file = max_file if platform == "max" else ok_file
    config = file(tmp_path, "http://127.0.0.1:9", SERGINO_MAX)
    assert main(["check-config", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith(
        f"; {key} of {platform}.communities[0] learned from its token at start)"
    )
