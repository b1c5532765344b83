"""The one HTTP server for every webhook (VK Callback API, Telegram, OK) and /healthz.

Channels add their routes while starting; the server listens only if some channel did.
Bodies over MAX_BODY_BYTES are refused by aiohttp before they are read (SPEC §12).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from loguru import logger

MAX_BODY_BYTES = 1024 * 1024  # every messenger's update is far below this

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebServer:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._app = web.Application(client_max_size=MAX_BODY_BYTES)
        self._app.router.add_get("/healthz", self._healthz)
        self._runner: web.AppRunner | None = None
        self._routes = 0

    def add_post(self, path: str, handler: Handler) -> None:
        self._app.router.add_post(path, handler)
        self._routes += 1

    @property
    def needed(self) -> bool:
        return self._routes > 0

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        addresses = self._runner.addresses  # the real port when 0 was asked
        if addresses:
            self.port = int(addresses[0][1])
        logger.info("web server listening on {}:{}", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")
