"""The one HTTP server for every webhook (VK Callback API, Telegram, OK), /healthz and
/metrics (SPEC §17).

Channels add their routes while starting; the server listens if some channel did, or if
[web] serve asks for it (long polling only, for /healthz and /metrics). Bodies over
MAX_BODY_BYTES are refused by aiohttp before they are read (SPEC §12).

/metrics tells how the service runs, not whom it serves, but it is for the monitoring on
the inside: the TLS proxy in front forwards the webhook paths only (README, «Deploy»).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from loguru import logger

MAX_BODY_BYTES = 1024 * 1024  # every messenger's update is far below this

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HealthCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]
MetricsText = Callable[[], Awaitable[tuple[bytes, str]]]  # the page, its content type


async def _always_healthy() -> tuple[bool, dict[str, Any]]:
    return True, {"status": "ok"}


class WebServer:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        serve: bool = False,
        health: HealthCheck = _always_healthy,
        metrics: MetricsText | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._serve = serve
        self._health = health
        self._metrics = metrics
        self._app = web.Application(client_max_size=MAX_BODY_BYTES)
        self._app.router.add_get("/healthz", self._healthz)
        if metrics is not None:
            self._app.router.add_get("/metrics", self._metrics_page)
        self._runner: web.AppRunner | None = None
        self._routes = 0

    def add_post(self, path: str, handler: Handler) -> None:
        self._app.router.add_post(path, handler)
        self._routes += 1

    def mount(self, prefix: str, app: web.Application) -> None:
        """Serve a sub-application's routes under `prefix` (the dashboard, SPEC §16)."""
        self._app.add_subapp(prefix, app)
        self._routes += 1

    @property
    def needed(self) -> bool:
        return self._serve or self._routes > 0

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
        healthy, body = await self._health()
        return web.Response(
            status=200 if healthy else 503,
            text=json.dumps(body, ensure_ascii=False),
            content_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    async def _metrics_page(self, request: web.Request) -> web.Response:
        assert self._metrics is not None
        body, content_type = await self._metrics()
        return web.Response(body=body, headers={"Content-Type": content_type})
