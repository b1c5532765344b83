"""The MAX channel, through maxapi (SPEC §13): long polling (`GET /updates` with a marker, by
default) or a webhook on the shared web server; messages with inline keyboards of callback
buttons, photos uploaded or passed by token.

maxapi is used for the transport only: its `Bot` makes the calls, its Dispatcher is not used.
The poll loop is ours so that the marker is saved in the database only past updates that were
handled (SPEC §7); the webhook route is ours so that an update is written to the inbox before
MAX hears 200 (bot/inbox.py). maxapi's own retries are switched off (`max_retries=0`): it would
resend a POST /messages whose answer was lost, and it does not honour Retry-After. A failed
send is a SendError, and the delivery worker retries it with its backoff, as on every channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp import web
from loguru import logger
from maxapi import Bot
from maxapi.client.default import DefaultConnectionProperties
from maxapi.enums.update import UpdateType
from maxapi.enums.upload_type import UploadType
from maxapi.exceptions.max import InvalidToken, MaxApiError, MaxConnection, MaxUploadFileFailed
from maxapi.types import InputMediaBuffer
from maxapi.types.attachments.upload import AttachmentPayload, AttachmentUpload

from bot.channels.base import Capabilities, Channel, Runtime, SendError
from bot.channels.lanes import in_sender_order
from bot.channels.max_format import (
    LIMITS,
    LIMITS_WITH_REQUEST,
    MAX_TEXT,
    PLATFORM,
    UPDATE_TYPES,
    NotForUs,
    event_id,
    inline_keyboard,
    parse_update,
    sender,
)
from bot.config import MaxSection
from bot.inbox import Accepted
from bot.pagination import PageMemory, keyboard_pages
from bot.photos import PhotoUnavailable, attach_photos
from bot.render import split_text
from handlers import texts
from handlers.messages import Keyboard, Outgoing, Photo
from storage.models import InboxRow

MARKER_KEY = "max.polling.marker"
SECRET_HEADER = "X-Max-Bot-Api-Secret"  # schema: SubscriptionRequestBody.secret
# maxapi's docstring of GET /updates (API limits since 11.05.2026): a request is held at most
# 30 s, at most 2 requests a second, batches of at most 100.
POLL_TIMEOUT = 30
POLL_LIMIT = 100
MIN_POLL_INTERVAL = 0.5  # seconds between the starts of two polls (2 a second)
REQUEST_TIMEOUT = POLL_TIMEOUT + 15  # seconds for any call, a held poll included
MAX_PHOTOS = 10
SETUP_BACKOFF_MAX = 60.0
MAX_EVENT_ID = 256
PARTS_REMEMBERED = 10_000
# While MAX processes an uploaded photo it refuses to attach it (attachment.not.ready);
# maxapi tries again this many times, this far apart, before giving up (then: a link).
UPLOAD_ATTEMPTS = 5
UPLOAD_RETRY_DELAY = 1.0


@dataclass
class _Hint:
    """The Retry-After of the last answer in this task (maxapi's MaxApiError loses it)."""

    retry_after: float | None = None


_HINT: ContextVar[_Hint | None] = ContextVar("max_retry_hint", default=None)


async def _remember_retry_after(
    session: aiohttp.ClientSession,
    context: SimpleNamespace,
    params: aiohttp.TraceRequestEndParams,
) -> None:
    """An aiohttp trace hook: runs in the task that made the request."""
    hint = _HINT.get()
    if hint is None:
        return
    hint.retry_after = _seconds(params.response.headers.get("Retry-After"))


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the backoff decides
    return seconds if seconds is not None and 0 <= seconds < 86_400 else None


def make_bot(config: MaxSection, **overrides: Any) -> Bot:
    """maxapi's Bot for `config`: our api_url, our timeouts, no retries of its own, and a
    trace hook that keeps the Retry-After of each answer."""
    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(_remember_retry_after)
    settings: dict[str, Any] = {
        "after_input_media_delay": 0.01,
        "after_upload_attempts": UPLOAD_ATTEMPTS,
        "after_upload_retry_delay": UPLOAD_RETRY_DELAY,
        **overrides,
    }
    bot = Bot(
        config.token.get_secret_value(),
        auto_requests=False,
        auto_check_subscriptions=False,
        default_connection=DefaultConnectionProperties(
            timeout=REQUEST_TIMEOUT, max_retries=0, trace_configs=[trace]
        ),
        **settings,
    )
    bot.set_api_url(config.api_url)
    return bot


class MaxChannel(Channel):
    platform = PLATFORM
    capabilities = Capabilities(buttons=True, photos=True, max_text=MAX_TEXT)

    def __init__(
        self, config: MaxSection, *, poll_interval: float = MIN_POLL_INTERVAL, **bot_settings: Any
    ) -> None:
        """`poll_interval`: least seconds between the starts of two polls; `bot_settings`:
        maxapi Bot arguments (tests shorten its waits for an uploaded file)."""
        self._config = config
        self._poll_interval = poll_interval
        self._bot = make_bot(config, **bot_settings)
        self._runtime: Runtime | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pages = PageMemory()
        self._answers: set[asyncio.Task[None]] = set()
        # Parts of a long message already sent, by outbox row: a retry after a failure in
        # the middle sends only the rest (in this process; MAX has no idempotency key).
        self._sent_parts: OrderedDict[int, list[str]] = OrderedDict()

    # --- receiving -----------------------------------------------------------------------

    async def start(self, runtime: Runtime) -> None:
        self._runtime = runtime
        if self._config.mode == "webhook":
            self.expect_webhooks(set_up=True)  # receiving once MAX accepted the subscription
            runtime.web.add_post(self._config.webhook_path, self._webhook)
            runtime.inbox.register(PLATFORM, self._from_inbox)
            self._spawn(self._subscribe(), "max-subscribe")
        else:
            self.expect_polls()
            # One instance at a time polls (several on one PostgreSQL database, SPEC §15).
            self._spawn(self.poll_alone(runtime.db, MARKER_KEY, self._poll_forever), "max-polling")

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
        await self._bot.close_session()

    async def _subscribe(self) -> None:
        """POST /subscriptions with our address and secret, retried until MAX accepts it:
        MAX being unreachable at start-up must not stop the service."""
        pause = 1.0
        while True:
            try:
                await self._bot.subscribe_webhook(
                    self._config.webhook_url,
                    update_types=[UpdateType(kind) for kind in UPDATE_TYPES],
                    secret=self._config.webhook_secret.get_secret_value(),
                )
                self.mark_set_up()
                logger.info("max webhook subscribed")
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning(
                    "max subscription failed ({}), retrying in {:.0f}s", _reason(error), pause
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, SETUP_BACKOFF_MAX)

    async def _drop_subscriptions(self) -> None:
        """Long polling does not work while a webhook is subscribed (schema: info
        "Webhook"): polling mode removes the subscriptions, as Telegram's deleteWebhook."""
        listed = await self._bot.get_subscriptions()
        for subscription in listed.subscriptions:
            logger.warning("max webhook subscription removed: this bot runs in polling mode")
            await self._bot.unsubscribe_webhook(subscription.url)

    async def _poll_forever(self) -> None:
        assert self._runtime is not None
        loop = asyncio.get_running_loop()
        pause = 1.0
        prepared = False
        saved = await self._runtime.load(MARKER_KEY)
        marker = int(saved) if saved else None
        while True:
            started = loop.time()
            try:
                if not prepared:
                    await self._drop_subscriptions()
                    prepared = True
                answer = await self._bot.get_updates(
                    limit=POLL_LIMIT,
                    timeout=POLL_TIMEOUT,
                    marker=marker,
                    types=[UpdateType(kind) for kind in UPDATE_TYPES],
                )
                self.mark_received()
                updates = [u for u in answer.get("updates") or [] if isinstance(u, dict)]
                await in_sender_order(updates, sender, self._handle)
                next_marker = answer.get("marker")
                # Saved only once handled: a failure or a stop polls the same updates again.
                if isinstance(next_marker, int) and next_marker != marker:
                    await self._runtime.save(MARKER_KEY, str(next_marker))
                    marker = next_marker
                pause = 1.0
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning(
                    "max polling failed ({}), retrying in {:.0f}s", _reason(error), pause
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, SETUP_BACKOFF_MAX)
                continue
            rest = self._poll_interval - (loop.time() - started)
            if rest > 0:
                await asyncio.sleep(rest)

    async def _webhook(self, request: web.Request) -> web.StreamResponse:
        """The secret checked (403 and nothing else without it), the update written to the
        inbox and only then 200 (503 while the inbox is full: MAX retries for 8 hours)."""
        assert self._runtime is not None
        secret = self._config.webhook_secret.get_secret_value().encode()
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, secret):
            logger.warning("max webhook refused: wrong or missing secret")
            return web.Response(status=403, text="forbidden")
        self.mark_received()
        try:
            raw = await request.text()
            update = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return web.Response(status=400, text="bad request")
        if not isinstance(update, dict) or not isinstance(update.get("update_type"), str):
            return web.Response(status=400, text="bad request")
        found = event_id(update)
        if found is not None and len(found) > MAX_EVENT_ID:
            found = None
        who = sender(update)
        accepted = await self._runtime.inbox.accept(
            PLATFORM, "", found, str(who) if who is not None else "", raw
        )
        if accepted is Accepted.FULL:
            return web.Response(status=503, text="busy")
        return web.Response(text="ok")

    async def _from_inbox(self, row: InboxRow) -> None:
        await self._handle(json.loads(row.body), row)

    async def _handle(self, update: dict[str, Any], row: InboxRow | None = None) -> None:
        """One update, from a long poll or from the inbox (`row`, marked done with it)."""
        assert self._runtime is not None
        inbox_id = row.id if row is not None else None
        try:
            parsed = parse_update(update)
        except NotForUs as reason:
            logger.debug("max update ignored: {}", reason)
            await self._done(row)
            return
        except Exception as error:  # malformed in any way: dropped, the channel goes on
            logger.warning(
                "max update of type {!r} is malformed, dropped: {}",
                str(update.get("update_type"))[:40],
                type(error).__name__,
            )
            await self._done(row)
            return
        if parsed.callback_id is not None:
            self._answer_callback(parsed.callback_id, parsed.incoming.chat_id)
        incoming = parsed.incoming
        page = self._pages.page(incoming.chat_id, incoming.payload)
        if page is not None:  # «Ещё»: the next page of the same keyboard
            if await self._runtime.admit(incoming, inbox_id=inbox_id):
                with contextlib.suppress(SendError):
                    await self._send_part(incoming.chat_id, texts.MORE_OPTIONS, page, [])
                await self._done(row)
            return
        await self._runtime.intake(incoming, inbox_id=inbox_id)

    async def _done(self, row: InboxRow | None) -> None:
        if row is not None:
            assert self._runtime is not None
            await self._runtime.inbox.done(row)

    def _answer_callback(self, callback_id: str, chat_id: str) -> None:
        """Acknowledge the press (POST /answers), aside: the dialogue does not wait for it."""

        async def answer() -> None:
            assert self._runtime is not None
            try:
                async with self._runtime.paced(PLATFORM, chat_id):
                    await self._bot.send_callback(callback_id, notification=texts.BUTTON_PRESSED)
            except Exception as error:
                logger.warning("max callback answer failed: {}", _reason(error))

        task = asyncio.create_task(answer())
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)

    # --- sending ------------------------------------------------------------------------

    async def send(self, message: Outgoing) -> list[str]:
        """The text in parts of at most 3999 characters; the photos and the keyboard ride
        on the last part, so the message to quote and the buttons come last."""
        images, links = await self._images(message)
        text = message.text + ("\n\n" + "\n".join(links) if links else "")
        keyboard = None
        if message.keyboard is not None and message.keyboard.rows:
            limits = LIMITS_WITH_REQUEST if message.keyboard.asks else LIMITS
            pages = keyboard_pages(message.keyboard, limits)
            self._pages.remember(message.chat_id, pages)
            keyboard = pages[0]
        parts = split_text(text, MAX_TEXT)
        key = message.outbox_id
        ids = list(self._sent_parts.get(key, [])) if key is not None else []
        for index in range(len(ids), len(parts)):
            last = index == len(parts) - 1
            try:
                ids.append(
                    await self._send_part(
                        message.chat_id,
                        parts[index],
                        keyboard if last else None,
                        images if last else [],
                        photos_as_links=[p.url or texts.PHOTOS_ONLY for p in message.photos],
                    )
                )
            except SendError:
                if key is not None and ids:
                    self._sent_parts[key] = ids
                    self._sent_parts.move_to_end(key)
                    while len(self._sent_parts) > PARTS_REMEMBERED:
                        self._sent_parts.popitem(last=False)
                raise
        if key is not None:
            self._sent_parts.pop(key, None)
        return ids

    async def _send_part(
        self,
        chat_id: str,
        text: str,
        keyboard: Keyboard | None,
        images: list[AttachmentUpload],
        *,
        photos_as_links: list[str] | None = None,
    ) -> str:
        """One POST /messages; its mid. Photos MAX still refuses once maxapi has waited for
        them go as links in a message of their own."""
        markup = [inline_keyboard(keyboard)] if keyboard is not None else []
        try:
            return await self._post(chat_id, text, [*images, *markup])
        except _NotReady:
            logger.warning("max did not take the uploaded photos in time, sending links")
        mid = await self._post(chat_id, text, markup)
        await self._post(chat_id, "\n".join(photos_as_links or [texts.PHOTOS_ONLY]), [])
        return mid

    async def _post(self, chat_id: str, text: str, attachments: list[Any]) -> str:
        assert self._runtime is not None
        hint = _Hint()
        token = _HINT.set(hint)
        try:
            async with self._runtime.paced(PLATFORM, chat_id):
                sent = await self._bot.send_message(
                    user_id=int(chat_id), text=text, attachments=attachments or None
                )
        except RuntimeError:
            # maxapi gave up while MAX kept answering attachment.not.ready
            if any(isinstance(a, AttachmentUpload) for a in attachments):
                raise _NotReady from None
            raise SendError("max: RuntimeError", retryable=True) from None
        except Exception as error:
            raise send_error(error, hint.retry_after) from None
        finally:
            _HINT.reset(token)
        if sent is None or sent.message.body is None:
            raise SendError("max: no message in the answer", retryable=True)
        return str(sent.message.body.mid)

    async def _images(self, message: Outgoing) -> tuple[list[AttachmentUpload], list[str]]:
        """Image attachments for the photos; links for those that could not be uploaded."""
        return await attach_photos(message.photos, MAX_PHOTOS, self._image)

    async def _image(self, photo: Photo) -> AttachmentUpload | None:
        """A MAX photo by its token; a photo from another messenger fetched and uploaded
        (POST /uploads?type=image, then the file as `data`); None if that fails."""
        assert self._runtime is not None
        if photo.platform == PLATFORM and photo.ref and photo.ref != photo.url:
            return _image_attachment(photo.ref)
        try:
            content = await self._runtime.fetch_photo(photo)
            async with self._runtime.paced(PLATFORM, ""):
                uploaded = await self._bot.upload_media(
                    InputMediaBuffer(buffer=content, filename="photo.jpg")
                )
        except (PhotoUnavailable, MaxApiError, MaxConnection, MaxUploadFileFailed) as error:
            logger.warning("max photo upload failed, sending a link: {}", _reason(error))
            return None
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            logger.warning("max photo upload failed, sending a link: {}", _reason(error))
            return None
        return _image_attachment(uploaded.payload.token)


class _NotReady(Exception):
    """MAX kept refusing an uploaded file as not ready."""


def _image_attachment(token: str) -> AttachmentUpload:
    """{"type": "image", "payload": {"token": …}} (schema: PhotoAttachmentRequest)."""
    return AttachmentUpload(type=UploadType.IMAGE, payload=AttachmentPayload(token=token))


def _reason(error: BaseException) -> str:
    """An error in a few words for the log: the HTTP status and MAX's code, never a body."""
    if isinstance(error, MaxApiError):
        code = error.raw.get("code") if isinstance(error.raw, dict) else None
        return f"HTTP {error.code}" + (f" {str(code)[:40]}" if code else "")
    return type(error).__name__


def send_error(error: Exception, retry_after: float | None = None) -> SendError:
    """A failed call as the delivery worker sees it: 429 (with its Retry-After), 5xx and
    network errors are passing; a refused chat (403), a bad request or a bad token are
    final."""
    reason = f"max: {_reason(error)}"
    if isinstance(error, MaxApiError):
        if error.code == 429:
            return SendError(reason, retryable=True, retry_after=retry_after)
        if error.code >= 500:
            return SendError(reason, retryable=True, retry_after=retry_after)
        return SendError(reason, retryable=False)
    if isinstance(error, InvalidToken):
        return SendError(reason, retryable=False)
    if isinstance(error, ValueError):  # maxapi refused the message itself
        return SendError(f"max: {error}"[:200], retryable=False)
    return SendError(reason, retryable=True)  # MaxConnection, timeouts, anything else
