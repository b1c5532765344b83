"""Which channels a configuration enables. Messenger libraries are imported only here and
only for enabled channels, so a deployment (and the demo) loads nothing it does not use."""

from __future__ import annotations

from bot.channels.base import Channel
from bot.config import Config


def build_channels(config: Config) -> list[Channel]:
    channels: list[Channel] = []
    if config.vk.enabled:
        from bot.channels.vk import VkChannel

        channels.append(VkChannel(config.vk))
    if config.telegram.enabled:
        from bot.channels.telegram import TelegramChannel

        channels.append(TelegramChannel(config.telegram))
    if config.ok.enabled:
        from bot.channels.ok import OkChannel

        channels.append(OkChannel(config.ok))
    if config.max.enabled:
        from bot.channels.max import MaxChannel

        channels.append(MaxChannel(config.max))
    return channels
