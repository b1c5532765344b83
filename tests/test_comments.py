"""Comments under posts (SPEC §14, issue 18): a comment under a post of a community that takes
comments becomes a comment item with its own №N; staff answer it in public under the
comment, invite its author to write in private, reject or close it; an edit is followed and
a deletion closes it. The fake VK implements wall.createComment and the wall events as the
official schema (VKCOM/vk-api-schema) has them (tests/fakes/vk.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import aiohttp
import pytest

from bot.settings import handler_settings
from handlers import texts
from handlers.figures.report import (
    Titles,
    period_bounds,
    register_header,
    register_row,
    report_json,
    report_text,
)
from storage.reports import ReportQueries
from tests.conftest import Clock
from tests.deployments import (
    ADMIN,
    DISTRICT,
    MODERATOR,
    RESIDENT,
    SERGINO,
    Deployment,
    TgStaff,
    VkResident,
    two_by_two,
)
from tests.fakes.vk import FakeVK, WallComment

POST = 42


@pytest.fixture
async def deployment(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch, storage_url: str
) -> AsyncIterator[Deployment]:
    """On each backend (SQLite, PostgreSQL where APPEALS_TEST_POSTGRES_URL names one)."""
    monkeypatch.chdir(tmp_path)
    async with two_by_two(
        tmp_path, clock, sergino={"comments": True}, storage_url=storage_url
    ) as found:
        yield found


async def comment(deployment: Deployment, text: str, **fields: object) -> WallComment:
    """A resident comments under Сергино's post; returns the comment once it is handled."""
    vk = deployment.vk
    before = vk.delivered_events
    update = vk.wall_reply_new(RESIDENT, text, post_id=POST, group_id=SERGINO, **fields)
    await vk.wait_for(lambda: vk.delivered_events > before, what="the comment delivered")
    await deployment.settle()
    return next(c for c in vk.comments if c.id == update["object"]["id"])


async def items(deployment: Deployment) -> list[tuple[int, str, str, str, str]]:
    return [
        (number, kind, status, settlement, text)
        for number, kind, status, settlement, text in await deployment.rows(
            "SELECT id, kind, status, settlement, text FROM appeals ORDER BY id"
        )
    ]


async def test_a_comment_is_an_item_answered_in_public_under_it(deployment: Deployment) -> None:
    """Acceptance: a comment under a post of Сергино's community → item №N; Сергино's
    administrator is notified on Telegram; /reply N appears on VK as the group's reply to
    that comment, and the item is «Отвечено»; /invite N posts the invitation."""
    vk = deployment.vk
    admin = TgStaff(deployment, ADMIN, deployment.sergino_bot)
    await admin.say("/start")
    vk.users[RESIDENT] = ("Пётр", "Иванов")
    question = await comment(deployment, "Когда починят фонари на улице Ленина?")

    [(number, kind, status, settlement, text)] = await items(deployment)
    assert (kind, status, settlement) == ("comment", "new", "sergino")
    assert text == "Когда починят фонари на улице Ленина?"
    card = admin.inbox[-1].text
    assert card.startswith(f"Комментарий под постом №{number}")
    assert "Пётр Иванов — https://vk.com/id1001" in card
    assert f"https://vk.com/wall-{SERGINO}_{POST}?reply={question.id}" in card
    assert texts.CARD_COMMENT_PUBLIC in card  # the one-line warning: the answer is public
    assert f"/invite {number}" in card

    confirmation = await admin.say(f"/reply {number} Фонари заменим до конца недели.")
    assert confirmation[-1].text == texts.COMMENT_REPLIED.format(number=number)
    [answer] = vk.replies_to(question.id)
    assert answer.from_id == -SERGINO and answer.owner_id == -SERGINO and answer.post_id == POST
    assert answer.text.startswith("Фонари заменим до конца недели.")
    assert "Администрация" in answer.text  # the organisation signs it
    assert answer.params["from_group"] == str(SERGINO)
    assert answer.params["reply_to_comment"] == str(question.id)
    assert answer.params["guid"]  # a resend is recognised by VK
    assert vk.messages_to(RESIDENT) == []  # nothing was written to the author in private
    await deployment.settle()  # VK sent the group's own comment back: it is no item
    [(_, _, status, _, _)] = await items(deployment)
    assert status == "answered"

    second = await comment(deployment, "А у нас во дворе яма, кому писать?")
    number2 = number + 1
    await admin.say(f"/invite {number2}")
    [invitation] = vk.replies_to(second.id)
    assert f"https://vk.me/club{SERGINO}" in invitation.text
    assert invitation.from_id == -SERGINO
    assert len(await items(deployment)) == 2


async def test_the_numbers_are_one_sequence_with_appeals(deployment: Deployment) -> None:
    resident = VkResident(deployment, RESIDENT + 1, SERGINO)
    await resident.say("Подать обращение")
    await resident.press("Согласен")
    await resident.press("Дороги")
    await resident.say("Яма на дороге у школы, глубокая")
    for label in ("Пропустить", "Пропустить", "Оставить как есть", "Пропустить", "Отправить"):
        await resident.press(label)
    await comment(deployment, "Вопрос про вывоз мусора во дворе")
    assert [(n, kind) for n, kind, *_ in await items(deployment)] == [
        (1, "appeal"),
        (2, "comment"),
    ]


async def test_an_edit_follows_and_a_deletion_closes(deployment: Deployment) -> None:
    vk = deployment.vk
    admin = TgStaff(deployment, ADMIN, deployment.sergino_bot)
    await admin.say("/start")
    first = await comment(deployment, "Не горит фонарь")
    before = vk.delivered_events
    vk.wall_reply_edit(first.id, "Не горит фонарь у дома 5 по улице Ленина")
    await vk.wait_for(lambda: vk.delivered_events > before, what="the edit")
    await deployment.settle()
    [(number, _, status, _, text)] = await items(deployment)
    assert text == "Не горит фонарь у дома 5 по улице Ленина" and status == "new"
    shown = await admin.say(f"/show {number}")
    assert "комментарий изменён" in shown[-1].text

    before = vk.delivered_events
    vk.wall_reply_delete(first.id)
    await vk.wait_for(lambda: vk.delivered_events > before, what="the deletion")
    await deployment.settle()
    [(_, _, status, _, _)] = await items(deployment)
    assert status == "closed"
    assert admin.inbox[-1].text == texts.COMMENT_DELETED_TO_STAFF.format(number=number)
    refused = await admin.say(f"/reply {number} Поздно")
    assert "уже закрыто" in refused[-1].text


async def test_staff_commands_on_a_comment_item(deployment: Deployment) -> None:
    vk = deployment.vk
    admin = TgStaff(deployment, ADMIN, deployment.sergino_bot)
    moderator = TgStaff(deployment, MODERATOR, deployment.district_bot)
    await admin.say("/start")
    await moderator.say("/start")
    await comment(deployment, "Продам гараж недорого, звоните")
    number = 1
    asked = await admin.say(f"/ask {number} Уточните адрес")
    assert asked[-1].text == texts.ASK_NOT_FOR_COMMENT.format(number=number)
    taken = await admin.say(f"/take {number}")
    assert taken[-1].text == texts.COMMENT_TAKEN.format(number=number)
    listed = await admin.say("/list")
    assert f"№{number}" in listed[-1].text and texts.COMMENT_CATEGORY in listed[-1].text
    rejected = await moderator.say(f"/reject {number} реклама")
    assert rejected[-1].text == texts.COMMENT_REJECTED.format(number=number)
    assert vk.replies_to(vk.comments[0].id) == []  # rejected: no answer under it
    assert vk.messages_to(RESIDENT) == []
    [(_, _, status, _, _)] = await items(deployment)
    assert status == "rejected"

    await comment(deployment, "Спасибо за новую площадку!")
    closed = await admin.say("/close 2 Благодарность, ответа не требует")
    assert closed[-1].text == texts.COMMENT_CLOSED.format(number=2)


async def test_what_is_not_an_item(deployment: Deployment) -> None:
    vk = deployment.vk
    admin = TgStaff(deployment, ADMIN, deployment.sergino_bot)
    await admin.say("/start")
    # The district's community takes no comments (comments = false).
    before = vk.delivered_events
    vk.wall_reply_new(RESIDENT, "Вопрос в районной группе", post_id=7, group_id=DISTRICT)
    # The community's own comment under its post.
    vk.wall_reply_new(-SERGINO, "Уточнение к посту", post_id=POST, group_id=SERGINO)
    # A comment with nothing to read (a sticker).
    vk.wall_reply_new(RESIDENT, "", post_id=POST, group_id=SERGINO)
    await vk.wait_for(lambda: vk.delivered_events >= before + 3, what="three comments")
    await deployment.settle()
    assert await items(deployment) == []
    assert admin.inbox[-1].text.startswith("Здравствуйте")  # nobody was notified


async def test_a_commenter_writing_in_private_starts_their_own_dialogue(
    deployment: Deployment,
) -> None:
    """The invitation's promise: in the community's messages the author's own dialogue
    starts, consent first; their comment is not one of «Мои обращения»."""
    await comment(deployment, "Когда будет вода?")
    resident = VkResident(deployment, RESIDENT, SERGINO)
    replies = await resident.say("Мои обращения")
    assert texts.NO_APPEALS in replies[0].text
    replies = await resident.say("Подать обращение")
    assert "Согласие на обработку" in replies[-1].text


async def test_a_flood_of_comments_warns_once_and_the_figures_stay_right(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch, storage_url: str
) -> None:
    """Acceptance: 500 comments from one person: one warning, no crash, figures right."""
    monkeypatch.chdir(tmp_path)
    async with two_by_two(
        tmp_path,
        clock,
        sergino={"comments": True},
        limits={"messages_per_minute": 20},
        storage_url=storage_url,
    ) as deployment:
        vk: FakeVK = deployment.vk
        moderator = TgStaff(deployment, MODERATOR, deployment.district_bot)
        await moderator.say("/start")
        before = vk.delivered_events
        for i in range(500):
            vk.wall_reply_new(RESIDENT, f"Реклама номер {i}", post_id=POST, group_id=SERGINO)
        await vk.wait_for(lambda: vk.delivered_events >= before + 500, 60, "500 comments")
        await deployment.settle()
        found = await items(deployment)
        assert len(found) == 20 and all(kind == "comment" for _, kind, *_ in found)
        warnings = [m for m in moderator.inbox if m.text.startswith("Слишком много комментариев")]
        assert len(warnings) == 1 and f"vk:{RESIDENT}" in warnings[0].text
        assert deployment.app is not None
        async with deployment.app.db.read() as tx:
            figures = await tx.appeals.figures(
                clock.now.replace(hour=0), clock.now.replace(hour=23)
            )
        assert figures.received == 0  # appeals
        assert figures.comments.received == 20
        assert figures.comments.by_community == ((f"vk:{SERGINO}", 20),)
        # The bot is alive: a resident is still answered.
        resident = VkResident(deployment, RESIDENT + 5, SERGINO)
        replies = await resident.say("Здравствуйте")
        assert "Сергино" in replies[-1].text


async def test_a_flood_of_edits_is_limited_like_new_comments(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Edits count towards the flood limit too: 300 edits of one comment add a bounded
    number of thread entries, and the moderators hear of it once."""
    monkeypatch.chdir(tmp_path)
    async with two_by_two(
        tmp_path, clock, sergino={"comments": True}, limits={"messages_per_minute": 20}
    ) as deployment:
        vk: FakeVK = deployment.vk
        moderator = TgStaff(deployment, MODERATOR, deployment.district_bot)
        await moderator.say("/start")
        edited = await comment(deployment, "Когда починят дорогу у школы?")
        before = vk.delivered_events
        for i in range(300):
            vk.wall_reply_edit(edited.id, f"Когда починят дорогу у школы? Правка {i}")
        await vk.wait_for(lambda: vk.delivered_events >= before + 300, 60, "300 edits")
        [(entries,)] = await deployment.rows(
            "SELECT count(*) FROM appeal_events WHERE appeal_id = 1 AND kind = 'edited'"
        )
        assert 0 < entries < 20
        warnings = [m for m in moderator.inbox if m.text.startswith("Слишком много комментариев")]
        assert len(warnings) == 1


async def test_a_flood_where_comments_are_not_taken_tells_nobody(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The district's own community takes no comments: a flood of them there is nobody's
    business, the moderators are not told."""
    monkeypatch.chdir(tmp_path)
    async with two_by_two(
        tmp_path, clock, sergino={"comments": True}, limits={"messages_per_minute": 20}
    ) as deployment:
        vk: FakeVK = deployment.vk
        moderator = TgStaff(deployment, MODERATOR, deployment.district_bot)
        await moderator.say("/start")
        before = vk.delivered_events
        for i in range(40):
            vk.wall_reply_new(RESIDENT, f"Комментарий {i}", post_id=POST, group_id=DISTRICT)
        await vk.wait_for(lambda: vk.delivered_events >= before + 40, 60, "40 comments")
        await deployment.settle()
        assert await items(deployment) == []
        assert not [m for m in moderator.inbox if m.text.startswith("Слишком много")]


async def test_the_registers_count_comments_apart_by_community(deployment: Deployment) -> None:
    """/stats, the report and the register: the community as a column, comment items apart
    from appeals (SPEC §9, §14)."""
    moderator = TgStaff(deployment, MODERATOR, deployment.district_bot)
    await moderator.say("/start")
    resident = VkResident(deployment, RESIDENT + 1, SERGINO)
    await resident.say("Подать обращение")
    await resident.press("Согласен")
    await resident.press("Дороги")
    await resident.say("Яма на дороге у школы, глубокая")
    for label in ("Пропустить", "Пропустить", "Оставить как есть", "Пропустить", "Отправить"):
        await resident.press(label)
    await comment(deployment, "Когда откроют мост?")
    await moderator.say("/reply 2 Мост откроют в мае.")

    stats = (await moderator.say("/stats"))[-1].text
    assert "Обращения с 01.01.2026 по 02.03.2026: 1" in stats
    assert "По сообществам:\n  ВКонтакте 888 (Сергино): 1" in stats
    assert "Комментарии под постами: 1 · отвечено: 1 · в срок: 1 (100,0\xa0%)" in stats

    assert deployment.app is not None
    titles = Titles.of(handler_settings(deployment.config))
    async with deployment.app.db.read() as tx:
        figures = await tx.appeals.figures(
            *period_bounds(date(2026, 1, 1), date(2026, 12, 31), titles.timezone)
        )
        rows = [row async for batch in ReportQueries(tx.appeals._conn).register() for row in batch]
    assert figures.by_community == ((f"vk:{SERGINO}", 1),)
    assert figures.comments.by_community == ((f"vk:{SERGINO}", 1),)
    text = report_text(titles, figures, date(2026, 1, 1), date(2026, 12, 31))
    assert "Комментарии под постами сообществ учтены отдельно: поступило 1 комментарий" in text
    document = report_json(titles, figures, date(2026, 1, 1), date(2026, 12, 31))
    assert document["comments"]["received"] == 1
    assert document["by_community"][0]["title"] == "ВКонтакте 888 (Сергино)"
    header = register_header()
    assert header[-2:] == ["Сообщество", "Вид"]
    lines = [register_row(titles, row, deployment.clock.now) for row in rows]
    assert [line[-2:] for line in lines] == [
        ["ВКонтакте 888 (Сергино)", "обращение"],
        ["ВКонтакте 888 (Сергино)", "комментарий"],
    ]
    assert lines[1][3] == texts.COMMENT_CATEGORY


async def test_a_moderator_registers_an_ok_comment_by_hand(deployment: Deployment) -> None:
    """OK documents no way to receive comments under posts: a moderator registers one by
    hand, and answers to it are given to the official to post under it."""
    moderator = TgStaff(deployment, MODERATOR, deployment.district_bot)
    admin = TgStaff(deployment, ADMIN, deployment.sergino_bot)
    await admin.say("/start")
    link = "https://ok.ru/group/70000001234567/topic/155?commentId=42"
    registered = await moderator.say(f"/comment sergino {link} Когда уберут снег у школы?")
    assert registered[-1].text == texts.COMMENT_REGISTERED.format(number=1)
    [(number, kind, status, settlement, text)] = await items(deployment)
    assert (kind, status, settlement) == ("comment", "new", "sergino")
    assert text == "Когда уберут снег у школы?"
    assert await deployment.rows("SELECT platform FROM appeals") == [("ok",)]
    card = admin.inbox[-1].text
    assert card.startswith(f"Комментарий под постом №{number}") and link in card

    answered = await admin.say(f"/reply {number} Снег уберём сегодня.")
    assert answered[-1].text.startswith(texts.COMMENT_POST_BY_HAND.split("{")[0].format())
    assert link in answered[-1].text and "Снег уберём сегодня." in answered[-1].text
    assert await deployment.rows("SELECT status FROM appeals") == [("answered",)]
    refused = await admin.say(f"/comment sergino {link} ещё")
    assert refused[-1].text == texts.MODERATOR_ONLY
    bad = await moderator.say("/comment sergino ok.ru/x Текст")
    assert bad[-1].text == texts.COMMENT_BAD_LINK


async def test_an_answer_vk_refuses_is_reported_to_the_moderators(
    deployment: Deployment,
) -> None:
    moderator = TgStaff(deployment, MODERATOR, deployment.district_bot)
    admin = TgStaff(deployment, ADMIN, deployment.sergino_bot)
    await moderator.say("/start")
    await admin.say("/start")
    await comment(deployment, "Почему не убирают мусор?")
    deployment.vk.fail_method("wall.createComment", 212)  # comments closed under the post
    await admin.say("/reply 1 Вывоз мусора — по вторникам.")
    await deployment.settle()
    report = moderator.inbox[-1].text
    assert report.startswith("Не удалось опубликовать ответ под комментарием №1")
    assert "Вывоз мусора — по вторникам." in report


async def test_comments_come_by_the_callback_api_too(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """wall_reply_new and wall_reply_delete posted to the one Callback API path, Сергино's
    secret on them: an item, then closed; the bot's answer is posted by wall.createComment."""
    monkeypatch.chdir(tmp_path)
    callback = {
        "mode": "callback",
        "callback_secret": "district-secret",
        "confirmation_code": "district-code",
    }
    sergino = {"comments": True, "callback_secret": "sergino-secret", "confirmation_code": "c"}
    async with two_by_two(tmp_path, clock, sergino=sergino, vk_keys=callback) as deployment:
        assert deployment.app is not None
        vk = deployment.vk
        url = f"http://127.0.0.1:{deployment.app.web.port}/vk/callback"
        admin = TgStaff(deployment, ADMIN, deployment.sergino_bot)
        await admin.say("/start")
        update = vk.wall_reply_new(RESIDENT, "Когда будет автобус?", group_id=SERGINO, push=False)
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=dict(update, secret="sergino-secret")) as r:
                assert (r.status, await r.text()) == (200, "ok")
            await deployment.settle()
            [(number, kind, status, *_)] = await items(deployment)
            assert (kind, status) == ("comment", "new")
            await admin.say(f"/reply {number} Автобус пойдёт с понедельника.")
            comment_id = update["object"]["id"]
            [answer] = vk.replies_to(comment_id)
            assert answer.from_id == -SERGINO
            gone = vk.wall_reply_delete(comment_id, push=False)
            async with http.post(url, json=dict(gone, secret="sergino-secret")) as r:
                assert r.status == 200
        await deployment.settle()
        [(_, _, status, *_)] = await items(deployment)
        assert status == "closed"  # a deleted comment's item is closed, answered or not
        assert await deployment.rows("SELECT deleted_at IS NOT NULL FROM comments") == [(1,)]
