"""The resident dialogue on PostgreSQL (SPEC §15): representative tests of
those modules, collected here once more with the app's database in a PostgreSQL schema of
their own (skipped, saying why, where APPEALS_TEST_POSTGRES_URL names no reachable server)."""

from __future__ import annotations

import pytest

from bot.config import Config
from tests.conftest import make_config
from tests.test_dialogue import (  # noqa: F401 (collected here again, on PostgreSQL)
    test_forget_erases_name_and_phone,
    test_happy_path_stores_every_field,
    test_my_appeals_pages_through_all_of_them,
    test_resume_after_restart,
)


@pytest.fixture
def config(postgres_url: str) -> Config:
    return make_config(postgres_url)
