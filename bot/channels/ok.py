"""The Odnoklassniki channel: group messages through the OK Bot API (bot/ok_api.py).

One channel serves every group of the configuration ([ok] and each [[ok.communities]], SPEC
§14), each with its own token. Webhooks arrive at {webhook_path}/{webhook_secret} on the
shared web server (OK signs nothing, so the address is the secret; the secret says which
group's webhook it is, and any other is refused). At start-up each group's bot subscribes its
webhook unless OK already lists it. Each webhook is written to the inbox (bot/inbox.py)
before OK hears 200, and handled from there, one sender's in order; OK's retries are
recognised by their message ids at the door.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import math
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from loguru import logger

from bot.channels.base import Capabilities, Channel, Runtime, SendError
from bot.channels.vk_format import moment
from bot.config import OkSection
from bot.inbox import Accepted
from bot.ok_api import (
    MAX_ATTACHMENTS,
    MAX_BUTTON_TEXT,
    MAX_BUTTONS,
    MAX_BUTTONS_PER_ROW,
    MAX_TEXT,
    Attachment,
    Button,
    OkApiError,
    OkClient,
    OutgoingMessage,
    Webhook,
    parse_webhook,
)
from bot.pagination import KeyboardLimits, PageMemory, keyboard_pages
from bot.photos import PhotoUnavailable, attach_photos
from bot.render import split_text
from handlers import texts
from handlers.messages import Incoming, Keyboard, Location, Outgoing, Photo
from storage.models import InboxRow

PLATFORM = "ok"
LIMITS = KeyboardLimits(
    max_rows=MAX_BUTTONS,
    max_per_row=MAX_BUTTONS_PER_ROW,
    max_buttons=MAX_BUTTONS,
    max_label=MAX_BUTTON_TEXT,
)
USER_PREFIX = "user:"  # [DOC §2.2] ids are prefixed strings; identities use the bare number
START_TEXT = "Начать"
# Attachment types the dialogue cannot read [DOC §2.4 list].
UNREADABLE = frozenset({"VIDEO", "AUDIO", "FILE", "STICKER", "MUSIC", "CALL", "PRESENT", "SHARE"})
SUBSCRIBE_BACKOFF_MAX = 300.0
RAW_LOG_LIMIT = 500
MAX_EVENT_ID = 200
DIALOG = "DIALOG"  # a person's own chat with the group [DOC graph.chat info: type]
CHAT_TYPES_CACHED = 50_000


@dataclass
class _Group:
    """One OK group the channel serves: its id in the database (`key`, '' for [ok]), its
    client (its token), and the secret its webhook address ends with."""

    key: str
    client: OkClient
    secret: str
    public_url: str


class OkChannel(Channel):
    platform = PLATFORM
    capabilities = Capabilities(buttons=True, photos=True, max_text=MAX_TEXT)

    def __init__(self, config: OkSection) -> None:
        self._config = config
        base_url = config.webhook_url.rstrip("/")

        def group(key: str, token: str, secret: str) -> _Group:
            return _Group(key, OkClient(token, config.api_url), secret, f"{base_url}/{secret}")

        main = group("", config.token.get_secret_value(), config.webhook_secret.get_secret_value())
        self._groups: dict[str, _Group] = {"": main}
        for i, entry in enumerate(config.communities):
            if not entry.group_id:  # bot/community_ids.py learns it before channels are built
                raise ValueError(f"ok.communities[{i}]: the group's id is not known yet")
            key = str(entry.group_id)
            self._groups[key] = group(
                key, entry.token.get_secret_value(), entry.webhook_secret.get_secret_value()
            )
        self._client = main.client  # the main group's (tests look at it)
        self._route = f"{config.webhook_path.rstrip('/')}/{{secret}}"
        self._runtime: Runtime | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pages = PageMemory()
        self._answers: set[asyncio.Task[None]] = set()
        # (group, chat id) -> DIALOG, GROUP_CHAT or CHAT
        self._chat_types: dict[tuple[str, str], str] = {}
        self._subscribed: set[str] = set()

    # --- receiving -----------------------------------------------------------------------

    async def start(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self.expect_webhooks(set_up=True)  # receiving once the subscriptions are in place
        runtime.web.add_post(self._route, self._webhook)
        runtime.inbox.register(PLATFORM, self._from_inbox)
        for group in self._groups.values():
            self._spawn(self._subscribe(group), f"ok-subscribe-{group.key or 'main'}")

    async def stop(self) -> None:
        await self._stop_tasks(self._answers)
        for group in self._groups.values():
            await group.client.close()

    async def _subscribe(self, group: _Group) -> None:
        """Subscribe the group's webhook unless OK already has it; retried until OK
        answers. The channel is set up once every group is."""
        pause = 1.0
        while True:
            try:
                subscribed = await group.client.subscriptions()
                if any(s.url == group.public_url for s in subscribed):
                    logger.info("ok webhook already subscribed ({} subscriptions)", len(subscribed))
                else:
                    await group.client.subscribe(group.public_url)
                    logger.info("ok webhook subscribed for group {}", group.key or "main")
                self._subscribed.add(group.key)
                if len(self._subscribed) == len(self._groups):
                    self.mark_set_up()
                return
            except OkApiError as error:
                logger.warning(
                    "ok subscription failed ({}), retrying in {:.0f}s", error.reason, pause
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, SUBSCRIBE_BACKOFF_MAX)

    async def _webhook(self, request: web.Request) -> web.StreamResponse:
        """The update written to the inbox, then 200 [DOC §2.3: within 5 s, or OK
        redelivers]; 503 while the inbox is full. The path carries the secret, so a body
        of a shape we do not handle is still OK's: logged by its shape and answered 200,
        or OK would resend it for hours and may drop the subscription. The secret at the
        end of the path says which group's it is; an address with no group's secret is not
        found, as it was before groups shared the path."""
        assert self._runtime is not None
        given = request.match_info.get("secret", "").encode("utf-8", "replace")
        group = None
        for candidate in self._groups.values():  # every one compared: the time tells nothing
            if hmac.compare_digest(given, candidate.secret.encode()):
                group = candidate
        if group is None:
            raise web.HTTPNotFound()
        self.mark_received()
        try:
            raw = await request.text()
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return web.Response(status=400, text="bad request")
        try:
            update = parse_webhook(body)
        except ValueError:
            logger.warning(
                "ok webhook of no known shape ignored: {}",
                json.dumps(_shape(body), ensure_ascii=False)[:RAW_LOG_LIMIT],
            )
            return web.Response(text="ok")
        event_id = update.event_id if len(update.event_id) <= MAX_EVENT_ID else None
        accepted = await self._runtime.inbox.accept(
            PLATFORM, group.key, event_id, update.sender.user_id, raw
        )
        if accepted is Accepted.FULL:
            return web.Response(status=503, text="busy")
        return web.Response(text="ok")

    async def _from_inbox(self, row: InboxRow) -> None:
        group = self._groups.get(row.community)
        if group is None:  # accepted for a group since taken out of the config
            assert self._runtime is not None
            logger.warning("ok webhook of a group no longer configured dropped")
            await self._runtime.inbox.done(row)
            return
        await self._handle(parse_webhook(json.loads(row.body)), row, group)

    async def _handle(self, update: Webhook, row: InboxRow, group: _Group) -> None:
        assert self._runtime is not None
        try:
            incoming = self._normalize(update, group)
        except Exception as error:  # malformed in any way: dropped, the channel goes on
            logger.warning("ok webhook malformed, dropped: {}", type(error).__name__)
            incoming = None
        command = incoming is not None and incoming.text.lstrip().startswith("/")
        if incoming is None or (command and not await self._private(incoming.chat_id, group)):
            await self._runtime.inbox.done(row)
            return
        page = self._pages.page(incoming.chat_id, incoming.payload, group.key)
        if page is not None:  # «Ещё»: the next page of the same keyboard
            if await self._runtime.admit(incoming, inbox_id=row.id):
                with contextlib.suppress(SendError):
                    await self._send_parts(incoming.chat_id, [texts.MORE_OPTIONS], page, [], group)
                await self._runtime.inbox.done(row)
            return
        await self._runtime.intake(incoming, inbox_id=row.id)

    async def _private(self, chat_id: str, group: _Group) -> bool:
        """Whether a chat is a person's own dialog with the group, asked before a command is
        handled: a staff command from a group chat would be answered into that group, so
        commands are taken from private chats only, as on VK and Telegram. OK's webhook
        does not say the chat's type, so OK is asked, once per chat, and only for commands
        (a resident's ordinary message costs no extra call); if OK cannot say now, the chat
        is taken for a dialog (the usual case) and asked about again next time."""
        known = self._chat_types.get((group.key, chat_id))
        if known is None:
            try:
                known = await group.client.chat_type(chat_id)
            except OkApiError as error:
                logger.warning("ok chat type unknown ({}), taken for a dialog", error.reason)
                return True
            self._chat_types[(group.key, chat_id)] = known
            while len(self._chat_types) > CHAT_TYPES_CACHED:
                self._chat_types.pop(next(iter(self._chat_types)))
        if known != DIALOG:
            logger.info("ok message in a {} ignored: people are answered in private", known)
        return known == DIALOG

    def _normalize(self, update: Webhook, group: _Group | None = None) -> Incoming | None:
        """A webhook as the core's incoming message; None (and a warning with the raw body,
        so a live check can fix the shape in one place) for one that matches no known form."""
        user_id = update.sender.user_id.removeprefix(USER_PREFIX)
        common: dict[str, Any] = {
            "platform": PLATFORM,
            "chat_id": update.recipient.chat_id,
            "user_id": user_id,
            "received_at": moment(update.timestamp, scale=1000),
            "display_name": update.sender.name,
            "event_id": update.event_id,
            "community": group.key if group is not None else "",
        }
        kind = update.kind
        if kind == "MESSAGE_CALLBACK" and update.callback_payload is not None:
            if update.callbackId:
                self._answer(update.recipient.chat_id, update.callbackId, group or self._groups[""])
            return Incoming(payload=update.callback_payload, **common)
        if kind == "MESSAGE_CREATED" and update.message is not None:
            return self._message(update, common)
        if kind == "CHAT_SYSTEM" and update.type == "CHAT_STARTED":
            return Incoming(text=START_TEXT, **common)  # opened the chat: show the menu
        logger.warning(
            "ok webhook of no known shape ignored: {}",
            json.dumps(_shape(update.model_dump()), ensure_ascii=False)[:RAW_LOG_LIMIT],
        )
        return None

    def _message(self, update: Webhook, common: dict[str, Any]) -> Incoming:
        assert update.message is not None
        photos: list[Photo] = []
        location = None
        unreadable = False
        for attachment in update.message.attachments:
            payload = attachment.payload
            if attachment.type == "IMAGE" and payload.get("url"):
                ref = str(payload.get("id") or payload.get("token") or payload["url"])
                photos.append(Photo(platform=PLATFORM, ref=ref, url=str(payload["url"])))
            elif attachment.type == "LOCATION":  # [3P] payload {latitude, longitude}
                with contextlib.suppress(KeyError, TypeError, ValueError, OverflowError):
                    lat, lon = float(payload["latitude"]), float(payload["longitude"])
                    if math.isfinite(lat) and math.isfinite(lon):
                        location = Location(lat, lon)
            elif attachment.type in UNREADABLE:
                unreadable = True
        text = update.message.text
        return Incoming(
            text=text,
            photos=tuple(photos),
            location=location,
            unsupported=unreadable and not (text or photos or location),
            **common,
        )

    def _answer(self, chat_id: str, callback_id: str, group: _Group) -> None:
        """Acknowledge the press; OK wants an answering message [DOC graph.chat.answer]."""

        async def answer() -> None:
            try:
                await group.client.answer_callback(chat_id, callback_id, "✓")
            except OkApiError as error:
                logger.warning("ok callback answer failed: {}", error.reason)

        task = asyncio.create_task(answer())
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)

    # --- sending ------------------------------------------------------------------------

    async def send(self, message: Outgoing) -> list[str]:
        group = self._groups.get(message.community)
        if group is None:  # queued for a group since taken out of the config
            raise SendError(f"ok group {message.community} is not configured", retryable=False)
        images, links = await self._images(message, group)
        text = message.text + ("\n\n" + "\n".join(links) if links else "")
        keyboard = None
        if message.keyboard is not None and message.keyboard.rows:
            pages = keyboard_pages(message.keyboard, LIMITS)
            self._pages.remember(message.chat_id, pages, group.key)
            keyboard = pages[0]
        appeal = f"№{message.appeal_number}" if message.appeal_number else "-"
        try:
            return await self._send_parts(
                message.chat_id, split_text(text, MAX_TEXT), keyboard, images, group
            )
        except SendError as error:
            logger.warning(
                "ok send failed appeal {} retryable={}: {}", appeal, error.retryable, error.reason
            )
            raise

    async def _send_parts(
        self,
        chat_id: str,
        parts: list[str],
        keyboard: Keyboard | None,
        images: list[Attachment],
        group: _Group,
    ) -> list[str]:
        ids = []
        for index, part in enumerate(parts):
            attachments: list[Attachment] = []
            if index == len(parts) - 1:
                if keyboard is not None:
                    attachments.append(_keyboard(keyboard))
                attachments += images[: MAX_ATTACHMENTS - len(attachments)]
            assert self._runtime is not None
            try:
                async with self._runtime.paced(PLATFORM, chat_id, group.key):
                    sent = await group.client.send(
                        chat_id, OutgoingMessage(text=part, attachments=attachments)
                    )
            except OkApiError as error:
                raise SendError(error.reason, retryable=error.retryable) from None
            if sent:
                ids.append(sent)
        return ids

    async def _images(self, message: Outgoing, group: _Group) -> tuple[list[Attachment], list[str]]:
        """IMAGE attachments, uploaded; links for the photos that could not be."""
        assert self._runtime is not None
        room = MAX_ATTACHMENTS - (1 if message.keyboard and message.keyboard.rows else 0)
        return await attach_photos(
            message.photos, room, functools.partial(self._image, group=group)
        )

    async def _image(self, photo: Photo, group: _Group) -> Attachment | None:
        """Every photo is uploaded, those received on OK too (fetched from the URL OK gave):
        OK takes only one image by URL per message and refuses the whole message past it
        (error 100, [DOC]), and whether a received photo's token may be sent back into
        another chat is not documented."""
        assert self._runtime is not None
        try:
            content = await self._runtime.fetch_photo(photo)
            return Attachment.image(token=await group.client.upload_image(content))
        except (PhotoUnavailable, OkApiError) as error:
            logger.warning("ok photo upload failed, sending a link: {}", error)
            return None  # the text carries its link instead


# Values that say what a webhook is, not what a person wrote: logged as they are.
STRUCTURAL_KEYS = frozenset({"webhookType", "type", "chat_id", "user_id", "mid", "callbackId"})


def _shape(value: Any, key: str = "") -> Any:
    """A body as its structure: keys and types kept (what a fix of the parsing needs), the
    words and names a person wrote replaced by their length (SPEC: no personal data)."""
    if isinstance(value, dict):
        return {k: _shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:5]]
    if isinstance(value, str) and key not in STRUCTURAL_KEYS:
        return f"<text {len(value)}>"
    return value


def _keyboard(keyboard: Keyboard) -> Attachment:
    """An INLINE_KEYBOARD of CALLBACK buttons: every press comes back as MESSAGE_CALLBACK."""
    rows = [
        [
            Button(
                text=b.label,
                payload=b.payload,
                intent="NEGATIVE" if b.payload == "nav:cancel" else "DEFAULT",
            )
            for b in row
        ]
        for row in keyboard.rows
    ]
    return Attachment.keyboard(rows)
