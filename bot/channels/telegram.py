"""The Telegram channel, through aiogram 3: getUpdates polling (default) or a webhook on the
shared web server; messages sent with inline keyboards, the main menu as a reply keyboard.

Updates are handled one at a time, in order; the getUpdates offset is saved in the database
only after the updates before it were handled, so a restart resumes without a gap, and an
update seen twice is recognised by its update_id.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import io
import json
from collections.abc import Hashable
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
from bot.config import TelegramSection
from bot.inbox import Accepted
from bot.pagination import PageMemory, keyboard_pages
from bot.photos import MAX_PHOTO_BYTES, PhotoUnavailable
from bot.render import split_text, utf16_length
from handlers import texts
from handlers.identity import split_identity
from handlers.messages import Keyboard, Outgoing, Photo
from storage.models import InboxRow

OFFSET_KEY = "tg.polling.offset"
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


class TelegramChannel(Channel):
    platform = PLATFORM
    capabilities = Capabilities(buttons=True, photos=True, max_text=MAX_TEXT)

    def __init__(self, config: TelegramSection) -> None:
        self._config = config
        server = TelegramAPIServer.from_base(config.api_url.rstrip("/"))
        self._bot = Bot(config.token.get_secret_value(), session=AiohttpSession(api=server))
        self._runtime: Runtime | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pages = PageMemory()
        self._answers: set[asyncio.Task[None]] = set()

    # --- receiving -----------------------------------------------------------------------

    async def start(self, runtime: Runtime) -> None:
        self._runtime = runtime
        if self._config.mode == "webhook":
            self.expect_webhooks(set_up=True)  # receiving once setWebhook succeeded
            runtime.web.add_post(self._config.webhook_path, self._webhook)
            runtime.inbox.register(PLATFORM, self._from_inbox)
        else:
            self.expect_polls()
            # One instance at a time polls (several on one PostgreSQL database, SPEC §15).
            self._spawn(self.poll_alone(runtime.db, OFFSET_KEY, self._poll_forever), "tg-polling")
        self._spawn(self._set_up(), "tg-setup")

    def _spawn(self, coroutine: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coroutine, name=name))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for answer in list(self._answers):
            with contextlib.suppress(Exception):
                await answer
        await self._bot.session.close()

    async def _set_up(self) -> None:
        """setWebhook (or deleteWebhook for polling) and setMyCommands, retried until done:
        Telegram being unreachable at start-up must not stop the service."""
        pause = 1.0
        while True:
            try:
                if self._config.mode == "webhook":
                    await self._bot.set_webhook(
                        url=self._config.webhook_url,
                        secret_token=self._config.webhook_secret.get_secret_value(),
                        allowed_updates=ALLOWED_UPDATES,
                    )
                    self.mark_set_up()
                    logger.info("telegram webhook set")
                await self._publish_commands()
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning(
                    "telegram set-up failed ({}), retrying in {:.0f}s", type(error).__name__, pause
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, SETUP_BACKOFF_MAX)

    async def _publish_commands(self) -> None:
        """The command menu: residents' commands for everyone, staff commands in the
        private chats of staff members on Telegram."""
        residents = [BotCommand(command=c, description=d) for c, d in texts.TG_COMMANDS]
        await self._bot.set_my_commands(residents, scope=BotCommandScopeDefault())
        assert self._runtime is not None
        async with self._runtime.db.transaction() as tx:
            staff = [row.identity for row in await tx.staff.all()]
        staff_commands = [BotCommand(command=c, description=d) for c, d in texts.TG_STAFF_COMMANDS]
        for identity in dict.fromkeys(staff):
            platform, user_id = split_identity(identity)
            if platform == PLATFORM and user_id.isdecimal():
                with contextlib.suppress(TelegramBadRequest):  # never wrote to the bot yet
                    await self._bot.set_my_commands(
                        staff_commands, scope=BotCommandScopeChat(chat_id=int(user_id))
                    )

    async def _poll_forever(self) -> None:
        assert self._runtime is not None
        pause = 1.0
        with contextlib.suppress(TelegramAPIError):
            await self._bot.delete_webhook(drop_pending_updates=False)
        saved = await self._runtime.load(OFFSET_KEY)
        offset = int(saved) if saved else None
        while True:
            try:
                updates = await self._bot.get_updates(
                    offset=offset,
                    timeout=POLL_TIMEOUT,
                    allowed_updates=ALLOWED_UPDATES,
                    request_timeout=POLL_TIMEOUT + 10,
                )
                self.mark_received()
                await in_sender_order(updates, _sender, self._handle)
                if updates:  # only once handled: a failure polls the same updates again
                    next_offset = updates[-1].update_id + 1
                    await self._runtime.save(OFFSET_KEY, str(next_offset))
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
        """The secret checked, the update written to the inbox and only then 200 (503
        while the inbox is full: Telegram retries)."""
        assert self._runtime is not None
        secret = self._config.webhook_secret.get_secret_value().encode()
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, secret):
            logger.warning("telegram webhook refused: wrong or missing secret token")
            return web.Response(status=403, text="forbidden")
        self.mark_received()
        try:
            raw = await request.text()
            update = self._update(raw)
        except (ValueError, UnicodeDecodeError, RecursionError, ValidationError):
            return web.Response(status=400, text="bad request")
        accepted = await self._runtime.inbox.accept(
            PLATFORM, "", f"update:{update.update_id}", str(_sender(update) or ""), raw
        )
        if accepted is Accepted.FULL:
            return web.Response(status=503, text="busy")
        return web.Response(text="ok")

    def _update(self, raw: str) -> Update:
        # json.loads, not pydantic's JSON parser: it refuses an escaped lone surrogate in a
        # text, which a person's broken emoji can carry, and the update would be lost.
        return Update.model_validate(json.loads(raw), context={"bot": self._bot})

    async def _from_inbox(self, row: InboxRow) -> None:
        await self._handle(self._update(row.body), row)

    async def _handle(self, update: Update, row: InboxRow | None = None) -> None:
        """One update, from getUpdates or from the inbox (`row`, marked done with it)."""
        assert self._runtime is not None
        inbox_id = row.id if row is not None else None
        try:
            parsed = parse_update(update, self._bot.id)
        except NotForUs as reason:
            logger.debug("telegram update ignored: {}", reason)
            await self._done(row)
            return
        except Exception as error:  # malformed in any way: dropped, the channel goes on
            logger.warning("telegram update {} is malformed, dropped: {}", update.update_id, error)
            await self._done(row)
            return
        if parsed.callback_id is not None:
            self._answer_callback(parsed.callback_id)
        incoming = parsed.incoming
        page = self._pages.page(incoming.chat_id, incoming.payload)
        if page is not None:  # «Ещё»: the next page of the same keyboard
            if await self._runtime.admit(incoming, inbox_id=inbox_id):
                with contextlib.suppress(SendError):
                    await self._send_text(incoming.chat_id, texts.MORE_OPTIONS, page)
                await self._done(row)
            return
        await self._runtime.intake(incoming, inbox_id=inbox_id)

    async def _done(self, row: InboxRow | None) -> None:
        if row is not None:
            assert self._runtime is not None
            await self._runtime.inbox.done(row)

    def _answer_callback(self, callback_id: str) -> None:
        async def answer() -> None:
            try:
                await self._bot.answer_callback_query(callback_id)
            except Exception as error:
                logger.warning("telegram answerCallbackQuery failed: {}", type(error).__name__)

        task = asyncio.create_task(answer())
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)

    async def download(self, photo: Photo) -> bytes:
        """Telegram files are fetched through the bot (their URLs carry the token)."""
        if photo.platform != PLATFORM:
            return await super().download(photo)
        try:
            file = await self._bot.get_file(photo.ref)
            if file.file_size and file.file_size > MAX_PHOTO_BYTES:
                raise PhotoUnavailable("photo too large")
            buffer = io.BytesIO()
            assert file.file_path is not None
            await self._bot.download_file(file.file_path, buffer, timeout=30)
        except (TelegramAPIError, aiohttp.ClientError, TimeoutError) as error:
            raise PhotoUnavailable(type(error).__name__) from None
        return buffer.getvalue()

    # --- sending ------------------------------------------------------------------------

    async def send(self, message: Outgoing) -> list[str]:
        """Photos first, then the text (split by Telegram's UTF-16 count) with the keyboard
        on its last part, so the message to quote and the buttons come last."""
        ids: list[str] = []
        links: list[str] = []
        for photo in message.photos[:MAX_PHOTOS]:
            sent = await self._send_photo(message.chat_id, photo)
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
                self._pages.remember(message.chat_id, pages)
            keyboard = pages[0]
        chunks = split_text(text, MAX_TEXT, utf16_length)
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            ids.append(await self._send_text(message.chat_id, chunk, keyboard if last else None))
        return ids

    async def _send_text(self, chat_id: str, text: str, keyboard: Keyboard | None) -> str:
        assert self._runtime is not None
        markup = reply_markup(keyboard) if keyboard is not None else None
        async with self._runtime.paced(PLATFORM, chat_id):
            sent = await self._call(
                self._bot.send_message(chat_id=int(chat_id), text=text, reply_markup=markup)
            )
        return str(sent.message_id)

    async def _send_photo(self, chat_id: str, photo: Photo) -> str | None:
        """A photo by its Telegram file id, or re-uploaded from another messenger; None if
        it cannot be sent (the text then carries a link). Other errors propagate."""
        assert self._runtime is not None
        try:
            if photo.platform == PLATFORM:
                source: str | BufferedInputFile = photo.ref
            else:
                content = await self._runtime.fetch_photo(photo)
                source = BufferedInputFile(content, filename="photo.jpg")
            async with self._runtime.paced(PLATFORM, chat_id):
                sent = await self._bot.send_photo(chat_id=int(chat_id), photo=source)
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
