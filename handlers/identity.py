"""Staff identities `platform:user_id` (SPEC §5): one parser for config and commands."""

from __future__ import annotations

import re

# Platform ids of SPEC §3 (plus `max`, planned) that may appear in a staff identity.
PLATFORMS: tuple[str, ...] = ("vk", "tg", "ok", "console", "max")

# The console (the demo's terminal) names its people freely: console:admin-sergino.
FREE_FORM_PLATFORMS: frozenset[str] = frozenset({"console"})

# A messenger user id is a positive decimal integer: no sign, no leading zero, ASCII digits
# only, at most 19 digits (a signed 64-bit integer). Group chats have negative ids on
# Telegram and VK, but a staff identity names a person.
_NUMERIC_ID_RE = re.compile(r"[1-9][0-9]{0,18}")
_FREE_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def split_identity(value: str) -> tuple[str, str]:
    """``platform:user_id`` → ``(platform, user_id)`` without judging either part: for an
    identity already stored (the staff table), which must still be usable when the rules
    have become stricter since it was written."""
    platform, _, user_id = value.partition(":")
    return platform, user_id


def parse_identity(value: str) -> tuple[str, str]:
    """Split a staff identity ``platform:user_id`` into ``(platform, user_id)``.

    Raises ``ValueError`` with a readable message when the platform is not one of
    :data:`PLATFORMS` or the user id does not fit it: a positive decimal integer (``vk:123``)
    for the messengers, 1-64 characters of ``A-Z a-z 0-9 _ . -`` for the console.
    """
    platform, sep, user_id = value.partition(":")
    if not sep:
        raise ValueError(f"identity {value!r} must look like platform:user_id, e.g. 'vk:123'")
    if platform not in PLATFORMS:
        raise ValueError(
            f"unknown platform {platform!r} in identity {value!r} (expected {', '.join(PLATFORMS)})"
        )
    if platform in FREE_FORM_PLATFORMS:
        if not _FREE_ID_RE.fullmatch(user_id):
            raise ValueError(
                f"bad user id {user_id!r} in identity {value!r} "
                "(expected 1-64 characters: Latin letters, digits, '_', '.' or '-')"
            )
    elif not _NUMERIC_ID_RE.fullmatch(user_id):
        raise ValueError(
            f"bad user id {user_id!r} in identity {value!r} "
            f"(a {platform} user id is a positive whole number without leading zeros, e.g. "
            f"'{platform}:123456')"
        )
    return platform, user_id
