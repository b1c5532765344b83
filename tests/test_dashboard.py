"""The web dashboard over real HTTP (SPEC §16): sign-in by the link `/web` sends, sessions,
rights as in the bot, CSRF, the action forms, figures and the export. The real app on
in-memory channels, aiohttp's client against its server on 127.0.0.1. The same pages in a
real browser: tests/test_dashboard_browser.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from handlers import texts
from handlers.messages import CommentEvent
from storage.models import Status
from tests.conftest import Clock, Harness, Person, office_config
from tests.flows import file_appeal

LINK = re.compile(r"https?://\S+/dashboard/login/(\S+)")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
async def office(tmp_path: Path, clock: Clock) -> AsyncIterator[Harness]:
    config = office_config(
        tmp_path,
        web={"port": 0, "public_url": "http://127.0.0.1:1"},
        dashboard={"enabled": True},
    )
    harness = Harness(config, clock, platforms=("vk", "tg"))
    await harness.start()
    yield harness
    await harness.app.stop()


class Browser:
    """A person's browser: a cookie jar, the base URL of the bot's server."""

    def __init__(self, office: Harness) -> None:
        self.base = f"http://127.0.0.1:{office.app.web.port}"
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for an IP address
        self.session = aiohttp.ClientSession(cookie_jar=jar)
        self.page = ""

    async def get(self, path: str) -> aiohttp.ClientResponse:
        async with self.session.get(URL(self.base + path, encoded=True)) as response:
            self.page = await response.text()
            return response

    async def post(self, path: str, data: dict[str, str]) -> aiohttp.ClientResponse:
        async with self.session.post(
            URL(self.base + path, encoded=True), data=data, allow_redirects=False
        ) as response:
            self.page = await response.text()
            return response

    @property
    def csrf(self) -> str:
        found = CSRF.search(self.page)
        assert found, "no CSRF token on the page"
        return found.group(1)


@pytest.fixture
async def browsers() -> AsyncIterator[list[Browser]]:
    opened: list[Browser] = []
    yield opened
    for browser in opened:
        await browser.session.close()


async def sign_in(office: Harness, person: Person, browsers: list[Browser]) -> Browser:
    """`/web` in the chat, then the link opened and «Войти» pressed."""
    [answer] = await person.say("/web")
    found = LINK.search(answer.text)
    assert found, answer.text
    browser = Browser(office)
    browsers.append(browser)
    path = f"/dashboard/login/{found.group(1)}"
    assert (await browser.get(path)).status == 200
    response = await browser.post(path, {})
    assert response.status == 303 and response.headers["Location"] == "/dashboard/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/dashboard" in cookie
    assert "Secure" not in cookie  # public_url is plain http here
    # The link works once, and not at all for someone else afterwards.
    assert (await browser.post(path, {})).status == 404
    assert texts.DASHBOARD["login_invalid"] in browser.page
    assert (await browser.get(path)).status == 404
    return browser


async def test_moderator_answers_through_the_form(
    office: Harness, moderator: Person, browsers: list[Browser]
) -> None:
    resident = office.person("1001", "Иван Петров", platform="vk")
    number = await file_appeal(resident)
    web = await sign_in(office, moderator, browsers)
    response = await web.get("/dashboard/")
    assert response.status == 200
    assert f"/dashboard/appeals/{number}" in web.page
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "script" not in web.page
    await web.get(f"/dashboard/appeals/{number}")
    response = await web.post(
        f"/dashboard/appeals/{number}/reply", {"csrf": web.csrf, "text": "Засыплем к пятнице."}
    )
    assert response.status == 200, web.page
    assert texts.REPLIED.format(number=number) in web.page
    await office.app.settle()
    [answer] = resident.replies()
    assert answer.text.startswith(f"Ответ на обращение №{number}")
    assert "Засыплем к пятнице." in answer.text
    assert answer.keyboard is not None  # «Вопрос решён» / «Вопрос не решён»
    async with office.app.db.transaction() as tx:
        assert (await tx.appeals.get(number)).status == Status.ANSWERED  # type: ignore[union-attr]
        actions = [action for _, action, _ in await tx.audit.entries(number)]
    assert "reply" in actions
    assert moderator.replies() == []  # the confirmation is on the page, not in the chat


async def test_rights_csrf_and_sessions(
    office: Harness, moderator: Person, browsers: list[Browser]
) -> None:
    resident = office.person("1001", "Иван Петров", platform="vk")
    number = await file_appeal(resident)  # Сергино
    andra = office.person("600", "Пётр", platform="vk")  # administrator of Андра
    web = await sign_in(office, andra, browsers)
    await web.get("/dashboard/")
    assert f"/dashboard/appeals/{number}" not in web.page
    assert (await web.get(f"/dashboard/appeals/{number}")).status == 404
    assert (await web.get(f"/dashboard/appeals/{number}/photos/0")).status == 404
    assert (await web.get("/dashboard/appeals/99999")).status == 404
    await web.get("/dashboard/")
    token = web.csrf
    response = await web.post(f"/dashboard/appeals/{number}/take", {"csrf": token})
    assert response.status == 404
    assert (await web.get("/dashboard/export.csv")).status == 403
    assert (await web.get("/dashboard/figures")).status == 403
    # Search by a number outside the settlements leads to the same 404.
    response = await web.post("/dashboard/", {"csrf": token, "q": f"№{number}"})
    assert response.status == 303

    mod = await sign_in(office, moderator, browsers)
    await mod.get("/dashboard/")
    # A form without the token, or with another session's, changes nothing.
    assert (await mod.post(f"/dashboard/appeals/{number}/take", {})).status == 403
    assert texts.DASHBOARD["csrf"] in mod.page
    assert (await mod.post(f"/dashboard/appeals/{number}/take", {"csrf": token})).status == 403
    async with office.app.db.transaction() as tx:
        assert (await tx.appeals.get(number)).status == Status.NEW  # type: ignore[union-attr]
    # Filters: another settlement's queue is empty, Сергино's has the appeal.
    await mod.get("/dashboard/")
    await mod.post("/dashboard/", {"csrf": mod.csrf, "settlement": "andra"})
    assert f"/dashboard/appeals/{number}" not in mod.page
    await mod.post("/dashboard/", {"csrf": mod.csrf, "settlement": "sergino", "q": "дома культ"})
    assert f"/dashboard/appeals/{number}" in mod.page
    await mod.post("/dashboard/", {"csrf": mod.csrf, "platform": "tg"})
    assert f"/dashboard/appeals/{number}" not in mod.page
    response = await mod.get("/dashboard/export.csv")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/csv")
    assert f"\n{number};" in mod.page
    response = await mod.get("/dashboard/figures?from=2026-01-01&to=2026-12-31")
    assert response.status == 200 and 'id="received">1<' in mod.page
    assert (await mod.get("/dashboard/figures?from=2026-13-01")).status == 422

    # /staff remove ends that person's sessions at once.
    await moderator.say("/staff remove vk:600")
    assert (await web.get("/dashboard/")).status == 403
    # «Выйти» ends one's own.
    await mod.get("/dashboard/")
    assert (await mod.post("/dashboard/logout", {"csrf": mod.csrf})).status == 200
    assert (await mod.get("/dashboard/")).status == 403


async def test_sign_in_links_are_rate_limited(office: Harness, moderator: Person) -> None:
    for _ in range(5):
        [answer] = await moderator.say("/web")
        assert LINK.search(answer.text)
    [answer] = await moderator.say("/web")
    assert answer.text == texts.WEB_TOO_MANY.format(minutes=10)
    office.clock.advance(minutes=11)
    [answer] = await moderator.say("/web")
    assert LINK.search(answer.text)


async def test_guessing_links_is_slowed_down(office: Harness, browsers: list[Browser]) -> None:
    web = Browser(office)
    browsers.append(web)
    for i in range(10):
        assert (await web.get(f"/dashboard/login/guess{i}")).status == 404
    assert (await web.get("/dashboard/login/guess")).status == 429


async def test_web_when_the_dashboard_is_off(tmp_path: Path, clock: Clock) -> None:
    harness = Harness(office_config(tmp_path), clock, platforms=("vk", "tg"))
    await harness.start()
    try:
        [answer] = await harness.person("900", platform="tg").say("/web")
        assert answer.text == texts.WEB_OFF
    finally:
        await harness.app.stop()


async def test_a_comment_item_shows_as_a_comment(
    tmp_path: Path, clock: Clock, browsers: list[Browser]
) -> None:
    """A comment under a post (SPEC §14) is listed as «Комментарий под постом» and its page
    says «Комментарий №N», with the link to the comment and the public-answer warning."""
    config = office_config(
        tmp_path,
        web={"port": 0, "public_url": "http://127.0.0.1:1"},
        dashboard={"enabled": True},
        vk={
            "enabled": True,
            "token": "vk1.a.dashboard-test-token",
            "group_id": 777,
            "settlement": "sergino",
            "comments": True,
        },
    )
    office = Harness(config, clock, platforms=("vk", "tg"))
    await office.start()
    try:
        author = office.person("1001", "Иван Петров", platform="vk")
        link = "https://vk.com/wall-777_42?reply=15"
        await author.send(
            "Когда починят дорогу у школы?",
            comment=CommentEvent("new", "-777", "42", "15", link, "https://vk.com/id1001"),
        )
        moderator = office.person("900", "Модератор", platform="tg")
        web = await sign_in(office, moderator, browsers)
        await web.get("/dashboard/")
        assert "/dashboard/appeals/1" in web.page
        assert texts.COMMENT_CATEGORY in web.page
        assert (await web.get("/dashboard/appeals/1")).status == 200
        assert texts.CARD_COMMENT_SHOW.format(number=1) in web.page
        assert link in web.page and texts.CARD_COMMENT_PUBLIC in web.page
    finally:
        await office.app.stop()
