"""The Telegram channel, through aiogram 3: getUpdates polling (default) or a webhook on the
shared web server; messages sent with inline keyboards, the main menu as a reply keyboard.

One channel serves every bot of the configuration ([telegram] and each
[[telegram.communities]], SPEC §14), each its own aiogram Bot (its token, its pacing): a
getUpdates loop per bot, or the one webhook path for all of them, which tells them apart by
the secret token Telegram sends with each call (every bot has its own). A person's chat with
one bot is not their chat with another: a message goes out through the bot it names.

Updates are handled one sender's at a time, in order; each bot's getUpdates offset is saved
in the database only after the updates before it were handled, so a restart resumes without
a gap, and an update seen twice is recognised by its update_id (kept apart per bot).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import io
import json
from collections.abc import Hashable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteWebhook,
    GetFile,
    GetUpdates,
    SendMessage,
    SendPhoto,
    SetMyCommands,
    SetWebhook,
)
from aiogram.methods.base import Response
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    BufferedInputFile,
    Update,
)
from aiohttp import web
from loguru import logger
from pydantic import ValidationError

from bot.channels.base import Capabilities, Channel, Runtime, SendError
from bot.channels.lanes import in_sender_order
from bot.channels.telegram_format import (
    ALLOWED_UPDATES,
    INLINE_LIMITS,
    MAX_TEXT,
    PLATFORM,
    NotForUs,
    parse_update,
    reply_markup,
)
from bot.config import TelegramSection, telegram_bot_id
from bot.inbox import Accepted
from bot.pagination import PageMemory, keyboard_pages
from bot.photos import MAX_PHOTO_BYTES, PhotoUnavailable
from bot.render import split_text, utf16_length
from handlers import texts
from handlers.identity import split_identity
from handlers.messages import Keyboard, Outgoing, Photo
from storage.models import InboxRow

OFFSET_KEY = "tg.polling.offset"  # the main bot's; another bot's ends in ".<bot id>"
POLL_TIMEOUT = 25  # seconds Telegram holds a getUpdates call open
MAX_PHOTOS = 10
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SETUP_BACKOFF_MAX = 60.0

# pydantic caches a parametrized model such as `Response[Message]` only weakly, so with
# nothing else holding it the garbage collector takes it within moments, and aiogram's
# check_response builds it again for the next call (~0.25 ms, nearly every send; 15 % of
# the Telegram pipeline's CPU, bench/RESULTS.md). Holding the types we call keeps them.
_RESPONSE_TYPES = tuple(
    Response[method.__returning__]  # type: ignore[name-defined]
    for method in (
        SendMessage,
        SendPhoto,
        GetUpdates,
        AnswerCallbackQuery,
        GetFile,
        SetWebhook,
        DeleteWebhook,
        SetMyCommands,
    )
)


@dataclass
class _Bot:
    """One bot the channel serves: its id in the database (`key`, '' for [telegram]), its
    aiogram Bot and its webhook secret."""

    key: str
    bot: Bot
    secret: str

    @property
    def offset_key(self) -> str:
        return f"{OFFSET_KEY}.{self.key}" if self.key else OFFSET_KEY


class TelegramChannel(Channel):
    platform = PLATFORM
    capabilities = Capabilities(buttons=True, photos=True, max_text=MAX_TEXT)

    def __init__(self, config: TelegramSection) -> None:
        self._config = config
        server = TelegramAPIServer.from_base(config.api_url.rstrip("/"))

        def bot(token: str) -> Bot:
            return Bot(token, session=AiohttpSession(api=server))

        main = _Bot(
            "", bot(config.token.get_secret_value()), config.webhook_secret.get_secret_value()
        )
        self._bots: dict[str, _Bot] = {"": main}
        for entry in config.communities:
            token = entry.token.get_secret_value()
            key = telegram_bot_id(token)
            self._bots[key] = _Bot(key, bot(token), entry.webhook_secret.get_secret_value())
        self._bot = main.bot  # the main bot (tests look at it)
        self._runtime: Runtime | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pages = PageMemory()
        self._answers: set[asyncio.Task[None]] = set()
        self._webhooks_set: set[str] = set()

    # --- receiving -----------------------------------------------------------------------

    async def start(self, runtime: Runtime) -> None:
        self._runtime = runtime
        if self._config.mode == "webhook":
            self.expect_webhooks(set_up=True)  # receiving once setWebhook succeeded
            runtime.web.add_post(self._config.webhook_path, self._webhook)
            runtime.inbox.register(PLATFORM, self._from_inbox)
        else:
            self.expect_polls()
            # One instance at a time polls each bot (several on one database, SPEC §15).
            for bot in self._bots.values():
                self._spawn(
                    self.poll_alone(
                        runtime.db, bot.offset_key, functools.partial(self._poll_forever, bot)
                    ),
                    f"tg-polling-{bot.key or 'main'}",
                )
        for bot in self._bots.values():
            self._spawn(self._set_up(bot), f"tg-setup-{bot.key or 'main'}")

    async def stop(self) -> None:
        await self._stop_tasks(self._answers)
        for bot in self._bots.values():
            await bot.bot.session.close()

    async def _set_up(self, bot: _Bot) -> None:
        """setWebhook (or deleteWebhook for polling) and setMyCommands, retried until done:
        Telegram being unreachable at start-up must not stop the service. Every bot is
        given the same address with its own secret, by which the webhook tells them apart.
        The channel counts as set up once every bot is."""
        pause = 1.0
        while True:
            try:
                if self._config.mode == "webhook":
                    await bot.bot.set_webhook(
                        url=self._config.webhook_url,
                        secret_token=bot.secret,
                        allowed_updates=ALLOWED_UPDATES,
                    )
                    self._webhooks_set.add(bot.key)
                    if len(self._webhooks_set) == len(self._bots):
                        self.mark_set_up()
                    logger.info("telegram webhook set for bot {}", bot.key or "main")
                await self._publish_commands(bot)
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning(
                    "telegram set-up failed ({}), retrying in {:.0f}s", type(error).__name__, pause
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, SETUP_BACKOFF_MAX)

    async def _publish_commands(self, bot: _Bot) -> None:
        """The command menu: residents' commands for everyone, staff commands in the
        private chats of staff members on Telegram."""
        residents = [BotCommand(command=c, description=d) for c, d in texts.TG_COMMANDS]
        await bot.bot.set_my_commands(residents, scope=BotCommandScopeDefault())
        assert self._runtime is not None
        async with self._runtime.db.transaction() as tx:
            staff = [row.identity for row in await tx.staff.all()]
        staff_commands = [BotCommand(command=c, description=d) for c, d in texts.TG_STAFF_COMMANDS]
        for identity in dict.fromkeys(staff):
            platform, user_id = split_identity(identity)
            if platform == PLATFORM and user_id.isdecimal():
                with contextlib.suppress(TelegramBadRequest):  # never wrote to the bot yet
                    await bot.bot.set_my_commands(
                        staff_commands, scope=BotCommandScopeChat(chat_id=int(user_id))
                    )

    async def _poll_forever(self, bot: _Bot) -> None:
        assert self._runtime is not None
        pause = 1.0
        with contextlib.suppress(TelegramAPIError):
            await bot.bot.delete_webhook(drop_pending_updates=False)
        saved = await self._runtime.load(bot.offset_key)
        offset = int(saved) if saved else None
        handle = functools.partial(self._handle, bot=bot)
        while True:
            try:
                updates = await bot.bot.get_updates(
                    offset=offset,
                    timeout=POLL_TIMEOUT,
                    allowed_updates=ALLOWED_UPDATES,
                    request_timeout=POLL_TIMEOUT + 10,
                )
                self.mark_received()
                await in_sender_order(updates, _sender, handle)
                if updates:  # only once handled: a failure polls the same updates again
                    next_offset = updates[-1].update_id + 1
                    await self._runtime.save(bot.offset_key, str(next_offset))
                    offset = next_offset
                pause = 1.0
            except asyncio.CancelledError:
                raise
            except TelegramRetryAfter as error:
                await asyncio.sleep(error.retry_after)
            except Exception as error:
                logger.warning(
                    "telegram polling failed ({}), retrying in {:.0f}s",
                    type(error).__name__,
                    pause,
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, SETUP_BACKOFF_MAX)

    async def _webhook(self, request: web.Request) -> web.StreamResponse:
        """The bot found by its secret (403 for none), the update written to the inbox and
        only then 200 (503 while the inbox is full: Telegram retries)."""
        assert self._runtime is not None
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        bot = None
        for candidate in self._bots.values():  # every one compared: the time tells nothing
            if hmac.compare_digest(given, candidate.secret.encode()) and candidate.secret:
                bot = candidate
        if bot is None:
            logger.warning("telegram webhook refused: wrong or missing secret token")
            return web.Response(status=403, text="forbidden")
        self.mark_received()
        try:
            raw = await request.text()
            update = self._update(raw, bot)
        except (ValueError, UnicodeDecodeError, RecursionError, ValidationError):
            return web.Response(status=400, text="bad request")
        accepted = await self._runtime.inbox.accept(
            PLATFORM, bot.key, f"update:{update.update_id}", str(_sender(update) or ""), raw
        )
        if accepted is Accepted.FULL:
            return web.Response(status=503, text="busy")
        return web.Response(text="ok")

    @staticmethod
    def _update(raw: str, bot: _Bot) -> Update:
        # json.loads, not pydantic's JSON parser: it refuses an escaped lone surrogate in a
        # text, which a person's broken emoji can carry, and the update would be lost.
        return Update.model_validate(json.loads(raw), context={"bot": bot.bot})

    async def _from_inbox(self, row: InboxRow) -> None:
        bot = self._bots.get(row.community)
        if bot is None:  # accepted for a bot since taken out of the config
            logger.warning("telegram update of a bot no longer configured dropped")
            await self._done(row)
            return
        await self._handle(self._update(row.body, bot), bot=bot, row=row)

    async def _handle(self, update: Update, *, bot: _Bot, row: InboxRow | None = None) -> None:
        """One update of `bot`, from getUpdates or from the inbox (`row`, marked done with
        it)."""
        assert self._runtime is not None
        inbox_id = row.id if row is not None else None
        try:
            parsed = parse_update(update, bot.bot.id)
        except NotForUs as reason:
            logger.debug("telegram update ignored: {}", reason)
            await self._done(row)
            return
        except Exception as error:  # malformed in any way: dropped, the channel goes on
            logger.warning("telegram update {} is malformed, dropped: {}", update.update_id, error)
            await self._done(row)
            return
        if parsed.callback_id is not None:
            self._answer_callback(parsed.callback_id, bot)
        incoming = replace(
            parsed.incoming,
            community=bot.key,
            # A file id is the receiving bot's own: only it can fetch or resend the photo.
            photos=tuple(replace(p, community=bot.key) for p in parsed.incoming.photos),
        )
        page = self._pages.page(incoming.chat_id, incoming.payload, bot.key)
        if page is not None:  # «Ещё»: the next page of the same keyboard
            if await self._runtime.admit(incoming, inbox_id=inbox_id):
                with contextlib.suppress(SendError):
                    await self._send_text(incoming.chat_id, texts.MORE_OPTIONS, page, bot)
                await self._done(row)
            return
        await self._runtime.intake(incoming, inbox_id=inbox_id)

    async def _done(self, row: InboxRow | None) -> None:
        if row is not None:
            assert self._runtime is not None
            await self._runtime.inbox.done(row)

    def _answer_callback(self, callback_id: str, bot: _Bot) -> None:
        async def answer() -> None:
            try:
                await bot.bot.answer_callback_query(callback_id)
            except Exception as error:
                logger.warning("telegram answerCallbackQuery failed: {}", type(error).__name__)

        task = asyncio.create_task(answer())
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)

    async def download(self, photo: Photo) -> bytes:
        """Telegram files are fetched through the bot that received them (their URLs carry
        the token, and a file id is that bot's own)."""
        if photo.platform != PLATFORM:
            return await super().download(photo)
        bot = self._bots.get(photo.community)
        if bot is None:
            raise PhotoUnavailable("the bot that received it is not configured")
        try:
            file = await bot.bot.get_file(photo.ref)
            if file.file_size and file.file_size > MAX_PHOTO_BYTES:
                raise PhotoUnavailable("photo too large")
            buffer = io.BytesIO()
            assert file.file_path is not None
            await bot.bot.download_file(file.file_path, buffer, timeout=30)
        except (TelegramAPIError, aiohttp.ClientError, TimeoutError) as error:
            raise PhotoUnavailable(type(error).__name__) from None
        return buffer.getvalue()

    # --- sending ------------------------------------------------------------------------

    async def send(self, message: Outgoing) -> list[str]:
        """Photos first, then the text (split by Telegram's UTF-16 count) with the keyboard
        on its last part, so the message to quote and the buttons come last; through the
        bot the message names."""
        bot = self._bots.get(message.community)
        if bot is None:  # queued for a bot since taken out of the config
            raise SendError(f"telegram bot {message.community} is not configured", retryable=False)
        ids: list[str] = []
        links: list[str] = []
        for photo in message.photos[:MAX_PHOTOS]:
            sent = await self._send_photo(message.chat_id, photo, bot)
            if sent is None:
                links.append(photo.url or texts.PHOTOS_ONLY)
            else:
                ids.append(sent)
        text = message.text + ("\n\n" + "\n".join(links) if links else "")
        keyboard = None
        if message.keyboard is not None and message.keyboard.rows:
            pages = [message.keyboard]
            if not message.keyboard.menu:
                pages = keyboard_pages(message.keyboard, INLINE_LIMITS)
                self._pages.remember(message.chat_id, pages, bot.key)
            keyboard = pages[0]
        chunks = split_text(text, MAX_TEXT, utf16_length)
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            ids.append(
                await self._send_text(message.chat_id, chunk, keyboard if last else None, bot)
            )
        return ids

    async def _send_text(
        self, chat_id: str, text: str, keyboard: Keyboard | None, bot: _Bot
    ) -> str:
        assert self._runtime is not None
        markup = reply_markup(keyboard) if keyboard is not None else None
        async with self._runtime.paced(PLATFORM, chat_id, bot.key):
            sent = await self._call(
                bot.bot.send_message(chat_id=int(chat_id), text=text, reply_markup=markup)
            )
        return str(sent.message_id)

    async def _send_photo(self, chat_id: str, photo: Photo, bot: _Bot) -> str | None:
        """A photo by its file id when this bot received it, or else uploaded (from
        another messenger or another bot); None if it cannot be sent (the text then
        carries a link). Other errors propagate."""
        assert self._runtime is not None
        try:
            if photo.platform == PLATFORM and photo.community == bot.key:
                source: str | BufferedInputFile = photo.ref
            else:
                content = await self._runtime.fetch_photo(photo)
                source = BufferedInputFile(content, filename="photo.jpg")
            async with self._runtime.paced(PLATFORM, chat_id, bot.key):
                sent = await bot.bot.send_photo(chat_id=int(chat_id), photo=source)
        except PhotoUnavailable as error:
            logger.warning("photo not fetched, sending a link: {}", error)
            return None
        except TelegramBadRequest as error:
            if "chat" in error.message.casefold():  # about the chat, not the photo
                raise send_error(error) from None
            logger.warning("telegram refused a photo, sending a link: {}", error.message)
            return None
        except Exception as error:
            raise send_error(error) from None
        return str(sent.message_id)

    async def _call(self, request: Any) -> Any:
        """One API call; failures become SendError, retryable or final."""
        try:
            return await request
        except Exception as error:
            raise send_error(error) from None


def send_error(error: Exception) -> SendError:
    """A failed call as the delivery worker sees it: 429 (with retry_after), 5xx and network
    errors are passing; a blocked bot, a lost chat, a bad request or a bad token are final."""
    if isinstance(error, TelegramRetryAfter):
        return SendError("telegram 429", retryable=True, retry_after=float(error.retry_after))
    if isinstance(error, TelegramForbiddenError | TelegramUnauthorizedError | TelegramBadRequest):
        return SendError(f"telegram: {error.message}", retryable=False)
    if isinstance(error, TelegramServerError | TelegramNetworkError | TimeoutError):
        return SendError(f"telegram: {type(error).__name__}", retryable=True)
    if isinstance(error, TelegramAPIError):
        return SendError(f"telegram: {error.message}", retryable=True)
    return SendError(f"telegram: {type(error).__name__}", retryable=True)


def _sender(update: Update) -> Hashable:
    """Who sent an update (its lane in lanes.in_sender_order); None if it does not say."""
    for part in (update.message, update.edited_message, update.callback_query):
        user = getattr(part, "from_user", None)
        if user is not None:
            sender: Hashable = user.id
            return sender
    return None
