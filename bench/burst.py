"""Bursts of answers against the messengers' send limits: `python -m bench burst
[--messages 1000] [--platforms vk,telegram] [--quick]`.

The real App runs in this process with one channel (VK or Telegram) and its configured
limits (the example's: VK send_rate 20/s; Telegram 30/s and 1/s per chat), against the fake
of that messenger in this process, which enforces the documented limits and answers VK
error 6 / Telegram 429 when they are exceeded (tests/fakes/vk.py rate_limit, telegram.py
rate_limit/per_chat_limit). The answers are queued at once through the product's own API:
one transaction of `tx.outbox.add(...)` rows (`Outgoing(...).body()`), then
`app.delivery.wake()`, as the engine does when administrators answer.

Cases: N answers to N chats (one each), and on Telegram also N/5 answers to N/50 chats
(ten each), where the per-chat limit (1/s × chats) is the bound. Figures: time from the
wake-up to the last message shown, the achieved rate (messages / that time) as a share of
the binding limit, and the limit errors the fake answered. The fake counts calls in a
sliding one-second window, so a sender may put `limit` messages out at once at the start:
with few messages per chat the share can exceed 100 % without any error. The fake shares
the process; at these rates it costs little.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loguru import logger

from bench.common import print_table, write_config
from bot.app import App
from bot.config import load_config
from handlers.messages import Outgoing
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVK

VK_LIMIT = 20.0
TG_LIMIT = 30.0
TG_PER_CHAT = 1.0
ANSWER = "Ответ по обращению №{n}: заявка передана в работу, срок — до конца недели."


async def _burst(
    platform: str, folder: Path, chats: int, per_chat: int
) -> tuple[float, int, int, int]:
    """Seconds to deliver chats × per_chat answers, messages shown, duplicates, limit errors."""
    fake: Any
    if platform == "vk":
        from bot.channels.vk import VkChannel

        fake = FakeVK(777, hold_seconds=0.05)
        fake.rate_limit = VK_LIMIT
        await fake.start()
        config = load_config(write_config(folder, vk=fake.api_url))
        channel: Any = VkChannel(config.vk)
    else:
        from bot.channels.telegram import TelegramChannel

        fake = FakeTelegram(hold_seconds=0.05)
        fake.rate_limit = TG_LIMIT
        fake.per_chat_limit = TG_PER_CHAT
        await fake.start()
        config = load_config(write_config(folder, telegram=fake.url))
        channel = TelegramChannel(config.telegram)
    users = [500_000 + i for i in range(chats)]
    if platform == "telegram":
        fake.known_chats.update(users)  # each resident wrote to the bot before
    app = App(config, [channel])
    await app.start()
    try:
        await fake.wait_for(lambda: fake._holding > 0, within=30, what="a long poll")
        await asyncio.sleep(0.5)  # start-up calls (setMyCommands, …) out of the way
        before = len(fake.sent)
        errors = fake.rate_errors
        total = chats * per_chat
        code = "tg" if platform == "telegram" else "vk"
        async with app.db.transaction() as tx:
            number = 0
            for round_ in range(per_chat):
                for user in users:
                    number += 1
                    text = ANSWER.format(n=number) + f" ({round_ + 1})"
                    body = Outgoing(code, str(user), text).body()
                    await tx.outbox.add(code, str(user), body, app.clock())
        loop = asyncio.get_running_loop()
        began = loop.time()
        app.delivery.wake()
        await fake.wait_for(
            lambda: len(fake.sent) - before >= total,
            within=total / 5 + 60,
            what=f"{total} messages",
        )
        elapsed = loop.time() - began
        await asyncio.sleep(0.5)
        shown = len(fake.sent) - before
        return elapsed, shown, shown - total, fake.rate_errors - errors
    finally:
        await app.stop(grace_seconds=1)
        await fake.stop()


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench burst", description=__doc__)
    parser.add_argument("--messages", type=int, default=1000, help="answers queued at once")
    parser.add_argument("--platforms", default="vk,telegram")
    parser.add_argument("--quick", action="store_true", help="200 answers")
    args = parser.parse_args(argv)
    n = 200 if args.quick else args.messages
    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    cases: list[tuple[str, str, int, int, float]] = []
    if "vk" in args.platforms:
        cases.append(("VK", "vk", n, 1, VK_LIMIT))
    if "telegram" in args.platforms:
        cases.append(("Telegram", "telegram", n, 1, TG_LIMIT))
        chats = max(1, n // 50)
        cases.append(("Telegram", "telegram", chats, 10, min(TG_LIMIT, chats * TG_PER_CHAT)))
    rows: list[tuple[str, ...]] = [
        ("burst", "limit/s", "seconds", "msgs/s", "of limit", "shown", "dup", "limit errors")
    ]
    for label, platform, chats, per_chat, limit in cases:
        with tempfile.TemporaryDirectory(prefix="appeals-bench-") as name:
            elapsed, shown, duplicates, errors = asyncio.run(
                _burst(platform, Path(name), chats, per_chat)
            )
        total = chats * per_chat
        rate = total / elapsed
        rows.append(
            (
                f"{label}: {total:,} answers to {chats:,} chats",
                f"{limit:g}",
                f"{elapsed:.1f}",
                f"{rate:.1f}",
                f"{rate / limit:.0%}",
                f"{shown:,}",
                str(duplicates),
                str(errors),
            )
        )
        print(f"  {rows[-1][0]}: {elapsed:.1f} s, {errors} limit errors", flush=True)
    print()
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
