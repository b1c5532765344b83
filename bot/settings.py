"""What the conversation logic is told of the deployment (handlers/settings.py), taken from the
validated configuration. Its own module, light to import: `report` and `export` name the
communities with it and load no messenger library nor the web server."""

from __future__ import annotations

from bot.config import Config
from handlers.settings import Category, Community, HandlerSettings, Limits, Settlement

__all__ = ["handler_settings"]


def handler_settings(config: Config) -> HandlerSettings:
    """What the conversation logic needs, taken from the validated configuration."""
    limits = config.limits
    return HandlerSettings(
        bot_name=config.bot.name,
        timezone=config.bot.zone,
        privacy_policy_url=config.bot.privacy_policy_url,
        privacy_policy_version=config.bot.privacy_policy_version,
        formal_appeal_url=config.bot.formal_appeal_url,
        categories=tuple(Category(c.code, c.title) for c in config.categories),
        settlements=tuple(Settlement(s.code, s.title, s.organisation) for s in config.settlements),
        limits=Limits(
            min_description=limits.min_description,
            max_description=limits.max_description,
            max_photos=limits.max_photos,
            draft_ttl_days=limits.draft_ttl_days,
            messages_per_minute=limits.messages_per_minute,
        ),
        answer_within_hours=config.sla.answer_within_hours,
        remind_before_hours=config.sla.remind_before_hours,
        dashboard_url=(
            config.web.public_url.rstrip("/") + "/dashboard" if config.dashboard.enabled else ""
        ),
        communities=tuple(
            Community(c.platform, c.key, c.settlement, c.comments, c.invite_url, c.label)
            for c in config.communities()
        ),
    )
