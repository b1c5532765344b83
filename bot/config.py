"""Configuration of appeals-bot: one TOML file plus APPEALS_* environment overrides (SPEC §10).

The public entry is :func:`load_config`. It reads the TOML file, lays environment variables
over it (``APPEALS_VK__TOKEN`` overrides ``[vk] token`` and keeps the other ``[vk]`` keys;
the environment wins over the file), validates everything and returns a :class:`Config`.
Every problem with the file (missing, unreadable, not TOML, a wrong key or value) becomes a
:class:`ConfigError` whose ``str()`` is one line naming the file, the key and the problem, so
the command line can print it instead of a traceback.

Decisions worth knowing:

* Only three sources are read, highest priority first: keyword arguments given to
  ``Config(...)`` (for tests), the environment, the TOML file. No ``.env`` file and no secrets
  directory are read.
* Checks that only matter for a running channel (its token, group id, webhook URL and
  secrets) apply only when that channel is ``enabled``; switching a channel off never
  requires clearing its other keys. Path keys must start with "/" whether or not the
  channel is enabled.
* Types are strict for the TOML file: ``port = "8080"`` or ``enabled = "yes"`` is an
  error, not a silent conversion. Environment values are always text; with ``strict`` set
  on the settings model, pydantic-settings (2.12 and later) converts each one by its key's
  type before validation, so ``APPEALS_WEB__PORT=8080`` keeps working.
* Every problem is collected, not only the first: the catalogue checks (duplicate codes and
  titles) are field validators, so they report even when another section is wrong too.
* Error messages never echo a value that may be secret (tokens, secrets, storage URLs).
* The models are not frozen; use ``model_copy(update=...)`` to derive a changed config.
"""

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from handlers.identity import PLATFORMS, parse_identity

__all__ = [
    "ENV_NESTED_DELIMITER",
    "ENV_PREFIX",
    "LEARNED_ID_KEYS",
    "PLATFORMS",
    "BotSection",
    "Category",
    "Community",
    "Config",
    "ConfigError",
    "DeliverySection",
    "Identity",
    "LimitsSection",
    "MaxSection",
    "ModeratorsSection",
    "OkSection",
    "Settlement",
    "SlaSection",
    "StorageSection",
    "TelegramSection",
    "VkSection",
    "WebSection",
    "load_config",
    "parse_identity",
    "with_learned_ids",
]

ENV_PREFIX = "APPEALS_"
ENV_NESTED_DELIMITER = "__"

_CODE_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
# Telegram setWebhook secret_token: 1-256 characters A-Z a-z 0-9 _ - (messenger-apis notes).
_TG_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
# The secret path segment of the OK webhook address (OK sends no signature, §2.3).
_OK_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
# MAX subscription secret (schema.yaml SubscriptionRequestBody.secret): 5-256 of these.
_MAX_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{5,256}")
_SQLITE_PREFIX = "sqlite:///"
# A Telegram bot token starts with the bot's id: a positive whole number (identity.py).
_NUMERIC_ID_RE = re.compile(r"[1-9][0-9]{0,18}")
_POSTGRES_PREFIXES = ("postgresql://", "postgres://")

# The TOML file that `Config()` reads, set by `load_config` for the duration of one call.
_TOML_PATH: ContextVar[Path | None] = ContextVar("appeals_config_toml_path", default=None)


# --- problems tied to keys -------------------------------------------------------------

Loc = tuple[str | int, ...]


class _KeyedProblems(ValueError):
    """Problems found by a model validator, each tied to a key relative to that model.

    pydantic wraps a ``ValueError`` raised in a validator and keeps the exception object in
    the error's ``ctx``; :func:`load_config` unpacks it so that every problem names its own
    key (``vk.token``) instead of the section that found it (``vk``).
    """

    def __init__(self, problems: Sequence[tuple[Loc, str]]) -> None:
        self.problems: tuple[tuple[Loc, str], ...] = tuple(problems)
        super().__init__("; ".join(f"{_dotted(loc)}: {text}" for loc, text in self.problems))


def _raise_problems(problems: Sequence[tuple[Loc, str]]) -> None:
    if problems:
        raise _KeyedProblems(problems)


def _unique(problems: Sequence[tuple[Loc, str]]) -> list[tuple[Loc, str]]:
    """Each problem once, in order (one key may be found wrong by two checks alike)."""
    return list(dict.fromkeys(problems))


def _dotted(loc: Sequence[str | int]) -> str:
    """Render a pydantic location as a key: ("settlements", 3, "code") -> "settlements[3].code"."""
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key += f".{part}" if key else part
    return key


# --- reusable value checks -------------------------------------------------------------


def _title_key(title: str) -> str:
    """A title as a resident's typing matches it: case, ё/е and spacing do not count."""
    return " ".join(title.casefold().replace("ё", "е").split())


def _check_identity(value: str) -> str:
    parse_identity(value)
    return value


def _check_code(value: str) -> str:
    if not _CODE_RE.fullmatch(value):
        raise ValueError(
            f"code {value!r} must be 1-32 characters: a lowercase Latin letter, "
            "then lowercase Latin letters, digits or '_'"
        )
    return value


def _check_not_blank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _check_http_url(value: str) -> str:
    if not re.fullmatch(r"https?://\S+", value):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value


def _check_optional_http_url(value: str) -> str:
    return _check_http_url(value) if value else value


def _check_url_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r} must start with '/'")
    return value


Identity = Annotated[str, AfterValidator(_check_identity)]
"""A staff identity ``platform:user_id`` (``vk:123``, ``tg:456``); stays a plain ``str``."""

Code = Annotated[str, AfterValidator(_check_code)]
NonBlankStr = Annotated[str, AfterValidator(_check_not_blank)]
HttpUrlStr = Annotated[str, AfterValidator(_check_http_url)]
OptionalHttpUrlStr = Annotated[str, AfterValidator(_check_optional_http_url)]
UrlPath = Annotated[str, AfterValidator(_check_url_path)]
Rate = Annotated[float, Field(ge=0)]


def _secret_is_set(secret: SecretStr) -> bool:
    return bool(secret.get_secret_value())


# --- sections ----------------------------------------------------------------------------


class _Section(BaseModel):
    """Base of every TOML table: an unknown (misspelt) key is an error, not ignored, and a
    value of the wrong TOML type (``port = "8080"``, ``enabled = "yes"``) is an error, not
    converted. Environment values are text by nature: pydantic-settings converts them by the
    key's type before this strict validation (``strict`` in :class:`Config`)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class BotSection(_Section):
    """``[bot]``: who the bot speaks for and what it links to."""

    name: NonBlankStr
    timezone: str = "Asia/Yekaterinburg"
    privacy_policy_url: HttpUrlStr
    privacy_policy_version: NonBlankStr
    formal_appeal_url: HttpUrlStr = "https://pos.gosuslugi.ru/landing/"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (expected an IANA name such as 'Asia/Yekaterinburg')"
            ) from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The time zone of deadlines and reports."""
        return ZoneInfo(self.timezone)


class StorageSection(_Section):
    """``[storage]``: where appeals are kept."""

    url: str = "sqlite:///appeals.db"
    # PostgreSQL only: connections each instance keeps open at most (one per update in hand).
    pool_size: int = Field(default=10, ge=1, le=1000)

    @field_validator("url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        # The URL is never echoed: a PostgreSQL URL may carry a password.
        if value.startswith(_POSTGRES_PREFIXES):
            if not value.split("://", 1)[1]:
                raise ValueError("postgresql://… needs a host or a database after '//'")
            return value
        if not value.startswith(_SQLITE_PREFIX):
            raise ValueError("expected sqlite:///PATH or postgresql://user:pass@host:5432/db")
        if not value.removeprefix(_SQLITE_PREFIX):
            raise ValueError("sqlite:///PATH needs a file path after 'sqlite:///'")
        return value

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith(_POSTGRES_PREFIXES)

    @property
    def described(self) -> str:
        """The database for logs and messages, never its password."""
        if not self.is_postgres:
            return str(self.sqlite_path)
        parts = urlsplit(self.url)
        return f"postgresql://{parts.hostname or ''}:{parts.port or 5432}{parts.path}"

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file; a relative path stays relative to the working directory."""
        if self.is_postgres:
            raise ValueError("storage.url names a PostgreSQL database, not a SQLite file")
        return Path(self.url.removeprefix(_SQLITE_PREFIX))


class WebSection(_Section):
    """``[web]``: the HTTP server that receives webhooks and serves /healthz and /metrics."""

    host: NonBlankStr = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)  # 0: any free port (tests)
    # Webhook updates accepted but not yet handled, at most; past it a webhook gets 503 and
    # the platform delivers it again later (SPEC §7).
    inbox_limit: int = Field(default=10_000, ge=1)
    # Start the server even when no channel receives webhooks (long polling only), for
    # /healthz and /metrics. With a webhook channel it starts whatever this says. False by
    # default: an installation that never listened on a port does not start to (SPEC §17).
    serve: bool = False
    # /healthz: a long-poll channel with no completed poll for this long is down.
    health_poll_seconds: float = Field(default=90.0, gt=0)
    # The bot's address as people open it (behind the TLS proxy), for the dashboard's
    # sign-in links: {public_url}/dashboard/login/<token>. Required with [dashboard].
    public_url: OptionalHttpUrlStr = ""


class DashboardSection(_Section):
    """``[dashboard]``: the moderators' web pages under /dashboard (SPEC §16)."""

    enabled: bool = False
    # A session opened by a sign-in link lasts this long.
    session_hours: int = Field(default=12, ge=1, le=24 * 30)


class SlaSection(_Section):
    """``[sla]``: the promised answer time and when to remind before it runs out."""

    answer_within_hours: int = Field(default=24, gt=0)
    remind_before_hours: int = Field(default=4, ge=0)

    @model_validator(mode="after")
    def _remind_before_deadline(self) -> Self:
        if self.remind_before_hours >= self.answer_within_hours:
            _raise_problems(
                [
                    (
                        ("remind_before_hours",),
                        f"must be less than sla.answer_within_hours ({self.answer_within_hours})",
                    )
                ]
            )
        return self


class LimitsSection(_Section):
    """``[limits]``: sizes and rates a resident may use."""

    min_description: int = Field(default=10, ge=1)
    max_description: int = 4000
    max_photos: int = Field(default=5, ge=0, le=10)
    draft_ttl_days: int = Field(default=7, ge=1)
    messages_per_minute: int = Field(default=20, ge=1)

    @model_validator(mode="after")
    def _description_range(self) -> Self:
        if self.max_description < self.min_description:
            _raise_problems(
                [
                    (
                        ("max_description",),
                        f"must be at least limits.min_description ({self.min_description})",
                    )
                ]
            )
        return self


class DeliverySection(_Section):
    """``[delivery]``: retries of outgoing messages."""

    max_attempts: int = Field(default=10, ge=1)
    max_backoff_seconds: float = Field(default=60, gt=0)
    # PostgreSQL with several instances: how long an instance holds the outbox rows it is
    # about to send; rows held by an instance that died go out after this (SPEC §15).
    claim_seconds: float = Field(default=120, ge=1)


class RetentionSection(_Section):
    """``[retention]``: how long records that are needed only for a while are kept (SPEC §7)."""

    events_days: int = Field(default=30, ge=1)  # processed event ids, handled webhooks
    sent_days: int = Field(default=90, ge=1)  # sent messages and their ids (quote-replies)
    personal_data_years: int = Field(default=5, ge=1)  # of appeals closed this long ago


# --- communities (SPEC §14) ---------------------------------------------------------------


@dataclass(frozen=True)
class Community:
    """One community (bot) of a messenger as the rest of the program sees it, whichever
    section it was configured in. `key` names it in the database ('' for the platform's
    main section, so an installation without [[x.communities]] stores what it always did);
    `settlement`: the code its messages and comments belong to ('' for none); `comments`:
    it takes comments under posts; `invite_url`: where /invite sends a commenter."""

    platform: str
    key: str
    settlement: str = ""
    comments: bool = False
    invite_url: str = ""
    label: str = ""  # how it is named in registers and logs: "vk 123456"


class _Community(_Section):
    """Keys every ``[[x.communities]]`` entry has: its own token and, optionally, the
    settlement whose community (or bot) it is."""

    token: SecretStr = SecretStr("")
    settlement: str = ""  # a [[settlements]] code, checked by Config


class VkCommunity(_Community):
    """One ``[[vk.communities]]`` entry: another VK community, e.g. a settlement's own."""

    group_id: int = Field(default=0, ge=0)
    callback_secret: SecretStr = SecretStr("")
    confirmation_code: str = ""
    comments: bool = False


class TelegramCommunity(_Community):
    """One ``[[telegram.communities]]`` entry: another bot. Its id is the number the token
    starts with (Telegram tokens are ``<bot id>:<secret>``)."""

    webhook_secret: SecretStr = SecretStr("")

    @field_validator("webhook_secret")
    @classmethod
    def _secret_alphabet(cls, value: SecretStr) -> SecretStr:
        return _telegram_secret(value)


class OkCommunity(_Community):
    """One ``[[ok.communities]]`` entry: another OK group's bot. SPEC §10 names no id key
    for it: ``group_id`` may be left out (0), and ``appeals-bot run`` learns it from the
    token (GET /graph/me/info, bot/community_ids.py) before anything is built on it."""

    group_id: int = Field(default=0, ge=0)
    webhook_secret: SecretStr = SecretStr("")
    invite_url: OptionalHttpUrlStr = ""


class MaxCommunity(_Community):
    """One ``[[max.communities]]`` entry: another MAX bot. As with OK, ``bot_id`` may be left
    out (0): ``appeals-bot run`` learns it from the token (GET /me, bot/community_ids.py)."""

    bot_id: int = Field(default=0, ge=0)
    webhook_secret: SecretStr = SecretStr("")
    comments: bool = False
    invite_url: OptionalHttpUrlStr = ""

    @field_validator("webhook_secret")
    @classmethod
    def _secret_alphabet(cls, value: SecretStr) -> SecretStr:
        return _max_secret(value)


def _bot_problems(
    name: str, token: SecretStr, webhook: bool, webhook_url: str, webhook_secret: SecretStr
) -> list[tuple[Loc, str]]:
    """A bot's section (Telegram, MAX) enabled: its token, and in webhook mode the address
    and the secret."""
    problems: list[tuple[Loc, str]] = []
    if not _secret_is_set(token):
        problems.append((("token",), f"required when {name}.enabled = true"))
    if webhook:
        required = f'required when {name}.mode = "webhook"'
        if not webhook_url:
            problems.append((("webhook_url",), required))
        if not _secret_is_set(webhook_secret):
            problems.append((("webhook_secret",), required))
    return problems


def _telegram_secret(value: SecretStr) -> SecretStr:
    secret = value.get_secret_value()
    if secret and not _TG_SECRET_RE.fullmatch(secret):
        raise ValueError("Telegram accepts only 1-256 characters A-Z, a-z, 0-9, '_' and '-' here")
    return value


def _max_secret(value: SecretStr) -> SecretStr:
    secret = value.get_secret_value()
    if secret and not _MAX_SECRET_RE.fullmatch(secret):
        raise ValueError("MAX accepts only 5-256 characters A-Z, a-z, 0-9, '_' and '-' here")
    return value


def telegram_bot_id(token: str) -> str:
    """The bot id a Telegram token starts with ('' if it does not look like one)."""
    head, sep, _ = token.partition(":")
    return head if sep and _NUMERIC_ID_RE.fullmatch(head) else ""


def _token_problems(
    platform: str, entries: Sequence[_Community], main_token: SecretStr
) -> list[tuple[Loc, str]]:
    """A token missing, or used twice: two entries with one token are one community."""
    problems: list[tuple[Loc, str]] = []
    seen = {main_token.get_secret_value()} - {""}
    for i, entry in enumerate(entries):
        token = entry.token.get_secret_value()
        if not token:
            problems.append(
                (("communities", i, "token"), f"required for every [[{platform}.communities]]")
            )
        elif token in seen:
            problems.append(
                (
                    ("communities", i, "token"),
                    "the same token as another community of this messenger (one token is "
                    "one community)",
                )
            )
        seen.add(token)
    return problems


def _duplicate_ids(
    ids: Sequence[tuple[Loc, str]], what: str, main: str | None = None
) -> list[tuple[Loc, str]]:
    """Two communities with one id are refused: the second would never be told apart."""
    problems: list[tuple[Loc, str]] = []
    first: dict[str, str] = {main: "the main section"} if main else {}
    for loc, value in ids:
        if not value:
            continue
        if value in first:
            problems.append((loc, f"duplicate {what} {value} (already used by {first[value]})"))
        else:
            first[value] = _dotted(loc[:2]) if len(loc) > 1 else "the main section"
    return problems


def _secret_problems(
    entries: Sequence[tuple[Loc, SecretStr]], required: str | None
) -> list[tuple[Loc, str]]:
    """Webhook secrets: each required (`required` says when, None: not required) and each
    different, since the secret tells the webhooks of the communities apart."""
    problems: list[tuple[Loc, str]] = []
    seen: set[str] = set()
    for loc, secret in entries:
        value = secret.get_secret_value()
        if not value:
            if required is not None:
                problems.append((loc, f"required {required}"))
            continue
        if value in seen:
            problems.append((loc, "the same secret as another community: each must have its own"))
        seen.add(value)
    return problems


def _main_and_community_secrets(
    main: SecretStr, entries: Sequence[TelegramCommunity | OkCommunity | MaxCommunity]
) -> list[tuple[Loc, SecretStr]]:
    """The webhook secrets to check: the main section's (when set: its absence is reported
    on its own) and every community's."""
    found: list[tuple[Loc, SecretStr]] = (
        [(("webhook_secret",), main)] if _secret_is_set(main) else []
    )
    found += [
        (("communities", i, "webhook_secret"), c.webhook_secret) for i, c in enumerate(entries)
    ]
    return found


def _ids(entries: Sequence[Any], key: str) -> list[tuple[Loc, str]]:
    """(location, id) of every community, '' where the id is missing."""
    return [(("communities", i, key), str(getattr(c, key) or "")) for i, c in enumerate(entries)]


class VkSection(_Section):
    """``[vk]``: VK community messages (SPEC §3), the main community and any others."""

    enabled: bool = False
    token: SecretStr = SecretStr("")
    group_id: int = Field(default=0, ge=0)
    api_url: HttpUrlStr = "https://api.vk.com/method/"
    mode: Literal["longpoll", "callback"] = "longpoll"
    callback_path: UrlPath = "/vk/callback"
    callback_secret: SecretStr = SecretStr("")
    confirmation_code: str = ""
    send_rate: Rate = 20
    settlement: str = ""
    comments: bool = False
    communities: list[VkCommunity] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> Self:
        if not self.enabled:
            return self
        problems: list[tuple[Loc, str]] = []
        if not _secret_is_set(self.token):
            problems.append((("token",), "required when vk.enabled = true"))
        if self.group_id <= 0:
            problems.append((("group_id",), "the community id is required when vk.enabled = true"))
        if self.mode == "callback":
            if not _secret_is_set(self.callback_secret):
                problems.append((("callback_secret",), 'required when vk.mode = "callback"'))
            if not self.confirmation_code:
                problems.append((("confirmation_code",), 'required when vk.mode = "callback"'))
        problems += _token_problems("vk", self.communities, self.token)
        for i, entry in enumerate(self.communities):
            if entry.group_id <= 0:
                problems.append((("communities", i, "group_id"), "the community id is required"))
            if self.mode == "callback":
                if not _secret_is_set(entry.callback_secret):
                    problems.append(
                        (
                            ("communities", i, "callback_secret"),
                            'required when vk.mode = "callback"',
                        )
                    )
                if not entry.confirmation_code:
                    problems.append(
                        (
                            ("communities", i, "confirmation_code"),
                            'required when vk.mode = "callback"',
                        )
                    )
        problems += _duplicate_ids(
            _ids(self.communities, "group_id"), "community id", str(self.group_id or "")
        )
        _raise_problems(problems)
        return self

    def all_communities(self) -> list[Community]:
        """The main community and the others, in the order of the file."""
        main = Community(
            "vk",
            "",
            self.settlement,
            self.comments,
            _vk_invite(self.group_id),
            f"vk {self.group_id}",
        )
        return [main] + [
            Community(
                "vk",
                str(c.group_id),
                c.settlement,
                c.comments,
                _vk_invite(c.group_id),
                f"vk {c.group_id}",
            )
            for c in self.communities
        ]


def _vk_invite(group_id: int) -> str:
    """The address that opens a community's messages (VK's short link vk.me/club<id>)."""
    return f"https://vk.me/club{group_id}" if group_id > 0 else ""


class TelegramSection(_Section):
    """``[telegram]``: a Telegram bot (SPEC §3)."""

    enabled: bool = False
    token: SecretStr = SecretStr("")
    api_url: HttpUrlStr = "https://api.telegram.org"
    mode: Literal["polling", "webhook"] = "polling"
    webhook_path: UrlPath = "/tg/webhook"
    webhook_url: OptionalHttpUrlStr = ""
    webhook_secret: SecretStr = SecretStr("")
    send_rate: Rate = 30
    per_chat_rate: Rate = 1
    settlement: str = ""
    communities: list[TelegramCommunity] = Field(default_factory=list)

    @field_validator("webhook_secret")
    @classmethod
    def _telegram_secret_alphabet(cls, value: SecretStr) -> SecretStr:
        return _telegram_secret(value)

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> Self:
        if not self.enabled:
            return self
        webhook = self.mode == "webhook"
        problems = _bot_problems(
            "telegram", self.token, webhook, self.webhook_url, self.webhook_secret
        )
        problems += _token_problems("telegram", self.communities, self.token)
        for i, entry in enumerate(self.communities):
            token = entry.token.get_secret_value()
            if token and not telegram_bot_id(token):
                problems.append(
                    (
                        ("communities", i, "token"),
                        "does not look like a Telegram bot token (<bot id>:<secret>)",
                    )
                )
        problems += _duplicate_ids(
            [
                (("communities", i, "token"), telegram_bot_id(c.token.get_secret_value()))
                for i, c in enumerate(self.communities)
            ],
            "bot id",
            telegram_bot_id(self.token.get_secret_value()),
        )
        problems += _secret_problems(
            _main_and_community_secrets(self.webhook_secret, self.communities),
            'when telegram.mode = "webhook"' if webhook else None,
        )
        _raise_problems(_unique(problems))
        return self

    def all_communities(self) -> list[Community]:
        main = telegram_bot_id(self.token.get_secret_value())
        found = [Community("tg", "", self.settlement, label=f"tg {main}".strip())]
        for c in self.communities:
            key = telegram_bot_id(c.token.get_secret_value())
            found.append(Community("tg", key, c.settlement, label=f"tg {key}"))
        return found


class OkSection(_Section):
    """``[ok]``: an Odnoklassniki group chat bot, webhook only (SPEC §3)."""

    enabled: bool = False
    token: SecretStr = SecretStr("")
    api_url: HttpUrlStr = "https://api.ok.ru"
    webhook_path: UrlPath = "/ok/webhook"
    webhook_url: OptionalHttpUrlStr = ""
    # OK does not sign webhooks: the address carries this secret as its last path segment,
    # {webhook_url}/{webhook_secret} outside and {webhook_path}/{webhook_secret} here.
    webhook_secret: SecretStr = SecretStr("")
    send_rate: Rate = 20
    settlement: str = ""
    # Where /invite sends the author of a comment registered by hand (OK's own group
    # messages page): OK has no documented way to receive comments (SPEC §14).
    invite_url: OptionalHttpUrlStr = ""
    communities: list[OkCommunity] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> Self:
        if not self.enabled:
            return self
        problems: list[tuple[Loc, str]] = []
        if not _secret_is_set(self.token):
            problems.append((("token",), "required when ok.enabled = true"))
        if not self.webhook_url:
            problems.append((("webhook_url",), "required when ok.enabled = true"))
        secret = self.webhook_secret.get_secret_value()
        if not _OK_SECRET_RE.fullmatch(secret):
            problems.append(
                (
                    ("webhook_secret",),
                    "required when ok.enabled = true: 16-64 characters of A-Z a-z 0-9 _ -",
                )
            )
        problems += _token_problems("ok", self.communities, self.token)
        for i, entry in enumerate(self.communities):
            if not _OK_SECRET_RE.fullmatch(entry.webhook_secret.get_secret_value()):
                problems.append(
                    (
                        ("communities", i, "webhook_secret"),
                        "required: 16-64 characters of A-Z a-z 0-9 _ -",
                    )
                )
        problems += _duplicate_ids(_ids(self.communities, "group_id"), "group id")
        problems += _secret_problems(
            _main_and_community_secrets(self.webhook_secret, self.communities),
            None,
        )
        _raise_problems(_unique(problems))
        return self

    def all_communities(self) -> list[Community]:
        """The main group and the others whose id is known (see `OkCommunity`)."""
        found = [Community("ok", "", self.settlement, invite_url=self.invite_url, label="ok")]
        found += [
            Community(
                "ok",
                str(c.group_id),
                c.settlement,
                invite_url=c.invite_url,
                label=f"ok {c.group_id}",
            )
            for c in self.communities
            if c.group_id
        ]
        return found


class MaxSection(_Section):
    """``[max]``: a MAX bot of an organisation (SPEC §3, §13)."""

    enabled: bool = False
    token: SecretStr = SecretStr("")
    api_url: HttpUrlStr = "https://platform-api2.max.ru"
    mode: Literal["polling", "webhook"] = "polling"
    webhook_path: UrlPath = "/max/webhook"
    webhook_url: OptionalHttpUrlStr = ""
    webhook_secret: SecretStr = SecretStr("")
    send_rate: Rate = 30  # the platform API takes 30 requests a second (schema /uploads)
    per_chat_rate: Rate = 2  # "no more than two messages a second into one dialog"
    settlement: str = ""
    comments: bool = False
    invite_url: OptionalHttpUrlStr = ""
    communities: list[MaxCommunity] = Field(default_factory=list)

    @field_validator("webhook_secret")
    @classmethod
    def _max_secret_alphabet(cls, value: SecretStr) -> SecretStr:
        return _max_secret(value)

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> Self:
        if not self.enabled:
            return self
        webhook = self.mode == "webhook"
        problems = _bot_problems("max", self.token, webhook, self.webhook_url, self.webhook_secret)
        if self.comments and not self.invite_url:
            problems.append(
                (("invite_url",), "required when max.comments = true: /invite links to it")
            )
        problems += _token_problems("max", self.communities, self.token)
        for i, entry in enumerate(self.communities):
            if entry.comments and not entry.invite_url:
                problems.append(
                    (
                        ("communities", i, "invite_url"),
                        "required when comments = true: /invite links to it",
                    )
                )
        problems += _duplicate_ids(_ids(self.communities, "bot_id"), "bot id")
        problems += _secret_problems(
            _main_and_community_secrets(self.webhook_secret, self.communities),
            'when max.mode = "webhook"' if webhook else None,
        )
        _raise_problems(_unique(problems))
        return self

    def all_communities(self) -> list[Community]:
        """The main bot and the others whose id is known (see `MaxCommunity`)."""
        found = [Community("max", "", self.settlement, self.comments, self.invite_url, "max")]
        found += [
            Community(
                "max", str(c.bot_id), c.settlement, c.comments, c.invite_url, f"max {c.bot_id}"
            )
            for c in self.communities
            if c.bot_id
        ]
        return found


class ModeratorsSection(_Section):
    """``[moderators]``: district moderators (SPEC §6)."""

    ids: list[Identity] = Field(default_factory=list)


class Category(_Section):
    """One ``[[categories]]`` entry: a topic a resident picks."""

    code: Code
    title: NonBlankStr


class Settlement(_Section):
    """One ``[[settlements]]`` entry: where an appeal is routed and who answers it."""

    code: Code
    title: NonBlankStr
    organisation: NonBlankStr
    admins: list[Identity] = Field(default_factory=list)


# --- the whole configuration -------------------------------------------------------------

MESSENGER_SECTIONS = ("vk", "telegram", "ok", "max")


class Config(BaseSettings):
    """The validated configuration; build it with :func:`load_config`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        case_sensitive=False,
        extra="forbid",
        # Strict types for the TOML file and keyword arguments. With strict on, the
        # environment source converts each APPEALS_* string by the key's type first
        # (APPEALS_WEB__PORT=8080 is 8080), so the environment keeps working.
        strict=True,
    )

    bot: BotSection
    storage: StorageSection = Field(default_factory=StorageSection)
    web: WebSection = Field(default_factory=WebSection)
    sla: SlaSection = Field(default_factory=SlaSection)
    limits: LimitsSection = Field(default_factory=LimitsSection)
    delivery: DeliverySection = Field(default_factory=DeliverySection)
    retention: RetentionSection = Field(default_factory=RetentionSection)
    dashboard: DashboardSection = Field(default_factory=DashboardSection)
    vk: VkSection = Field(default_factory=VkSection)
    telegram: TelegramSection = Field(default_factory=TelegramSection)
    ok: OkSection = Field(default_factory=OkSection)
    max: MaxSection = Field(default_factory=MaxSection)
    moderators: ModeratorsSection = Field(default_factory=ModeratorsSection)
    categories: list[Category] = Field(default_factory=list, validate_default=True)
    settlements: list[Settlement] = Field(default_factory=list, validate_default=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then the environment, then the TOML file of `load_config`.
        The environment is laid over the file by `_FileUnderEnvironment`, which also reaches
        into lists of tables by index (APPEALS_VK__COMMUNITIES__0__TOKEN)."""
        toml_path = _TOML_PATH.get()
        if toml_path is None:
            return (init_settings, env_settings)
        toml = TomlConfigSettingsSource(settings_cls, toml_file=toml_path)
        return (init_settings, _FileUnderEnvironment(settings_cls, toml, env_settings))

    @field_validator("categories", "settlements")
    @classmethod
    def _catalogue(
        cls, entries: Sequence[Category | Settlement], info: ValidationInfo
    ) -> Sequence[Category | Settlement]:
        # A field validator, not a model one: it runs, and reports, even when other
        # sections have problems of their own, so check-config lists everything at once.
        section = info.field_name or ""
        kind = "category" if section == "categories" else "settlement"
        problems: list[tuple[Loc, str]] = []
        if not entries:
            problems.append(((), f"at least one [[{section}]] entry is required"))
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            if entry.code in seen:
                problems.append(((i, "code"), f"duplicate {kind} code {entry.code!r}"))
            seen.add(entry.code)
        problems += _duplicate_titles(section, [entry.title for entry in entries])
        _raise_problems(problems)
        return entries

    @model_validator(mode="after")
    def _community_settlements(self) -> Self:
        """A community's settlement is one of [[settlements]] (checked whether or not its
        messenger is enabled: a typo is a typo)."""
        codes = [s.code for s in self.settlements]
        problems: list[tuple[Loc, str]] = []
        for name in MESSENGER_SECTIONS:
            section = getattr(self, name)
            entries: list[tuple[Loc, str]] = [((name, "settlement"), section.settlement)]
            entries += [
                ((name, "communities", i, "settlement"), c.settlement)
                for i, c in enumerate(section.communities)
            ]
            for loc, code in entries:
                if code and code not in codes:
                    problems.append(
                        (loc, f"unknown settlement code {code!r} (codes: {', '.join(codes)})")
                    )
        _raise_problems(problems)
        return self

    def communities(self) -> list[Community]:
        """Every community (bot) of every enabled messenger, main sections first. An OK or
        MAX community whose id is still to be learned (0) is not among them: `appeals-bot
        run` learns the ids first (bot/community_ids.py, `with_learned_ids`)."""
        found: list[Community] = []
        for name in MESSENGER_SECTIONS:
            section = getattr(self, name)
            if section.enabled:
                found += section.all_communities()
        return found

    @model_validator(mode="after")
    def _dashboard_needs_public_url(self) -> Self:
        if self.dashboard.enabled and not self.web.public_url:
            _raise_problems([(("web", "public_url"), "required when dashboard.enabled = true")])
        return self

    def find_settlement(self, code: str) -> Settlement | None:
        """The settlement with this code, or None."""
        return next((s for s in self.settlements if s.code == code), None)

    def find_category(self, code: str) -> Category | None:
        """The category with this code, or None."""
        return next((c for c in self.categories if c.code == code), None)


class _FileUnderEnvironment(PydanticBaseSettingsSource):
    """The TOML file with the environment laid over it, key by key (the environment wins).

    pydantic-settings merges its sources table by table but replaces a list whole, so an
    APPEALS_VK__COMMUNITIES__0__TOKEN would stand in for every [[vk.communities]] of the
    file. Here a number in the variable's name picks the entry of the list it overrides
    (counted from 0, as errors count them), so a community's token or secret can stay out
    of the file like the main section's."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        file: PydanticBaseSettingsSource,
        environment: PydanticBaseSettingsSource,
    ) -> None:
        super().__init__(settings_cls)
        self._file = file
        self._environment = environment

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ builds everything at once

    def __call__(self) -> dict[str, Any]:
        merged = _overlay(self._file(), self._environment())
        return merged if isinstance(merged, dict) else {}


def _overlay(base: Any, top: Any) -> Any:
    """`top` laid over `base`: tables merged key by key; a table of numbered keys over a
    list replaces those entries of it (one past the end adds an entry); anything else is
    replaced by `top`."""
    if isinstance(base, dict) and isinstance(top, dict):
        merged = dict(base)
        for key, value in top.items():
            merged[key] = _overlay(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(top, dict) and top:
        if not all(isinstance(key, str) and key.isdecimal() for key in top):
            return top
        entries = list(base)
        for key in sorted(top, key=int):
            index = int(key)
            if index < len(entries):
                entries[index] = _overlay(entries[index], top[key])
            elif index == len(entries):
                entries.append(top[key])
            else:
                return top  # a gap: left for validation to refuse
        return entries
    return top


# The id keys of communities SPEC §10 does not name (so a file may leave them out, and
# `appeals-bot run` learns them from each community's token): section -> (key, its name).
LEARNED_ID_KEYS: dict[str, tuple[str, str]] = {
    "ok": ("group_id", "group id"),
    "max": ("bot_id", "bot id"),
}


def with_learned_ids(
    config: Config, path: str | Path, learned: Mapping[tuple[str, int], int]
) -> Config:
    """`config` with the ids learned from the platforms filled in. `learned`: (section, index
    of its [[x.communities]] entry) -> the id. Checked as ids written in the file are: two
    communities of one messenger with one id are refused, in the same words, naming the
    entry (ConfigError)."""
    update: dict[str, Any] = {}
    problems: list[str] = []
    for name, (key, what) in LEARNED_ID_KEYS.items():
        if not any(section == name for section, _ in learned):
            continue
        section = getattr(config, name)
        entries = [
            entry.model_copy(update={key: learned[(name, i)]}) if (name, i) in learned else entry
            for i, entry in enumerate(section.communities)
        ]
        for loc, text in _duplicate_ids(_ids(entries, key), what):
            if (name, loc[1]) in learned:
                text += "; the id was learned from its token"
            problems.append(_keyed((name, *loc), text))
        update[name] = section.model_copy(update={"communities": entries})
    if problems:
        raise ConfigError(path, problems)
    return config.model_copy(update=update)


def _duplicate_titles(section: str, titles: Sequence[str]) -> list[tuple[Loc, str]]:
    """A resident picks a category or a settlement by typing its title: two titles alike
    (case, ё/е and spacing aside) would always give the first."""
    problems: list[tuple[Loc, str]] = []
    first: dict[str, int] = {}
    for i, title in enumerate(titles):
        index = first.setdefault(_title_key(title), i)
        if index != i:
            problems.append(
                (
                    (i, "title"),
                    f"title {title!r} is already used by {section}[{index}] "
                    "(residents pick by typing the title, so titles must differ)",
                )
            )
    return problems


# --- loading -----------------------------------------------------------------------------


class ConfigError(Exception):
    """A configuration that cannot be used.

    ``str()`` is one line: ``<path>: <dotted.key>: <problem>`` for the first problem, plus
    `` (and N more problems)`` when there are several. ``problems`` holds every problem as
    ``<dotted.key>: <problem>`` (or a whole-file problem such as ``file not found``); the
    command line prints each of them on a line of its own.
    """

    def __init__(self, path: str | Path, problems: Sequence[str]) -> None:
        self.path = str(path)
        self.problems: tuple[str, ...] = tuple(_one_line(p) for p in problems) or (
            "invalid configuration",
        )
        super().__init__(str(self))

    def __str__(self) -> str:
        line = f"{_one_line(self.path)}: {self.problems[0]}"
        more = len(self.problems) - 1
        if more:
            line += f" (and {more} more {'problem' if more == 1 else 'problems'})"
        return line


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def load_config(path: str | Path) -> Config:
    """Read, override from the environment and validate the configuration in ``path``.

    Raises :class:`ConfigError` for every problem with the file or the environment values.
    Safe to call many times with different paths in one process.
    """
    shown = str(path)
    toml_file = Path(path)
    problem = _toml_file_problem(toml_file)
    if problem is not None:
        raise ConfigError(shown, [problem])
    reset_token = _TOML_PATH.set(toml_file)
    try:
        return Config()
    except ValidationError as exc:
        raise ConfigError(shown, _validation_problems(exc)) from exc
    except SettingsError as exc:  # an environment value that is not valid JSON for a list
        raise ConfigError(shown, [_settings_problem(exc)]) from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        # The file changed or vanished between the check above and the read.
        raise ConfigError(shown, [_read_problem(exc)]) from exc
    finally:
        _TOML_PATH.reset(reset_token)


def _settings_problem(exc: SettingsError) -> str:
    """Name the environment variables behind a value pydantic-settings could not decode."""
    match = re.search(r'field "([^"]+)"', str(exc))
    if match is None:
        return f"environment: {exc}"
    field = match.group(1)
    prefix = (ENV_PREFIX + field).upper()
    names = sorted(
        name.upper()
        for name in os.environ
        if name.upper() == prefix or name.upper().startswith(prefix + ENV_NESTED_DELIMITER)
    )
    return (
        f"{field}: cannot decode environment variable {' or '.join(names) or prefix} "
        """(a list or a table must be written as JSON, e.g. '["vk:123"]')"""
    )


def _toml_file_problem(toml_file: Path) -> str | None:
    """Why the file cannot be read as TOML, or None when it can."""
    try:
        data = toml_file.read_bytes()
        if data.startswith(b"\xef\xbb\xbf"):
            return "starts with a byte-order mark (BOM); save it as UTF-8 without BOM"
        tomllib.loads(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        return _read_problem(exc)
    return None


def _read_problem(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, OSError):
        return f"cannot read the file: {exc.strerror or exc}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not valid UTF-8 text (byte {exc.start})"
    if isinstance(exc, RecursionError):
        return "not valid TOML: nested too deeply"
    return f"not valid TOML: {exc}"


def _validation_problems(exc: ValidationError) -> list[str]:
    """Translate pydantic errors into ``<dotted.key>: <problem>`` lines."""
    problems: list[str] = []
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(error["loc"])
        kind = error["type"]
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, _KeyedProblems):
            for sub_loc, text in cause.problems:
                problems.append(_keyed(loc + sub_loc, text))
        elif kind == "extra_forbidden":
            problems.append(f"unknown key {_dotted(loc)!r}{_env_hint(loc)}")
        elif kind == "missing":
            problems.append(_keyed(loc, _missing_text(loc)))
        elif kind == "model_type":
            problems.append(_keyed(loc, "should be a TOML table"))
        else:
            text = str(error["msg"])
            for prefix in ("Value error, ", "Assertion failed, "):
                text = text.removeprefix(prefix)
            if kind in _QUOTED_HINTS and isinstance(error.get("input"), str) and not _env_hint(loc):
                text += f" (got the string {error['input']!r}; {_QUOTED_HINTS[kind]})"
            problems.append(_keyed(loc, text))
    return problems


# A TOML value of the wrong type that was written in quotes: what to write instead. Strict
# types (see _Section) turn `port = "8080"` into an error instead of a silent conversion.
_QUOTED_HINTS = {
    "int_type": "write a whole number, without quotes",
    "float_type": "write a number, without quotes",
    "bool_type": "write true or false, without quotes",
}


def _keyed(loc: Loc, text: str) -> str:
    key = _dotted(loc)
    return f"{key}: {text}{_env_hint(loc)}" if key else text


def _missing_text(loc: Loc) -> str:
    if len(loc) == 1 and isinstance(loc[0], str):
        field = Config.model_fields.get(loc[0])
        annotation: Any = field.annotation if field is not None else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return f"required section [{loc[0]}] is missing"
    return "required key is missing"


def _env_hint(loc: Loc) -> str:
    """Name the environment variable that supplied this key, when one did."""
    names = {name.upper() for name in os.environ}
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            break
        parts.append(part.upper())
        candidate = ENV_PREFIX + ENV_NESTED_DELIMITER.join(parts)
        if candidate in names:
            return f" (from environment variable {candidate})"
    return ""
