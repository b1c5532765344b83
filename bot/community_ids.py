"""The ids of OK and MAX communities that the configuration leaves out, learned from the
platforms before anything is built on them (SPEC §10, §14).

SPEC §10 names the keys of `[[ok.communities]]` and `[[max.communities]]` as token,
settlement and webhook_secret: no id. Yet the id is each community's key everywhere (the
outbox's `community`, residents' communities, event keys, polling positions, the handlers'
settings), so `appeals-bot run` asks each platform, with the community's own token, whose
token it is: MAX `GET /me` -> `user_id`, OK `GET /graph/me/info` -> `group_id`, and then works
on a configuration with the ids filled in (`with_learned_ids`, which refuses two communities
with one id as the file's own ids are refused). An id written in the file is used as it is,
with no call. `check-config` stays offline: it only says which ids will be learned.

A community whose id cannot be learned (no network, a refused token, an answer without the
id) stops start-up with one line naming the entry and the fix; the token is never in it.

Light to import: the messenger code is imported only when there is an id to learn.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from bot.config import LEARNED_ID_KEYS, Config, ConfigError, with_learned_ids

__all__ = ["LEARN_SECONDS", "IdUnavailable", "Unknown", "ids_to_learn", "learn_community_ids"]

LEARN_SECONDS = 30.0  # for each call: a platform that does not answer stops start-up after it


class IdUnavailable(Exception):
    """A platform did not tell a community's id; the text says why in a few words."""


@dataclass(frozen=True)
class Unknown:
    """An [[ok.communities]] or [[max.communities]] entry without its id."""

    section: str  # "ok" or "max"
    index: int
    token: str

    @property
    def entry(self) -> str:
        return f"{self.section}.communities[{self.index}]"

    @property
    def key(self) -> str:
        return LEARNED_ID_KEYS[self.section][0]

    @property
    def whose(self) -> str:
        return "the group's id" if self.section == "ok" else "the bot's id"

    @property
    def fix(self) -> str:
        if self.section == "ok":
            return "set group_id = <the number of its address ok.ru/group/…>"
        return "set bot_id = <the bot's id>"

    @property
    def call(self) -> str:
        return "GET /graph/me/info" if self.section == "ok" else "GET /me"


def ids_to_learn(config: Config) -> list[Unknown]:
    """The communities of enabled messengers whose id the configuration leaves out."""
    found: list[Unknown] = []
    for name, (key, _) in LEARNED_ID_KEYS.items():
        section = getattr(config, name)
        if not section.enabled:
            continue
        found += [
            Unknown(name, i, entry.token.get_secret_value())
            for i, entry in enumerate(section.communities)
            if not getattr(entry, key)
        ]
    return found


async def learn_community_ids(config: Config, path: str | Path) -> Config:
    """`config` with every missing id learned from its platform (no call when none is
    missing). Raises ConfigError, one problem per community that could not be learned or
    whose learned id another community has; `path` names the file in it."""
    unknown = ids_to_learn(config)
    if not unknown:
        return config
    results = await asyncio.gather(*(_learn(config, u) for u in unknown))
    learned: dict[tuple[str, int], int] = {}
    problems: list[str] = []
    for u, result in zip(unknown, results, strict=True):
        if isinstance(result, int):
            learned[(u.section, u.index)] = result
            logger.info("learned the id of {} from its token: {} {}", u.entry, u.section, result)
        else:
            problems.append(
                f"{u.entry}: could not learn {u.whose} ({result}); check its token, "
                f"or {u.fix} in the file"
            )
    if problems:
        raise ConfigError(path, problems)
    return with_learned_ids(config, path, learned)


async def _learn(config: Config, unknown: Unknown) -> int | str:
    """The id, or why it could not be had (without the token, whatever the platform said)."""
    try:
        async with asyncio.timeout(LEARN_SECONDS):
            return await _ask(config, unknown)
    except IdUnavailable as error:
        reason = str(error)
    except TimeoutError:
        reason = f"{unknown.call}: no answer in {LEARN_SECONDS:.0f} s"
    except Exception as error:  # anything else a library raises: named, no traceback
        reason = f"{unknown.call}: {type(error).__name__}"
    return reason.replace(unknown.token, "<token>") if unknown.token else reason


async def _ask(config: Config, unknown: Unknown) -> int:
    if unknown.section == "max":
        from bot.channels.max import fetch_bot_id

        return await fetch_bot_id(config.max, unknown.token)
    from bot.ok_api import OkApiError, OkClient

    client = OkClient(unknown.token, config.ok.api_url)
    try:
        return await client.group_id()
    except OkApiError as error:
        raise IdUnavailable(f"{unknown.call}: {error.reason}") from None
    finally:
        await client.close()
