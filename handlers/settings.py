"""What the conversation logic needs to know of the deployment (built by bot/ from config)."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Category:
    code: str
    title: str


@dataclass(frozen=True)
class Settlement:
    code: str
    title: str
    organisation: str


@dataclass(frozen=True)
class Community:
    """A community (bot) of a messenger (SPEC §14): `key` as stored ('' for the platform's
    main section), the settlement its residents belong to ('' for none: they choose), whether
    it takes comments under posts, where /invite sends a commenter, and how registers name
    it."""

    platform: str
    key: str
    settlement: str = ""
    comments: bool = False
    invite_url: str = ""
    label: str = ""


@dataclass(frozen=True)
class Limits:
    min_description: int = 10
    max_description: int = 4000
    max_photos: int = 5
    draft_ttl_days: int = 7
    messages_per_minute: int = 20


@dataclass(frozen=True)
class HandlerSettings:
    bot_name: str
    timezone: ZoneInfo
    privacy_policy_url: str
    privacy_policy_version: str
    formal_appeal_url: str
    categories: tuple[Category, ...]
    settlements: tuple[Settlement, ...]
    limits: Limits
    answer_within_hours: int = 24
    # Administrators are reminded this long before a deadline; 0: no reminders (SPEC §8).
    remind_before_hours: int = 4
    communities: tuple[Community, ...] = ()
    # {web.public_url}/dashboard when [dashboard] is enabled, else "" (/web says it is off).
    dashboard_url: str = ""

    def category(self, code: str) -> Category | None:
        return next((c for c in self.categories if c.code == code), None)

    def settlement(self, code: str) -> Settlement | None:
        return next((s for s in self.settlements if s.code == code), None)

    def community(self, platform: str, key: str) -> Community | None:
        """The community a message came to; None for one the configuration does not name
        (a platform whose main section is not described, such as the console)."""
        return next((c for c in self.communities if c.platform == platform and c.key == key), None)

    def settlement_of(self, platform: str, key: str) -> Settlement | None:
        """The settlement whose community this is, if it is one settlement's."""
        community = self.community(platform, key)
        return self.settlement(community.settlement) if community else None
