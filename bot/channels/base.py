"""What every messenger channel is: it receives updates, normalizes them, and renders and
sends normalized outgoing messages. It translates; it never decides what to say."""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from loguru import logger

from bot.channels.runtime import Intake, Runtime
from bot.photos import PhotoUnavailable, fetch_url
from handlers.messages import Outgoing, Photo
from storage.db import Store

__all__ = ["Capabilities", "Channel", "Intake", "Liveness", "Runtime", "SendError"]


@dataclass(frozen=True)
class Capabilities:
    """What a channel can render. Where it cannot, bot/render.py degrades the message
    (buttons become a numbered list, photos become links) in one place for all channels."""

    buttons: bool
    photos: bool
    max_text: int


class SendError(Exception):
    """A send failed. `retryable`: worth trying again later (network, 5xx, rate limit);
    `retry_after`: seconds the platform asked to wait, if it said."""

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class Liveness:
    """Whether a channel is receiving updates, as /healthz and /metrics report it.

    `receiving`: the verdict; `how`: "long poll", "webhook" or "" (a channel that does not
    say, such as the console: never judged down); `detail`: why, in a few words;
    `last_seconds_ago`: since the last completed poll or webhook, None if none yet."""

    receiving: bool
    how: str
    detail: str
    last_seconds_ago: float | None


class Channel(ABC):
    """A messenger channel. Besides receiving and sending, it tells whether it is receiving
    (`liveness`), from a few marks it sets itself, each in one place:

    - a long-poll channel calls `expect_polls()` when it starts and `mark_received()` after
      every completed poll, with or without updates. It is down once no poll has completed
      for longer than the limit (90 s by default, [web] health_poll_seconds: VK and Telegram
      hold a poll 25 s, so three quiet polls in a row are missed before it says so). It runs
      its poll loop through `poll_alone()`: while another instance on the same database
      holds the poll (SPEC §15), this one is on standby, healthy with detail "standby".
    - a webhook channel calls `expect_webhooks(set_up=…)` when it starts, `mark_set_up()`
      once the platform has accepted its address (Telegram setWebhook, the OK
      subscription), and `mark_received()` for every webhook. It is judged by its set-up,
      not by traffic: a quiet night brings no webhooks and is no fault. One without a set-up
      call (VK Callback API: the address is entered in VK's settings) counts as receiving
      while the server runs. The time of its last webhook is reported all the same.
    """

    platform: str
    capabilities: Capabilities
    # False where one person at a keyboard types everything (the demo's console): the
    # flood limit of [limits] messages_per_minute protects from strangers, not from them.
    flood_control: bool = True
    # Liveness marks (monotonic seconds); class defaults, so subclasses need no __init__.
    _receives_by: Literal["", "poll", "webhook"] = ""
    _watched_since: float = 0.0
    _received_at: float | None = None
    _needs_set_up: bool = False
    _set_up_done: bool = False
    _tasks: list[asyncio.Task[None]]  # the channel's own (poll loops, set-ups): __init__'s
    poll_restart_seconds: float = 5.0  # a poll loop that failed starts again after this
    _leading: int = 0  # long polls (one per community) this instance holds the lock of

    def expect_polls(self) -> None:
        """This channel receives by long polling: it must complete polls to be receiving."""
        self._receives_by = "poll"
        self._watched_since = time.monotonic()

    def expect_webhooks(self, *, set_up: bool) -> None:
        """This channel receives webhooks; `set_up`: only once `mark_set_up()` is called."""
        self._receives_by = "webhook"
        self._watched_since = time.monotonic()
        self._needs_set_up = set_up
        self._set_up_done = False

    def mark_received(self) -> None:
        """A long poll completed (with or without updates), or a webhook arrived."""
        self._received_at = time.monotonic()

    def mark_set_up(self) -> None:
        """The platform accepted the webhook address (setWebhook, subscription)."""
        self._set_up_done = True

    async def poll_alone(
        self, db: Store, key: str, poll: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        """Run the poll loop `poll` on one instance at a time of those sharing `db`, under
        its lock `key` (`Store.exclusively`). Until this instance holds a lock of the
        channel's (one per community) the channel is on standby: not polling and not
        failing, so that /healthz does not get a healthy standby restarted; from the moment
        it holds one it is judged by its polls."""

        async def leading() -> None:
            self._leading += 1
            try:
                while True:
                    self._watched_since = time.monotonic()  # judged by its polls from now
                    try:
                        await poll()
                        return
                    except asyncio.CancelledError:
                        raise
                    except Exception as error:  # a poll loop never dies silently
                        logger.warning(
                            "{} long poll stopped ({}), starting again in {:.0f} s",
                            self.platform,
                            type(error).__name__,
                            self.poll_restart_seconds,
                        )
                        await asyncio.sleep(self.poll_restart_seconds)
            finally:
                self._leading -= 1  # the lock was lost (or the app stops): waiting again

        await db.exclusively(key, leading)

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        """Run a task of the channel's own (a poll loop, a set-up) until `_stop_tasks`."""
        self._tasks.append(asyncio.create_task(coroutine, name=name))

    async def _stop_tasks(self, pending: Iterable[asyncio.Future[Any]] = ()) -> None:
        """Cancel the channel's own tasks and wait for their end (their errors were logged
        where they happened), then let `pending` (answers to button presses) finish."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for future in list(pending):
            with contextlib.suppress(Exception):
                await future

    def liveness(self, poll_limit: float, now: float | None = None) -> Liveness:
        """The verdict at `now` (time.monotonic()); see the class docstring."""
        now = time.monotonic() if now is None else now
        ago = None if self._received_at is None else max(0.0, now - self._received_at)
        if self._receives_by == "poll" and not self._leading:
            return Liveness(True, "long poll", "standby", ago)
        if self._receives_by == "poll":
            # Since its last poll, or since it (re)started polling: a poll of an earlier turn
            # as the holder, before another instance held the lock, does not count.
            quiet = now - max(self._received_at or 0.0, self._watched_since)
            if quiet > poll_limit:
                return Liveness(False, "long poll", f"no poll completed for {quiet:.0f} s", ago)
            return Liveness(True, "long poll", "polling", ago)
        if self._receives_by == "webhook":
            if self._needs_set_up and not self._set_up_done:
                return Liveness(False, "webhook", "webhook not set up with the platform", ago)
            return Liveness(True, "webhook", "webhook set up", ago)
        return Liveness(True, "", "", ago)

    @abstractmethod
    async def start(self, runtime: Runtime) -> None:
        """Begin receiving; every update is handed to `runtime.intake`. Returns once
        started (webhook routes added to `runtime.web`, polling running in a task)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop receiving. Sending may still be used until the app closes."""

    async def download(self, photo: Photo) -> bytes:
        """The bytes of a photo this channel received, for re-upload elsewhere. By default
        its public URL; a channel whose files need its token (Telegram) overrides this.
        Raises PhotoUnavailable."""
        if not photo.url:
            raise PhotoUnavailable("no URL")
        return await fetch_url(photo.url)

    @abstractmethod
    async def send(self, message: Outgoing) -> list[str]:
        """Deliver one message; returns the platform ids of the messages that carried it.
        Raises SendError when it could not."""
