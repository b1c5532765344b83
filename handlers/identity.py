"""Staff identities `platform:user_id` (SPEC §5): one parser for config and commands."""

from __future__ import annotations

import re

# Platform ids of SPEC §3 (plus `max`, planned) that may appear in a staff identity.
PLATFORMS: tuple[str, ...] = ("vk", "tg", "ok", "console", "max")

_USER_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def parse_identity(value: str) -> tuple[str, str]:
    """Split a staff identity ``platform:user_id`` into ``(platform, user_id)``.

    Raises ``ValueError`` with a readable message when the platform is not one of
    :data:`PLATFORMS` or the user id is not 1-64 characters of ``A-Z a-z 0-9 _ . -``.
    """
    platform, sep, user_id = value.partition(":")
    if not sep:
        raise ValueError(f"identity {value!r} must look like platform:user_id, e.g. 'vk:123'")
    if platform not in PLATFORMS:
        raise ValueError(
            f"unknown platform {platform!r} in identity {value!r} (expected {', '.join(PLATFORMS)})"
        )
    if not _USER_ID_RE.fullmatch(user_id):
        raise ValueError(
            f"bad user id {user_id!r} in identity {value!r} "
            "(expected 1-64 characters: Latin letters, digits, '_', '.' or '-')"
        )
    return platform, user_id
