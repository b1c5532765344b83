"""The fake VK's comments under posts against VK's own schema (issue 18): the events
wall_reply_new / wall_reply_edit / wall_reply_delete as the fake delivers them, and
wall.createComment as the bot calls it and as the fake answers it, checked against an
excerpt of github.com/VKCOM/vk-api-schema vendored in tests/payloads/vk/wall_schema.json
(its "_source" names the commit). Everything goes over real HTTP; nothing reads the network.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import Clock
from tests.deployments import ADMIN, RESIDENT, SERGINO, SERGINO_TOKEN, TgStaff, two_by_two
from tests.fakes.vk import API_VERSION, ERROR_MESSAGES_WALL, FakeVK

SCHEMA: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parent / "payloads" / "vk" / "wall_schema.json").read_text("utf-8")
)
OBJECTS: dict[str, dict[str, Any]] = SCHEMA["objects"]
CREATE_COMMENT: dict[str, Any] = SCHEMA["methods"]["wall.createComment"]
PARAMETERS: dict[str, dict[str, Any]] = {p["name"]: p for p in CREATE_COMMENT["parameters"]}
RESPONSE = "wall_createComment_response"
OBJECTS[RESPONSE] = CREATE_COMMENT["response"]
EVENT_OBJECTS: dict[str, str] = SCHEMA["callback"]["events"]
# Every VK method call carries these two (the request's, not the method's parameters).
REQUEST_PARAMS = frozenset({"access_token", "v"})
# base_error's "inner_type" is the schema's own discriminator for code generators (see
# prettyCards/objects.json): VK's error answers do not carry it, so it is not required here.
NOT_ON_THE_WIRE = {"base_error": frozenset({"inner_type"})}

GROUP = 777
TOKEN = "vk1.a.schema-test-token"
PERSON = 1001
POST = 42
INTEGER = re.compile(r"-?\d+")


# ----------------------------------------------------------------------------- the checker


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def value_problems(value: Any, spec: dict[str, Any], where: str) -> list[str]:
    """What is wrong with JSON `value` for the (vendored, shallow) property `spec`."""
    kind = spec.get("type")
    checks: dict[str, bool] = {
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }
    if kind is not None and not checks.get(kind, True):
        return [f"{where}: {value!r} is not {kind}"]
    problems = []
    if "enum" in spec and value not in spec["enum"]:
        problems.append(f"{where}: {value!r} not one of {spec['enum']}")
    if "minimum" in spec and isinstance(value, int) and value < spec["minimum"]:
        problems.append(f"{where}: {value} < minimum {spec['minimum']}")
    if kind == "array" and "items" in spec:
        for index, item in enumerate(value):
            problems += value_problems(item, spec["items"], f"{where}[{index}]")
    nested = _ref_name(spec.get("$ref", ""))
    if kind == "object" and nested in OBJECTS:
        problems += object_problems(value, nested, where)
    return problems


def object_problems(obj: Any, name: str, where: str = "") -> list[str]:
    """Required fields missing, fields the schema does not know, and wrong JSON types, for
    `obj` as the schema's object `name`."""
    definition = OBJECTS[name]
    where = where or name
    if not isinstance(obj, dict):
        return [f"{where}: {obj!r} is not an object"]
    properties: dict[str, dict[str, Any]] = definition["properties"]
    skipped = NOT_ON_THE_WIRE.get(name, frozenset())
    problems = [
        f"{where}: required {field!r} missing"
        for field in definition["required"]
        if field not in obj and field not in skipped
    ]
    problems += [f"{where}: {field!r} is not in {name}" for field in obj if field not in properties]
    for field, value in obj.items():
        if field in properties:
            problems += value_problems(value, properties[field], f"{where}.{field}")
    return problems


def event_problems(update: Any) -> list[str]:
    """A callback/long-poll update: callback_base's envelope around the schema's object of
    its type."""
    if not isinstance(update, dict):
        return [f"update {update!r} is not an object"]
    # callback_base names the envelope's fields; "object" is the event's own (its type's).
    envelope = {k: v for k, v in update.items() if k != "object"}
    problems = object_problems(envelope, "callback_base", "update")
    kind = update.get("type")
    if kind not in EVENT_OBJECTS:
        return [*problems, f"update: {kind!r} is not a wall comment event"]
    if "object" not in update:
        return [*problems, "update: no object"]
    return problems + object_problems(update["object"], EVENT_OBJECTS[kind], f"{kind}.object")


def parameter_problems(params: dict[str, str]) -> list[str]:
    """A wall.createComment call as sent (form fields, so every value is text)."""
    problems = [
        f"required parameter {p!r} missing"
        for p, spec in PARAMETERS.items()
        if spec["required"] and not params.get(p)
    ]
    if not params.get("message") and not params.get("attachments"):
        problems.append("neither message nor attachments (one is required)")
    for name, raw in params.items():
        spec = PARAMETERS.get(name)
        if spec is None:
            if name not in REQUEST_PARAMS:
                problems.append(f"{name!r} is not a parameter of wall.createComment")
            continue
        if spec["type"] == "integer":
            if not INTEGER.fullmatch(raw):
                problems.append(f"{name}={raw!r} is not an integer")
            elif "minimum" in spec and int(raw) < spec["minimum"]:
                problems.append(f"{name}={raw} < minimum {spec['minimum']}")
        elif spec["type"] == "array" and any(not item for item in raw.split(",")):
            problems.append(f"{name}={raw!r} is not a comma-separated list")
    return problems


def answer_problems(body: Any) -> list[str]:
    """wall.createComment's answer: {"response": wall_createComment_response}."""
    if not isinstance(body, dict) or set(body) != {"response"}:
        return [f"answer {body!r} is not {{'response': ...}}"]
    return object_problems(body["response"], RESPONSE, "response")


def error_codes() -> dict[int, str]:
    """The errors wall.createComment may answer: its own, and the global ones."""
    codes = {e["code"]: e["description"] for e in CREATE_COMMENT["errors"]}
    codes.update({e["code"]: e["description"] for e in SCHEMA["global_errors"]["errors"].values()})
    return codes


def error_problems(body: Any) -> list[str]:
    """A VK error answer: {"error": base_error} with a code the schema gives this method,
    worded as the schema describes it."""
    if not isinstance(body, dict) or set(body) != {"error"}:
        return [f"answer {body!r} is not {{'error': ...}}"]
    error = body["error"]
    problems = object_problems(error, "base_error", "error")
    known = error_codes()
    code = error.get("error_code") if isinstance(error, dict) else None
    if code not in known:
        problems.append(f"error: code {code!r} is not one wall.createComment may answer")
    elif not str(error.get("error_msg", "")).startswith(known[code]):
        problems.append(f"error: {error.get('error_msg')!r} is not {known[code]!r}")
    return problems


def no_problems(problems: list[str]) -> None:
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------- the wire


async def call(http: aiohttp.ClientSession, fake: FakeVK, method: str, **params: Any) -> Any:
    """A VK API call as VK takes it: POST /method/<name>, form fields (access_token and v
    among them unless given otherwise)."""
    form = {"access_token": TOKEN, "v": API_VERSION, **params}
    form = {k: str(v) for k, v in form.items() if v is not None}
    async with http.post(f"{fake.api_url}{method}", data=form) as response:
        assert response.status == 200
        return await response.json(content_type=None)


async def long_poll(
    http: aiohttp.ClientSession, server: dict[str, Any], count: int
) -> list[dict[str, Any]]:
    """The raw updates of the Bots Long Poll, as vkbottle asks for them (POST, act=a_check),
    until `count` came."""
    updates: list[dict[str, Any]] = []
    ts = server["ts"]
    async with asyncio.timeout(10):
        while len(updates) < count:
            query = {"act": "a_check", "key": server["key"], "ts": ts, "wait": 25}
            async with http.post(server["server"], params=query) as response:
                body = json.loads(await response.text())
            assert "failed" not in body, body
            updates += body["updates"]
            ts = body["ts"]
    return updates


@pytest.fixture
async def fake() -> AsyncIterator[FakeVK]:
    async with FakeVK(GROUP, hold_seconds=0.05) as server:
        yield server
    assert server.errors == []


# ----------------------------------------------------------------------------- the events


async def test_the_wall_events_the_fake_delivers_are_the_schemas(fake: FakeVK) -> None:
    """Every wall event of the long poll: callback_base around a wall_wall_comment (new,
    edit; a reply in a thread; the community's own comment VK echoes back) or a
    callback_wall_comment_delete, every required field there with its JSON type, no other."""
    async with aiohttp.ClientSession() as http:
        got = await call(http, fake, "groups.getLongPollServer", group_id=GROUP)
        server = got["response"]
        first = fake.wall_reply_new(PERSON, "Когда починят фонари?", post_id=POST)
        first_id = first["object"]["id"]
        reply = fake.wall_reply_new(
            PERSON + 1, "Присоединяюсь", post_id=POST, reply_to_comment=first_id
        )
        fake.wall_reply_edit(first_id, "Когда починят фонари на улице Ленина?")
        answer = await call(
            http,
            fake,
            "wall.createComment",
            owner_id=-GROUP,
            post_id=POST,
            from_group=GROUP,
            reply_to_comment=first_id,
            message="Заменим до пятницы.",
            guid="schema-1",
        )
        no_problems(answer_problems(answer))
        fake.wall_reply_delete(reply["object"]["id"])
        updates = await long_poll(http, server, count=5)

    assert [u["type"] for u in updates] == [
        "wall_reply_new",
        "wall_reply_new",
        "wall_reply_edit",
        "wall_reply_new",  # the community's own answer, echoed
        "wall_reply_delete",
    ]
    no_problems([p for update in updates for p in event_problems(update)])
    # The fields the bot reads are there, with the values they stand for.
    threaded = updates[1]["object"]
    assert threaded["reply_to_comment"] == first_id and threaded["parents_stack"] == [first_id]
    assert threaded["reply_to_user"] == PERSON
    echoed = updates[3]["object"]
    assert echoed["from_id"] == -GROUP and echoed["id"] == answer["response"]["comment_id"]
    gone = updates[4]["object"]
    assert gone == {
        "owner_id": -GROUP,
        "id": reply["object"]["id"],
        "user_id": PERSON + 1,
        "post_id": POST,
    }


async def test_the_callback_api_bodies_are_the_schemas(fake: FakeVK) -> None:
    """The bodies a Callback API test posts to the bot (push=False), with VK's secret."""
    first = fake.wall_reply_new(PERSON, "Вопрос", post_id=POST, push=False)
    bodies = [
        first,
        fake.wall_reply_edit(first["object"]["id"], "Вопрос, исправленный", push=False),
        fake.wall_reply_delete(first["object"]["id"], push=False),
    ]
    no_problems([p for body in bodies for p in event_problems(dict(body, secret="s3cret"))])
    assert fake.delivered_events == 0 and all(b["group_id"] == GROUP for b in bodies)


# ----------------------------------------------------------------------------- wall.createComment


@pytest.fixture
async def deployment_calls(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FakeVK, list[dict[str, str]], int]]:
    """The real bot answers a comment under Сергино's post (/reply): the fake, the
    wall.createComment calls the bot made (as the fake recorded them), and the comment's id."""
    monkeypatch.chdir(tmp_path)
    async with two_by_two(tmp_path, clock, sergino={"comments": True}) as deployment:
        vk = deployment.vk
        admin = TgStaff(deployment, ADMIN, deployment.sergino_bot)
        await admin.say("/start")
        before = vk.delivered_events
        update = vk.wall_reply_new(RESIDENT, "Где забрать пропуск?", post_id=POST, group_id=SERGINO)
        await vk.wait_for(lambda: vk.delivered_events > before, what="the comment delivered")
        await deployment.settle()
        await admin.say("/reply 1 Пропуск выдают в администрации, кабинет 3.")
        await deployment.settle()
        calls = [
            {k: v for k, v in c.items() if k != "method"} for c in vk.calls_of("wall.createComment")
        ]
        yield vk, calls, update["object"]["id"]


async def test_the_bot_calls_wall_create_comment_as_the_schema_has_it(
    deployment_calls: tuple[FakeVK, list[dict[str, str]], int],
) -> None:
    """Every parameter the bot sends is one of wall.createComment's, with its type, the
    required ones there; the fake's answer to those very parameters is the schema's
    wall_createComment_response."""
    vk, calls, comment_id = deployment_calls
    assert calls, "the bot did not call wall.createComment"
    no_problems([p for params in calls for p in parameter_problems(params)])
    # What the bot relies on (SPEC §14): as the community, in reply to the comment, with guid.
    sent = calls[0]
    assert sent["owner_id"] == str(-SERGINO) and sent["post_id"] == str(POST)
    assert sent["from_group"] == str(SERGINO) and sent["reply_to_comment"] == str(comment_id)
    assert sent["guid"] and sent["message"]
    assert "group" in CREATE_COMMENT["access_token_type"]  # a community token may call it
    assert sent["access_token"] == SERGINO_TOKEN
    [posted] = vk.replies_to(comment_id)

    async with aiohttp.ClientSession() as http:
        # The bot's very call again (a resend): the same comment, by its guid.
        async with http.post(f"{vk.api_url}wall.createComment", data=sent) as response:
            again = await response.json(content_type=None)
        no_problems(answer_problems(again))
        assert again["response"]["comment_id"] == posted.id
        # Without guid: a new comment, the answer of the same shape.
        fresh = {k: v for k, v in sent.items() if k != "guid"}
        async with http.post(f"{vk.api_url}wall.createComment", data=fresh) as response:
            second = await response.json(content_type=None)
        no_problems(answer_problems(second))
        assert second["response"]["comment_id"] not in (posted.id, comment_id)


# ----------------------------------------------------------------------------- errors


async def test_a_refused_wall_create_comment_is_the_schemas_error(fake: FakeVK) -> None:
    """A call wall.createComment refuses: VK's error object (base_error) with a code the
    schema lists for the method (its own or a global one), worded as the schema has it."""
    first = fake.wall_reply_new(PERSON, "Вопрос", post_id=POST)["object"]["id"]
    good = {
        "owner_id": -GROUP,
        "post_id": POST,
        "from_group": GROUP,
        "reply_to_comment": first,
        "message": "Ответ",
    }
    refused: list[tuple[int, dict[str, Any]]] = []
    async with aiohttp.ClientSession() as http:
        cases: list[tuple[int, dict[str, Any]]] = [
            (100, dict(good, post_id=None)),  # the one required parameter missing
            (100, dict(good, post_id=-1)),  # below its minimum
            (100, dict(good, post_id="x")),  # not an integer
            (100, dict(good, message=None)),  # neither message nor attachments
            (212, dict(good, owner_id=-(GROUP + 1))),  # another wall: comments denied
            (5, dict(good, access_token=None)),  # no token
        ]
        for code, params in cases:
            body = await call(http, fake, "wall.createComment", **params)
            refused.append((code, body))
        fake.fail_method("wall.createComment", 223)  # "Too many replies", as VK may answer
        refused.append((223, await call(http, fake, "wall.createComment", **good)))

    no_problems([p for _, body in refused for p in error_problems(body)])
    assert [body["error"]["error_code"] for _, body in refused] == [c for c, _ in refused]
    # The request comes back in request_params (never the token).
    missing = refused[0][1]["error"]["request_params"]
    assert {"key": "method", "value": "wall.createComment"} in missing
    assert all(p["key"] != "access_token" for p in missing)
    assert [c.id for c in fake.comments] == [first]  # nothing was posted
    # The fake's texts for the method's own errors are the schema's.
    assert {e["code"]: e["description"] for e in CREATE_COMMENT["errors"]} == ERROR_MESSAGES_WALL


def test_the_vendored_excerpt_is_whole() -> None:
    """The excerpt has what the checks above need, and says where it is from."""
    source = SCHEMA["_source"]
    assert source["repository"] == "https://github.com/VKCOM/vk-api-schema"
    assert re.fullmatch(r"[0-9a-f]{40}", source["commit"])
    assert set(EVENT_OBJECTS.values()) <= set(OBJECTS)
    assert [p for p, s in PARAMETERS.items() if s["required"]] == ["post_id"]
    assert OBJECTS["wall_wall_comment"]["required"] == ["id", "from_id", "date", "text"]
    assert OBJECTS["callback_wall_comment_delete"]["required"] == [
        "owner_id",
        "id",
        "user_id",
        "post_id",
    ]
