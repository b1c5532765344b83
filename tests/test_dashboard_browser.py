"""The dashboard in a real headless browser (SPEC §16, issue 21): Debian's chromium driven
by Playwright against the real app, whose VK channel talks to the fake VK API on 127.0.0.1.

A moderator asks the bot for a link in VK, signs in with it, filters the queue, opens the
appeal a resident filed in VK, answers it in the form, and the answer arrives in the
resident's VK chat with the rating buttons. An administrator of another settlement gets 404
for that appeal, a form without its CSRF token is refused, and the used link fails the second
time. Screenshots of the queue and the appeal page, at desktop and phone width, are saved
under `.artefacts/dashboard/` (or $APPEALS_ARTEFACTS) and named at the end of the run.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from handlers import texts
from tests.conftest import ARTEFACTS, Clock
from tests.fakes.vk import FakeVK
from tests.test_vk import GROUP, RESIDENT, VkBot, file_on_vk, vk_config

CHROMIUM = Path("/usr/bin/chromium")
playwright_api = pytest.importorskip(
    "playwright.async_api",
    reason="the playwright package is not installed (pip install -e '.[test]')",
)
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium "
    "(apt-get install -y chromium chromium-driver; .ci/run does it)",
)

MODERATOR = 900
ANDRA_ADMIN = 601
LINK = re.compile(r"https?://\S+/dashboard/login/\S+")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def artefacts() -> Path:
    root = Path(os.environ.get("APPEALS_ARTEFACTS") or Path(__file__).parent.parent / ".artefacts")
    folder = root / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def fake() -> AsyncIterator[FakeVK]:
    server = FakeVK(GROUP, hold_seconds=0.05)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def vk(
    tmp_path: Path, fake: FakeVK, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[VkBot]:
    monkeypatch.chdir(tmp_path)
    port = free_port()
    config = vk_config(tmp_path, fake)
    settlements = [
        s.model_copy(update={"admins": [f"vk:{ANDRA_ADMIN}"]}) if s.code == "andra" else s
        for s in config.settlements
    ]
    config = config.model_copy(
        update={
            "web": config.web.model_copy(
                update={"port": port, "public_url": f"http://127.0.0.1:{port}"}
            ),
            "dashboard": config.dashboard.model_copy(update={"enabled": True}),
            "moderators": config.moderators.model_copy(update={"ids": [f"vk:{MODERATOR}"]}),
            "settlements": settlements,
        }
    )
    bot = VkBot(fake, config, clock)
    await bot.start()
    await fake.wait_for_poll()
    yield bot
    await bot.app.stop()


@pytest.fixture
async def chromium() -> AsyncIterator[object]:
    async with playwright_api.async_playwright() as driver:
        browser = await driver.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        yield browser
        await browser.close()


async def link_for(vk: VkBot, user_id: int) -> str:
    [answer] = await vk.person(user_id).say("/web")
    found = LINK.search(answer.text)
    assert found, answer.text
    return found.group(0)


async def test_a_moderator_answers_in_the_browser(vk: VkBot, chromium: object) -> None:
    resident = vk.person(RESIDENT)
    number = await file_on_vk(resident)
    link = await link_for(vk, MODERATOR)
    shots = artefacts()

    context = await chromium.new_context(viewport=DESKTOP)  # type: ignore[attr-defined]
    page = await context.new_page()
    await page.goto(link)
    await page.click("#login")
    await page.wait_for_url("**/dashboard/")
    await page.select_option("#f-settlement", "sergino")
    await page.select_option("#f-category", "roads")
    await page.click("#apply")
    row = page.locator(f'a[href="/dashboard/appeals/{number}"]')
    await row.wait_for()
    await page.screenshot(path=shots / "queue-desktop.png", full_page=True)
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=shots / "queue-phone.png", full_page=True)
    await page.set_viewport_size(DESKTOP)
    await row.click()
    await page.wait_for_url(f"**/dashboard/appeals/{number}")
    await page.screenshot(path=shots / "appeal-desktop.png", full_page=True)
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=shots / "appeal-phone.png", full_page=True)
    ARTEFACTS.append(shots)

    await page.fill("#reply-text", "Яму засыплем до пятницы.")
    await page.click("#reply")
    outcome = page.locator("#outcome")
    await outcome.wait_for()
    assert await outcome.inner_text() == texts.REPLIED.format(number=number)

    def answered() -> bool:
        return any(m.text.startswith(f"Ответ на обращение №{number}") for m in resident.inbox)

    await vk.fake.wait_for(answered, what="the answer in the resident's VK chat")
    answer = next(m for m in resident.inbox if m.text.startswith(f"Ответ на обращение №{number}"))
    assert "Яму засыплем до пятницы." in answer.text
    labels = [b["action"].get("label") for row in answer.keyboard["buttons"] for b in row]
    assert "Вопрос решён" in labels

    # A form posted without its CSRF token (from the signed-in browser) is refused.
    refused = await page.request.post(
        f"{vk.config.web.public_url}/dashboard/appeals/{number}/close", form={"text": "x"}
    )
    assert refused.status == 403

    # The link that was used does not sign in again.
    again = await chromium.new_context()  # type: ignore[attr-defined]
    second = await again.new_page()
    response = await second.goto(link)
    assert response is not None and response.status == 404
    assert texts.DASHBOARD["login_invalid"] in await second.inner_text("#message")

    # An administrator of another settlement opening the appeal's address gets 404.
    other = await chromium.new_context()  # type: ignore[attr-defined]
    andra = await other.new_page()
    await andra.goto(await link_for(vk, ANDRA_ADMIN))
    await andra.click("#login")
    await andra.wait_for_url("**/dashboard/")
    response = await andra.goto(f"{vk.config.web.public_url}/dashboard/appeals/{number}")
    assert response is not None and response.status == 404
