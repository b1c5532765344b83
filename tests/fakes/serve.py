"""A fake messenger server in a process of its own, for tests that run the bot as a real
process (tests/test_process.py):

    python -m tests.fakes.serve vk --port-file F [--group-id 777] [--hold 0.2]
    python -m tests.fakes.serve telegram --port-file F [--hold 0.2]

It starts the fake (tests/fakes/vk.py or tests/fakes/telegram.py) on 127.0.0.1 with any free
port, and beside it a small control API on a second free port, then writes
{"url", "api_url", "control", "pid"} as JSON to F (atomically: the file appears complete or
not at all) and serves until SIGTERM or SIGINT.

The control API speaks JSON. Common to both fakes:

    GET  /state     what the fake saw: "sent" (the distinct messages people were shown),
                    "calls" (every API call with its parameters), "answered_errors",
                    "errors" (bugs in the fake), "holding" (long polls held now),
                    "stalled" (answers held now by /stall)
    POST /fail      {"method", "error_code", "times", "http_status"?, "body"?}  fail_method
    POST /drop      {"method", "times"}   the connections of the next calls are cut
    POST /stall     {"method", "chat"}    the next successful call of `method` to `chat` is
                    carried out (the message is shown and recorded) but its HTTP answer is
                    held until /release: the bot cannot know that it was delivered
    POST /release   let every held answer go
    POST /heal      forget the failures still queued by /fail and /drop

VK only:  POST /message_new {"from_id", "text", "payload"?},
          POST /message_event {"user_id", "payload"}.
Telegram: POST /message {"user_id", "text"}, POST /callback {"user_id", "data"}.
Each returns the update it pushed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVK


class _Stall:
    """Hold the answer of one successful call of `method` to `chat` until released."""

    def __init__(self) -> None:
        self.rules: list[tuple[str, str]] = []
        self.held = 0
        self._release = asyncio.Event()

    def add(self, method: str, chat: str) -> None:
        self.rules.append((method, chat))

    def take(self, method: str, chat: str) -> bool:
        if (method, chat) in self.rules:
            self.rules.remove((method, chat))
            return True
        return False

    async def hold(self) -> None:
        self.held += 1
        try:
            await self._release.wait()
        finally:
            self.held -= 1

    def release(self) -> None:
        self._release.set()
        self._release = asyncio.Event()


class ServedVK(FakeVK):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stall = _Stall()

    async def _handle_method(self, request: web.Request) -> web.StreamResponse:
        response = await super()._handle_method(request)
        # The body cannot be read twice; this request's parameters are the latest call
        # recorded (nothing else ran since: the fake's methods do not await).
        call = self.calls[-1] if self.calls else {}
        ok = isinstance(response, web.Response) and '"response"' in (response.text or "")
        if ok and self.stall.take(call.get("method", ""), call.get("peer_id", "")):
            await self.stall.hold()
        return response

    def state(self) -> dict[str, Any]:
        return {
            "sent": [dataclasses.asdict(m) for m in self.sent],
            "calls": self.calls,
            "answered_errors": self.answered_errors,
            "errors": self.errors,
            "holding": self._holding,
            "stalled": self.stall.held,
            "delivered_events": self.delivered_events,
        }


class ServedTelegram(FakeTelegram):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stall = _Stall()

    async def _execute(
        self, method: str, fields: dict[str, str], files: dict[str, bytes]
    ) -> web.Response:
        response = await super()._execute(method, fields, files)
        if '"ok": true' in (response.text or "") and self.stall.take(
            method, fields.get("chat_id", "")
        ):
            await self.stall.hold()
        return response

    def state(self) -> dict[str, Any]:
        return {
            "sent": [dataclasses.asdict(m) for m in self.sent],
            "calls": self.calls,
            "answered_errors": self.answered_errors,
            "errors": self.errors,
            "holding": self._holding,
            "stalled": self.stall.held,
            "delivered_events": self.delivered_updates,
        }


def _json(value: Any) -> web.Response:
    return web.Response(
        text=json.dumps(value, ensure_ascii=False, default=repr), content_type="application/json"
    )


def control_app(fake: ServedVK | ServedTelegram) -> web.Application:
    async def state(request: web.Request) -> web.Response:
        return _json(fake.state())

    async def fail(request: web.Request) -> web.Response:
        body = await request.json()
        extra: dict[str, Any] = {}
        if isinstance(fake, ServedVK):
            if "http_status" in body:
                extra["http_status"] = int(body["http_status"])
            if "body" in body:
                extra["body"] = str(body["body"])
        else:
            if "retry_after" in body:
                extra["retry_after"] = int(body["retry_after"])
            if "body" in body:
                extra["body"] = str(body["body"])
        fake.fail_method(
            str(body["method"]), int(body["error_code"]), int(body.get("times", 1)), **extra
        )
        return _json({"ok": True})

    async def drop(request: web.Request) -> web.Response:
        body = await request.json()
        fake.drop_connections(str(body["method"]), int(body.get("times", 1)))
        return _json({"ok": True})

    async def stall(request: web.Request) -> web.Response:
        body = await request.json()
        fake.stall.add(str(body["method"]), str(body["chat"]))
        return _json({"ok": True})

    async def release(request: web.Request) -> web.Response:
        fake.stall.release()
        return _json({"ok": True})

    async def heal(request: web.Request) -> web.Response:
        fake._failures.clear()
        return _json({"ok": True})

    app = web.Application()
    app.router.add_get("/state", state)
    app.router.add_post("/fail", fail)
    app.router.add_post("/drop", drop)
    app.router.add_post("/stall", stall)
    app.router.add_post("/release", release)
    app.router.add_post("/heal", heal)

    if isinstance(fake, ServedVK):
        vk = fake

        async def message_new(request: web.Request) -> web.Response:
            body = await request.json()
            return _json(
                vk.message_new(int(body["from_id"]), str(body["text"]), payload=body.get("payload"))
            )

        async def message_event(request: web.Request) -> web.Response:
            body = await request.json()
            return _json(vk.message_event(int(body["user_id"]), dict(body["payload"])))

        app.router.add_post("/message_new", message_new)
        app.router.add_post("/message_event", message_event)
    else:
        tg = fake

        async def message(request: web.Request) -> web.Response:
            body = await request.json()
            return _json(tg.message(int(body["user_id"]), str(body["text"])))

        async def callback(request: web.Request) -> web.Response:
            body = await request.json()
            return _json(tg.callback(int(body["user_id"]), str(body["data"])))

        app.router.add_post("/message", message)
        app.router.add_post("/callback", callback)
    return app


def write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, "utf-8")
    os.replace(partial, path)


async def serve(kind: str, port_file: Path, group_id: int, hold: float) -> None:
    fake: ServedVK | ServedTelegram
    if kind == "vk":
        fake = ServedVK(group_id, hold_seconds=hold)
    else:
        fake = ServedTelegram(hold_seconds=hold)
    await fake.start()
    runner = web.AppRunner(control_app(fake), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    control = f"http://127.0.0.1:{runner.addresses[0][1]}"
    api_url = fake.api_url if isinstance(fake, ServedVK) else fake.url
    info = {"url": fake.url, "api_url": api_url, "control": control, "pid": os.getpid()}
    write_atomically(port_file, json.dumps(info))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    fake.stall.release()
    with contextlib.suppress(Exception):
        await runner.cleanup()
    await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.serve")
    parser.add_argument("kind", choices=["vk", "telegram"])
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--group-id", type=int, default=777)
    parser.add_argument("--hold", type=float, default=0.2, help="seconds a long poll is held")
    args = parser.parse_args()
    asyncio.run(serve(args.kind, args.port_file, args.group_id, args.hold))


if __name__ == "__main__":
    main()
