"""Delivery of the outbox (SPEC §7): retries with backoff, order per chat, final failures,
and the unit of work around an update (nothing half-done, nothing done twice, nothing lost
across a restart). Driven with a test channel whose sends fail on request and a clock the
tests move by hand."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from bot.app import App
from bot.channels.base import Capabilities, Channel, Intake, Runtime, SendError
from bot.config import Config
from bot.delivery import BATCH, DeliveryWorker
from handlers import texts
from handlers.keyboards import NEW
from handlers.messages import Incoming, Outgoing
from storage.db import Database
from tests.conftest import Clock, Harness, Person, open_test_store

EPSILON = 1e-6


class FlakyChannel(Channel):
    """A channel with no wire whose sends fail on request, per chat.

    `fail(chat, *errors)` queues exceptions that the next sends to that chat raise, one per
    send, before sends to it succeed again; `stall(chat)` makes sends to that chat hang
    until `release(chat)`. `tried` holds every send attempt, `sent` the successful ones.
    """

    def __init__(self, platform: str = "vk") -> None:
        self.platform = platform
        self.capabilities = Capabilities(buttons=True, photos=True, max_text=4096)
        self.tried: list[Outgoing] = []
        self.sent: list[Outgoing] = []
        self.message_ids: list[str] = []
        self._failures: dict[str, list[BaseException]] = {}
        self._stalls: dict[str, asyncio.Event] = {}
        self._tried_chats: dict[str, asyncio.Event] = {}
        self._intake: Intake | None = None
        self._ids = count(1)

    def fail(self, chat_id: str, *errors: BaseException) -> None:
        self._failures.setdefault(chat_id, []).extend(errors)

    def fail_retryable(self, chat_id: str, times: int, retry_after: float | None = None) -> None:
        self.fail(
            chat_id,
            *(
                SendError(f"HTTP 502 #{i + 1}", retryable=True, retry_after=retry_after)
                for i in range(times)
            ),
        )

    def stall(self, chat_id: str) -> None:
        self._stalls[chat_id] = asyncio.Event()

    def release(self, chat_id: str) -> None:
        self._stalls.pop(chat_id).set()

    async def start(self, runtime: Runtime) -> None:
        self._intake = runtime.intake

    async def stop(self) -> None:
        self._intake = None

    async def tried_to(self, chat_id: str) -> None:
        """Return once a send to `chat_id` has been attempted."""
        await self._tried_chats.setdefault(chat_id, asyncio.Event()).wait()

    async def send(self, message: Outgoing) -> list[str]:
        self.tried.append(message)
        self._tried_chats.setdefault(message.chat_id, asyncio.Event()).set()
        queued = self._failures.get(message.chat_id)
        if queued:
            raise queued.pop(0)
        stalled = self._stalls.get(message.chat_id)
        if stalled is not None:
            await stalled.wait()
        self.sent.append(message)
        message_id = f"{self.platform}-{next(self._ids)}"
        self.message_ids.append(message_id)
        return [message_id]

    async def receive(
        self,
        user_id: str,
        text: str = "",
        *,
        payload: str | None = None,
        event_id: str | None = None,
    ) -> None:
        """An update from `user_id` in their private chat, as a platform would deliver it."""
        assert self._intake is not None, "channel is not started"
        await self._intake(
            Incoming(
                platform=self.platform,
                chat_id=user_id,
                user_id=user_id,
                received_at=datetime.now(UTC),
                text=text,
                display_name="Мария",
                payload=payload,
                event_id=event_id,
            )
        )

    def texts_to(self, chat_id: str) -> list[str]:
        return [m.text for m in self.sent if m.chat_id == chat_id]


# --- helpers -------------------------------------------------------------------------------


def raw_rows(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
    """Read the file through a second, plain connection (what is really committed)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def raw_exec(path: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(sql, params)
    finally:
        conn.close()


def outbox_row(path: Path, row_id: int) -> dict[str, Any]:
    [row] = raw_rows(
        path,
        "SELECT status, attempts, next_attempt_at, last_error, sent_at FROM outbox WHERE id = ?",
        (row_id,),
    )
    return dict(row)


def due_in(path: Path, row_id: int, now: datetime) -> float:
    """Seconds from `now` to the row's next attempt."""
    text = outbox_row(path, row_id)["next_attempt_at"]
    due = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return (due - now).total_seconds()


async def enqueue(
    db: Database,
    chat_id: str,
    text: str,
    now: datetime,
    *,
    platform: str = "vk",
    appeal_number: int | None = None,
) -> int:
    async with db.transaction() as tx:
        return await tx.outbox.add(
            platform,
            chat_id,
            Outgoing(platform, chat_id, text).body(),
            now,
            appeal_number=appeal_number,
        )


@pytest.fixture
async def db(storage_url: str) -> AsyncIterator[Database]:
    """The outbox on each backend; a test that also reads the SQLite file (`db_path`) runs
    on SQLite only."""
    database = await open_test_store(storage_url)
    yield database
    await database.close()


@pytest.fixture
def vk() -> FlakyChannel:
    return FlakyChannel("vk")


def make_worker(
    db: Database,
    clock: Clock,
    *channels: Channel,
    max_attempts: int = 10,
    max_backoff_seconds: float = 60.0,
) -> DeliveryWorker:
    return DeliveryWorker(
        db,
        {channel.platform: channel for channel in channels},
        max_attempts=max_attempts,
        max_backoff_seconds=max_backoff_seconds,
        clock=clock,
    )


# --- retries and backoff -------------------------------------------------------------------


async def test_retryable_failures_then_success_deliver_exactly_once(
    db: Database, db_path: Path, clock: Clock, vk: FlakyChannel
) -> None:
    worker = make_worker(db, clock, vk)
    vk.fail_retryable("c1", 3)
    row_id = await enqueue(db, "c1", "Обращение №1 зарегистрировано", clock.now)

    for attempt in (1, 2, 3):
        await worker.deliver_due()
        state = outbox_row(db_path, row_id)
        assert (state["status"], state["attempts"]) == ("pending", attempt)
        assert state["last_error"] == f"HTTP 502 #{attempt}"
        # About 1 s doubling, ±20 % jitter.
        base = 2.0 ** (attempt - 1)
        delay = due_in(db_path, row_id, clock.now)
        assert 0.8 * base - EPSILON <= delay <= 1.2 * base + EPSILON
        # Not a moment early, however often the worker looks.
        clock.advance(seconds=delay - 0.001)
        await worker.deliver_due()
        await worker.drain()
        assert len(vk.tried) == attempt
        clock.advance(seconds=0.001)

    await worker.deliver_due()
    assert vk.texts_to("c1") == ["Обращение №1 зарегистрировано"]
    state = outbox_row(db_path, row_id)
    assert (state["status"], state["attempts"], state["last_error"]) == ("sent", 4, None)
    assert state["sent_at"] is not None

    # Exactly once: later passes, however late, never send it again.
    for _ in range(3):
        clock.advance(hours=1)
        await worker.deliver_due()
    assert len(vk.sent) == 1 and len(vk.tried) == 4


async def test_backoff_is_capped(
    db: Database, db_path: Path, clock: Clock, vk: FlakyChannel
) -> None:
    cap = 5.0
    worker = make_worker(db, clock, vk, max_attempts=20, max_backoff_seconds=cap)
    vk.fail_retryable("c1", 8)
    row_id = await enqueue(db, "c1", "text", clock.now)
    delays = []
    for _ in range(8):
        await worker.deliver_due()
        delays.append(due_in(db_path, row_id, clock.now))
        clock.advance(seconds=cap + 1)
    for attempt, delay in enumerate(delays, 1):
        base = min(cap, 2.0 ** (attempt - 1))
        assert 0.8 * base - EPSILON <= delay <= min(1.2 * base, cap) + EPSILON, (attempt, delays)
    await worker.deliver_due()
    assert vk.texts_to("c1") == ["text"]


async def test_backoff_doubles_with_jitter_and_cap(db: Database, clock: Clock) -> None:
    worker = make_worker(db, clock, max_backoff_seconds=60)
    for attempts in range(1, 12):
        base = min(60.0, 2.0 ** (attempts - 1))
        samples = [worker.backoff(attempts, None) for _ in range(200)]
        assert all(0.8 * base - EPSILON <= s <= min(1.2 * base, 60) + EPSILON for s in samples)
        assert len(set(samples)) > 1, "the delay is jittered"
    # retry_after is a minimum, even above the cap: the platform said how long to wait.
    assert all(worker.backoff(1, 30) >= 30 for _ in range(50))
    assert all(worker.backoff(1, 120) >= 120 for _ in range(50))
    # A short retry_after does not shorten the backoff.
    assert all(worker.backoff(3, 0.1) >= 3.2 for _ in range(50))


async def test_retry_after_is_honoured(
    db: Database, db_path: Path, clock: Clock, vk: FlakyChannel
) -> None:
    worker = make_worker(db, clock, vk, max_backoff_seconds=10)
    vk.fail("c1", SendError("Too Many Requests", retryable=True, retry_after=45))
    row_id = await enqueue(db, "c1", "ответ", clock.now)
    await worker.deliver_due()
    assert due_in(db_path, row_id, clock.now) >= 45 - EPSILON

    clock.advance(seconds=44.9)
    await worker.deliver_due()
    assert vk.sent == []
    clock.advance(seconds=0.2)
    await worker.deliver_due()
    assert vk.texts_to("c1") == ["ответ"]


async def test_row_not_yet_due_is_not_sent(db: Database, clock: Clock, vk: FlakyChannel) -> None:
    worker = make_worker(db, clock, vk)
    await enqueue(db, "c1", "later", clock.now + timedelta(seconds=10))
    assert await worker.deliver_due() == 0
    clock.advance(seconds=9.999)
    await worker.drain()
    assert vk.tried == []
    clock.advance(seconds=0.001)
    await worker.deliver_due()
    assert vk.texts_to("c1") == ["later"]


async def test_final_error_fails_the_row_at_once(
    db: Database, db_path: Path, clock: Clock, vk: FlakyChannel
) -> None:
    worker = make_worker(db, clock, vk)
    vk.fail("c1", SendError("Forbidden: bot was blocked by the user", retryable=False))
    row_id = await enqueue(db, "c1", "first", clock.now)
    await worker.deliver_due()
    state = outbox_row(db_path, row_id)
    assert (state["status"], state["attempts"]) == ("failed", 1)
    assert state["last_error"] == "Forbidden: bot was blocked by the user"
    async with db.transaction() as tx:
        assert await tx.outbox.count("failed") == 1
        assert await tx.outbox.count("pending") == 0

    # Never tried again; and a failed row does not hold the chat for good.
    later = await enqueue(db, "c1", "second", clock.now)
    clock.advance(hours=1)
    await worker.drain()
    assert [m.text for m in vk.tried] == ["first", "second"]
    assert outbox_row(db_path, later)["status"] == "sent"


async def test_row_fails_after_max_attempts(
    db: Database, db_path: Path, clock: Clock, vk: FlakyChannel
) -> None:
    worker = make_worker(db, clock, vk, max_attempts=3)
    vk.fail_retryable("c1", 10)
    row_id = await enqueue(db, "c1", "text", clock.now)
    for _ in range(6):
        await worker.deliver_due()
        clock.advance(minutes=5)
    assert len(vk.tried) == 3
    state = outbox_row(db_path, row_id)
    assert (state["status"], state["attempts"], state["last_error"]) == ("failed", 3, "HTTP 502 #3")
    assert vk.sent == []


async def test_unexpected_exception_is_treated_as_retryable(
    db: Database, db_path: Path, clock: Clock, vk: FlakyChannel
) -> None:
    worker = make_worker(db, clock, vk)
    vk.fail("c1", ConnectionResetError("connection reset by peer"))
    row_id = await enqueue(db, "c1", "text", clock.now)
    await worker.deliver_due()  # does not raise
    state = outbox_row(db_path, row_id)
    assert (state["status"], state["attempts"]) == ("pending", 1)
    assert state["last_error"] == "ConnectionResetError: connection reset by peer"
    assert 0.8 - EPSILON <= due_in(db_path, row_id, clock.now) <= 1.2 + EPSILON
    clock.advance(seconds=2)
    await worker.deliver_due()
    assert vk.texts_to("c1") == ["text"]


async def test_sent_message_ids_lead_back_to_the_appeal(
    db: Database, clock: Clock, vk: FlakyChannel
) -> None:
    async with db.transaction() as tx:
        resident = await tx.residents.get_or_create("vk", "c1", "c1", clock.now)
        appeal = await tx.appeals.create(
            resident_id=resident.id,
            category="roads",
            settlement="sergino",
            text="Яма",
            place=None,
            latitude=None,
            longitude=None,
            photos=(),
            contact_name=None,
            contact_phone=None,
            platform="vk",
            chat_id="c1",
            created_at=clock.now,
            deadline_at=clock.now + timedelta(hours=24),
        )
    await enqueue(db, "c1", "menu", clock.now)
    await enqueue(db, "c1", "№1", clock.now, appeal_number=appeal.number)
    await make_worker(db, clock, vk).drain()
    menu_id, appeal_message_id = vk.message_ids
    assert vk.sent[1].appeal_number == appeal.number
    async with db.transaction() as tx:
        assert await tx.outbox.appeal_of_message("vk", "c1", appeal_message_id) == appeal.number
        assert await tx.outbox.appeal_of_message("vk", "c1", menu_id) is None


# --- order and isolation between chats -----------------------------------------------------


async def test_order_per_chat_is_kept_while_other_chats_go_on(
    db: Database, clock: Clock, vk: FlakyChannel
) -> None:
    worker = make_worker(db, clock, vk)
    vk.fail_retryable("a", 1)
    for i in range(1, 4):
        await enqueue(db, "a", f"a{i}", clock.now)
        await enqueue(db, "b", f"b{i}", clock.now)

    await worker.drain()
    # a1 waits for its retry, so a2 and a3 wait behind it; b is not held up.
    assert vk.texts_to("a") == []
    assert vk.texts_to("b") == ["b1", "b2", "b3"]

    # A row written to the waiting chat meanwhile also waits its turn.
    await enqueue(db, "a", "a4", clock.now)
    await enqueue(db, "b", "b4", clock.now)
    await worker.drain()
    assert vk.texts_to("a") == []
    assert vk.texts_to("b") == ["b1", "b2", "b3", "b4"]

    clock.advance(seconds=2)
    await worker.drain()
    assert vk.texts_to("a") == ["a1", "a2", "a3", "a4"]
    assert [m.text for m in vk.tried if m.chat_id == "a"] == ["a1", "a1", "a2", "a3", "a4"]


async def test_platform_without_channel_waits(
    db: Database, db_path: Path, clock: Clock, vk: FlakyChannel
) -> None:
    worker = make_worker(db, clock, vk)
    tg_row = await enqueue(db, "c1", "to telegram", clock.now, platform="tg")
    await enqueue(db, "c1", "to vk", clock.now)
    await worker.drain()
    clock.advance(hours=1)
    await worker.drain()
    assert vk.texts_to("c1") == ["to vk"]
    state = outbox_row(db_path, tg_row)
    assert (state["status"], state["attempts"], state["last_error"]) == ("pending", 0, None)

    # Once the channel is enabled (a new worker, as after a restart), the row goes out.
    tg = FlakyChannel("tg")
    await make_worker(db, clock, vk, tg).drain()
    assert tg.texts_to("c1") == ["to telegram"]
    assert vk.texts_to("c1") == ["to vk"]


@pytest.mark.parametrize("blocker", ["disabled platform", "chat waiting for a retry"])
async def test_held_rows_beyond_one_batch_do_not_block_other_chats(
    db: Database, clock: Clock, vk: FlakyChannel, blocker: str
) -> None:
    """More held rows than one pass reads must not hide the rows of other chats."""
    worker = make_worker(db, clock, vk)
    if blocker == "disabled platform":
        for i in range(BATCH):
            await enqueue(db, f"tg-{i}", "to telegram", clock.now, platform="tg")
    else:
        vk.fail("busy", SendError("Too Many Requests", retryable=True, retry_after=60))
        for i in range(BATCH):
            await enqueue(db, "busy", f"notification {i}", clock.now)
    await enqueue(db, "c1", "Обращение №1 зарегистрировано", clock.now)
    await worker.drain()
    assert vk.texts_to("c1") == ["Обращение №1 зарегистрировано"]


async def test_rows_for_a_platform_not_running_here_are_reported_once(
    db: Database, clock: Clock, vk: FlakyChannel
) -> None:
    """The check is a whole-outbox query, so it runs once a minute, and says it once."""
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING", format="{message}")
    try:
        worker = make_worker(db, clock, vk)
        await enqueue(db, "tg-1", "to telegram", clock.now, platform="tg")
        await enqueue(db, "c1", "to vk", clock.now)
        await worker.drain()
        await enqueue(db, "c2", "to vk", clock.now)
        await worker.drain()
    finally:
        logger.remove(sink)
    assert vk.texts_to("c2") == ["to vk"]
    assert [w for w in warnings if "platform=tg" in w and "not enabled" in w] != []
    assert len([w for w in warnings if "not enabled" in w]) == 1


async def test_unreadable_row_is_failed_and_does_not_stop_the_others(
    db: Database, db_path: Path, clock: Clock, vk: FlakyChannel
) -> None:
    """A row that can never be sent is failed at once, not retried, and blocks nobody."""
    worker = make_worker(db, clock, vk)
    await enqueue(db, "c1", "before", clock.now)
    async with db.transaction() as tx:
        bad = await tx.outbox.add("vk", "c2", {"txt": "written by an older version"}, clock.now)
    await enqueue(db, "c3", "after", clock.now)
    await worker.drain()
    assert vk.texts_to("c1") == ["before"]
    assert vk.texts_to("c3") == ["after"]
    assert outbox_row(db_path, bad)["status"] == "failed"


# --- the unit of work around an update, through the App -----------------------------------


def outbox_texts(path: Path) -> list[tuple[str, str]]:
    """(chat, text) of every outbox row in the file, whatever its status."""
    rows = raw_rows(path, "SELECT chat_id, body FROM outbox ORDER BY id")
    return [(row["chat_id"], json.loads(row["body"])["text"]) for row in rows]


async def test_failed_update_leaves_no_trace_and_apologises(
    harness: Harness, resident: Person
) -> None:
    path = harness.config.storage.sqlite_path
    # A draft whose data is not JSON: reading it makes the handling of the update raise.
    # Written from a thread, like another process would: the app keeps running meanwhile.
    await asyncio.to_thread(
        raw_exec,
        path,
        "INSERT INTO drafts (platform, user_id, step, data, updated_at)"
        " VALUES ('vk', '1001', 'category', '{not json', '2026-03-02T05:59:00.000000Z')",
    )
    replies = await resident.send("Здравствуйте", event_id="e1")

    assert [m.text for m in replies] == [texts.SOMETHING_WENT_WRONG]
    # Only the apology was written; nothing else the update did is left.
    assert outbox_texts(path) == [("1001", texts.SOMETHING_WENT_WRONG)]
    assert raw_rows(path, "SELECT * FROM processed_events") == []
    assert raw_rows(path, "SELECT * FROM residents") == []
    assert [tuple(r) for r in raw_rows(path, "SELECT step, data, updated_at FROM drafts")] == [
        ("category", "{not json", "2026-03-02T05:59:00.000000Z")
    ]

    # The event id was not recorded: once the cause is gone, the same update is handled.
    await asyncio.to_thread(raw_exec, path, "DELETE FROM drafts")
    replies = await resident.send("Здравствуйте", event_id="e1")
    assert replies and "канал обратной связи" in replies[0].text
    assert len(raw_rows(path, "SELECT * FROM processed_events")) == 1


async def test_duplicate_update_has_one_effect(
    harness: Harness, resident: Person, clock: Clock
) -> None:
    path = harness.config.storage.sqlite_path
    await resident.say("Начать")
    clock.advance(minutes=1)
    first = await resident.send(payload=NEW.payload, event_id="e1")
    assert len(first) == 1 and "Согласие" in first[0].text
    draft_after_first = [tuple(r) for r in raw_rows(path, "SELECT step, updated_at FROM drafts")]
    outbox_after_first = outbox_texts(path)

    clock.advance(minutes=1)
    again = await resident.send(payload=NEW.payload, event_id="e1")
    assert again == []
    assert [tuple(r) for r in raw_rows(path, "SELECT step, updated_at FROM drafts")] == (
        draft_after_first
    )
    assert outbox_texts(path) == outbox_after_first


async def test_concurrent_redeliveries_have_one_effect(harness: Harness) -> None:
    path = harness.config.storage.sqlite_path
    channel = harness.channel
    # The platform retries the webhook while the first delivery is still being handled.
    await asyncio.gather(
        *(channel.receive("1001", "Здравствуйте", event_id="e7") for _ in range(3))
    )
    await harness.app.settle()
    assert len(channel.sent_to("1001")) == 1
    assert len(outbox_texts(path)) == 1
    assert len(raw_rows(path, "SELECT * FROM processed_events")) == 1


async def test_replies_are_committed_with_the_draft_change(config: Config, clock: Clock) -> None:
    path = config.storage.sqlite_path
    channel = FlakyChannel("vk")
    app = App(config, [channel], clock=clock)
    await app.start()
    try:
        # Hold the send to the resident, so that what was committed can be seen before it.
        channel.stall("1001")
        clock.advance(seconds=5)
        await channel.receive("1001", payload=NEW.payload)
        await channel.tried_to("1001")
        [draft] = raw_rows(path, "SELECT step, updated_at FROM drafts WHERE user_id = '1001'")
        pending = raw_rows(
            path,
            "SELECT body, created_at FROM outbox WHERE chat_id = '1001' AND status = 'pending'",
        )
        assert draft["step"] == "consent"
        assert len(pending) == 1 and "Согласие" in pending[0]["body"]
        assert pending[0]["created_at"] == draft["updated_at"]  # written by the same update
        assert channel.texts_to("1001") == []

        channel.release("1001")
        await app.settle()
        assert len(channel.texts_to("1001")) == 1
        assert "Согласие" in channel.texts_to("1001")[0]
    finally:
        await app.stop()


# --- stopping and restarting ---------------------------------------------------------------


async def test_rows_queued_at_stop_are_sent_after_restart(config: Config, clock: Clock) -> None:
    path = config.storage.sqlite_path
    first = FlakyChannel("vk")
    app = App(config, [first], clock=clock)
    await app.start()
    await first.receive("2002", "Здравствуйте")
    await app.settle()
    assert len(first.texts_to("2002")) == 1  # delivered before the stop

    # The network hangs for chat 1001: its reply is still in hand when the app stops.
    first.stall("1001")
    await first.receive("1001", "Здравствуйте")
    await first.tried_to("1001")
    await app.stop(grace_seconds=0.05)

    [queued] = raw_rows(path, "SELECT status, body FROM outbox WHERE chat_id = '1001'")
    assert queued["status"] == "pending"
    assert first.texts_to("1001") == []

    # A new process on the same file sends it, and nothing that was already sent.
    second = FlakyChannel("vk")
    restarted = App(config, [second], clock=clock)
    await restarted.start()
    try:
        await restarted.settle()
        assert len(second.texts_to("1001")) == 1
        assert "канал обратной связи" in second.texts_to("1001")[0]
        assert second.texts_to("2002") == []
    finally:
        await restarted.stop()
    assert raw_rows(path, "SELECT count(*) FROM outbox WHERE status = 'pending'")[0][0] == 0


async def test_rows_waiting_for_a_retry_survive_a_restart(config: Config, clock: Clock) -> None:
    path = config.storage.sqlite_path
    first = FlakyChannel("vk")
    first.fail_retryable("1001", 1)
    app = App(config, [first], clock=clock)
    await app.start()
    await first.receive("1001", "Здравствуйте")
    await app.stop()  # does not wait for the retry
    assert first.sent == []
    [queued] = raw_rows(path, "SELECT status, attempts FROM outbox")
    assert (queued["status"], queued["attempts"]) == ("pending", 1)

    clock.advance(seconds=5)
    second = FlakyChannel("vk")
    restarted = App(config, [second], clock=clock)
    await restarted.start()
    try:
        await restarted.settle()
        assert len(second.texts_to("1001")) == 1
    finally:
        await restarted.stop()
    [done] = raw_rows(path, "SELECT status, attempts FROM outbox")
    assert (done["status"], done["attempts"]) == ("sent", 2)


async def test_on_a_shared_database_a_row_behind_a_send_goes_when_the_send_ends(
    postgres_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a pass does not see a chat whose head this instance has claimed, so it
    cannot ask for the chat to be looked at again. The next reply, queued while the previous
    one is being sent, still goes out when that send ends, not at the next idle poll (here
    made a minute long, so that waiting for it fails the test)."""
    import bot.delivery
    from storage.postgres import PostgresDatabase
    from tests.test_process import until

    monkeypatch.setattr(bot.delivery, "IDLE_POLL_SECONDS", 60.0)
    db = await PostgresDatabase.open(postgres_url, pool_size=4)
    vk = FlakyChannel("vk")
    worker = make_worker(db, clock, vk)
    worker.start()
    try:
        vk.stall("a")
        await enqueue(db, "a", "a1", clock.now)
        worker.wake()
        await asyncio.wait_for(vk.tried_to("a"), 10)
        await enqueue(db, "a", "a2", clock.now)
        worker.wake()  # as the engine does when it has queued a message
        vk.release("a")

        async def both_sent() -> bool:
            return vk.texts_to("a") == ["a1", "a2"]

        await until(both_sent, 10, "a2 sent once a1's send ended")
    finally:
        await worker.stop()
        await db.close()
