"""Two instances (processes) of `appeals-bot run` on one PostgreSQL database (SPEC §15, the
acceptance of issue 19), against the fake VK (Callback API), Telegram (webhook) and MAX (long
polling) servers on 127.0.0.1.

200 residents, RESIDENTS on VK and as many on Telegram, file appeals through both instances
at once, each update posted to one instance or the other, as a load balancer would; beside
them MAX_RESIDENTS residents on MAX, whose updates come by the long poll that one instance at
a time holds (an advisory lock). The other instance's MAX receiver waits on standby, and
/healthz says so. In the middle, with webhook updates just acknowledged and MAX updates just
pushed, the instance that holds the MAX poll (and the deadline scheduler) is killed with
SIGKILL; the rest goes to the survivor (as nginx would fail over), which must take the MAX
poll over within TAKEOVER_SECONDS (SPEC: "taken over within 10 s when that instance dies")
and handle what the dead one had acknowledged or fetched. Then an administrator answers
every appeal. What must hold: every appeal registered once, numbers 1..N; every resident
given every reply of the dialogue, their number and the answer exactly once; the outbox
empty.

The kill comes with updates acknowledged or fetched and not yet answered. A message sent in
the last milliseconds before a kill -9, whose record in the outbox was not yet committed
(bot/delivery.py records sent rows a few milliseconds later, in batches), is sent again by
the survivor once the claim expires: VK drops the repeat by its random_id, Telegram and MAX
have no such key (README, «Several instances»). So from the cut step until the kill the
fake Telegram and MAX refuse every send (HTTP 500), as tests/test_durable_intake.py does:
nothing of that step reaches them from the dying instance, and the survivor sends it all.
(The first CI run of this test, without the refusal, showed 6 Telegram replies twice.)

"Exactly once" is checked against a control resident per messenger who files after the kill
on the survivor alone: every resident must have received, message for message, what the
control received (the appeal number aside). A reply lost or sent twice shows as a difference.

Duration: 24-34 s on the 2-core development machine (250 residents and the 3 controls,
about 2,800 updates and 3,100 replies; the survivor took the MAX poll over 0.3-2.7 s after
the kill, bounded by storage.postgres.LEADER_RETRY_SECONDS). The properties do not depend on
the number of residents, but the issue asks for 200, and a race shows more readily under
that load.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import re
import socket
import sys
import time
import tomllib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from bot.cli import example_config_path
from tests.fakes.max import SEND_MESSAGE as MAX_SEND
from tests.fakes.max import TOKEN as MAX_TOKEN
from tests.fakes.max import FakeMax
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVK
from tests.test_process import REPO, clean_env, kill, toml_text, until

pytestmark = pytest.mark.timeout(300)

RESIDENTS = 100  # per webhook messenger (VK, Telegram): the 200 in all
MAX_RESIDENTS = 50  # through the one long poll
TAKEOVER_SECONDS = 10.0  # SPEC §15 / issue 19: the long-poll receiver taken over within 10 s
REPLY_SECONDS = 60.0  # for one reply under the full load of both instances
GROUP = 777
ADMIN = 500  # Сергино's administrator, on Telegram
VK_SECRET = "vk-callback-secret"
TG_SECRET = "tg-webhook-secret"
STEPS = [
    "Начать",
    "Подать обращение",
    "Согласен",
    "Дороги",
    "Сергино",
    "Яма на дороге возле школы, глубокая",
    "Пропустить",
    "Пропустить",
    "Пропустить",
    "Пропустить",
    "Отправить",
]
# MAX gives the bot the resident's name: the name step offers to keep it (tests/test_max.py).
MAX_STEPS = [*STEPS[:8], "Оставить как есть", *STEPS[9:]]
KILL_AFTER = 5  # steps done through both instances; the sixth is cut off by the kill
ANSWER = "Яму засыпали, спасибо за обращение."
NUMBER = re.compile(r"№\d+")
WHEN = re.compile(r"\d\d\.\d\d\.\d{4} \d\d:\d\d")
MAX_POLL = "max.polling.marker runs on this instance"
SCHEDULER = "deadlines runs on this instance"

Person = tuple[str, int]  # (platform, user id)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Instance:
    def __init__(self, name: str, tmp_path: Path, data: dict[str, Any]) -> None:
        self.name = name
        self.port = free_port()
        self.log = tmp_path / f"{name}.log"
        self.config = tmp_path / f"{name}.toml"
        data = {**data, "web": {**data["web"], "port": self.port}}
        self.config.write_text(toml_text(data), "utf-8")
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, http: aiohttp.ClientSession) -> None:
        args = [sys.executable, "-m", "bot", "run", "--config", str(self.config)]
        with self.log.open("wb") as sink:
            self.process = await asyncio.create_subprocess_exec(
                *args, cwd=REPO, env=clean_env(), stdout=sink, stderr=asyncio.subprocess.STDOUT
            )

        async def up() -> bool:
            assert self.process is not None and self.process.returncode is None, self.text()
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{self.url}/healthz"):
                    return True
            return False

        await until(up, 30, f"instance {self.name} to listen")

    async def healthz(self, http: aiohttp.ClientSession) -> tuple[int, dict[str, Any]]:
        async with http.get(f"{self.url}/healthz") as response:
            return response.status, await response.json()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def text(self) -> str:
        return self.log.read_text("utf-8", "replace")


@dataclass
class Fakes:
    vk: FakeVK
    tg: FakeTelegram
    max: FakeMax


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    vk = FakeVK(GROUP, hold_seconds=0.05)
    tg = FakeTelegram(hold_seconds=0.05)
    mx = FakeMax()  # polls held as MAX holds them (30 s), answered at once by a push
    for fake in (vk, tg, mx):
        await fake.start()
    tg.known_chats.add(ADMIN)
    yield Fakes(vk, tg, mx)
    for fake in (mx, tg, vk):
        await fake.stop()
    assert mx.errors == []


class Inboxes:
    """What each resident received, indexed as the fakes record it: one refresher reads the
    fakes' new messages and wakes every waiter (200 waiters scanning the fakes' lists of
    thousands of messages would cost the test process more than the bots)."""

    def __init__(self, fakes: Fakes) -> None:
        self._fakes = fakes
        self._read = {"vk": 0, "tg": 0, "max": 0}
        self._texts: dict[Person, list[str]] = defaultdict(list)
        self._changed = asyncio.Condition()

    def of(self, person: Person) -> list[str]:
        return self._texts[person]

    def more_than(self, person: Person, count: int) -> Callable[[], bool]:
        return lambda: len(self._texts[person]) > count

    def containing(self, person: Person, text: str) -> Callable[[], bool]:
        return lambda: any(text in t for t in self._texts[person])

    def refresh(self) -> bool:
        new = False
        sources: dict[str, Sequence[Any]] = {
            "vk": self._fakes.vk.sent,
            "tg": self._fakes.tg.sent,
            "max": self._fakes.max.sent,
        }
        for platform, sent in sources.items():
            for message in sent[self._read[platform] :]:
                user = {"vk": "peer_id", "tg": "chat_id", "max": "user_id"}[platform]
                self._texts[(platform, getattr(message, user))].append(message.text or "")
                new = True
            self._read[platform] = len(sent)
        return new

    async def run(self) -> None:
        while True:
            if self.refresh():
                async with self._changed:
                    self._changed.notify_all()
            await asyncio.sleep(0.02)

    async def wait(self, predicate: Callable[[], bool], within: float, what: str) -> None:
        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(predicate), within)
        except TimeoutError:
            raise AssertionError(f"waited {within}s in vain for {what}") from None


def config_data(postgres_url: str, fakes: Fakes) -> dict[str, Any]:
    data = tomllib.loads(example_config_path().read_text("utf-8"))
    data["storage"].update(url=postgres_url, pool_size=8)
    data["web"]["port"] = 0
    data["vk"].update(
        enabled=True,
        token="vk1.a.two-instances-token-0123456789",
        group_id=GROUP,
        api_url=fakes.vk.api_url,
        mode="callback",
        callback_path="/vk/callback",
        callback_secret=VK_SECRET,
        confirmation_code="abc123",
        send_rate=0,
    )
    data["telegram"].update(
        enabled=True,
        token=fakes.tg.token,
        api_url=fakes.tg.url,
        mode="webhook",
        webhook_path="/tg/webhook",
        webhook_url="https://bot.example/tg/webhook",
        webhook_secret=TG_SECRET,
        send_rate=0,
        per_chat_rate=0,
    )
    data["max"] = dict(
        data.get("max", {}),
        enabled=True,
        token=MAX_TOKEN,
        api_url=fakes.max.url,
        mode="polling",
        send_rate=0,
        per_chat_rate=0,
    )
    data["delivery"].update(max_backoff_seconds=0.5, claim_seconds=3)
    data["limits"]["messages_per_minute"] = 1000
    for settlement in data["settlements"]:
        settlement["admins"] = [f"tg:{ADMIN}"] if settlement["code"] == "sergino" else []
    return data


def normalized(person: Person, texts: list[str]) -> list[str]:
    """The texts without what differs from one resident to another: the appeal's number,
    its deadline (a minute later for one filed a minute later), the name in the profile."""
    plain = [WHEN.sub("<when>", NUMBER.sub("№N", t)) for t in texts]
    return [t.replace(str(person[1]), "<id>") for t in plain]


async def test_two_instances_one_killed_every_appeal_once_and_the_poll_taken_over(
    tmp_path: Path, postgres_url: str, fakes: Fakes
) -> None:
    data = config_data(postgres_url, fakes)
    first, second = Instance("first", tmp_path, data), Instance("second", tmp_path, data)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    inboxes = Inboxes(fakes)
    refresher = asyncio.create_task(inboxes.run())
    started = time.monotonic()
    try:
        await first.start(http)
        await until(lambda: _true(MAX_POLL in first.text()), 30, "the first to poll MAX")
        await until(lambda: _true(SCHEDULER in first.text()), 30, "the first's scheduler")
        await second.start(http)
        # The second instance's MAX receiver waits for the lock, healthy on standby.
        status, body = await second.healthz(http)
        assert status == 200 and body["channels"]["max"]["detail"] == "standby", body
        status, body = await first.healthz(http)
        assert status == 200 and body["channels"]["max"]["detail"] == "polling", body
        instances = [first, second]

        async def post(target: Instance, person: Person, text: str) -> None:
            """One update as the platform sends it. A webhook goes to `target`, or, if that
            instance is gone, to the other (the balancer's failover, the platform's retry);
            a MAX update is queued for whichever instance polls."""
            platform, user = person
            if platform == "max":
                fakes.max.message(user, text)
                return
            if platform == "vk":
                body = dict(fakes.vk.message_new(user, text), secret=VK_SECRET)
                path, headers = "/vk/callback", {}
            else:
                body = fakes.tg.message(user, text)
                path, headers = "/tg/webhook", {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
            for where in (target, second):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.post(f"{where.url}{path}", json=body, headers=headers) as r:
                        if r.status == 200:
                            return
            raise AssertionError(f"no instance took {platform} update from {user}")

        def steps_of(person: Person) -> list[str]:
            return MAX_STEPS if person[0] == "max" else STEPS

        async def walk(people: list[Person], steps: range, *, wait_last: bool = True) -> None:
            async def one(i: int, person: Person) -> None:
                for step in steps:
                    seen = len(inboxes.of(person))
                    await post(instances[(i + step) % 2], person, steps_of(person)[step])
                    if step != steps[-1] or wait_last:
                        await inboxes.wait(
                            inboxes.more_than(person, seen),
                            REPLY_SECONDS,
                            f"a reply to {person} at step {step}",
                        )

            await asyncio.gather(*(one(i, person) for i, person in enumerate(people)))

        people: list[Person] = [
            *(("vk", 710_000 + i) for i in range(RESIDENTS)),
            *(("tg", 720_000 + i) for i in range(RESIDENTS)),
            *(("max", 730_000 + i) for i in range(MAX_RESIDENTS)),
        ]
        # Ids that no text of the bot contains by chance (a year would do: 2025).
        controls: list[Person] = [("vk", 719_999), ("tg", 729_999), ("max", 739_999)]

        await walk(people, range(KILL_AFTER))
        before = {person: len(inboxes.of(person)) for person in people}
        # Webhooks acknowledged, then MAX updates pushed (the poll the first instance holds
        # returns with them at once), none waited for: then the holder dies.
        cut = range(KILL_AFTER, KILL_AFTER + 1)
        # No idempotency key on Telegram and MAX: their sends fail until the kill (above).
        fakes.tg.fail_method("sendMessage", 500, 1_000_000)
        fakes.max.fail_method(MAX_SEND, 500, 1_000_000)
        await walk([p for p in people if p[0] != "max"], cut, wait_last=False)
        fetched = fakes.max.delivered_updates
        await walk([p for p in people if p[0] == "max"], cut, wait_last=False)
        # Killed once the first instance has fetched them: they are in its hands.
        await until(
            lambda: _true(fakes.max.delivered_updates >= fetched + MAX_RESIDENTS),
            10,
            "the first instance to fetch the MAX updates",
        )
        assert first.process is not None
        first.process.kill()  # kill -9 with updates in hand
        assert await asyncio.wait_for(first.process.wait(), 10) == -9
        fakes.tg._failures.clear()
        fakes.max._failures.clear()
        killed_at = time.monotonic()
        instances = [second, second]
        assert MAX_POLL not in second.text()  # it was on standby until now
        await until(
            lambda: _true(second.text().count(MAX_POLL) == 1),
            TAKEOVER_SECONDS,
            "the survivor to take the MAX long poll over",
        )
        takeover = time.monotonic() - killed_at
        await until(
            lambda: _true(second.text().count(SCHEDULER) == 1),
            TAKEOVER_SECONDS,
            "the survivor to take the scheduler over",
        )
        status, body = await second.healthz(http)
        assert status == 200 and body["channels"]["max"]["detail"] == "polling", body
        for person in people:
            await inboxes.wait(
                inboxes.more_than(person, before[person]),
                REPLY_SECONDS,
                f"the reply to the step of {person} in hand at the kill",
            )
        # The rest after the kill; the controls file from the start on the survivor alone.
        await asyncio.gather(
            walk(people, range(KILL_AFTER + 1, len(STEPS))), walk(controls, range(len(STEPS)))
        )
        walked = time.monotonic() - started

        everyone = [*people, *controls]
        numbers: dict[Person, int] = {}
        for person in everyone:
            told = {int(n[1:]) for t in inboxes.of(person) for n in NUMBER.findall(t)}
            assert len(told) == 1, (person, inboxes.of(person))
            numbers[person] = told.pop()
        assert sorted(numbers.values()) == list(range(1, len(everyone) + 1))

        for number in sorted(numbers.values()):
            body = fakes.tg.message(ADMIN, f"/reply {number} {ANSWER}")
            headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
            async with http.post(f"{second.url}/tg/webhook", json=body, headers=headers) as r:
                assert r.status == 200
        for person in everyone:
            await inboxes.wait(
                inboxes.containing(person, ANSWER),
                REPLY_SECONDS,
                f"the answer to {person}",
            )

        async def outbox_empty() -> bool:
            async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
                cursor = await conn.execute("SELECT count(*) FROM outbox WHERE status <> 'sent'")
                row = await cursor.fetchone()
            return row is not None and row[0] == 0

        await until(outbox_empty, REPLY_SECONDS, "every outgoing message sent")
        inboxes.refresh()  # everything sent, read now
        for person in everyone:
            texts = inboxes.of(person)
            number = numbers[person]
            assert sum(ANSWER in t for t in texts) == 1, (person, texts)  # the answer once
            registered = [t for t in texts if f"№{number}" in t and ANSWER not in t]
            assert len(registered) == 1, (person, texts)  # told the number exactly once
        for control in controls:
            expected = normalized(control, inboxes.of(control))
            received = {p: normalized(p, inboxes.of(p)) for p in people if p[0] == control[0]}
            differ = [(p, texts) for p, texts in received.items() if texts != expected]
            if differ:
                person, texts = differ[0]
                diff = difflib.unified_diff(expected, texts, str(control), str(person))
                raise AssertionError(
                    f"{len(differ)} residents of {control[0]} received other than {control}:\n"
                    + "\n".join(repr(line) for line in diff)
                )
        async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
            cursor = await conn.execute("SELECT count(*), count(DISTINCT id) FROM appeals")
            assert await cursor.fetchone() == (len(everyone), len(everyone))
        assert "Traceback" not in second.text(), second.text()[-3000:]
        pushed = sum(len(steps_of(p)) for p in everyone if p[0] == "max")
        print(
            f"\n{len(people)} residents walked in {walked:.1f} s;"
            f" MAX long poll taken over {takeover:.1f} s after the kill;"
            f" MAX updates fetched again by the survivor: {fakes.max.delivered_updates - pushed}"
        )
        assert takeover <= TAKEOVER_SECONDS
    finally:
        refresher.cancel()
        for instance in (first, second):
            await kill(instance.process)
        await http.close()


async def _true(value: bool) -> bool:
    return value
