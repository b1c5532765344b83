"""The console channel: a person at a terminal (or a script on a pipe) talks to the bot.

Each input line is one message. Buttons are shown under the text (numbered on choice
steps); typing the label or the number presses them. `/photo URL` attaches a photo and
`/location LAT LON` shares a place, standing in for what messengers send. After each line
the channel waits until the replies are delivered, so a script's output is in order; EOF
ends the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import TextIO
from urllib.parse import urlsplit

from bot.channels.base import Capabilities, Channel, Intake, Runtime
from bot.render import plain_text
from handlers import texts
from handlers.messages import Incoming, Location, Outgoing, Photo

PLATFORM = "console"
RESIDENT = "resident"
MODERATOR = "moderator"
ADMIN_PREFIX = "admin:"
# `/photo URL`: a web link, as long as a browser would take (messengers send links, never
# local files or scripts).
PHOTO_URL_MAX = 2048
PHOTO_SCHEMES = ("http", "https")


def photo_url(text: str) -> str | None:
    """The link of `/photo URL` when it is an http(s) link with a host, at most
    PHOTO_URL_MAX characters, without spaces or control characters; None otherwise."""
    if not text or len(text) > PHOTO_URL_MAX:
        return None
    if any(c.isspace() or not c.isprintable() for c in text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. a malformed IPv6 host
        return None
    if parts.scheme.lower() not in PHOTO_SCHEMES or not parts.hostname:
        return None
    return text


def _fold(text: str) -> str:
    """How a typed settlement is compared: case and ё/е do not count."""
    return text.casefold().replace("ё", "е")


class ConsoleChannel(Channel):
    platform = PLATFORM
    capabilities = Capabilities(buttons=False, photos=False, max_text=100_000)
    flood_control = False  # one person at a keyboard types everything, every part

    def __init__(
        self,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        settle: Callable[[], Awaitable[None]] | None = None,
        display_name: str = "Иван Петров",
        settlements: Mapping[str, str] | None = None,
    ) -> None:
        self._stdin = stdin or sys.stdin
        self._stdout = stdout or sys.stdout
        self.settle = settle
        self._display_name = display_name
        # code → title of the deployment's settlements, for `/as admin:<code>`; None: any
        # code is taken as typed.
        self.settlements: Mapping[str, str] | None = settlements
        self.user_id = RESIDENT
        self._task: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()
        self._line_count = 0

    @property
    def interactive(self) -> bool:
        return self._stdin.isatty()

    async def start(self, runtime: Runtime) -> None:
        self._task = asyncio.create_task(self._read_loop(runtime.intake), name="console-input")

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def send(self, message: Outgoing) -> list[str]:
        text = plain_text(message, self.capabilities)
        if message.chat_id != self.user_id:
            text = f"[→ {message.platform}:{message.chat_id}]\n{text}"
        self._write(text)
        self._line_count += 1
        return [str(self._line_count)]

    def _prompt(self) -> None:
        if self.interactive:
            self._stdout.write("\n> ")
            self._stdout.flush()

    async def _read_loop(self, intake: Intake) -> None:
        lines = _lines_from(self._stdin)
        try:
            while True:
                self._prompt()
                line = await lines.get()
                if line is None:
                    break
                message = self.translate(line)
                if message is None:
                    continue
                await intake(message)
                if self.settle is not None:
                    await self.settle()
        finally:
            self.finished.set()

    def switch_identity(self, who: str) -> bool:
        """`/as resident`, `/as moderator`, `/as admin:<settlement>`: who is typing now.
        The demo's configuration makes console:moderator and console:admin-<code> staff.
        The settlement is its code or its title; one the deployment does not have changes
        nothing and says so."""
        who = who.strip()
        if who in (RESIDENT, MODERATOR):
            self.user_id = who
        elif who.startswith(ADMIN_PREFIX) and who[len(ADMIN_PREFIX) :].strip():
            name = who[len(ADMIN_PREFIX) :].strip()
            code = self._settlement_code(name)
            if code is None:
                self._write(
                    texts.DEMO_AS_UNKNOWN_SETTLEMENT.format(
                        name=name,
                        who=f"{PLATFORM}:{self.user_id}",
                        codes=", ".join(self.settlements or ()),
                    )
                )
                return False
            self.user_id = f"admin-{code}"
        else:
            self._write(texts.DEMO_AS_USAGE)
            return False
        self._write(texts.DEMO_AS.format(who=f"{PLATFORM}:{self.user_id}"))
        return True

    def _settlement_code(self, name: str) -> str | None:
        if self.settlements is None:
            return name
        if name in self.settlements:
            return name
        folded = _fold(name)
        return next(
            (
                code
                for code, title in self.settlements.items()
                if folded in (_fold(code), _fold(title))
            ),
            None,
        )

    def _write(self, text: str) -> None:
        self._stdout.write(f"\n{text}\n")
        self._stdout.flush()

    def translate(self, line: str) -> Incoming | None:
        """One typed line as an incoming message (None for an empty line, `/as`, or a
        `/photo` whose link is not a web link: the channel answers those itself)."""
        text = line.rstrip("\n")
        if not text.strip():
            return None
        if text.strip().startswith("/as ") or text.strip() == "/as":
            self.switch_identity(text.strip()[3:])
            return None
        photos: tuple[Photo, ...] = ()
        location: Location | None = None
        command, _, rest = text.strip().partition(" ")
        if command == "/photo" and rest.strip():
            url = photo_url(rest.strip())
            if url is None:
                self._write(texts.DEMO_PHOTO_BAD.format(limit=PHOTO_URL_MAX))
                return None
            photos = (Photo(platform=PLATFORM, ref=url, url=url),)
            text = ""
        elif command == "/location":
            try:
                lat, lon = (float(v.replace(",", ".")) for v in rest.split())
                location = Location(lat, lon)
                text = ""
            except ValueError:
                pass  # not two numbers: it goes to the dialogue as typed text
        return Incoming(
            platform=PLATFORM,
            chat_id=self.user_id,
            user_id=self.user_id,
            received_at=datetime.now(UTC),
            text=text,
            display_name=self._display_name if self.user_id == RESIDENT else "",
            photos=photos,
            location=location,
        )


def _lines_from(stream: TextIO) -> asyncio.Queue[str | None]:
    """Read `stream` in a daemon thread (a blocked read never holds up exit); None at EOF."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def pump() -> None:
        try:
            for line in stream:
                loop.call_soon_threadsafe(queue.put_nowait, line)
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(RuntimeError):  # the loop may be closed already
                loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, name="console-stdin", daemon=True).start()
    return queue
