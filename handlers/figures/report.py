"""Figures of SPEC §9 as people read them: the compact /stats reply, the text report that
reads like the district's yearly paragraph, the CSV and JSON reports, and the rows of the
register export. The numbers come from storage/reports.py; here they get names and words.

Periods are whole local days: [start, end] in `bot.timezone`, both included.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from handlers import texts
from handlers.appeal_view import community_title
from handlers.formatting import local_time
from handlers.settings import HandlerSettings
from storage.reports import Counts, Figures, RegisterRow

TOP_CATEGORIES = 3
NBSP = "\u00a0"
# A cell starting with one of these would be a formula in a spreadsheet (CSV injection):
# such a cell gets a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Titles:
    """What a report needs of the deployment: its name and time zone, the promised answer
    time, and the titles of category and settlement codes."""

    name: str
    timezone: ZoneInfo
    answer_within_hours: int
    categories: Mapping[str, str]
    settlements: Mapping[str, str]
    # Communities by their code in the figures, "platform:key" (SPEC §14).
    communities: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: HandlerSettings) -> Titles:
        return cls(
            name=settings.bot_name,
            timezone=settings.timezone,
            answer_within_hours=settings.answer_within_hours,
            categories={c.code: c.title for c in settings.categories},
            settlements={s.code: s.title for s in settings.settlements},
            communities={
                f"{c.platform}:{c.key}": community_title(settings, c.platform, c.key)
                for c in settings.communities
            },
        )

    def category(self, code: str) -> str:
        return self.categories.get(code, code)

    def settlement(self, code: str) -> str:
        return self.settlements.get(code, code)

    @staticmethod
    def status(code: str) -> str:
        return texts.STATUS_TITLES.get(code, code)

    @staticmethod
    def platform(code: str) -> str:
        return texts.PLATFORM_TITLES.get(code, code)

    def community(self, code: str) -> str:
        """A community by its code in the figures: `vk:` the main VK community, `vk:123`
        another; one the configuration no longer has is named by its id."""
        if code in self.communities:
            return self.communities[code]
        platform, _, key = code.partition(":")
        title = self.platform(platform)
        return f"{title} {key}" if key else f"{title}, {texts.COMMUNITY_MAIN}"

    @staticmethod
    def kind(code: str) -> str:
        return texts.KIND_TITLES.get(code, code)


# --- periods -------------------------------------------------------------------------------

# The days a period may name. Outside them a local midnight may not exist in UTC
# (0001-01-01 east of Greenwich, the day after 9999-12-31) and a year of fewer than four
# digits would not sort as stored text; nobody means them.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2999, 12, 31)


class PeriodError(ValueError):
    """A date outside FIRST_DAY..LAST_DAY; the text is for the person who typed it (/stats
    answers it with its usage line like any other bad date)."""


def day_text(day: date) -> str:
    """ДД.ММ.ГГГГ with a four-digit year even for year 1 (strftime may drop the zeros)."""
    return f"{day.day:02}.{day.month:02}.{day.year:04}"


def check_day(day: date) -> date:
    """The day itself when a period may name it; PeriodError otherwise."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise PeriodError(
            texts.DATE_OUT_OF_RANGE.format(
                text=day_text(day), first=day_text(FIRST_DAY), last=day_text(LAST_DAY)
            )
        )
    return day


def period_bounds(start: date, end: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end] in local days → [since, until) in UTC. PeriodError for a day outside
    FIRST_DAY..LAST_DAY."""
    check_day(start)
    check_day(end)
    since = datetime.combine(start, time(), tz).astimezone(UTC)
    until = datetime.combine(end + timedelta(days=1), time(), tz).astimezone(UTC)
    return since, until


def month_bounds(start: date, end: date, tz: ZoneInfo) -> list[tuple[date, datetime, datetime]]:
    """The calendar months the period touches, each clipped to the period: (first day of
    the month, since, until) with since and until in UTC."""
    months = []
    first = start.replace(day=1)
    while first <= end:
        following = (first + timedelta(days=32)).replace(day=1)
        since, until = period_bounds(max(first, start), min(following - timedelta(days=1), end), tz)
        months.append((first, since, until))
        first = following
    return months


# --- numbers in words ----------------------------------------------------------------------


def number(value: int) -> str:
    """`1 000 000`: groups of three joined by a no-break space."""
    return f"{value:,}".replace(",", NBSP)


def percent(share: float | None) -> str:
    """`89,8 %` (one decimal, a decimal comma); `—` when there is nothing to divide by."""
    if share is None:
        return texts.NOTHING
    return f"{share * 100:.1f}".replace(".", ",") + NBSP + "%"


def plural(value: int, forms: tuple[str, str, str]) -> str:
    """The Russian form for a count: (1 обращение, 2 обращения, 5 обращений)."""
    tens, ones = value % 100, value % 10
    if ones == 1 and tens != 11:
        return forms[0]
    if 2 <= ones <= 4 and not 12 <= tens <= 14:
        return forms[1]
    return forms[2]


def counted(value: int, forms: tuple[str, str, str]) -> str:
    return f"{number(value)} {plural(value, forms)}"


def duration(seconds: float | None) -> str:
    """`5 ч 2 мин`, `2 дн. 4 ч`, `40 мин`; whole minutes, rounded up."""
    if seconds is None:
        return texts.NOTHING
    minutes = math.ceil(max(0.0, seconds) / 60)
    if minutes == 0:
        return texts.DURATION_UNDER_A_MINUTE
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = []
    if days:
        parts.append(texts.DURATION_DAYS.format(days=days))
        if hours:
            parts.append(texts.DURATION_HOURS.format(hours=hours))
        return " ".join(parts)
    if hours:
        parts.append(texts.DURATION_HOURS.format(hours=hours))
    if minutes:
        parts.append(texts.DURATION_MINUTES.format(minutes=minutes))
    return " ".join(parts)


def _share(count: int, total: int) -> float | None:
    return count / total if total else None


def _dmy(day: date) -> str:
    return day.strftime("%d.%m.%Y")


# --- /stats --------------------------------------------------------------------------------


def stats_text(titles: Titles, figures: Figures, start: date, end: date) -> str:
    """The compact reply to /stats: a few lines of totals, then the breakdowns."""
    total = figures.received
    lines = [texts.STATS_TITLE.format(start=_dmy(start), end=_dmy(end), total=number(total))]
    if not total:
        return "\n".join(lines + _comment_lines(titles, figures))
    lines.append(
        texts.STATS_SUMMARY.format(
            residents=number(figures.residents),
            answered=number(figures.answered),
            on_time=number(figures.on_time),
            share=percent(figures.on_time_share),
        )
    )
    if figures.answered:
        lines.append(
            texts.STATS_ANSWER_TIME.format(
                median=duration(figures.median_answer_seconds),
                p90=duration(figures.p90_answer_seconds),
            )
        )
    lines.append(
        texts.STATS_RATINGS.format(
            resolved=number(figures.resolved),
            unresolved=number(figures.unresolved),
            unrated=number(figures.unrated),
        )
    )
    for heading, counts, title in _breakdowns(titles, figures):
        lines.append(heading)
        lines += [texts.STATS_LINE.format(title=title(code), count=number(n)) for code, n in counts]
    lines += _comment_lines(titles, figures)
    return "\n".join(lines)


def _breakdowns(titles: Titles, figures: Figures) -> list[tuple[str, Counts, Any]]:
    found: list[tuple[str, Counts, Any]] = [
        (texts.STATS_BY_STATUS, figures.by_status, titles.status),
        (texts.STATS_BY_CATEGORY, figures.by_category, titles.category),
        (texts.STATS_BY_SETTLEMENT, figures.by_settlement, titles.settlement),
        (texts.STATS_BY_PLATFORM, figures.by_platform, titles.platform),
    ]
    if _several_communities(figures):
        found.append((texts.STATS_BY_COMMUNITY, figures.by_community, titles.community))
    return found


def _several_communities(figures: Figures) -> bool:
    """Whether the communities say more than the messengers do: some item came in by a
    community other than a messenger's main one. An installation without [[x.communities]]
    reads as it always did."""
    codes = [code for code, _ in (*figures.by_community, *figures.comments.by_community)]
    return any(not code.endswith(":") for code in codes)


def _comment_lines(titles: Titles, figures: Figures) -> list[str]:
    """The comment items of the period, apart from the appeals (SPEC §14)."""
    comments = figures.comments
    if not comments.received:
        return []
    lines = [
        texts.STATS_COMMENTS.format(
            received=number(comments.received),
            answered=number(comments.answered),
            on_time=number(comments.on_time),
            share=percent(comments.on_time / comments.received),
        ),
        texts.STATS_COMMENTS_BY_COMMUNITY,
    ]
    lines += [
        texts.STATS_LINE.format(title=titles.community(code), count=number(n))
        for code, n in comments.by_community
    ]
    return lines


# --- the text report -----------------------------------------------------------------------


def report_text(titles: Titles, figures: Figures, start: date, end: date) -> str:
    """The yearly paragraph (totals, main topics, share answered on time, answer times,
    ratings), then every breakdown with its share of the appeals received."""
    title = texts.REPORT_TITLE.format(name=titles.name, start=_dmy(start), end=_dmy(end))
    total = figures.received
    if not total:
        comments = _report_comments(titles, figures)
        return f"{title}\n\n{texts.REPORT_NOTHING}\n" + (
            "\n" + "\n".join(comments) + "\n" if comments else ""
        )
    sentences = [
        texts.REPORT_RECEIVED.format(
            received=counted(total, texts.APPEAL_FORMS),
            residents=counted(figures.residents, texts.RESIDENT_GENITIVE_FORMS),
        ),
        texts.REPORT_TOPICS.format(
            topics=", ".join(
                texts.REPORT_TOPIC.format(title=titles.category(code), share=percent(n / total))
                for code, n in figures.by_category[:TOP_CATEGORIES]
            )
        ),
        texts.REPORT_ON_TIME.format(
            hours=titles.answer_within_hours,
            on_time=counted(figures.on_time, texts.APPEAL_FORMS),
            share=percent(figures.on_time_share),
            answered=counted(figures.answered, texts.APPEAL_FORMS),
        ),
    ]
    if figures.answered:
        sentences.append(
            texts.REPORT_ANSWER_TIME.format(
                median=duration(figures.median_answer_seconds),
                p90=duration(figures.p90_answer_seconds),
            )
        )
    sentences.append(
        texts.REPORT_RATINGS.format(
            resolved=number(figures.resolved),
            unresolved=number(figures.unresolved),
            unrated=number(figures.unrated),
        )
    )
    lines = [title, "", " ".join(sentences)]
    for heading, counts, name in _breakdowns(titles, figures):
        lines += ["", heading]
        lines += [
            texts.STATS_SHARE_LINE.format(
                title=name(code), count=number(n), share=percent(n / total)
            )
            for code, n in counts
        ]
    comments = _report_comments(titles, figures)
    if comments:
        lines += ["", *comments]
    return "\n".join(lines) + "\n"


def _report_comments(titles: Titles, figures: Figures) -> list[str]:
    """The comment items in the report's words: a sentence and their communities."""
    comments = figures.comments
    if not comments.received:
        return []
    lines = [
        texts.REPORT_COMMENTS.format(
            received=counted(comments.received, texts.COMMENT_FORMS),
            answered=number(comments.answered),
            on_time=number(comments.on_time),
        ),
        texts.STATS_COMMENTS_BY_COMMUNITY,
    ]
    lines += [
        texts.STATS_SHARE_LINE.format(
            title=titles.community(code),
            count=number(n),
            share=percent(n / comments.received),
        )
        for code, n in comments.by_community
    ]
    return lines


# --- the machine-readable reports ----------------------------------------------------------


def report_json(titles: Titles, figures: Figures, start: date, end: date) -> dict[str, Any]:
    """The report as a JSON-ready document: codes with titles, counts, shares (0..1),
    times in seconds."""
    total = figures.received

    def listing(counts: Counts, title: Any) -> list[dict[str, Any]]:
        return [
            {"code": code, "title": title(code), "count": n, "share": _share(n, total)}
            for code, n in counts
        ]

    return {
        "period": {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "timezone": titles.timezone.key,
            "since_utc": figures.since.isoformat(),
            "until_utc": figures.until.isoformat(),
        },
        "received": total,
        "residents": figures.residents,
        "answered": figures.answered,
        "answer_within_hours": titles.answer_within_hours,
        "answered_on_time": {"count": figures.on_time, "share": figures.on_time_share},
        "time_to_first_answer_seconds": {
            "median": figures.median_answer_seconds,
            "p90": figures.p90_answer_seconds,
        },
        "ratings": {
            "resolved": figures.resolved,
            "unresolved": figures.unresolved,
            "unrated": figures.unrated,
        },
        "top_categories": listing(figures.by_category[:TOP_CATEGORIES], titles.category),
        "by_category": listing(figures.by_category, titles.category),
        "by_settlement": listing(figures.by_settlement, titles.settlement),
        "by_platform": listing(figures.by_platform, titles.platform),
        "by_status": listing(figures.by_status, titles.status),
        "by_community": listing(figures.by_community, titles.community),
        "comments": _comments_json(titles, figures),
    }


def _comments_json(titles: Titles, figures: Figures) -> dict[str, Any]:
    """The comment items (SPEC §14), apart from the appeals; shares of the comments."""
    comments = figures.comments

    def listing(counts: Counts, title: Any) -> list[dict[str, Any]]:
        return [
            {"code": code, "title": title(code), "count": n, "share": _share(n, comments.received)}
            for code, n in counts
        ]

    return {
        "received": comments.received,
        "answered": comments.answered,
        "answered_on_time": {
            "count": comments.on_time,
            "share": _share(comments.on_time, comments.received),
        },
        "by_community": listing(comments.by_community, titles.community),
        "by_settlement": listing(comments.by_settlement, titles.settlement),
        "by_status": listing(comments.by_status, titles.status),
    }


def report_rows(
    titles: Titles, figures: Figures, start: date, end: date, *, decimal: str = ","
) -> list[list[str]]:
    """The report as CSV rows (header first): section, code, title, value. Counts and
    seconds are integers; the one share has `decimal` as its decimal separator."""
    share = figures.on_time_share
    summary: list[tuple[str, object]] = [
        ("from", start.isoformat()),
        ("to", end.isoformat()),
        ("timezone", titles.timezone.key),
        ("received", figures.received),
        ("residents", figures.residents),
        ("answered", figures.answered),
        ("on_time", figures.on_time),
        ("on_time_percent", "" if share is None else f"{share * 100:.1f}".replace(".", decimal)),
        ("answer_within_hours", titles.answer_within_hours),
        ("median_answer_seconds", _blank(figures.median_answer_seconds)),
        ("p90_answer_seconds", _blank(figures.p90_answer_seconds)),
    ]
    sections = texts.REPORT_CSV_SECTIONS
    rows = [list(texts.REPORT_CSV_HEADER)]
    rows += [
        [sections["summary"], key, texts.REPORT_CSV_SUMMARY[key], str(value)]
        for key, value in summary
    ]
    for section, counts, title in (
        ("category", figures.by_category, titles.category),
        ("settlement", figures.by_settlement, titles.settlement),
        ("platform", figures.by_platform, titles.platform),
        ("status", figures.by_status, titles.status),
    ):
        rows += [[sections[section], code, title(code), str(n)] for code, n in counts]
    ratings = (
        ("resolved", texts.RATING_TITLES["resolved"], figures.resolved),
        ("unresolved", texts.RATING_TITLES["unresolved"], figures.unresolved),
        ("none", texts.RATING_NONE, figures.unrated),
    )
    rows += [[sections["rating"], code, title, str(n)] for code, title, n in ratings]
    # SPEC §14: appeals by community, then the comment items apart.
    rows += [
        [sections["community"], code, titles.community(code), str(n)]
        for code, n in figures.by_community
    ]
    comments = figures.comments
    rows += [
        [sections["comments"], key, texts.REPORT_CSV_COMMENTS[key], str(value)]
        for key, value in (
            ("received", comments.received),
            ("answered", comments.answered),
            ("on_time", comments.on_time),
        )
    ]
    rows += [
        [sections["comment_community"], code, titles.community(code), str(n)]
        for code, n in comments.by_community
    ]
    return rows


def _blank(value: int | None) -> object:
    return "" if value is None else value


# --- the register --------------------------------------------------------------------------


def register_header() -> list[str]:
    return list(texts.REGISTER_HEADER)


def register_row(titles: Titles, row: RegisterRow, now: datetime) -> list[str]:
    """One item (an appeal or a comment) as a row of the register, with titles instead of
    codes, local times, and every text cell safe to open in a spreadsheet. The community it
    came in by and what it is (SPEC §14) are the last two columns, after those the register
    has always had. «Ответ в срок» as of `now`: «да» or «нет»
    once answered or once the deadline has passed, «срок не истёк» while it may still be."""
    tz = titles.timezone
    return [
        str(row.number),
        local_time(row.created_at, tz),
        titles.status(row.status),
        titles.category(row.category) if row.kind != "comment" else texts.COMMENT_CATEGORY,
        titles.settlement(row.settlement),
        titles.platform(row.platform),
        cell(row.text),
        cell(row.place),
        "" if row.latitude is None else f"{row.latitude:.6f}",
        "" if row.longitude is None else f"{row.longitude:.6f}",
        str(row.photos),
        cell(row.contact_name),
        cell(row.contact_phone),
        local_time(row.deadline_at, tz),
        local_time(row.first_answer_at, tz) if row.first_answer_at else "",
        _answered_on_time(row, now),
        texts.RATING_TITLES.get(row.rating, row.rating) if row.rating else "",
        cell(row.answer),
        titles.community(f"{row.platform}:{row.community}"),
        titles.kind(row.kind),
    ]


def _answered_on_time(row: RegisterRow, now: datetime) -> str:
    if row.first_answer_at is not None:
        return texts.YES if row.first_answer_at <= row.deadline_at else texts.NO
    return texts.NO if now > row.deadline_at else texts.REGISTER_NOT_DUE_YET


def cell(text: str | None) -> str:
    """A text cell for a spreadsheet: one that would start a formula gets an apostrophe."""
    if not text:
        return ""
    return "'" + text if text.startswith(_FORMULA_START) else text
