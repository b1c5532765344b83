"""The bare echo bots the pipeline benchmark compares against (library-notes.md §5):

    python -m bench.echo vk URL        vkbottle Bot, one handler: message.answer(text)
    python -m bench.echo telegram URL  aiogram Dispatcher, one handler: message.answer(text)

URL is the fake's API address. Logging at WARNING to stderr, as the product is run.
Runs until SIGTERM. Run it in a scratch directory: vkbottle writes `.vkbottle/` files there.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from loguru import logger

from bench.common import VK_TOKEN
from tests.fakes.telegram import TOKEN as TG_TOKEN


async def _until_signal(task: asyncio.Task[object]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    task.cancel()


async def vk(url: str) -> None:
    from vkbottle import API, Bot
    from vkbottle.bot import Message

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    api = API(VK_TOKEN)
    api.API_URL = url if url.endswith("/") else url + "/"
    bot = Bot(api=api)

    @bot.on.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text)

    task = asyncio.create_task(bot.run_polling())
    await _until_signal(task)  # type: ignore[arg-type]


async def telegram(url: str) -> None:
    from aiogram import Bot, Dispatcher
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.types import Message

    logging.basicConfig(level=logging.WARNING)
    server = TelegramAPIServer.from_base(url.rstrip("/"))
    bot = Bot(TG_TOKEN, session=AiohttpSession(api=server))
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    task = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, polling_timeout=25)
    )
    await _until_signal(task)  # type: ignore[arg-type]


def main() -> None:
    kind, url = sys.argv[1], sys.argv[2]
    asyncio.run(vk(url) if kind == "vk" else telegram(url))


if __name__ == "__main__":
    main()
