"""The MAX channel, through maxapi (SPEC §13): long polling (`GET /updates` with a marker, by
default) or a webhook on the shared web server; messages with inline keyboards of callback
buttons, photos uploaded or passed by token.

maxapi is used for the transport only: its `Bot` makes the calls, its Dispatcher is not used.
The poll loop is ours so that the marker is saved in the database only past updates that were
handled (SPEC §7); the webhook route is ours so that an update is written to the inbox before
MAX hears 200 (bot/inbox.py). maxapi's own retries are switched off (`max_retries=0`): it would
resend a POST /messages whose answer was lost, and it does not honour Retry-After. A failed
send is a SendError, and the delivery worker retries it with its backoff, as on every channel.

One channel serves every bot of the configuration ([max] and each [[max.communities]], SPEC
§14), each its own maxapi Bot (its token, its pacing): a poll loop per bot, or the one
webhook path for all of them, which tells them apart by the X-Max-Bot-Api-Secret each was
subscribed with. A deep link's `start` payload (bot_started) is handed on with the message:
the dialogue reads a settlement code in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
from aiohttp import web
from loguru import logger
from maxapi import Bot
from maxapi.client.default import DefaultConnectionProperties
from maxapi.enums.message_link_type import MessageLinkType
from maxapi.enums.update import UpdateType
from maxapi.enums.upload_type import UploadType
from maxapi.exceptions.max import InvalidToken, MaxApiError, MaxConnection, MaxUploadFileFailed
from maxapi.types import InputMediaBuffer
from maxapi.types.attachments.upload import AttachmentPayload, AttachmentUpload
from maxapi.types.message import NewMessageLink
from pydantic import ValidationError

from bot.channels.base import Capabilities, Channel, Runtime, SendError
from bot.channels.lanes import in_sender_order
from bot.channels.max_format import (
    LIMITS,
    LIMITS_WITH_REQUEST,
    MAX_TEXT,
    MESSAGE_UPDATE_TYPES,
    PLATFORM,
    UPDATE_TYPES,
    NotForUs,
    event_id,
    inline_keyboard,
    parse_update,
    sender,
)
from bot.community_ids import IdUnavailable
from bot.config import MaxSection
from bot.inbox import Accepted
from bot.pagination import PageMemory, keyboard_pages
from bot.photos import PhotoUnavailable, attach_photos
from bot.render import split_text
from handlers import texts
from handlers.messages import CommentTarget, Keyboard, Outgoing, Photo
from storage.models import InboxRow

MARKER_KEY = "max.polling.marker"  # the main bot's; another bot's ends in ".<bot id>"
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


def make_bot(config: MaxSection, token: str | None = None, **overrides: Any) -> Bot:
    """maxapi's Bot for `config` (with another bot's `token`, for one of its communities):
    our api_url, our timeouts, no retries of its own, and a trace hook that keeps the
    Retry-After of each answer."""
    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(_remember_retry_after)
    settings: dict[str, Any] = {
        "after_input_media_delay": 0.01,
        "after_upload_attempts": UPLOAD_ATTEMPTS,
        "after_upload_retry_delay": UPLOAD_RETRY_DELAY,
        **overrides,
    }
    bot = Bot(
        token if token is not None else config.token.get_secret_value(),
        auto_requests=False,
        auto_check_subscriptions=False,
        default_connection=DefaultConnectionProperties(
            timeout=REQUEST_TIMEOUT, max_retries=0, trace_configs=[trace]
        ),
        **settings,
    )
    bot.set_api_url(config.api_url)
    return bot


@dataclass
class _MaxBot:
    """One bot the channel serves: its id in the database (`key`, '' for [max]), its maxapi
    Bot and its webhook secret."""

    key: str
    bot: Bot
    secret: str
    comments: bool = False  # it reads the comments of the channels it administers

    @property
    def marker_key(self) -> str:
        return f"{MARKER_KEY}.{self.key}" if self.key else MARKER_KEY


async def fetch_bot_id(config: MaxSection, token: str) -> int:
    """The id of the bot `token` is of: GET /me answers BotInfo, whose `user_id` it is
    (schema: paths./me.get, components/schemas/User). Raises IdUnavailable with what went
    wrong in a few words (never a body: a proxy's page, or a token echoed back)."""
    bot = make_bot(config, token)
    try:
        me = await bot.get_me()
    except InvalidToken:
        raise IdUnavailable("GET /me: 401 Unauthorized") from None
    except (MaxApiError, MaxConnection) as error:
        raise IdUnavailable(f"GET /me: {_reason(error)}") from None
    except ValidationError:
        raise IdUnavailable("GET /me: an answer without the bot's user_id") from None
    finally:
        await bot.close_session()
    user_id = getattr(me, "user_id", None)
    if not isinstance(user_id, int) or user_id <= 0:
        raise IdUnavailable("GET /me: an answer without the bot's user_id")
    return user_id


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
        main = _MaxBot(
            "",
            make_bot(config, **bot_settings),
            config.webhook_secret.get_secret_value(),
            config.comments,
        )
        self._bots: dict[str, _MaxBot] = {"": main}
        for i, entry in enumerate(config.communities):
            if not entry.bot_id:  # bot/community_ids.py learns it before channels are built
                raise ValueError(f"max.communities[{i}]: the bot's id is not known yet")
            key = str(entry.bot_id)
            self._bots[key] = _MaxBot(
                key,
                make_bot(config, entry.token.get_secret_value(), **bot_settings),
                entry.webhook_secret.get_secret_value(),
                entry.comments,
            )
        self._bot = main.bot  # the main bot (tests look at it)
        self._subscribed: set[str] = set()
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
            for bot in self._bots.values():
                self._spawn(self._subscribe(bot), f"max-subscribe-{bot.key or 'main'}")
        else:
            self.expect_polls()
            # One instance at a time polls each bot (several on one database, SPEC §15).
            for bot in self._bots.values():
                self._spawn(
                    self.poll_alone(
                        runtime.db, bot.marker_key, functools.partial(self._poll_forever, bot)
                    ),
                    f"max-polling-{bot.key or 'main'}",
                )

    async def stop(self) -> None:
        await self._stop_tasks(self._answers)
        for bot in self._bots.values():
            await bot.bot.close_session()

    async def _subscribe(self, bot: _MaxBot) -> None:
        """POST /subscriptions with our address and the bot's secret, retried until MAX
        accepts it: MAX being unreachable at start-up must not stop the service. The channel
        is set up once every bot is."""
        pause = 1.0
        while True:
            try:
                await bot.bot.subscribe_webhook(
                    self._config.webhook_url,
                    update_types=_update_types(bot),
                    secret=bot.secret,
                )
                self._subscribed.add(bot.key)
                if len(self._subscribed) == len(self._bots):
                    self.mark_set_up()
                logger.info("max webhook subscribed for bot {}", bot.key or "main")
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning(
                    "max subscription failed ({}), retrying in {:.0f}s", _reason(error), pause
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, SETUP_BACKOFF_MAX)

    @staticmethod
    async def _drop_subscriptions(bot: _MaxBot) -> None:
        """Long polling does not work while a webhook is subscribed (schema: info
        "Webhook"): polling mode removes the subscriptions, as Telegram's deleteWebhook."""
        listed = await bot.bot.get_subscriptions()
        for subscription in listed.subscriptions:
            logger.warning("max webhook subscription removed: this bot runs in polling mode")
            await bot.bot.unsubscribe_webhook(subscription.url)

    async def _poll_forever(self, bot: _MaxBot) -> None:
        assert self._runtime is not None
        loop = asyncio.get_running_loop()
        pause = 1.0
        prepared = False
        saved = await self._runtime.load(bot.marker_key)
        marker = int(saved) if saved else None
        handle = functools.partial(self._handle, bot=bot)
        while True:
            started = loop.time()
            try:
                if not prepared:
                    await self._drop_subscriptions(bot)
                    prepared = True
                answer = await bot.bot.get_updates(
                    limit=POLL_LIMIT,
                    timeout=POLL_TIMEOUT,
                    marker=marker,
                    types=_update_types(bot),
                )
                self.mark_received()
                updates = [u for u in answer.get("updates") or [] if isinstance(u, dict)]
                await in_sender_order(updates, sender, handle)
                next_marker = answer.get("marker")
                # Saved only once handled: a failure or a stop polls the same updates again.
                if isinstance(next_marker, int) and next_marker != marker:
                    await self._runtime.save(bot.marker_key, str(next_marker))
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
        inbox and only then 200 (503 while the inbox is full: MAX retries for 8 hours). The
        secret says which bot's update it is."""
        assert self._runtime is not None
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        bot = None
        for candidate in self._bots.values():  # every one compared: the time tells nothing
            if hmac.compare_digest(given, candidate.secret.encode()) and candidate.secret:
                bot = candidate
        if bot is None:
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
            PLATFORM, bot.key, found, str(who) if who is not None else "", raw
        )
        if accepted is Accepted.FULL:
            return web.Response(status=503, text="busy")
        return web.Response(text="ok")

    async def _from_inbox(self, row: InboxRow) -> None:
        bot = self._bots.get(row.community)
        if bot is None:  # accepted for a bot since taken out of the config
            logger.warning("max update of a bot no longer configured dropped")
            await self._done(row)
            return
        await self._handle(json.loads(row.body), bot=bot, row=row)

    async def _handle(
        self, update: dict[str, Any], *, bot: _MaxBot, row: InboxRow | None = None
    ) -> None:
        """One update of `bot`, from a long poll or from the inbox (`row`, marked done with
        it)."""
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
            self._answer_callback(parsed.callback_id, parsed.incoming.chat_id, bot)
        incoming = replace(
            parsed.incoming,
            community=bot.key,
            start=parsed.start_payload,
            photos=tuple(replace(p, community=bot.key) for p in parsed.incoming.photos),
        )
        page = self._pages.page(incoming.chat_id, incoming.payload, bot.key)
        if page is not None:  # «Ещё»: the next page of the same keyboard
            if await self._runtime.admit(incoming, inbox_id=inbox_id):
                with contextlib.suppress(SendError):
                    await self._send_part(incoming.chat_id, texts.MORE_OPTIONS, page, [], bot)
                await self._done(row)
            return
        await self._runtime.intake(incoming, inbox_id=inbox_id)

    async def _done(self, row: InboxRow | None) -> None:
        if row is not None:
            assert self._runtime is not None
            await self._runtime.inbox.done(row)

    def _answer_callback(self, callback_id: str, chat_id: str, bot: _MaxBot) -> None:
        """Acknowledge the press (POST /answers), aside: the dialogue does not wait for it."""

        async def answer() -> None:
            assert self._runtime is not None
            try:
                async with self._runtime.paced(PLATFORM, chat_id, bot.key):
                    await bot.bot.send_callback(callback_id, notification=texts.BUTTON_PRESSED)
            except Exception as error:
                logger.warning("max callback answer failed: {}", _reason(error))

        task = asyncio.create_task(answer())
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)

    # --- sending ------------------------------------------------------------------------

    async def send(self, message: Outgoing) -> list[str]:
        """The text in parts of at most 3999 characters; the photos and the keyboard ride
        on the last part, so the message to quote and the buttons come last; through the
        bot the message names."""
        bot = self._bots.get(message.community)
        if bot is None:  # queued for a bot since taken out of the config
            raise SendError(f"max bot {message.community} is not configured", retryable=False)
        if message.comment is not None:
            return await self._send_comment(message, message.comment, bot)
        images, links = await self._images(message, bot)
        text = message.text + ("\n\n" + "\n".join(links) if links else "")
        keyboard = None
        if message.keyboard is not None and message.keyboard.rows:
            limits = LIMITS_WITH_REQUEST if message.keyboard.asks else LIMITS
            pages = keyboard_pages(message.keyboard, limits)
            self._pages.remember(message.chat_id, pages, bot.key)
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
                        bot,
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

    async def _send_comment(
        self, message: Outgoing, target: CommentTarget, bot: _MaxBot
    ) -> list[str]:
        """An answer in public under a comment (SPEC §14): POST /messages/{post mid}/comments
        with `link: {type: reply, mid: <the comment>}` (schema: sendComment, NewCommentBody:
        text only, no attachments). MAX has no idempotency key: a part already sent is not
        sent again by a retry in this process, as for messages."""
        assert self._runtime is not None
        parts = split_text(message.text, MAX_TEXT)
        key = message.outbox_id
        ids = list(self._sent_parts.get(key, [])) if key is not None else []
        link = NewMessageLink(type=MessageLinkType.REPLY, mid=target.reply_to)
        for index in range(len(ids), len(parts)):
            hint = _Hint()
            token = _HINT.set(hint)
            try:
                async with self._runtime.paced(PLATFORM, message.chat_id, bot.key):
                    sent = await bot.bot.send_comment(target.post_id, text=parts[index], link=link)
                ids.append(str(sent.message.body.mid))
            except Exception as error:
                if key is not None and ids:
                    self._remember_parts(key, ids)
                raise send_error(error, hint.retry_after) from None
            finally:
                _HINT.reset(token)
        if key is not None:
            self._sent_parts.pop(key, None)
        return ids

    def _remember_parts(self, key: int, ids: list[str]) -> None:
        self._sent_parts[key] = ids
        self._sent_parts.move_to_end(key)
        while len(self._sent_parts) > PARTS_REMEMBERED:
            self._sent_parts.popitem(last=False)

    async def _send_part(
        self,
        chat_id: str,
        text: str,
        keyboard: Keyboard | None,
        images: list[AttachmentUpload],
        bot: _MaxBot,
        *,
        photos_as_links: list[str] | None = None,
    ) -> str:
        """One POST /messages; its mid. Photos MAX still refuses once maxapi has waited for
        them go as links in a message of their own."""
        markup = [inline_keyboard(keyboard)] if keyboard is not None else []
        try:
            return await self._post(chat_id, text, [*images, *markup], bot)
        except _NotReady:
            logger.warning("max did not take the uploaded photos in time, sending links")
        mid = await self._post(chat_id, text, markup, bot)
        await self._post(chat_id, "\n".join(photos_as_links or [texts.PHOTOS_ONLY]), [], bot)
        return mid

    async def _post(self, chat_id: str, text: str, attachments: list[Any], bot: _MaxBot) -> str:
        assert self._runtime is not None
        hint = _Hint()
        token = _HINT.set(hint)
        try:
            async with self._runtime.paced(PLATFORM, chat_id, bot.key):
                sent = await bot.bot.send_message(
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

    async def _images(
        self, message: Outgoing, bot: _MaxBot
    ) -> tuple[list[AttachmentUpload], list[str]]:
        """Image attachments for the photos; links for those that could not be uploaded."""
        return await attach_photos(
            message.photos, MAX_PHOTOS, functools.partial(self._image, bot=bot)
        )

    async def _image(self, photo: Photo, bot: _MaxBot) -> AttachmentUpload | None:
        """A MAX photo this bot received, by its token; any other (from another messenger or
        another bot) fetched and uploaded (POST /uploads?type=image, then the file as
        `data`); None if that fails."""
        assert self._runtime is not None
        own = photo.platform == PLATFORM and photo.community == bot.key
        if own and photo.ref and photo.ref != photo.url:
            return _image_attachment(photo.ref)
        try:
            content = await self._runtime.fetch_photo(photo)
            async with self._runtime.paced(PLATFORM, "", bot.key):
                uploaded = await bot.bot.upload_media(
                    InputMediaBuffer(buffer=content, filename="photo.jpg")
                )
        except (PhotoUnavailable, MaxApiError, MaxConnection, MaxUploadFileFailed) as error:
            logger.warning("max photo upload failed, sending a link: {}", _reason(error))
            return None
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            logger.warning("max photo upload failed, sending a link: {}", _reason(error))
            return None
        return _image_attachment(uploaded.payload.token)


def _update_types(bot: _MaxBot) -> list[UpdateType]:
    """The update types asked for: the comment updates only by a bot that takes comments
    (`comments = true`). maxapi 1.2 has no enum value for them: they go as the plain
    strings they are (it joins the list with commas)."""
    kinds = UPDATE_TYPES if bot.comments else MESSAGE_UPDATE_TYPES
    known = {member.value for member in UpdateType}
    return [UpdateType(kind) if kind in known else cast(UpdateType, kind) for kind in kinds]


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
