"""The VK channel: community messages through vkbottle, by Bots Long Poll or Callback API.

One channel serves every community of the configuration ([vk] and each [[vk.communities]],
SPEC §14), each with its own token (its own API client and pacing). Receiving: a long poll
per community, or the one Callback API path for all of them, which tells them apart by
`group_id` and checks that community's own secret (and answers its own confirmation code).
Updates are normalized (bot/channels/vk_format.py), marked with their community and handed to
the app, one sender's in order; each long poll's `ts` is saved in the database only after its
updates were handled, so a restart resumes where it stopped (redelivered updates are
recognised by their event ids). A Callback API update is written to the inbox before VK hears
«ok» (bot/inbox.py) and handled from there. Sending: through the community the message names,
messages.send with a random_id derived from the outbox row's random key, so a resend after a
crash is deduplicated by VK itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
from aiohttp import web
from loguru import logger
from vkbottle import API, ABCRequestRescheduler, AiohttpClient, VKAPIError
from vkbottle.polling import BotPolling

from bot.channels.base import Capabilities, Channel, Runtime, SendError
from bot.channels.lanes import in_sender_order
from bot.channels.vk_format import (
    INLINE_LIMITS,
    MAX_ATTACHMENTS,
    MAX_TEXT,
    PLATFORM,
    STANDARD_LIMITS,
    NotForUs,
    keyboard_json,
    parse_update,
)
from bot.config import VkSection
from bot.inbox import Accepted
from bot.pagination import PageMemory, keyboard_pages
from bot.photos import attach_photos
from bot.render import split_text
from handlers import texts
from handlers.messages import COMMENT_DELETE, CommentTarget, Keyboard, Outgoing, Photo
from storage.models import InboxRow

logger.disable("vkbottle")  # it logs every request with its text: residents' words, phones

TS_KEY = "vk.longpoll.ts"  # the main community's; another's ends in ".<group_id>"
# §1.7: unknown, too many rps, flood, server; 223 "Too many replies" (wall.createComment)
RETRYABLE_CODES = frozenset({1, 6, 9, 10, 29, 223})
NAME_CACHE = 10_000
USERS_PER_CALL = 1000  # users.get takes up to 1000 ids
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30)
RESTART_BACKOFF_MAX = 60.0
MAX_CHUNKS = 1024  # parts of one message, within one random_id key
MAX_EVENT_ID = 128  # VK's are 40 hex digits; a longer one is kept without deduplication


class _BadResponse(Exception):
    """VK answered with something that is not JSON (an HTML 502 page, say)."""


class _NoReschedule(ABCRequestRescheduler):
    """vkbottle's default retries a non-JSON answer forever with growing sleeps; here it is
    an error at once, and the delivery worker decides about retrying."""

    async def reschedule(self, ctx_api: Any, method: str, data: Any, recent: Any) -> Any:
        raise _BadResponse(f"non-JSON answer to {method}")


class _Polling(BotPolling):
    """Bots Long Poll that starts from the ts saved in our database instead of writing
    `.vkbottle/` files into the working directory."""

    saved_ts: str | None = None
    on_poll: Callable[[], None] | None = None  # a poll completed: the channel is receiving

    async def get_event(self, server: dict[str, Any]) -> dict[str, Any]:
        event: dict[str, Any] = await super().get_event(server)
        if self.on_poll is not None and "failed" not in event:
            self.on_poll()
        return event

    def restore_server_ts(self, server: dict[str, Any]) -> dict[str, Any]:
        if self.saved_ts:
            server["ts"] = self.saved_ts
        return server

    def save_server_ts(self, server: dict[str, Any]) -> None:
        """The channel saves the ts itself, once the updates before it are handled."""


@dataclass
class _Community:
    """One VK community the channel serves: its id in the database (`key`, '' for [vk]),
    its group id, its own API client (its token) and its Callback API credentials."""

    key: str
    group_id: int
    api: API
    callback_secret: str
    confirmation_code: str

    @property
    def ts_key(self) -> str:
        return f"{TS_KEY}.{self.group_id}" if self.key else TS_KEY


def _api(token: str, api_url: str) -> API:
    api = API(
        token,
        http_client=AiohttpClient(timeout=REQUEST_TIMEOUT),
        request_rescheduler=_NoReschedule(),
    )
    api.API_URL = api_url if api_url.endswith("/") else api_url + "/"
    return api


class VkChannel(Channel):
    platform = PLATFORM
    capabilities = Capabilities(buttons=True, photos=True, max_text=MAX_TEXT)

    def __init__(self, config: VkSection) -> None:
        self._config = config
        main = _Community(
            "",
            config.group_id,
            _api(config.token.get_secret_value(), config.api_url),
            config.callback_secret.get_secret_value(),
            config.confirmation_code,
        )
        self._communities: dict[str, _Community] = {"": main}
        for entry in config.communities:
            self._communities[str(entry.group_id)] = _Community(
                str(entry.group_id),
                entry.group_id,
                _api(entry.token.get_secret_value(), config.api_url),
                entry.callback_secret.get_secret_value(),
                entry.confirmation_code,
            )
        self._by_group = {c.group_id: c for c in reversed(self._communities.values())}
        self._runtime: Runtime | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._names: OrderedDict[int, str] = OrderedDict()
        self._pages = PageMemory()
        self._acks: set[asyncio.Task[None]] = set()

    # --- receiving -----------------------------------------------------------------------

    async def start(self, runtime: Runtime) -> None:
        self._runtime = runtime
        if self._config.mode == "callback":
            self.expect_webhooks(set_up=False)  # the address is entered in VK's settings
            runtime.web.add_post(self._config.callback_path, self._callback)
            runtime.inbox.register(PLATFORM, self._from_inbox)
        else:
            self.expect_polls()
            # One instance at a time polls each community (several on one database, SPEC §15).
            for community in self._communities.values():
                work = functools.partial(self._poll_forever, community)
                name = f"vk-longpoll-{community.group_id}"
                self._spawn(self.poll_alone(runtime.db, community.ts_key, work), name)

    async def stop(self) -> None:
        await self._stop_tasks(self._acks)
        for community in self._communities.values():
            await community.api.http_client.close()

    async def _poll_forever(self, community: _Community) -> None:
        """Bots Long Poll of one community. vkbottle handles `failed` 1/2/3 and retries
        network errors; anything that escapes it (VK unreachable at start, a bad token) is
        retried here with a doubling pause, never a crash loop."""
        assert self._runtime is not None
        pause = 1.0
        while True:
            polling = _Polling(api=community.api, group_id=community.group_id, wait=25)
            polling.on_poll = self.mark_received
            try:
                saved = await self._runtime.load(community.ts_key)
                polling.saved_ts = saved or await self._first_ts(community)
                async for event in polling.listen():
                    pause = 1.0
                    updates = event.get("updates") or []
                    await self._fetch_names(_senders(updates), community)
                    handle = functools.partial(self._handle, community=community)
                    await in_sender_order(updates, _sender, handle)
                    await self._runtime.save(community.ts_key, str(event["ts"]))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning(
                    "vk long poll of community {} failed ({}), retrying in {:.0f}s",
                    community.group_id,
                    type(error).__name__,
                    pause,
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, RESTART_BACKOFF_MAX)

    async def _first_ts(self, community: _Community) -> str:
        """The stream's position at the very first start, saved before anything is fetched:
        a restart before the first batch was handled must not begin at "now" and skip it."""
        assert self._runtime is not None
        server = await community.api.request(
            "groups.getLongPollServer", {"group_id": community.group_id}
        )
        ts = str(server["response"]["ts"])
        await self._runtime.save(community.ts_key, ts)
        return ts

    async def _callback(self, request: web.Request) -> web.StreamResponse:
        """Callback API: the community found by `group_id`, its secret checked, its
        confirmation handshake answered, the update written to the inbox and only then «ok»
        (503 while the inbox is full: VK retries)."""
        assert self._runtime is not None
        try:
            raw = await request.text()
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return web.Response(status=400, text="bad request")
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            return web.Response(status=400, text="bad request")
        group_id = body.get("group_id")
        community = None
        if group_id is None:
            community = self._communities[""]
        elif isinstance(group_id, int) and not isinstance(group_id, bool):
            community = self._by_group.get(group_id)
        if community is None:
            # Nothing of it is stored, and VK is told «ok» so that it does not resend it.
            logger.warning("vk callback for a community that is not configured ignored")
            return web.Response(text="ok")
        if not self._secret_ok(body, community):
            logger.warning("vk callback refused: wrong or missing secret")
            return web.Response(status=403, text="forbidden")
        self.mark_received()
        if body["type"] == "confirmation":
            logger.info("vk callback server confirmed for community {}", community.group_id)
            return web.Response(text=community.confirmation_code)
        accepted = await self._runtime.inbox.accept(
            PLATFORM, community.key, _event_id(body), _sender_key(body), raw
        )
        if accepted is Accepted.FULL:
            return web.Response(status=503, text="busy")
        return web.Response(text="ok")

    @staticmethod
    def _secret_ok(body: dict[str, Any], community: _Community) -> bool:
        given = body.get("secret")
        if given is None and body["type"] == "confirmation":
            return True  # the handshake may come before a secret is set; it reveals no data
        return isinstance(given, str) and hmac.compare_digest(
            given.encode("utf-8", "replace"), community.callback_secret.encode()
        )

    async def _from_inbox(self, row: InboxRow) -> None:
        community = self._communities.get(row.community)
        if community is None:  # accepted for a community since taken out of the config
            logger.warning("vk update of a community no longer configured dropped")
            await self._done(row)
            return
        await self._handle(json.loads(row.body), community, row)

    async def _handle(
        self, update: Any, community: _Community, row: InboxRow | None = None
    ) -> None:
        """One update of `community`, from a long poll or from the inbox (`row`, marked done
        with it)."""
        assert self._runtime is not None
        inbox_id = row.id if row is not None else None
        try:
            if not isinstance(update, dict):
                raise TypeError("update is not an object")
            parsed = parse_update(update)
        except NotForUs as reason:
            logger.debug("vk update ignored: {}", reason)
            await self._done(row)
            return
        except Exception as error:  # malformed in any way (also OverflowError, OSError)
            logger.warning(
                "vk update of type {!r} is malformed, dropped: {}",
                update.get("type") if isinstance(update, dict) else None,
                error,
            )
            await self._done(row)
            return
        if parsed.callback_event_id is not None:
            self._acknowledge(parsed.callback_event_id, parsed.user_id, parsed.peer_id, community)
        incoming = replace(
            parsed.incoming,
            community=community.key,
            # A photo is attached as it came only by the community that received it.
            photos=tuple(replace(p, community=community.key) for p in parsed.incoming.photos),
        )
        page = self._pages.page(incoming.chat_id, incoming.payload, community.key)
        if page is not None:  # «Ещё»: the next page of the same keyboard, no dialogue step
            if await self._runtime.admit(incoming, inbox_id=inbox_id):
                await self._send_keyboard_page(incoming.chat_id, page, community)
                await self._done(row)
            return
        if incoming.comment is None or incoming.comment.action != COMMENT_DELETE:
            name = await self._name(parsed.user_id, community)
            incoming = replace(incoming, display_name=name)
        await self._runtime.intake(incoming, inbox_id=inbox_id)

    async def _done(self, row: InboxRow | None) -> None:
        if row is not None:
            assert self._runtime is not None
            await self._runtime.inbox.done(row)

    def _acknowledge(
        self, event_id: str, user_id: int, peer_id: int, community: _Community
    ) -> None:
        """Stop the callback button's spinner (messages.sendMessageEventAnswer)."""

        async def answer() -> None:
            try:
                assert self._runtime is not None
                async with self._runtime.paced(PLATFORM, str(peer_id), community.key):
                    await community.api.request(
                        "messages.sendMessageEventAnswer",
                        {"event_id": event_id, "user_id": user_id, "peer_id": peer_id},
                    )
            except Exception as error:
                logger.warning("vk event answer failed: {}", type(error).__name__)

        task = asyncio.create_task(answer())
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    async def _name(self, user_id: int, community: _Community) -> str:
        """«First Last», cached; empty if VK does not say."""
        if user_id not in self._names:
            await self._fetch_names([user_id], community)
        self._names.move_to_end(user_id)
        return self._names[user_id]

    async def _fetch_names(self, user_ids: list[int], community: _Community) -> None:
        """Names of the not yet known users, in one users.get call with the community's
        token (paced like any other call: it counts towards its 20 a second)."""
        assert self._runtime is not None
        wanted = [u for u in dict.fromkeys(user_ids) if u > 0 and u not in self._names]
        if not wanted:
            return
        names = dict.fromkeys(wanted, "")
        try:
            async with self._runtime.paced(PLATFORM, "", community.key):
                response = await community.api.request(
                    "users.get", {"user_ids": ",".join(map(str, wanted[:USERS_PER_CALL]))}
                )
            for user in response.get("response") or []:
                full = f"{user.get('first_name', '')} {user.get('last_name', '')}".strip()
                names[int(user["id"])] = full
        except Exception as error:
            logger.warning("vk users.get failed: {}", type(error).__name__)
            return  # not cached: asked again next time
        for user_id, name in names.items():
            self._names[user_id] = name
        while len(self._names) > NAME_CACHE:
            self._names.popitem(last=False)

    # --- sending ------------------------------------------------------------------------

    def _community(self, key: str) -> _Community:
        community = self._communities.get(key)
        if community is None:  # queued for a community since taken out of the config
            raise SendError(f"vk community {key} is not configured", retryable=False)
        return community

    async def send(self, message: Outgoing) -> list[str]:
        community = self._community(message.community)
        if message.comment is not None:
            return await self._send_comment(message, message.comment, community)
        attachments, links = await self._attachments(message, community)
        text = message.text + ("\n\n" + "\n".join(links) if links else "")
        chunks = split_text(text, MAX_TEXT)
        keyboard = None
        if message.keyboard is not None and message.keyboard.rows:
            limits = INLINE_LIMITS if message.keyboard.inline else STANDARD_LIMITS
            pages = keyboard_pages(message.keyboard, limits)
            if not message.keyboard.inline:
                self._pages.remember(message.chat_id, pages, community.key)
            keyboard = pages[0]
        ids = []
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            params: dict[str, Any] = {
                "peer_id": int(message.chat_id),
                "random_id": random_id(message.outbox_id, index),
                "message": chunk,
            }
            if last and keyboard is not None:
                params["keyboard"] = keyboard_json(keyboard)
            if last and attachments:
                params["attachment"] = ",".join(attachments)
            ids.append(str(await self._call("messages.send", params, community)))
        return ids

    async def _send_comment(
        self, message: Outgoing, target: CommentTarget, community: _Community
    ) -> list[str]:
        """An answer in public under a comment (SPEC §14): wall.createComment as the
        community itself (`from_group`), replying to the comment; a community token may do
        it (access_token_type user and group). Its `guid` comes from the outbox row's random
        key, as random_id does for messages: VK makes a repeated call return the comment it
        made the first time, so a resend after a crash posts nothing twice."""
        ids = []
        for index, chunk in enumerate(split_text(message.text, MAX_TEXT)):
            params: dict[str, Any] = {
                "owner_id": int(target.owner_id),
                "post_id": int(target.post_id),
                "from_group": community.group_id,
                "reply_to_comment": int(target.reply_to),
                "message": chunk,
            }
            key = random_id(message.outbox_id, index)
            if key:
                params["guid"] = str(key)
            created = await self._call("wall.createComment", params, community)
            ids.append(str(created["comment_id"]))
        return ids

    async def _send_keyboard_page(
        self, chat_id: str, page: Keyboard, community: _Community
    ) -> None:
        try:
            await self._call(
                "messages.send",
                {
                    "peer_id": int(chat_id),
                    "random_id": 0,
                    "message": texts.MORE_OPTIONS,
                    "keyboard": keyboard_json(page),
                },
                community,
            )
        except SendError as error:
            logger.warning("vk «Ещё» page not sent: {}", error.reason)

    async def _call(self, method: str, params: dict[str, Any], community: _Community) -> Any:
        """One API call with the community's token, paced to [vk] send_rate (each token
        apart); failures become SendError, retryable or final (§1.7)."""
        assert self._runtime is not None
        try:
            async with self._runtime.paced(PLATFORM, str(params.get("peer_id", "")), community.key):
                response = await community.api.request(method, params)
        except VKAPIError as error:
            code = int(getattr(error, "code", 0) or 0)
            reason = f"VK error {code}: {getattr(error, 'error_msg', '')}"  # not the params
            raise SendError(reason, retryable=code in RETRYABLE_CODES) from None
        except (aiohttp.ClientError, TimeoutError, _BadResponse) as error:
            raise SendError(f"{type(error).__name__}: {error}", retryable=True) from None
        return response["response"]

    async def _attachments(
        self, message: Outgoing, community: _Community
    ) -> tuple[list[str], list[str]]:
        """VK attachment strings for the photos (one this very community received by its
        reference, any other uploaded anew); the rest become links in the text (bot/photos.py)."""

        async def attach(photo: Photo) -> str | None:
            if photo.platform == PLATFORM and photo.community == community.key:
                return photo.ref
            return await self._upload(message.chat_id, photo, community)

        return await attach_photos(message.photos, MAX_ATTACHMENTS, attach)

    async def _upload(self, chat_id: str, photo: Photo, community: _Community) -> str | None:
        """A photo from another messenger (or community) re-uploaded to VK (§1.9); None if
        that fails."""
        assert self._runtime is not None
        try:
            content = await self._runtime.fetch_photo(photo)
            server = await self._call(
                "photos.getMessagesUploadServer", {"peer_id": int(chat_id)}, community
            )
            async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as session:
                form = aiohttp.FormData()
                form.add_field("photo", content, filename="photo.jpg", content_type="image/jpeg")
                async with session.post(server["upload_url"], data=form) as response:
                    uploaded = json.loads(await response.text())
            saved = await self._call(
                "photos.saveMessagesPhoto",
                {key: uploaded[key] for key in ("photo", "server", "hash")},
                community,
            )
            item = saved[0]
            ref = f"photo{item['owner_id']}_{item['id']}"
            return ref + (f"_{item['access_key']}" if item.get("access_key") else "")
        except Exception as error:  # any failure: the photo goes as a link instead
            logger.warning("vk photo re-upload failed, sending a link: {}", type(error).__name__)
            return None


def random_id(send_key: int | None, chunk: int) -> int:
    """VK's idempotency key (§1.6): the same outbox row and chunk always give the same
    non-zero number, so a resend after a crash is not shown twice; 0 = no deduplication.
    `send_key` is the row's random key (storage/outbox.py), not its id: ids are handed out
    again after a database is restored from a backup, and VK checks the whole history."""
    if send_key is None:
        return 0
    return send_key * MAX_CHUNKS + chunk % MAX_CHUNKS + 1


def _senders(updates: list[Any]) -> list[int]:
    """The authors of a batch's new messages, to name them all with one users.get."""
    senders = []
    for update in updates:
        with contextlib.suppress(KeyError, TypeError, ValueError, AttributeError):
            senders.append(int(update["object"]["message"]["from_id"]))
    return senders


def _sender(update: Any) -> Hashable:
    """Who sent a raw update: its lane in lanes.in_sender_order (may raise if malformed)."""
    found = update["object"]
    sender: Hashable = found.get("message", found).get("from_id") or found.get("user_id")
    return sender


def _sender_key(update: Any) -> str:
    """The sender as the inbox keeps it; '' if the update does not say."""
    try:
        return str(_sender(update) or "")
    except Exception:  # malformed: its handler will say so
        return ""


def _event_id(update: dict[str, Any]) -> str | None:
    """The Callback API's id of the event (the same on VK's retries), if it has one."""
    event_id = update.get("event_id")
    ok = isinstance(event_id, str) and 0 < len(event_id) <= MAX_EVENT_ID
    return event_id if ok else None
