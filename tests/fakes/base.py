"""What every fake messenger server shares: serving its aiohttp app on 127.0.0.1 on a free
port, stopping, `async with`, and waiting for a condition in a test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Self

from aiohttp import web


class LoopbackFake:
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        await self._close()

    async def _serve(self, app: web.Application) -> None:
        """Listen on 127.0.0.1 (a free port); `url` says where."""
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def _close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            with contextlib.suppress(Exception):
                await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_for(
        self, predicate: Callable[[], bool], within: float = 5.0, what: str = "condition"
    ) -> None:
        """Poll `predicate` until it holds; AssertionError after `within` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not predicate():
            if loop.time() > deadline:
                name = type(self).__name__
                raise AssertionError(f"{name}: waited {within}s in vain for {what}")
            await asyncio.sleep(0.005)
