"""A message that cannot be delivered for good (blocked bot, deleted chat, attempts used up)
is not dropped silently: the moderators are told, with the reason and the text (SPEC §5, §7).
"""

from __future__ import annotations

import json
from datetime import datetime

from loguru import logger

from handlers import texts
from handlers.messages import Outgoing
from handlers.notify import chat_of
from handlers.text_input import neutralise_bidi
from storage.db import Tx
from storage.models import OutboxRow


async def report_undeliverable(tx: Tx, row: OutboxRow, reason: str, now: datetime) -> int:
    """Queue a report to every moderator (but the unreachable one); returns how many.

    Reports are sent for staff notifications and for anything about an appeal; a menu reply
    to a resident who blocked the bot, or a failed report itself, is only logged.
    """
    try:
        body = json.loads(row.body)
        text = str(body.get("text", ""))
        already_a_report = bool(body.get("report"))
    except (ValueError, AttributeError):
        text, already_a_report = "", False
    recipient = await tx.residents.by_chat(row.platform, row.chat_id)
    identity = f"{row.platform}:{recipient.user_id if recipient else row.chat_id}"
    staff = await tx.staff.member(identity)
    if already_a_report or (staff is None and row.appeal_number is None):
        return 0
    template = texts.UNDELIVERABLE_TO_STAFF if staff else texts.UNDELIVERABLE_TO_RESIDENT
    report = template.format(
        number=row.appeal_number if row.appeal_number is not None else "—",
        identity=identity,
        reason=reason,
        text=neutralise_bidi(text),
    )
    moderators = [m for m in await tx.staff.moderators() if m != identity]
    for moderator in moderators:
        platform, chat = await chat_of(tx, moderator)
        out = Outgoing(platform, chat, report, appeal_number=row.appeal_number, report=True)
        await tx.outbox.queue(
            out.platform, out.chat_id, out.body(), now, appeal_number=out.appeal_number
        )
    logger.warning(
        "undeliverable message reported to {} moderators platform={} appeal №{} staff={}",
        len(moderators),
        row.platform,
        row.appeal_number or "-",
        staff is not None,
    )
    return len(moderators)
