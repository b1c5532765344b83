"""Turning a confirmed draft into a registered appeal, and telling the resident its number."""

from __future__ import annotations

from datetime import timedelta

from loguru import logger

from handlers import keyboards, texts
from handlers.context import Context
from handlers.formatting import local_time, utc_offset
from handlers.notify import settlement_notice
from storage.models import Appeal, Draft, Photo


async def register_appeal(ctx: Context, draft: Draft) -> Appeal:
    """Store the appeal and its first thread entry, and answer with «Обращение №N …»."""
    data = draft.data
    photos = tuple(Photo.from_dict(p) for p in data.get("photos", []))
    message = ctx.message
    appeal = await ctx.tx.appeals.create(
        resident_id=ctx.resident.id,
        category=data["category"],
        settlement=data["settlement"],
        text=data["description"],
        place=data.get("place"),
        latitude=data.get("latitude"),
        longitude=data.get("longitude"),
        photos=photos,
        contact_name=data.get("contact_name"),
        contact_phone=data.get("contact_phone"),
        platform=message.platform,
        chat_id=message.chat_id,
        created_at=ctx.now,
        deadline_at=ctx.now + timedelta(hours=ctx.settings.answer_within_hours),
        community=message.community,  # where the resident is answered (SPEC §14)
    )
    await ctx.tx.thread.add(
        appeal.number,
        kind="created",
        author="resident",
        now=ctx.now,
        text=appeal.text,
        photos=photos,
    )
    tz = ctx.settings.timezone
    ctx.reply(
        texts.REGISTERED.format(
            number=appeal.number,
            deadline=local_time(appeal.deadline_at, tz),
            tz_name=utc_offset(appeal.deadline_at, tz),
        ),
        keyboards.main_menu(),
        appeal_number=appeal.number,
    )
    ctx.outgoing += await settlement_notice(ctx.work, appeal)
    logger.info(
        "appeal №{} registered platform={} category={} settlement={}",
        appeal.number,
        message.platform,
        appeal.category,
        appeal.settlement,
    )
    return appeal
