"""One address for several fake bots: each request is forwarded, as it came, to the fake of
the token it carries, wherever the platform puts it (Telegram: in the path, /bot{token}/…
and /file/bot{token}/…; OK: the `access_token` query parameter; MAX: the Authorization
header). So two bots of a messenger share one `api_url`, as in a configuration with
[[x.communities]] (SPEC §14), while each fake stays a one-bot server."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from tests.fakes.base import LoopbackFake

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}
)


class TokenRouter(LoopbackFake):
    def __init__(self) -> None:
        self.upstreams: dict[str, str] = {}  # token -> the fake's url
        self._session: aiohttp.ClientSession | None = None

    def add(self, token: str, fake: LoopbackFake) -> None:
        self.upstreams[token] = fake.url

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{tail:.*}", self._forward)
        app.router.add_route("*", "/file/bot{token}/{tail:.*}", self._forward)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._session = aiohttp.ClientSession()
        await self._serve(app)

    async def stop(self) -> None:
        await self._close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        token = (
            request.match_info.get("token")
            or request.query.get("access_token")
            or request.headers.get("Authorization", "")
        )
        upstream = self.upstreams.get(token)
        if upstream is None:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = await request.read()
        async with self._session.request(
            request.method, upstream + request.path_qs, data=body, headers=headers
        ) as answer:
            content = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
            return web.Response(status=answer.status, body=content, headers=kept)
