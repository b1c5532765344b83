"""Staff commands on PostgreSQL (SPEC §15): representative tests of tests/test_staff.py,
collected here once more with the office's database in a PostgreSQL schema of its own
(skipped, saying why, where APPEALS_TEST_POSTGRES_URL names no reachable server)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Clock, Harness, office_config
from tests.test_staff import (  # noqa: F401 (collected here again, on PostgreSQL)
    resident,
    test_answer_from_another_messenger_reaches_only_the_resident,
    test_ask_routes_the_next_message_back,
    test_quote_reply_is_a_reply,
    test_unresolved_reopens_and_tells_staff,
)


@pytest.fixture
async def office(postgres_url: str, clock: Clock) -> AsyncIterator[Harness]:
    harness = Harness(office_config(postgres_url), clock, platforms=("vk", "tg"))
    await harness.start()
    yield harness
    await harness.app.stop()
