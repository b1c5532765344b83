"""Getting a photo's bytes, whatever messenger it came from, to pass it on to another one
(messenger-apis.md §5): by its public URL, or through the channel that owns the file."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import aiohttp

from handlers import texts
from handlers.messages import Photo

T = TypeVar("T")

MAX_PHOTO_BYTES = 10 * 1024 * 1024
TIMEOUT = aiohttp.ClientTimeout(total=30)


class PhotoUnavailable(Exception):
    """The photo could not be fetched; the message carries a link or «(фото)» instead."""


async def fetch_url(url: str) -> bytes:
    try:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as session,
            session.get(url) as response,
        ):
            response.raise_for_status()
            content = await response.content.read(MAX_PHOTO_BYTES + 1)
    except (aiohttp.ClientError, TimeoutError) as error:
        raise PhotoUnavailable(f"{type(error).__name__}") from None
    if len(content) > MAX_PHOTO_BYTES:
        raise PhotoUnavailable("photo too large")
    return content


async def attach_photos(
    photos: Sequence[Photo], room: int, attach: Callable[[Photo], Awaitable[T | None]]
) -> tuple[list[T], list[str]]:
    """Each photo as a channel's attachment, up to `room` of them; the ones that cannot be
    attached (no room, or `attach` gives None) become links in the text, «(фото)» where there
    is no link: a photo is never silently dropped."""
    attached: list[T] = []
    links: list[str] = []
    for photo in photos:
        attachment = await attach(photo) if len(attached) < room else None
        if attachment:
            attached.append(attachment)
        else:
            links.append(photo.url or texts.PHOTOS_ONLY)
    return attached, links
