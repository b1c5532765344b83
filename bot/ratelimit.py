"""Pacing sends to a messenger's documented limits (SPEC §7, §10 send_rate/per_chat_rate):
calls leave evenly spaced, never in bursts, so that a queue of 500 answers never trips
flood control (VK error 6/9, Telegram 429)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

MAX_CHATS_TRACKED = 50_000
# Calls leave 5 % further apart than the limit asks: network jitter can bring two calls
# closer together on the way, and the platform counts them when they arrive.
SAFETY_MARGIN = 1.05
CHAT_POLL_SECONDS = 0.05


class RateLimiter:
    """At most `per_second` calls per second overall and `per_chat` per second into one
    chat; 0 means no limit.

    Callers pass one gate in turn, and each passes at least one interval after the one
    before it *actually* did: after the event loop was held up, waiting callers do not all
    go at once. A call waits for its chat's turn before queueing at the gate, so it does not
    hold up calls to other chats; a chat's next turn counts from when its call ended."""

    def __init__(self, per_second: float, per_chat: float = 0.0) -> None:
        self._interval = SAFETY_MARGIN / per_second if per_second > 0 else 0.0
        self._chat_interval = SAFETY_MARGIN / per_chat if per_chat > 0 else 0.0
        self._gate = asyncio.Lock()
        self._last = float("-inf")
        self._chat_ready: OrderedDict[str, float] = OrderedDict()

    @asynccontextmanager
    async def turn(self, chat_id: str) -> AsyncIterator[None]:
        """Wait for this call's turn; make the call in the block."""
        loop = asyncio.get_running_loop()
        if self._chat_interval:
            # A short poll: the chat's turn may be moved by a call that is still going.
            while (wait := self._chat_ready.get(chat_id, 0.0) - loop.time()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(min(wait, CHAT_POLL_SECONDS))
            # Claimed now, so a second call to the chat waits for this one to end.
            self._chat_ready[chat_id] = float("inf")
        try:
            if self._interval:
                async with self._gate:
                    wait = self._last + self._interval - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    self._last = loop.time()
            yield
        finally:
            if self._chat_interval:
                self._chat_ready[chat_id] = loop.time() + self._chat_interval
                self._chat_ready.move_to_end(chat_id)
                while len(self._chat_ready) > MAX_CHATS_TRACKED:
                    self._chat_ready.popitem(last=False)
