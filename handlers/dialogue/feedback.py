"""What a resident sends back about an appeal: the rating of an answer («Вопрос решён» ·
«Вопрос не решён», SPEC §4) and the answer to a question staff asked with /ask."""

from __future__ import annotations

from datetime import timedelta

from loguru import logger

from handlers import keyboards, texts
from handlers.context import Context
from handlers.notify import to_staff, to_staff_and_moderators
from handlers.text_input import neutralise_bidi
from storage.models import Status
from storage.questions import Question


async def rate(ctx: Context, payload: str) -> None:
    """Apply a rating button. Forged or foreign payloads get the stale-button hint."""
    _, _, rest = payload.partition(keyboards.RATE_PREFIX)
    number_text, _, verdict = rest.partition(":")
    appeal = None
    if number_text.isdigit() and len(number_text) <= 9 and verdict in ("yes", "no"):
        appeal = await ctx.tx.appeals.get(int(number_text))
    if (
        appeal is None
        or appeal.is_comment
        or appeal.resident_id != ctx.resident.id
        or appeal.first_answer_at is None
    ):
        ctx.reply(texts.HINT_STALE_BUTTON, keyboards.main_menu())
        return
    number = appeal.number
    if appeal.rating is not None:
        ctx.reply(texts.ALREADY_RATED.format(number=number), keyboards.main_menu())
        return
    resolved = verdict == "yes"
    rating = "resolved" if resolved else "unresolved"
    # «Не решён»: the resident is owed a new answer, within the usual term (SPEC §8).
    renewed = None if resolved else ctx.now + timedelta(hours=ctx.settings.answer_within_hours)
    await ctx.tx.appeals.set_rating(number, rating, ctx.now, renewed_deadline=renewed)
    await ctx.tx.thread.add(number, kind="rating", author="resident", now=ctx.now, text=rating)
    status = Status.CLOSED if resolved else Status.IN_PROGRESS
    if appeal.status != status:
        await ctx.tx.appeals.set_status(number, status, ctx.now)
        await ctx.tx.thread.add(
            number, kind="status", author="resident", now=ctx.now, status=status
        )
    if resolved:
        ctx.reply(
            texts.RATED_RESOLVED.format(number=number), keyboards.main_menu(), appeal_number=number
        )
    else:
        ctx.outgoing += await to_staff_and_moderators(
            ctx.tx, appeal, texts.UNRESOLVED_TO_STAFF.format(number=number)
        )
        ctx.reply(
            texts.RATED_UNRESOLVED.format(number=number),
            keyboards.main_menu(),
            appeal_number=number,
        )
    logger.info("appeal №{} rated {} platform={}", number, rating, ctx.message.platform)


async def answer_question(ctx: Context, question: Question) -> None:
    """The resident's message answers the question: into the thread, back to the asker."""
    message = ctx.message
    number = question.appeal_number
    await ctx.tx.thread.add(
        number,
        kind="reply",
        author="resident",
        now=ctx.now,
        text=message.text or None,
        photos=message.photos,
    )
    await ctx.tx.questions.answered(question.id, ctx.now)
    appeal = await ctx.tx.appeals.get(number)
    assert appeal is not None
    ctx.outgoing += await to_staff(
        ctx.tx,
        [question.asker],
        texts.RESIDENT_REPLY_TO_STAFF.format(
            number=number, text=neutralise_bidi(message.text) or texts.PHOTOS_ONLY
        ),
        appeal,
        photos=message.photos,
    )
    ctx.reply(
        texts.QUESTION_ANSWER_ACCEPTED.format(number=number),
        keyboards.main_menu(),
        appeal_number=number,
    )
    logger.info("appeal №{} resident answered a question platform={}", number, message.platform)
