"""The moderators' web dashboard (SPEC §16): server-rendered pages under /dashboard on the
bot's own aiohttp server, signed in through the messenger.

A staff member sends `/web` to the bot and gets a one-time link (handlers/staff/commands.py).
Opening it shows a «Войти» button (a messenger's link preview fetches the page too: only the
POST of that button uses the link); the POST starts a session, a random token in an HttpOnly,
SameSite=Lax cookie (Secure unless [web] public_url is plain http) whose hash is stored
(storage/dashboard.py). Every request reads the person's staff roles afresh, so the pages
show and do exactly what the bot would let them (SPEC §5, §6): an administrator sees the
appeals of their settlements only, and any other number is answered 404 like one that does
not exist. Every action is the chat command's action (handlers/staff/actions.py) run by
`Engine.act`: the resident cannot tell where the answer was written, and it is audited the
same way.

Forms carry a CSRF token signed with itsdangerous and bound to the session; nothing personal
goes into a URL (the queue's text search is a POST); every page has a strict
Content-Security-Policy (no scripts at all, styles and images from here only).
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from itsdangerous import BadData, URLSafeTimedSerializer
from loguru import logger

from bot.photos import PhotoUnavailable
from handlers import texts
from handlers.appeal_view import card, thread_lines, topic
from handlers.context import Work
from handlers.engine import Engine, StaffAction
from handlers.figures.report import (
    PeriodError,
    Titles,
    duration,
    month_bounds,
    percent,
    period_bounds,
    register_header,
    register_row,
)
from handlers.formatting import local_time
from handlers.messages import Photo
from handlers.settings import HandlerSettings
from handlers.staff import actions
from handlers.staff.actions import Outcome
from handlers.staff.views import LIST_LIMIT
from storage.appeals import Page
from storage.dashboard import token_hash
from storage.db import Store
from storage.models import Appeal, Status
from storage.staff import StaffMember

HERE = Path(__file__).resolve().parent
COOKIE = "appeals_dashboard"
PREFIX = "/dashboard"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the sign-in link never leaves in a Referer
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
# Sign-in attempts with a link that does not work, per client address and minute: a
# 256-bit token cannot be guessed, this only keeps a scanner from hammering the database.
FAILED_LOGINS_PER_MINUTE = 10
QUEUE_STATUSES: dict[str, tuple[Status, ...]] = {
    "open": (Status.NEW, Status.IN_PROGRESS),
    **{str(s): (s,) for s in Status},
    "all": tuple(Status),
}
NEWEST_FIRST = frozenset({"answered", "closed", "rejected", "all"})
NUMBER = re.compile(r"^\s*№?\s*(\d{1,12})\s*$")
MAX_FIELD = 4000  # the longest text a form may post (a reply is at most a few pages)
IMAGE_TYPES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF8", "image/gif"),
    (b"RIFF", "image/webp"),
)
ACTIONS = ("take", "reply", "ask", "close", "assign", "reject")
FetchPhoto = Callable[[Photo], Awaitable[bytes]]


@dataclass(frozen=True)
class Signed:
    """Who is asking: the session token's hash and the person's staff roles now."""

    session: str
    staff: StaffMember


class Dashboard:
    def __init__(
        self,
        db: Store,
        engine: Engine,
        *,
        public_url: str,
        session_hours: int,
        fetch_photo: FetchPhoto,
    ) -> None:
        self.db = db
        self.engine = engine
        self.settings: HandlerSettings = engine.settings
        self.titles = Titles.of(self.settings)
        self.secure = not public_url.startswith("http://")
        self.session = timedelta(hours=session_hours)
        self.fetch_photo = fetch_photo
        # Signs CSRF tokens; new at each start (a form open across a restart is refused
        # once and works after a reload). Sessions, in the database, survive restarts.
        self._csrf = URLSafeTimedSerializer(secrets.token_bytes(32), salt="dashboard-csrf")
        self._failed: dict[str, deque[float]] = {}

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._headers])
        aiohttp_jinja2.setup(
            app,
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        add = app.router
        add.add_get("/", self.queue)
        add.add_post("/", self.queue)
        add.add_get("/login/{token}", self.login_page)
        add.add_post("/login/{token}", self.login)
        add.add_post("/logout", self.logout)
        add.add_get(r"/appeals/{number:\d{1,12}}", self.appeal)
        add.add_get(r"/appeals/{number:\d{1,12}}/photos/{index:\d{1,3}}", self.photo)
        add.add_post(r"/appeals/{number:\d{1,12}}/{action:[a-z]+}", self.act)
        add.add_get("/figures", self.figures)
        add.add_get("/export.csv", self.export)
        add.add_static("/static", HERE / "static", append_version=False)
        return app

    # --- plumbing --------------------------------------------------------------------------

    @web.middleware
    async def _headers(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as error:
            if error.status < 400:  # a redirect
                error.headers.update(SECURITY_HEADERS)
                raise
            return self._message(request, error.status, error.text or error.reason)
        response.headers.update(SECURITY_HEADERS)
        return response

    def _message(self, request: web.Request, status: int, text: str) -> web.Response:
        response = aiohttp_jinja2.render_template(
            "message.html", request, self._page(None, message=text), status=status
        )
        response.headers.update(SECURITY_HEADERS)
        return response

    def _page(self, signed: Signed | None, **values: Any) -> dict[str, Any]:
        csrf = self._csrf.dumps(signed.session) if signed is not None else ""
        staff = signed.staff if signed else None
        return {"t": texts.DASHBOARD, "staff": staff, "csrf": csrf, **values}

    async def _signed(self, request: web.Request) -> Signed:
        """The session of the request and the person's roles now; 403 without one."""
        token = request.cookies.get(COOKIE, "")
        if token:
            async with self.db.read() as tx:
                identity = await tx.dashboard.session_identity(token, self.engine.clock())
                staff = await tx.staff.member(identity) if identity else None
            if staff is not None:
                return Signed(token_hash(token), staff)
        raise web.HTTPForbidden(text=texts.DASHBOARD["no_session"])

    async def _form(self, request: web.Request, signed: Signed) -> Mapping[str, str]:
        """The posted fields, once the CSRF token among them is this session's."""
        form = await request.post()
        token = form.get("csrf")
        try:
            ok = (
                isinstance(token, str)
                and self._csrf.loads(token, max_age=int(self.session.total_seconds()))
                == signed.session
            )
        except BadData:
            ok = False
        if not ok:
            logger.warning("dashboard form refused: bad CSRF token")
            raise web.HTTPForbidden(text=texts.DASHBOARD["csrf"])
        return {key: value for key, value in form.items() if isinstance(value, str)}

    def _too_many_failures(self, request: web.Request) -> bool:
        now = time.monotonic()
        seen = self._failed.setdefault(request.remote or "", deque())
        while seen and seen[0] < now - 60:
            seen.popleft()
        return len(seen) >= FAILED_LOGINS_PER_MINUTE

    def _failed_login(self, request: web.Request) -> None:
        self._failed.setdefault(request.remote or "", deque()).append(time.monotonic())
        if len(self._failed) > 10_000:  # forget the oldest clients
            self._failed.pop(next(iter(self._failed)))

    # --- sign-in ---------------------------------------------------------------------------

    async def login_page(self, request: web.Request) -> web.Response:
        if self._too_many_failures(request):
            raise web.HTTPTooManyRequests(text=texts.DASHBOARD["too_many"])
        async with self.db.read() as tx:
            valid = await tx.dashboard.login_valid(request.match_info["token"], self.engine.clock())
        if not valid:
            self._failed_login(request)
            raise web.HTTPNotFound(text=texts.DASHBOARD["login_invalid"])
        return aiohttp_jinja2.render_template("login.html", request, self._page(None))

    async def login(self, request: web.Request) -> web.StreamResponse:
        if self._too_many_failures(request):
            raise web.HTTPTooManyRequests(text=texts.DASHBOARD["too_many"])
        now = self.engine.clock()
        session = secrets.token_urlsafe(32)
        async with self.db.transaction() as tx:
            identity = await tx.dashboard.use_login(request.match_info["token"], now)
            if identity is not None and await tx.staff.member(identity) is not None:
                await tx.dashboard.start_session(session, identity, now, now + self.session)
                await tx.audit.add(identity, "web_login", now)
            else:
                identity = None
        if identity is None:
            self._failed_login(request)
            raise web.HTTPNotFound(text=texts.DASHBOARD["login_invalid"])
        logger.info("dashboard: {} signed in", identity)
        response = web.Response(status=303, headers={"Location": f"{PREFIX}/"})
        response.set_cookie(
            COOKIE,
            session,
            max_age=int(self.session.total_seconds()),
            path=PREFIX,
            secure=self.secure,
            httponly=True,
            samesite="Lax",
        )
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        signed = await self._signed(request)
        await self._form(request, signed)
        async with self.db.transaction() as tx:
            await tx.dashboard.end_session(request.cookies.get(COOKIE, ""))
            await tx.audit.add(signed.staff.identity, "web_logout", self.engine.clock())
        response = self._message(request, 200, texts.DASHBOARD["signed_out"])
        response.del_cookie(COOKIE, path=PREFIX)
        return response

    # --- the queue -------------------------------------------------------------------------

    @aiohttp_jinja2.template("queue.html")
    async def queue(self, request: web.Request) -> dict[str, Any] | web.StreamResponse:
        """The appeals this person may see, by deadline, a page at a time. Filters come as
        query parameters (codes only) or, with the text search, as a POST."""
        signed = await self._signed(request)
        staff = signed.staff
        params: Mapping[str, str] = (
            await self._form(request, signed) if request.method == "POST" else request.query
        )
        query = params.get("q", "").strip()[:200]
        found = NUMBER.match(query)
        if found:
            raise web.HTTPSeeOther(f"{PREFIX}/appeals/{int(found.group(1))}")
        status = params.get("status", "open")
        status = status if status in QUEUE_STATUSES else "open"
        settlement = _choice(params, "settlement", [s.code for s in self.settings.settlements])
        category = _choice(params, "category", [c.code for c in self.settings.categories])
        platform = _choice(params, "platform", list(texts.PLATFORM_TITLES))
        overdue = params.get("overdue") == "1"
        after = _int(params.get("after", ""))
        if staff.moderator:
            settlements = [settlement] if settlement else None
        else:
            mine = sorted(staff.settlements)
            settlements = [s for s in mine if s == settlement] if settlement else mine
        now = self.engine.clock()
        async with self.db.read() as tx:
            page: Page = await tx.appeals.listing(
                statuses=QUEUE_STATUSES[status],
                settlements=settlements,
                due_before=now if overdue else None,
                newest_first=status in NEWEST_FIRST and not overdue,
                after=after,
                limit=LIST_LIMIT,
                category=category,
                platform=platform,
                text=query or None,
            )
        filters = {
            "status": status,
            "settlement": settlement or "",
            "category": category or "",
            "platform": platform or "",
            "overdue": "1" if overdue else "",
            "q": query,
        }
        rows = [self._row(appeal, due, now) for appeal, due in page.rows]
        return self._page(
            signed,
            filters=filters,
            rows=rows,
            next_after=page.rows[-1][0].number if page.more else None,
            paged=after is not None,
            statuses=[("open", texts.DASHBOARD["open"]), *texts.STATUS_TITLES.items()],
            settlements=[
                (s.code, s.title)
                for s in self.settings.settlements
                if staff.moderator or s.code in staff.settlements
            ],
            categories=[(c.code, c.title) for c in self.settings.categories],
            platforms=list(texts.PLATFORM_TITLES.items()),
        )

    def _row(self, appeal: Appeal, due: datetime, now: datetime) -> dict[str, Any]:
        return {
            "number": appeal.number,
            "status": texts.STATUS_TITLES.get(appeal.status, appeal.status),
            "settlement": self.titles.settlement(appeal.settlement),
            "category": topic(self.settings, appeal),  # a comment item's says so
            "platform": self.titles.platform(appeal.platform),
            "due": local_time(due, self.settings.timezone),
            "overdue": due < now and appeal.status in (Status.NEW, Status.IN_PROGRESS),
            "text": appeal.text if len(appeal.text) <= 140 else appeal.text[:139] + "…",
        }

    # --- an appeal -------------------------------------------------------------------------

    async def _visible(self, signed: Signed, number: int) -> Appeal:
        async with self.db.read() as tx:
            work = Work(tx, self.settings, self.engine.clock())
            appeal = await actions.visible_appeal(work, signed.staff, number)
        if appeal is None:
            raise web.HTTPNotFound(text=texts.DASHBOARD["not_found"])
        return appeal

    async def appeal(self, request: web.Request) -> web.StreamResponse:
        signed = await self._signed(request)
        return await self._appeal_page(request, signed, int(request.match_info["number"]))

    async def _appeal_page(
        self, request: web.Request, signed: Signed, number: int, outcome: Outcome | None = None
    ) -> web.StreamResponse:
        appeal = await self._visible(signed, number)
        async with self.db.read() as tx:
            thread = await tx.thread.of_appeal(number)
            comment = await tx.comments.of_item(number) if appeal.is_comment else None
        photos = len(appeal.photos) + sum(len(entry.photos) for entry in thread)
        heading = texts.CARD_COMMENT_SHOW if appeal.is_comment else texts.DASHBOARD["appeal"]
        values = self._page(
            signed,
            number=number,
            heading=heading.format(number=number),
            card=card(self.settings, appeal, texts.CARD_SHOW, comment),
            thread=thread_lines(self.settings, thread, comment=appeal.is_comment),
            photos=range(photos),
            finished=appeal.status in (Status.CLOSED, Status.REJECTED),
            settlements=[(s.code, s.title) for s in self.settings.settlements],
            outcome=outcome,
        )
        status = 200 if outcome is None or outcome.done else 409
        return aiohttp_jinja2.render_template("appeal.html", request, values, status=status)

    async def photo(self, request: web.Request) -> web.StreamResponse:
        """A photo of the appeal or its thread, fetched by the bot through the channel it
        came from: the page never holds a platform's URL (or the token in it)."""
        signed = await self._signed(request)
        number = int(request.match_info["number"])
        appeal = await self._visible(signed, number)
        async with self.db.read() as tx:
            thread = await tx.thread.of_appeal(number)
        photos = [*appeal.photos, *(p for entry in thread for p in entry.photos)]
        index = int(request.match_info["index"])
        if index >= len(photos):
            raise web.HTTPNotFound(text=texts.DASHBOARD["not_found"])
        try:
            body = await self.fetch_photo(photos[index])
        except PhotoUnavailable as error:
            logger.warning("dashboard: photo of appeal №{} unavailable: {}", number, error)
            raise web.HTTPNotFound(text=texts.DASHBOARD["not_found"]) from None
        kind = next((t for magic, t in IMAGE_TYPES if body.startswith(magic)), None)
        if kind is None:
            raise web.HTTPNotFound(text=texts.DASHBOARD["not_found"])
        return web.Response(body=body, content_type=kind)

    async def act(self, request: web.Request) -> web.StreamResponse:
        """A form of the appeal page: the action of the chat command of the same name."""
        signed = await self._signed(request)
        form = await self._form(request, signed)
        number = int(request.match_info["number"])
        await self._visible(signed, number)  # 404 for a number this person may not see
        name = request.match_info["action"]
        if name not in ACTIONS:
            raise web.HTTPNotFound(text=texts.DASHBOARD["not_found"])
        text = form.get("text", "").strip()[:MAX_FIELD]
        call: StaffAction
        if name == "take":
            call = partial(_take, number=number)
        elif name == "close":
            call = partial(_close, number=number, text=text)
        elif not text:
            raise web.HTTPUnprocessableEntity(text=texts.DASHBOARD["empty_text"])
        elif name == "reply":
            call = partial(_reply, number=number, text=text)
        elif name == "ask":
            call = partial(_ask, number=number, text=text)
        elif name == "assign":
            call = partial(_assign, number=number, text=text)
        else:
            call = partial(_reject, number=number, text=text)
        outcome = await self.engine.act(signed.staff.identity, call)
        if outcome is None:
            raise web.HTTPForbidden(text=texts.DASHBOARD["no_session"])
        logger.info("dashboard: {} on appeal №{} done={}", name, number, outcome.done)
        return await self._appeal_page(request, signed, number, outcome)

    # --- figures and the register ----------------------------------------------------------

    @aiohttp_jinja2.template("figures.html")
    async def figures(self, request: web.Request) -> dict[str, Any]:
        """SPEC §9 for a period (moderators, as /stats), with appeals per month."""
        signed = await self._signed(request)
        if not signed.staff.moderator:
            raise web.HTTPForbidden(text=texts.DASHBOARD["forbidden"])
        tz = self.settings.timezone
        today = self.engine.clock().astimezone(tz).date()
        start = _day(request.query.get("from", "")) or today.replace(month=1, day=1)
        end = _day(request.query.get("to", "")) or today
        try:
            if start > end or (end - start).days > 366 * 20:
                raise PeriodError(texts.DASHBOARD["bad_period"])
            since, until = period_bounds(start, end, tz)
            months = month_bounds(start, end, tz)
        except PeriodError:
            raise web.HTTPUnprocessableEntity(text=texts.DASHBOARD["bad_period"]) from None
        async with self.db.read() as tx:
            figures = await tx.reports.figures(since, until)
            monthly = await tx.reports.months([(s, u) for _, s, u in months])
        top = max((m.received for m in monthly), default=0) or 1
        t = self.titles
        return self._page(
            signed,
            start=start.isoformat(),
            end=end.isoformat(),
            f=figures,
            on_time=percent(figures.on_time_share),
            median=duration(figures.median_answer_seconds),
            p90=duration(figures.p90_answer_seconds),
            breakdowns=[
                ("by_category", [(t.category(k), n) for k, n in figures.by_category]),
                ("by_settlement", [(t.settlement(k), n) for k, n in figures.by_settlement]),
                ("by_platform", [(t.platform(k), n) for k, n in figures.by_platform]),
                ("by_status", [(t.status(k), n) for k, n in figures.by_status]),
            ],
            months=[
                {
                    "label": f"{first.month:02}.{first.year}",
                    "received": m.received,
                    "on_time": m.on_time,
                    "width": round(300 * m.received / top),
                    "y": 22 * i,
                }
                for i, ((first, _, _), m) in enumerate(zip(months, monthly, strict=True))
            ],
        )

    async def export(self, request: web.Request) -> web.StreamResponse:
        """The whole register as CSV (`appeals-bot export`), moderators only, streamed."""
        signed = await self._signed(request)
        if not signed.staff.moderator:
            raise web.HTTPForbidden(text=texts.DASHBOARD["forbidden"])
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": 'attachment; filename="appeals.csv"',
                **SECURITY_HEADERS,
            }
        )
        await response.prepare(request)
        now = self.engine.clock()
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=";")
        buffer.write("\ufeff")  # Excel reads UTF-8 by its BOM
        writer.writerow(register_header())
        async with self.db.read() as tx:
            async for batch in _batches(tx.reports.register()):
                writer.writerows(register_row(self.titles, row, now) for row in batch)
                await response.write(buffer.getvalue().encode("utf-8"))
                buffer.seek(0)
                buffer.truncate()
        await response.write(buffer.getvalue().encode("utf-8"))
        await response.write_eof()
        async with self.db.transaction() as tx:
            await tx.audit.add(signed.staff.identity, "web_export", now)
        return response


async def _batches(source: AsyncIterator[Any]) -> AsyncIterator[Any]:
    try:
        async for item in source:
            yield item
    finally:
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()


def _choice(params: Mapping[str, str], key: str, allowed: list[str]) -> str | None:
    value = params.get(key, "")
    return value if value in allowed else None


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) <= 12 else None


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise web.HTTPUnprocessableEntity(text=texts.DASHBOARD["bad_period"]) from None


# The forms' calls of the actions, each (work, staff) -> Outcome as Engine.act runs them.


async def _take(work: Work, staff: StaffMember, *, number: int) -> Outcome:
    return await actions.take(work, staff, number)


async def _reply(work: Work, staff: StaffMember, *, number: int, text: str) -> Outcome:
    return await actions.reply(work, staff, number, text)


async def _ask(work: Work, staff: StaffMember, *, number: int, text: str) -> Outcome:
    return await actions.ask(work, staff, number, text)


async def _close(work: Work, staff: StaffMember, *, number: int, text: str) -> Outcome:
    return await actions.close(work, staff, number, text)


async def _assign(work: Work, staff: StaffMember, *, number: int, text: str) -> Outcome:
    return await actions.assign(work, staff, number, text)


async def _reject(work: Work, staff: StaffMember, *, number: int, text: str) -> Outcome:
    return await actions.reject(work, staff, number, text)
