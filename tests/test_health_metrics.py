"""/healthz and /metrics (SPEC §17, issue 20), over real HTTP on the app's own web server,
with the VK and Telegram channels talking to their fake servers on 127.0.0.1.

- /healthz turns 503 naming VK when the fake VK server stops answering long polls (first
  with errors, then by holding every poll unanswered) and back to 200 when it answers again;
  503 naming the database while another process holds its write lock; a webhook channel is
  judged by its set-up, not by traffic; a long poll another instance holds (two apps on one
  PostgreSQL) is 200 "standby", not failing, and polls once the holder goes.
- /metrics is parsed with prometheus-client's own parser, and its figures move as an appeal
  is filed, answered, overdue, and as sends fail.

The limit for a silent long poll is 1 s here ([web] health_poll_seconds), so that each
outage is seen within a second or two; every wait is a bounded poll for a condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import App
from bot.channels.base import Liveness
from bot.channels.memory import MemoryChannel
from bot.channels.telegram import TelegramChannel
from bot.channels.vk import VkChannel
from bot.config import Config, StorageSection
from bot.metrics import DatabaseState, Metrics, State
from storage.postgres import LEADER_RETRY_SECONDS
from tests.conftest import Clock, make_config
from tests.fakes.telegram import TOKEN as TG_TOKEN
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import LONG_POLL, FakeVK
from tests.test_vk import ADMIN, GROUP, RESIDENT, VkBot, file_on_vk, vk_config

POLL_LIMIT = 1.0
WITHIN = 15.0

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def until(predicate: Callable[[], Awaitable[bool]], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WITHIN
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"waited {WITHIN}s in vain for {what}")
        await asyncio.sleep(0.05)


def serving(config: Config, **web: Any) -> Config:
    """The config with the web server on for /healthz and /metrics, a short poll limit."""
    values = {"serve": True, "port": 0, "health_poll_seconds": POLL_LIMIT, **web}
    return config.model_copy(update={"web": config.web.model_copy(update=values)})


async def get(app: App, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.get(f"http://127.0.0.1:{app.web.port}{path}") as response,
    ):
        return response.status, await response.text()


async def healthz(app: App) -> tuple[int, dict[str, Any]]:
    status, text = await get(app, "/healthz")
    body: dict[str, Any] = json.loads(text)
    return status, body


async def health_is(app: App, status: int, naming: str | None = None) -> dict[str, Any]:
    """Wait until /healthz answers `status` (and, if given, names `naming` as failing)."""
    seen: list[Any] = []

    async def check() -> bool:
        code, body = await healthz(app)
        seen[:] = [code, body]
        named = naming is None or any(f.startswith(naming) for f in body.get("failing", []))
        return code == status and named

    try:
        await until(check, f"/healthz {status} {naming or ''}")
    except AssertionError:
        raise AssertionError(f"/healthz stayed {seen}") from None
    return dict(seen[1])


async def scrape(app: App) -> Samples:
    status, text = await get(app, "/metrics")
    assert status == 200, text
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
async def fake() -> AsyncIterator[FakeVK]:
    server = FakeVK(GROUP, hold_seconds=0.05)
    await server.start()
    yield server
    await server.stop()
    assert server.errors == []


# --- /healthz ------------------------------------------------------------------------------


async def test_healthz_turns_503_when_vk_stops_answering_long_polls_and_back(
    tmp_path: Path, fake: FakeVK, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = serving(vk_config(tmp_path, fake))
    app = App(config, [VkChannel(config.vk)])
    await app.start()
    try:
        body = await health_is(app, 200)
        assert body["database"] == "ok"
        assert body["channels"]["vk"]["how"] == "long poll"
        assert body["channels"]["vk"]["receiving"] is True

        # 1. VK answers every long poll with an error page.
        fake.fail_method(LONG_POLL, 0, times=10**6, http_status=502, body="<html>502</html>")
        body = await health_is(app, 503, naming="vk")
        assert body["status"] == "failing" and body["database"] == "ok"
        assert "no poll completed" in body["failing"][0]
        assert body["channels"]["vk"]["receiving"] is False
        fake.heal()
        await health_is(app, 200)

        # 2. VK holds every poll and never answers.
        fake.hold_seconds = 3600.0
        await health_is(app, 503, naming="vk")
        fake.hold_seconds = 0.05
        fake.message_new(RESIDENT, "Начать")  # the held poll returns with it
        await health_is(app, 200)
        await fake.wait_for(lambda: bool(fake.messages_to(RESIDENT)), WITHIN, "the greeting")
    finally:
        await app.stop()


async def test_healthz_names_the_database_while_another_process_holds_its_lock(
    tmp_path: Path, fake: FakeVK, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = serving(vk_config(tmp_path, fake))
    app = App(config, [VkChannel(config.vk)])
    await app.start()
    # A manual sqlite3 session, driven from a thread: while it waits for the write lock, the
    # bot's transaction in progress needs the loop to reach its COMMIT.
    other = sqlite3.connect(
        config.storage.sqlite_path, isolation_level=None, timeout=10, check_same_thread=False
    )
    try:
        await health_is(app, 200)
        app.monitor.db_timeout = 0.3
        await asyncio.to_thread(other.execute, "BEGIN IMMEDIATE")  # holds the write lock
        try:
            body = await health_is(app, 503, naming="database")
            assert body["failing"] == ["database: no answer within 0.3 s"]
            samples = await scrape(app)  # /metrics answers all the same, without those
            assert value(samples, "appeals_bot_database_up") == 0
            assert ("appeals_bot_outbox_pending", ()) not in samples
            assert value(samples, "appeals_bot_channel_receiving", platform="vk") == 1
        finally:
            await asyncio.to_thread(other.execute, "ROLLBACK")
        body = await health_is(app, 200)
        assert body["database"] == "ok"
        assert value(await scrape(app), "appeals_bot_database_up") == 1
    finally:
        other.close()
        await app.stop()


async def test_a_standby_long_poll_is_healthy_and_polls_once_the_holder_goes(
    tmp_path: Path, fake: FakeVK, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two instances on one PostgreSQL, VK by long poll: one polls, the other waits for the
    advisory lock. The waiting one is healthy ("standby") however long it waits, so that an
    orchestrator does not restart it; when the holder stops, it polls and is judged by that."""
    monkeypatch.chdir(tmp_path)
    config = serving(vk_config(tmp_path, fake))
    config = config.model_copy(update={"storage": StorageSection(url=postgres_url, pool_size=4)})
    first = App(config, [VkChannel(config.vk)])
    await first.start()
    running = [first]
    try:
        body = await health_is(first, 200)
        await until(
            lambda: _is(first.monitor.liveness()["vk"].detail == "polling"), "the first to poll"
        )
        second = App(config, [VkChannel(config.vk)])
        await second.start()
        running.append(second)
        # Watched for three poll limits: the standby never completes a poll, and stays 200.
        loop = asyncio.get_running_loop()
        watch_until = loop.time() + 3 * POLL_LIMIT
        while loop.time() < watch_until:
            status, body = await healthz(second)
            assert status == 200, body
            assert body["channels"]["vk"]["receiving"] is True
            assert body["channels"]["vk"]["detail"] == "standby", body
            assert (await healthz(first))[1]["channels"]["vk"]["detail"] == "polling"
            await asyncio.sleep(0.1)
        assert value(await scrape(second), "appeals_bot_channel_receiving", platform="vk") == 1

        running.remove(first)
        await first.stop()  # the lock's connection closes with it
        limit = LEADER_RETRY_SECONDS + 5

        async def polling() -> bool:
            status, body = await healthz(second)
            return status == 200 and body["channels"]["vk"]["detail"] == "polling"

        loop_start = loop.time()
        while not await polling():
            assert loop.time() - loop_start < limit, "the standby did not take the poll over"
            await asyncio.sleep(0.05)
        fake.message_new(RESIDENT, "Начать")
        await fake.wait_for(lambda: bool(fake.messages_to(RESIDENT)), WITHIN, "the greeting")
    finally:
        for app in running:
            await app.stop()


async def _is(value: bool) -> bool:
    return value


async def test_a_webhook_channel_is_judged_by_its_set_up_not_by_traffic(tmp_path: Path) -> None:
    async with FakeTelegram(TG_TOKEN, hold_seconds=0.05) as tg:
        tg.fail_method("setWebhook", 502, times=1)  # the first set-up fails, the retry not
        config = serving(
            make_config(
                tmp_path / "appeals.db",
                telegram={
                    "enabled": True,
                    "token": TG_TOKEN,
                    "api_url": tg.url,
                    "mode": "webhook",
                    "webhook_url": "https://bot.example/tg/hook",
                    "webhook_secret": "tg-secret",
                },
            )
        )
        app = App(config, [TelegramChannel(config.telegram)])
        await app.start()
        try:
            body = await health_is(app, 503, naming="tg")
            assert body["channels"]["tg"]["detail"] == "webhook not set up with the platform"
            body = await health_is(app, 200)
            assert tg.webhook is not None
            assert body["channels"]["tg"] == {
                "receiving": True,
                "how": "webhook",
                "detail": "webhook set up",
                "last_update_seconds_ago": None,
            }
            # No webhook comes for longer than the long-poll limit: still receiving.
            await asyncio.sleep(POLL_LIMIT * 1.5)
            status, _ = await healthz(app)
            assert status == 200
        finally:
            await app.stop()


async def test_the_server_starts_for_health_only_when_asked(
    tmp_path: Path, fake: FakeVK, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Long polling only: no port is opened unless [web] serve says so (the default keeps an
    installation that never listened from starting to)."""
    monkeypatch.chdir(tmp_path)
    plain = vk_config(tmp_path, fake)
    assert plain.web.serve is False
    app = App(plain, [VkChannel(plain.vk)])
    await app.start()
    try:
        assert not app.web.needed
    finally:
        await app.stop()
    served = serving(plain)
    app = App(served, [VkChannel(served.vk)])
    await app.start()
    try:
        assert app.web.needed and app.web.port != 0
        await health_is(app, 200)
    finally:
        await app.stop()


# --- /metrics ------------------------------------------------------------------------------


async def test_metrics_move_as_an_appeal_is_filed_answered_and_overdue(
    tmp_path: Path, fake: FakeVK, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = serving(vk_config(tmp_path, fake), health_poll_seconds=60.0)
    bot = VkBot(fake, config, clock)
    await bot.start()
    app = bot.app
    try:
        await fake.wait_for_poll()
        status, text = await get(app, "/metrics")
        assert status == 200 and text.startswith("# HELP")
        before = await scrape(app)
        assert value(before, "appeals_bot_database_up") == 1
        assert value(before, "appeals_bot_channel_receiving", platform="vk") == 1
        assert value(before, "appeals_bot_updates_handled_total", platform="vk") == 0
        assert value(before, "appeals_bot_sends_total", platform="vk") == 0
        assert value(before, "appeals_bot_appeals_registered_total") == 0
        assert value(before, "appeals_bot_appeals_open", status="new") == 0
        assert value(before, "appeals_bot_outbox_pending") == 0

        number = await file_on_vk(bot.person(RESIDENT))
        await app.settle()
        filed = await scrape(app)
        updates = value(filed, "appeals_bot_updates_handled_total", platform="vk")
        assert updates == 11  # «Начать», then ten steps of the dialogue
        sends = value(filed, "appeals_bot_sends_total", platform="vk")
        assert sends >= updates + 1  # a reply to each, and the administrator's card
        assert value(filed, "appeals_bot_appeals_registered_total") == number == 1
        assert value(filed, "appeals_bot_appeals_open", status="new") == 1
        assert value(filed, "appeals_bot_appeals_overdue") == 0
        assert value(filed, "appeals_bot_outbox_pending") == 0
        assert value(filed, "appeals_bot_outbox_oldest_pending_age_seconds") == 0

        # A passing failure: the row waits for its retry (the test's clock stands still).
        fake.fail_method("messages.send", 10)
        admin = bot.person(ADMIN)
        admin.seen = len(admin.inbox)
        fake.message_new(ADMIN, "/take 1")

        async def retry_pending() -> bool:
            samples = await scrape(app)
            return (
                value(samples, "appeals_bot_send_errors_total", platform="vk", kind="retryable")
                == 1
            )

        await until(retry_pending, "a retryable send error")
        clock.advance(seconds=120)
        waiting = await scrape(app)
        assert value(waiting, "appeals_bot_outbox_pending") >= 1
        assert value(waiting, "appeals_bot_outbox_oldest_pending_age_seconds") >= 120

        async def retried() -> bool:
            return value(await scrape(app), "appeals_bot_outbox_pending") == 0

        await until(retried, "the retry to go out")  # due now, at the next delivery pass

        # A final failure: the row is marked failed.
        fake.fail_method("messages.send", 901)
        fake.message_new(ADMIN, "/reply 1 Яму засыплем до пятницы.")

        async def failed() -> bool:
            samples = await scrape(app)
            return value(samples, "appeals_bot_deliveries_failed_total", platform="vk") == 1

        await until(failed, "a delivery marked failed")
        done = await scrape(app)
        assert value(done, "appeals_bot_send_errors_total", platform="vk", kind="final") == 1
        assert value(done, "appeals_bot_appeals_open", status="answered") == 1
        assert value(done, "appeals_bot_appeals_open", status="new") == 0
        assert value(done, "appeals_bot_updates_handled_total", platform="vk") == updates + 2

        # A second appeal, left unanswered past its deadline.
        await file_on_vk(bot.person(RESIDENT + 1), "Не горит фонарь у остановки, третий день")
        clock.advance(hours=config.sla.answer_within_hours + 1)
        late = await scrape(app)
        assert value(late, "appeals_bot_appeals_overdue") == 1
        assert value(late, "appeals_bot_appeals_registered_total") == 2
    finally:
        await app.stop()


def test_each_app_has_its_own_registry(tmp_path: Path) -> None:
    config = make_config(tmp_path / "appeals.db")
    one, two = App(config, []), App(config, [])
    one.metrics.sent("vk")
    assert one.metrics.registry is not two.metrics.registry
    first, _ = one.metrics.render(one.metrics.state)
    second, content_type = two.metrics.render(two.metrics.state)
    assert b'appeals_bot_sends_total{platform="vk"} 1.0' in first
    assert b"appeals_bot_sends_total{" not in second
    assert content_type.startswith("text/plain")


def test_the_demo_and_the_cli_do_not_load_prometheus_client() -> None:
    """Counting is plain arithmetic; the library is loaded by the first scrape only."""
    code = (
        "import sys, bot.app, bot.cli, bot.demo; "
        "from bot.metrics import Metrics; Metrics(['vk']).sent('vk'); "
        "assert 'prometheus_client' not in sys.modules, 'loaded'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_the_readme_names_every_metric_and_only_real_ones() -> None:
    """The README's tables (and the alerts written with them) use the real names."""
    metrics = Metrics(["vk"])
    state = State(
        database=DatabaseState(
            outbox_pending=1,
            outbox_oldest_pending_seconds=2.0,
            appeals_open={"new": 1},
            appeals_overdue=0,
            appeals_registered=1,
        ),
        channels={"vk": Liveness(True, "long poll", "polling", 1.0)},
    )
    text, _ = metrics.render(state)
    exposed = {
        sample.name
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    named = set(re.findall(r"\bappeals_bot_[a-z_]+", readme))
    assert named == exposed


async def test_a_poll_loop_that_fails_starts_again_and_is_judged_by_its_polls(
    tmp_path: Path, storage_url: str
) -> None:
    """A poll loop that ends with an error (the database unreachable while it reads its
    saved position, say) is started again, not left dead behind a healthy "polling": while
    it completes no poll it is failing after the limit, and it polls again afterwards."""
    from storage.db import open_store

    db = await open_store(storage_url)
    channel = MemoryChannel("vk")
    channel.poll_restart_seconds = 0.05
    channel.expect_polls()
    runs: list[float] = []
    polled = asyncio.Event()

    async def poll() -> None:
        runs.append(asyncio.get_running_loop().time())
        if len(runs) < 3:
            raise RuntimeError("could not read the saved position")
        channel.mark_received()
        polled.set()
        await asyncio.Event().wait()  # polls on, until cancelled

    task = asyncio.create_task(channel.poll_alone(db, "vk.longpoll.ts", poll))
    try:
        await asyncio.wait_for(polled.wait(), WITHIN)
        assert len(runs) == 3  # started again after each failure
        now = asyncio.get_running_loop().time()
        assert channel.liveness(POLL_LIMIT).detail == "polling"
        # Judged by its polls while it holds the poll: quiet for longer than the limit fails.
        late = channel.liveness(POLL_LIMIT, now=now + POLL_LIMIT + 1)
        assert late.receiving is False and late.how == "long poll", late
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await db.close()
    # Not holding the poll any more: standby, whatever its last poll was.
    assert channel.liveness(POLL_LIMIT, now=now + 10 * POLL_LIMIT).detail == "standby"
