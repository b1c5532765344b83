"""VK's wire format without network: updates normalized, keyboards rendered (SPEC §3)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.channels.vk import random_id
from bot.channels.vk_format import NotForUs, keyboard_json, parse_update, payload_json
from handlers.messages import Button, Keyboard


def message_new(**fields: Any) -> dict[str, Any]:
    message = {
        "id": 501,
        "date": 1735689600,
        "peer_id": 42,
        "from_id": 42,
        "out": 0,
        "text": "",
        "conversation_message_id": 17,
        "version": 1,
        "fwd_messages": [],
        "important": False,
        "is_hidden": False,
        "attachments": [],
    }
    message.update(fields)
    return {
        "type": "message_new",
        "group_id": 777,
        "event_id": "e1",
        "v": "5.199",
        "object": {"message": message, "client_info": {"keyboard": True}},
    }


def test_text_and_identity() -> None:
    parsed = parse_update(message_new(text="Яма на дороге"))
    incoming = parsed.incoming
    assert (incoming.platform, incoming.chat_id, incoming.user_id) == ("vk", "42", "42")
    assert incoming.text == "Яма на дороге"
    assert incoming.event_id == "e1"
    assert incoming.received_at.timestamp() == 1735689600


def test_button_payload_and_the_start_button() -> None:
    pressed = parse_update(message_new(text="Дороги", payload=payload_json("cat:roads")))
    assert pressed.incoming.payload == "cat:roads"
    assert pressed.incoming.text == ""
    start = parse_update(message_new(text="Начать", payload='{"command":"start"}'))
    assert (start.incoming.payload, start.incoming.text) == (None, "Начать")
    forged = parse_update(message_new(payload='{"p": 5}'))
    assert forged.incoming.payload == '{"p": 5}'  # passed on, answered as a stale button
    garbage = parse_update(message_new(payload="not json"))
    assert garbage.incoming.payload == "not json"


def test_photo_takes_the_largest_size() -> None:
    photo = {
        "id": 7,
        "owner_id": 42,
        "access_key": "k",
        "sizes": [
            {"type": "x", "url": "http://x/big.jpg", "width": 604, "height": 453},
            {"type": "m", "url": "http://x/small.jpg", "width": 130, "height": 97},
        ],
    }
    parsed = parse_update(message_new(attachments=[{"type": "photo", "photo": photo}]))
    [result] = parsed.incoming.photos
    assert (result.ref, result.url) == ("photo42_7_k", "http://x/big.jpg")
    assert not parsed.incoming.unsupported


def test_location_and_quote() -> None:
    geo = {"type": "point", "coordinates": {"latitude": 62.45, "longitude": 65.07}}
    reply = {
        "id": 900,
        "from_id": -777,
        "peer_id": 42,
        "text": "Новое обращение №1",
        "date": 1,
        "conversation_message_id": 3,
    }
    parsed = parse_update(message_new(text="Готово", geo=geo, reply_message=reply))
    assert parsed.incoming.location is not None
    assert (parsed.incoming.location.latitude, parsed.incoming.location.longitude) == (62.45, 65.07)
    assert parsed.incoming.reply_to == "900"


def test_sticker_is_unsupported() -> None:
    sticker = {"type": "sticker", "sticker": {"sticker_id": 1}}
    assert parse_update(message_new(attachments=[sticker])).incoming.unsupported
    with_text = parse_update(message_new(text="смотрите", attachments=[sticker]))
    assert not with_text.incoming.unsupported


def test_message_event() -> None:
    update = {
        "type": "message_event",
        "group_id": 777,
        "event_id": "e2",
        "object": {
            "user_id": 42,
            "peer_id": 42,
            "event_id": "cb1",
            "payload": {"p": "rate:5:yes"},
            "conversation_message_id": 18,
        },
    }
    parsed = parse_update(update)
    assert parsed.incoming.payload == "rate:5:yes"
    assert parsed.callback_event_id == "cb1"
    assert parsed.incoming.event_id == "e2"


@pytest.mark.parametrize(
    "update",
    [
        {"type": "message_typing_state", "object": {}},
        message_new(out=1),
        message_new(peer_id=2_000_000_001),
        message_new(from_id=-777),
    ],
    ids=["unknown type", "own message", "group chat", "community"],
)
def test_updates_not_for_us(update: dict[str, Any]) -> None:
    with pytest.raises(NotForUs):
        parse_update(update)


def test_keyboard_json() -> None:
    keyboard = Keyboard(rows=((Button("Дороги", "cat:roads"),), (Button("Отмена", "nav:cancel"),)))
    data = json.loads(keyboard_json(keyboard))
    assert data["inline"] is False
    first = data["buttons"][0][0]
    assert first["action"] == {"type": "text", "label": "Дороги", "payload": '{"p":"cat:roads"}'}
    assert data["buttons"][1][0]["color"] == "secondary"
    inline = json.loads(keyboard_json(Keyboard(rows=keyboard.rows, inline=True)))
    assert inline["inline"] is True
    assert inline["buttons"][0][0]["action"]["type"] == "callback"


def test_random_id_is_stable_and_distinct() -> None:
    assert random_id(None, 0) == 0
    assert random_id(5, 0) == random_id(5, 0) != random_id(5, 1)
    assert len({random_id(row, chunk) for row in range(1, 50) for chunk in range(3)}) == 147


@pytest.mark.parametrize(
    "deleted",
    [
        {"owner_id": -77, "id": 15, "user_id": 501, "post_id": 9},  # the official schema
        {"owner_id": -77, "id": 15, "deleter_id": 501, "post_id": 9},  # VK's documentation
        {"owner_id": -77, "id": 15, "deleter_id": -77, "post_id": 9},  # by the community
    ],
)
def test_a_deleted_comment_is_read_whoever_deleted_it(deleted: dict[str, Any]) -> None:
    parsed = parse_update(
        {"type": "wall_reply_delete", "object": deleted, "group_id": 77, "event_id": "e1"}
    )
    assert parsed.incoming.comment is not None
    assert parsed.incoming.comment.action == "delete"
    assert parsed.incoming.comment.comment_id == "15"
