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
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TextIO

from bot.channels.base import Capabilities, Channel, Intake, Runtime
from bot.render import plain_text
from handlers import texts
from handlers.messages import Incoming, Location, Outgoing, Photo

PLATFORM = "console"
RESIDENT = "resident"
MODERATOR = "moderator"


class ConsoleChannel(Channel):
    platform = PLATFORM
    capabilities = Capabilities(buttons=False, photos=False, max_text=100_000)

    def __init__(
        self,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        settle: Callable[[], Awaitable[None]] | None = None,
        display_name: str = "Иван Петров",
    ) -> None:
        self._stdin = stdin or sys.stdin
        self._stdout = stdout or sys.stdout
        self.settle = settle
        self._display_name = display_name
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
        The demo's configuration makes console:moderator and console:admin-<code> staff."""
        who = who.strip()
        if who in (RESIDENT, MODERATOR):
            self.user_id = who
        elif who.startswith("admin:") and who[6:]:
            self.user_id = f"admin-{who[6:]}"
        else:
            self._write(texts.DEMO_AS_USAGE)
            return False
        self._write(texts.DEMO_AS.format(who=f"{PLATFORM}:{self.user_id}"))
        return True

    def _write(self, text: str) -> None:
        self._stdout.write(f"\n{text}\n")
        self._stdout.flush()

    def translate(self, line: str) -> Incoming | None:
        """One typed line as an incoming message (None for an empty line or `/as`)."""
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
            url = rest.strip()
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
