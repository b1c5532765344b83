"""A fake messenger server in a process of its own, for the benchmarks (bench/):

    python -m tests.fakes.serve_bench vk|telegram --port-file F [--hold 0.2]

It starts the fake (tests/fakes/vk.py or tests/fakes/telegram.py) on 127.0.0.1 and a control
API on a second port, writes {"url", "api_url", "control", "pid"} to F (atomically), and
serves until SIGTERM. Residents are driven *inside* this process, so the clock that times a
reply is the one that delivered the update and nothing crosses the control API per message:

    POST /walk   {"first_user", "residents", "steps": [[text, marker or null], ...], "think"?}
                 every resident sends steps[0]; when a reply to them whose text holds the
                 step's marker (any reply if null) arrives, they send the next step (after
                 `think` seconds, if given: a paced load)
    GET  /stats  what happened since the last /walk or /reset: "completed" steps, "total",
                 "first_delivery"/"last_reply" (time.time()), "latency_ms" p50/p90/p99/max
                 (delivery of the update in a long-poll answer → arrival of the reply),
                 "first_poll" (time.time() of the first long-poll request), "sent",
                 "rate_errors", "fake_cpu" (seconds of this process)
    POST /reset  forget the stats and the first poll
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVK


class Walker:
    """Residents walking a scripted dialogue, each one step at a time."""

    def __init__(self, push: Any) -> None:
        self.push = push  # (user_id, text) -> None
        self.reset()

    def reset(self) -> None:
        self.steps: list[tuple[str, str | None]] = []
        self.think = 0.0
        self.step: dict[int, int] = {}  # user -> index of the step in flight
        self.delivered: dict[int, float] = {}  # user -> perf_counter of delivery
        self.latencies: list[float] = []
        self.total = 0
        self.completed = 0
        self.first_delivery: float | None = None
        self.last_reply: float | None = None
        self.first_poll: float | None = None

    def start(
        self,
        first_user: int,
        residents: int,
        steps: list[tuple[str, str | None]],
        think: float = 0.0,
    ) -> None:
        """Everyone starts at once; with `think` > 0 the starts are spread over `think`
        seconds and each next step waits `think` seconds after the reply (a paced load)."""
        self.reset()
        self.steps = steps
        self.think = think
        self.total = residents * len(steps)
        loop = asyncio.get_running_loop()
        for n, user in enumerate(range(first_user, first_user + residents)):
            self.step[user] = 0
            if think > 0:
                loop.call_later(think * n / residents, self.push, user, steps[0][0])
            else:
                self.push(user, steps[0][0])

    def polled(self) -> None:
        if self.first_poll is None:
            self.first_poll = time.time()

    def on_delivered(self, user: int) -> None:
        if user in self.step and user not in self.delivered:
            self.delivered[user] = time.perf_counter()
            if self.first_delivery is None:
                self.first_delivery = time.time()

    def on_sent(self, user: int, text: str) -> None:
        index = self.step.get(user)
        if index is None or user not in self.delivered:
            return
        marker = self.steps[index][1]
        if marker is not None and marker not in text:
            return
        self.latencies.append(time.perf_counter() - self.delivered.pop(user))
        self.completed += 1
        self.last_reply = time.time()
        if index + 1 < len(self.steps):
            self.step[user] = index + 1
            text = self.steps[index + 1][0]
            if self.think > 0:
                asyncio.get_running_loop().call_later(self.think, self.push, user, text)
            else:
                self.push(user, text)
        else:
            del self.step[user]

    def stats(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def pick(share: float) -> float | None:
            if not ordered:
                return None
            return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 3)

        return {
            "completed": self.completed,
            "total": self.total,
            "first_delivery": self.first_delivery,
            "last_reply": self.last_reply,
            "first_poll": self.first_poll,
            "latency_ms": {
                "p50": pick(0.50),
                "p90": pick(0.90),
                "p99": pick(0.99),
                "max": pick(1.0),
            },
            "fake_cpu": time.process_time(),
        }


class BenchVK(FakeVK):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.walker = Walker(lambda user, text: self.message_new(user, text))
        send = self._methods["messages.send"]

        def traced_send(params: dict[str, str]) -> Any:
            result = send(params)
            peers = params.get("peer_ids") or params.get("peer_id") or ""
            for peer in peers.split(","):
                if peer.strip().lstrip("-").isdigit():
                    self.walker.on_sent(int(peer), params.get("message", ""))
            return result

        self._methods["messages.send"] = traced_send

    async def _handle_method(self, request: web.Request) -> web.StreamResponse:
        response = await super()._handle_method(request)
        # Keep memory flat over long runs: nobody reads the call log here.
        if len(self.calls) > 1000:
            del self.calls[:-100]
        return response

    async def _handle_long_poll(self, request: web.Request) -> web.StreamResponse:
        self.walker.polled()
        before = self.delivered_events
        response = await super()._handle_long_poll(request)
        count = self.delivered_events - before
        if count and isinstance(response, web.Response) and response.text:
            text = response.text
            ts = int(text[8 : text.index('"', 8)])  # {"ts": "N", "updates": …}
            for update in self._updates[ts - count : ts]:
                message = update.get("object", {}).get("message")
                if isinstance(message, dict):
                    self.walker.on_delivered(int(message["from_id"]))
        return response


class BenchTelegram(FakeTelegram):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The benchmark's administrator, tg:1 (bench/common.py write_config), has started the
        # bot, as a real one must have: the appeals' notifications reach them.
        self.known_chats.add(1)
        self.walker = Walker(lambda user, text: self.message(user, text))
        send = self._methods["sendMessage"]

        def traced_send(fields: dict[str, str], files: dict[str, bytes]) -> Any:
            result = send(fields, files)
            chat = fields.get("chat_id", "")
            if chat.lstrip("-").isdigit():
                self.walker.on_sent(int(chat), str(result.get("text", "")))
            return result

        self._methods["sendMessage"] = traced_send

    async def _handle_method(self, request: web.Request) -> web.StreamResponse:
        response = await super()._handle_method(request)
        if len(self.calls) > 1000:
            del self.calls[:-100]
        return response

    async def _get_updates(
        self, fields: dict[str, str], files: dict[str, bytes]
    ) -> list[dict[str, Any]]:
        self.walker.polled()
        batch = await super()._get_updates(fields, files)
        for update in batch:
            message = update.get("message")
            if isinstance(message, dict):
                self.walker.on_delivered(int(message["chat"]["id"]))
        return batch


def _json(value: Any) -> web.Response:
    return web.Response(text=json.dumps(value), content_type="application/json")


def control_app(fake: BenchVK | BenchTelegram) -> web.Application:
    async def walk(request: web.Request) -> web.Response:
        body = await request.json()
        steps = [
            (str(text), None if marker is None else str(marker)) for text, marker in body["steps"]
        ]
        think = float(body.get("think", 0.0))
        fake.walker.start(int(body["first_user"]), int(body["residents"]), steps, think)
        return _json({"ok": True})

    async def stats(request: web.Request) -> web.Response:
        result = fake.walker.stats()
        result["sent"] = len(fake.sent)
        result["rate_errors"] = fake.rate_errors
        result["errors"] = fake.errors[-5:]
        return _json(result)

    async def reset(request: web.Request) -> web.Response:
        fake.walker.reset()
        return _json({"ok": True})

    app = web.Application()
    app.router.add_post("/walk", walk)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    return app


async def serve(kind: str, port_file: Path, hold: float) -> None:
    fake: BenchVK | BenchTelegram
    fake = BenchVK(777, hold_seconds=hold) if kind == "vk" else BenchTelegram(hold_seconds=hold)
    await fake.start()
    runner = web.AppRunner(control_app(fake), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    api_url = fake.api_url if isinstance(fake, BenchVK) else fake.url
    info = {
        "url": fake.url,
        "api_url": api_url,
        "control": f"http://127.0.0.1:{runner.addresses[0][1]}",
        "pid": os.getpid(),
    }
    partial = port_file.with_name(port_file.name + ".partial")
    partial.write_text(json.dumps(info), "utf-8")
    os.replace(partial, port_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()
    await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.serve_bench")
    parser.add_argument("kind", choices=["vk", "telegram"])
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--hold", type=float, default=0.2, help="seconds a long poll is held")
    args = parser.parse_args()
    asyncio.run(serve(args.kind, args.port_file, args.hold))


if __name__ == "__main__":
    main()
