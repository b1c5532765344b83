"""How an appeal reads to staff: the notification card (SPEC §5) and the thread (/show)."""

from __future__ import annotations

from handlers import texts
from handlers.formatting import local_time, status_title, status_word, utc_offset
from handlers.settings import HandlerSettings
from handlers.text_input import neutralise_bidi
from storage.models import Appeal, Comment, Status, ThreadEntry

FINISHED = (Status.CLOSED, Status.REJECTED)


def settlement_title(settings: HandlerSettings, code: str) -> str:
    settlement = settings.settlement(code)
    return settlement.title if settlement else code


def organisation(settings: HandlerSettings, code: str) -> str:
    settlement = settings.settlement(code)
    return settlement.organisation if settlement else settings.bot_name


def category_title(settings: HandlerSettings, code: str) -> str:
    category = settings.category(code)
    return category.title if category else code


def topic(settings: HandlerSettings, appeal: Appeal) -> str:
    """What an item is about, in a list: its category, or «Комментарий под постом»."""
    return (
        texts.COMMENT_CATEGORY if appeal.is_comment else category_title(settings, appeal.category)
    )


def community_title(settings: HandlerSettings, platform: str, key: str) -> str:
    """A community as staff and registers name it: «ВКонтакте 123456 (Сергино)», or the
    platform's main one."""
    platform_title = texts.PLATFORM_TITLES.get(platform, platform)
    community = settings.community(platform, key)
    name = f"{platform_title} {key}" if key else f"{platform_title}, {texts.COMMUNITY_MAIN}"
    if community is not None and community.settlement:
        name += f" ({settlement_title(settings, community.settlement)})"
    return name


def card(
    settings: HandlerSettings, appeal: Appeal, title: str, comment: Comment | None = None
) -> str:
    """Everything an official needs to act on the appeal, and how to answer (while it can
    still be answered). What the resident wrote is shown without bidi controls
    (text_input.neutralise_bidi): it cannot rearrange the card around it. A comment item
    (`comment` is where it is) reads as one, with the warning that answers are public."""
    if appeal.is_comment:
        return _comment_card(settings, appeal, title, comment)
    lines = [
        title.format(number=appeal.number),
        texts.CARD_LINES.format(
            category=category_title(settings, appeal.category),
            settlement=settlement_title(settings, appeal.settlement),
            text=neutralise_bidi(appeal.text),
            place=neutralise_bidi(appeal.place) if appeal.place else texts.NOT_GIVEN,
        ),
    ]
    if appeal.latitude is not None and appeal.longitude is not None:
        lines.append(texts.CARD_LOCATION.format(lat=appeal.latitude, lon=appeal.longitude))
    if appeal.photos:
        lines.append(texts.CARD_PHOTOS.format(count=len(appeal.photos)))
    given = ", ".join(
        neutralise_bidi(value) for value in (appeal.contact_name, appeal.contact_phone) if value
    )
    lines.append(texts.CARD_CONTACT.format(contact=given) if given else texts.CARD_NO_CONTACT)
    return "\n".join(lines + _card_tail(settings, appeal, texts.CARD_HOW_TO_ANSWER))


def _comment_card(
    settings: HandlerSettings, appeal: Appeal, title: str, comment: Comment | None
) -> str:
    author = neutralise_bidi(appeal.contact_name) if appeal.contact_name else ""
    if comment is not None and comment.author_link:
        author = f"{author} — {comment.author_link}" if author else comment.author_link
    settlement = (
        settlement_title(settings, appeal.settlement)
        if appeal.settlement
        else texts.CARD_COMMENT_NO_SETTLEMENT
    )
    lines = [
        texts.COMMENT_TITLES.get(title, title).format(number=appeal.number),
        texts.CARD_COMMENT_LINES.format(
            community=community_title(settings, appeal.platform, appeal.community),
            settlement=settlement,
            text=neutralise_bidi(appeal.text),
            author=author or texts.COMMENT_AUTHOR_UNKNOWN,
            link=comment.link if comment is not None and comment.link else texts.NOT_GIVEN,
        ),
    ]
    if appeal.photos:
        lines.append(texts.CARD_PHOTOS.format(count=len(appeal.photos)))
    if comment is not None and comment.deleted:
        lines.append(texts.CARD_COMMENT_DELETED)
    lines += _card_tail(
        settings, appeal, texts.CARD_COMMENT_PUBLIC + "\n" + texts.CARD_COMMENT_HOW_TO_ANSWER
    )
    return "\n".join(lines)


def thread_lines(
    settings: HandlerSettings, entries: list[ThreadEntry], *, comment: bool = False
) -> list[str]:
    lines = []
    for entry in entries:
        template = texts.THREAD_KINDS.get(entry.kind, entry.kind)
        if comment:
            template = texts.THREAD_COMMENT_KINDS.get(entry.kind, template)
        kind = template.format(
            status=status_title(entry.status or ""),
            settlement=settlement_title(settings, entry.text or ""),
            text=texts.RATING_TITLES.get(entry.text or "", entry.text or ""),
        )
        resident = texts.THREAD_AUTHOR if comment else texts.THREAD_RESIDENT
        author = resident if entry.author == "resident" else entry.author
        body = kind
        if entry.kind not in ("status", "assigned", "rating") and entry.text:
            body = f"{kind}: {neutralise_bidi(entry.text)}"
        if entry.photos:
            body += f" [{texts.SUMMARY_PHOTOS.format(value=len(entry.photos))}]"
        lines.append(
            texts.THREAD_LINE.format(
                time=local_time(entry.created_at, settings.timezone), author=author, text=body
            )
        )
    return lines


def _card_tail(settings: HandlerSettings, appeal: Appeal, how_to_answer: str) -> list[str]:
    """The deadline, the status, and how to answer (or that it is finished)."""
    tz = settings.timezone
    deadline = local_time(appeal.deadline_at, tz)
    lines = [
        texts.CARD_DEADLINE.format(deadline=deadline, tz=utc_offset(appeal.deadline_at, tz)),
        texts.CARD_STATUS.format(status=status_title(appeal.status)),
        "",
    ]
    if appeal.status in FINISHED:
        lines.append(texts.CARD_FINISHED.format(status=status_word(appeal.status)))
    else:
        lines.append(how_to_answer.format(number=appeal.number))
    return lines
