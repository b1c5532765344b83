"""A small typed client for the Odnoklassniki group-messages Bot API (Graph API).

No maintained Python library exists (messenger-apis.md §2.9), so this talks to the Graph
endpoints over aiohttp. Parts of the API are documented thinly; every such assumption lives
in ASSUMPTIONS below or next to the model it shapes, marked with what it rests on
([DOC] official docs, [3P] third-party code only, [??] a guess), so that a live check can
correct it in one line.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import aiohttp
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

# --- what the client rests on ------------------------------------------------------------
# [DOC §2.2] requests go to {api_url}/graph/…, the token in the query as access_token,
# POST bodies JSON with Content-Type application/json;charset=utf-8.
JSON_CONTENT_TYPE = "application/json;charset=utf-8"
# [??] limits are not documented; a third-party client truncates text to 3,900 characters
# (§2.5), and a message carries at most 5 attachments [DOC].
MAX_TEXT = 3900
MAX_ATTACHMENTS = 5
# [??] inline keyboard limits are not documented; conservative guesses.
MAX_BUTTONS = 30
MAX_BUTTONS_PER_ROW = 5
MAX_BUTTON_TEXT = 64
MAX_BUTTON_PAYLOAD = 256
# [DOC §2.6] v2 errors use the "traditional OK API error format" {error_code, error_msg};
# the codes below are the OK REST API's ([3P] as integrations use them):
# 1 UNKNOWN, 2 SERVICE (temporarily unavailable), 8 FLOOD_BLOCKED, 11 LIMIT_REACHED and
# 9999 SYSTEM are passing; everything else (a bad token 102/103, a bad parameter 100,
# NOT_FOUND 300, PERMISSION_DENIED 10…) is final for that message.
RETRYABLE_ERROR_CODES = frozenset({1, 2, 8, 11, 9999})
TIMEOUT = aiohttp.ClientTimeout(total=30)
# [DOC §2.1] ids are prefixed strings: "group:12345678901234".
_GROUP_ID_RE = re.compile(r"group:([1-9][0-9]{0,18})")


class OkApiError(Exception):
    """A failed call: `retryable` for network errors, 5xx, 429 and the passing codes."""

    def __init__(self, reason: str, *, retryable: bool, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.code = code


# --- outgoing shapes [DOC §2.5; keyboard [3P]] -------------------------------------------


class Button(BaseModel):
    type: Literal["CALLBACK", "LINK", "REQUEST_CONTACT", "REQUEST_GEO_LOCATION"] = "CALLBACK"
    text: str = Field(max_length=MAX_BUTTON_TEXT)
    payload: str | None = Field(default=None, max_length=MAX_BUTTON_PAYLOAD)
    intent: Literal["DEFAULT", "POSITIVE", "NEGATIVE"] = "DEFAULT"
    url: str | None = None


class Attachment(BaseModel):
    type: Literal["INLINE_KEYBOARD", "IMAGE"]
    payload: dict[str, Any]

    @classmethod
    def keyboard(cls, rows: list[list[Button]]) -> Attachment:
        buttons = [[b.model_dump(exclude_none=True) for b in row] for row in rows]
        return cls(type="INLINE_KEYBOARD", payload={"keyboard": {"buttons": buttons}})

    @classmethod
    def image(cls, *, token: str | None = None, url: str | None = None) -> Attachment:
        return cls(type="IMAGE", payload={"token": token} if token else {"url": url})


class OutgoingMessage(BaseModel):
    text: str = Field(max_length=MAX_TEXT)
    attachments: list[Attachment] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)


# --- incoming shapes [DOC §2.4 2017 example; webhookType and names [3P]] ---------------


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class Sender(_Loose):
    user_id: str
    name: str = ""


class Recipient(_Loose):
    chat_id: str


class IncomingAttachment(_Loose):
    type: str
    payload: dict[str, Any] = Field(default_factory=dict)


class IncomingMessage(_Loose):
    text: str = ""
    mid: str | None = None
    attachments: list[IncomingAttachment] = Field(default_factory=list)
    payload: str | None = None  # [3P] a callback's payload may be here (node-ok-bot-api)…


class Webhook(_Loose):
    """One webhook body. The 2017 docs have no webhookType: a body with a message is a new
    message then [DOC]; current bodies name their type [3P]."""

    webhookType: str | None = None
    sender: Sender
    recipient: Recipient
    timestamp: int  # milliseconds [DOC]
    message: IncomingMessage | None = None
    mid: str | None = None
    callbackId: str | None = None
    payload: str | None = None  # [3P] …or here, at the top level
    type: str | None = None  # CHAT_SYSTEM subtype, e.g. CHAT_STARTED [3P]

    @property
    def kind(self) -> str:
        if self.webhookType:
            return self.webhookType
        return "MESSAGE_CREATED" if self.message is not None else "UNKNOWN"

    @property
    def callback_payload(self) -> str | None:
        """Both documented placements of a pressed button's payload."""
        if self.payload is not None:
            return self.payload
        return self.message.payload if self.message is not None else None

    @property
    def event_id(self) -> str:
        """What identifies a delivery, so that OK's retries are recognised [??]: the message
        id when there is one, else the callback id, else sender and timestamp."""
        mid = self.mid or (self.message.mid if self.message else None)
        return mid or self.callbackId or f"{self.sender.user_id}@{self.timestamp}"


def parse_webhook(data: Any) -> Webhook:
    """Raises ValueError for a body that is not a well-formed webhook."""
    try:
        return Webhook.model_validate(data)
    except ValidationError as error:
        raise ValueError(str(error.errors()[0]["msg"])) from None


class Subscription(_Loose):
    url: str
    time: int | None = None


# --- the client ----------------------------------------------------------------------------


class OkClient:
    def __init__(self, token: str, api_url: str) -> None:
        self._token = token
        self._base = api_url.rstrip("/") + "/graph"
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, path: str, body: Any = None, **query: str) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        params = {"access_token": self._token, **query}
        headers = {"Content-Type": JSON_CONTENT_TYPE} if body is not None else {}
        try:
            async with self._session.request(
                method, self._base + path, params=params, json=body, headers=headers
            ) as response:
                status = response.status
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise OkApiError(f"{type(error).__name__}", retryable=True) from None
        if status == 429 or status >= 500:
            raise OkApiError(f"HTTP {status}", retryable=True)
        try:
            data = json.loads(text)
        except ValueError:
            raise OkApiError(f"HTTP {status}, not JSON", retryable=status >= 500) from None
        if isinstance(data, dict) and "error_code" in data:
            code = int(data.get("error_code") or 0)
            message = str(data.get("error_msg") or "")[:200]
            raise OkApiError(
                f"OK error {code}: {message}", retryable=code in RETRYABLE_ERROR_CODES, code=code
            )
        if status >= 400:
            raise OkApiError(f"HTTP {status}", retryable=False)
        return data

    async def group_id(self) -> int:
        """The id of the group the token is of: GET /graph/me/info answers
        {"name", "group_id": "group:<id>"} [DOC §2.2 token owner]."""
        data = await self._request("GET", "/me/info")
        value = data.get("group_id") if isinstance(data, dict) else None
        match = _GROUP_ID_RE.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise OkApiError("an answer without the group's id", retryable=False)
        return int(match.group(1))

    async def subscriptions(self) -> list[Subscription]:
        data = await self._request("GET", "/me/subscriptions")
        return [Subscription.model_validate(s) for s in data.get("subscriptions") or []]

    async def subscribe(self, url: str) -> None:
        data = await self._request("POST", "/me/subscribe", {"url": url})
        if not data.get("success", False):
            raise OkApiError(f"subscribe refused: {str(data)[:200]}", retryable=True)

    async def send(self, chat_id: str, message: OutgoingMessage) -> str | None:
        """POST /graph/me/messages/{chat_id}; the new message id if OK says it [??]."""
        body = {
            "recipient": {"chat_id": chat_id},
            "message": message.model_dump(exclude_defaults=True),
        }
        data = await self._request("POST", f"/me/messages/{chat_id}", body)
        if isinstance(data, dict) and data.get("success") is False:
            raise OkApiError(f"send refused: {str(data)[:200]}", retryable=False)
        if not isinstance(data, dict) or "message_id" not in data:
            logger.warning("ok send answered without a message id: {}", str(data)[:200])
            return None
        return str(data["message_id"])

    async def chat_type(self, chat_id: str) -> str:
        """DIALOG (a person and the group), GROUP_CHAT or CHAT [DOC graph.chat info]."""
        data = await self._request("GET", f"/me/chat/{chat_id}")
        return str(data.get("type") or "") if isinstance(data, dict) else ""

    async def answer_callback(self, chat_id: str, callback_id: str, text: str) -> None:
        """Acknowledge a button press [DOC: it requires an answering message]."""
        await self._request(
            "POST", f"/{chat_id}/answer", {"message": {"text": text}}, callbackId=callback_id
        )

    async def upload_image(self, content: bytes) -> str:
        """Upload a photo; its token for an IMAGE attachment ([DOC] fileUploadUrl, the
        answer's shape [3P])."""
        data = await self._request("GET", "/me/fileUploadUrl", type="IMAGE")
        form = aiohttp.FormData()
        form.add_field("data", content, filename="photo.jpg", content_type="image/jpeg")
        assert self._session is not None
        try:
            async with self._session.post(data["url"], data=form) as response:
                uploaded = json.loads(await response.text())
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise OkApiError(f"upload: {type(error).__name__}", retryable=True) from None
        photos = uploaded.get("photos") if isinstance(uploaded, dict) else None
        if not photos:
            raise OkApiError(f"upload answered {str(uploaded)[:200]}", retryable=False)
        return str(next(iter(photos.values()))["token"])
