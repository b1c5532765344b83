"""Tests of the configuration (SPEC §10) and of the check-config command line (SPEC §11)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config, parse_identity

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"

SETTLEMENT_CODES = [
    "oktyabrskoe",
    "andra",
    "priobye",
    "talinka",
    "kamennoe",
    "karymkary",
    "maly_atlym",
    "peregrebnoe",
    "sergino",
    "unyugan",
    "sherkaly",
    "district",
]
CATEGORY_CODES = [
    "housing",
    "improvement",
    "roads",
    "transport",
    "health",
    "education",
    "social",
    "other",
]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep APPEALS_* variables of the developer's shell out of the tests."""
    for name in list(os.environ):
        if name.upper().startswith("APPEALS_"):
            monkeypatch.delenv(name)


def example_text() -> str:
    return EXAMPLE.read_text(encoding="utf-8")


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} must occur exactly once in the example"
    return text.replace(old, new)


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    line = str(info.value)
    assert "\n" not in line
    return line


# --- the example file ----------------------------------------------------------------------


def test_example_loads_with_all_channels_disabled() -> None:
    config = load_config(EXAMPLE)

    assert [s.code for s in config.settlements] == SETTLEMENT_CODES
    assert [c.code for c in config.categories] == CATEGORY_CODES
    assert not config.vk.enabled
    assert not config.telegram.enabled
    assert not config.ok.enabled


def test_example_has_russian_titles_and_organisations() -> None:
    config = load_config(EXAMPLE)

    andra = config.find_settlement("andra")
    assert andra is not None
    assert andra.title == "Андра"
    assert andra.organisation == "Администрация городского поселения Андра"
    maly_atlym = config.find_settlement("maly_atlym")
    assert maly_atlym is not None
    assert maly_atlym.organisation == "Администрация сельского поселения Малый Атлым"
    district = config.find_settlement("district")
    assert district is not None
    assert district.organisation == "Администрация Октябрьского района"
    housing = config.find_category("housing")
    assert housing is not None
    assert housing.title == "ЖКХ"
    assert config.find_settlement("nowhere") is None
    assert all(s.admins == [] for s in config.settlements)
    assert config.moderators.ids == []


def test_defaults_apply_to_keys_left_out(tmp_path: Path) -> None:
    minimal = """
[bot]
name = "Администрация"
privacy_policy_url = "https://example.org/privacy"
privacy_policy_version = "1"

[[categories]]
code = "other"
title = "Другое"

[[settlements]]
code = "district"
title = "Район"
organisation = "Администрация района"
"""
    config = load_config(write_config(tmp_path, minimal))

    assert config.bot.timezone == "Asia/Yekaterinburg"
    assert str(config.bot.zone) == "Asia/Yekaterinburg"
    assert config.bot.formal_appeal_url == "https://pos.gosuslugi.ru/landing/"
    assert config.storage.url == "sqlite:///appeals.db"
    assert config.storage.sqlite_path == Path("appeals.db")
    assert not config.storage.sqlite_path.is_absolute()
    assert (config.web.host, config.web.port) == ("127.0.0.1", 8080)
    assert (config.sla.answer_within_hours, config.sla.remind_before_hours) == (24, 4)
    assert config.limits.min_description == 10
    assert config.limits.max_description == 4000
    assert config.limits.max_photos == 5
    assert config.limits.draft_ttl_days == 7
    assert config.limits.messages_per_minute == 20
    assert config.delivery.max_attempts == 10
    assert config.delivery.max_backoff_seconds == 60
    assert config.vk.api_url == "https://api.vk.com/method/"
    assert config.vk.mode == "longpoll"
    assert config.vk.callback_path == "/vk/callback"
    assert config.vk.send_rate == 20
    assert config.vk.token.get_secret_value() == ""
    assert config.telegram.api_url == "https://api.telegram.org"
    assert config.telegram.mode == "polling"
    assert config.telegram.webhook_path == "/tg/webhook"
    assert (config.telegram.send_rate, config.telegram.per_chat_rate) == (30, 1)
    assert config.ok.api_url == "https://api.ok.ru"
    assert config.ok.webhook_path == "/ok/webhook"
    assert config.ok.send_rate == 20
    assert config.moderators.ids == []


def test_absolute_sqlite_path(tmp_path: Path) -> None:
    text = replace_once(
        example_text(), 'url = "sqlite:///appeals.db"', 'url = "sqlite:////var/lib/appeals.db"'
    )
    config = load_config(write_config(tmp_path, text))

    assert config.storage.sqlite_path == Path("/var/lib/appeals.db")


def test_identities_stay_plain_strings(tmp_path: Path) -> None:
    text = replace_once(example_text(), "ids = []", 'ids = ["vk:1", "tg:100200", "console:me"]')
    config = load_config(write_config(tmp_path, text))

    assert config.moderators.ids == ["vk:1", "tg:100200", "console:me"]
    assert all(type(identity) is str for identity in config.moderators.ids)
    assert parse_identity("tg:100200") == ("tg", "100200")
    assert parse_identity("console:admin-sergino") == ("console", "admin-sergino")
    assert parse_identity("ok:575662066926") == ("ok", "575662066926")


@pytest.mark.parametrize(
    ("identity", "problem"),
    [
        ("xx:5", "unknown platform 'xx' in identity 'xx:5' (expected vk, tg, ok, console, max)"),
        ("vk", "identity 'vk' must look like platform:user_id"),
        ("vk:", "bad user id '' in identity 'vk:'"),
        ("vk:a b", "bad user id 'a b' in identity 'vk:a b'"),
        ("vk:" + "1" * 65, "bad user id"),
        # a messenger's user id is a positive whole number (issue 14)
        ("vk:abc", "bad user id 'abc' in identity 'vk:abc' (a vk user id is a positive whole"),
        ("vk:-5", "bad user id '-5' in identity 'vk:-5'"),
        ("tg:0", "bad user id '0' in identity 'tg:0'"),
        ("tg:-100200", "bad user id '-100200'"),  # a group chat, not a person
        ("vk:05", "bad user id '05'"),
        ("ok:1e5", "bad user id '1e5'"),
        ("max:+7", "bad user id '+7'"),
        ("vk:\u0661\u0662", "bad user id"),  # digits, but not ASCII ones
        ("vk:1 ", "bad user id"),
        ("vk:" + "9" * 20, "bad user id"),
        ("console:a b", "bad user id 'a b' in identity 'console:a b'"),
    ],
)
def test_parse_identity_rejects(identity: str, problem: str) -> None:
    with pytest.raises(ValueError, match="identity") as info:
        parse_identity(identity)
    assert problem in str(info.value)


def test_load_config_can_be_called_with_different_paths(tmp_path: Path) -> None:
    other = write_config(tmp_path, replace_once(example_text(), "port = 8080", "port = 9000"))

    assert load_config(EXAMPLE).web.port == 8080
    assert load_config(other).web.port == 9000
    assert load_config(str(EXAMPLE)).web.port == 8080


# --- environment overrides -----------------------------------------------------------------


def test_env_overrides_one_key_and_keeps_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPEALS_LIMITS__MAX_PHOTOS", "3")

    config = load_config(EXAMPLE)

    assert config.limits.max_photos == 3
    assert config.limits.max_description == 4000
    assert config.limits.min_description == 10
    assert config.limits.messages_per_minute == 20


def test_env_token_is_set_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "vk1.a.very-secret-token-value"
    monkeypatch.setenv("APPEALS_VK__TOKEN", secret)

    config = load_config(EXAMPLE)

    assert config.vk.token.get_secret_value() == secret
    assert config.vk.mode == "longpoll"  # other [vk] keys come from the file
    assert secret not in repr(config)
    assert secret not in str(config)
    assert secret not in repr(config.vk)


def test_env_wins_over_the_file_and_enables_a_channel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = replace_once(example_text(), 'name = "Администрация Октябрьского района"', 'name = "A"')
    monkeypatch.setenv("APPEALS_BOT__NAME", "B")
    monkeypatch.setenv("APPEALS_TELEGRAM__ENABLED", "true")
    monkeypatch.setenv("APPEALS_TELEGRAM__TOKEN", "123:abc")
    monkeypatch.setenv("APPEALS_MODERATORS__IDS", '["tg:42"]')

    config = load_config(write_config(tmp_path, text))

    assert config.bot.name == "B"
    assert config.telegram.enabled
    assert config.moderators.ids == ["tg:42"]


def test_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPEALS_LIMITS__MAX_PHOTOS", "many")

    line = config_error(EXAMPLE)

    assert line.startswith(f"{EXAMPLE}: limits.max_photos: Input should be a valid integer")
    assert "APPEALS_LIMITS__MAX_PHOTOS" in line


def test_undecodable_env_list_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPEALS_MODERATORS__IDS", "vk:1")

    line = config_error(EXAMPLE)

    assert "moderators" in line
    assert "APPEALS_MODERATORS__IDS" in line


def test_secret_is_not_echoed_in_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPEALS_TELEGRAM__WEBHOOK_SECRET", "bad secret!")

    line = config_error(EXAMPLE)

    assert line.startswith(f"{EXAMPLE}: telegram.webhook_secret: ")
    assert "bad secret!" not in line


# --- wrong files: one line naming the key --------------------------------------------------


def test_missing_required_key(tmp_path: Path) -> None:
    text = replace_once(example_text(), 'name = "Администрация Октябрьского района"\n', "")
    path = write_config(tmp_path, text)

    assert config_error(path) == f"{path}: bot.name: required key is missing"


def test_missing_bot_section(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'title = "x"\n')

    line = config_error(path)

    assert line.startswith(f"{path}: bot: required section [bot] is missing")
    assert "more problem" in line  # also: no categories, no settlements, unknown key


def test_wrong_type(tmp_path: Path) -> None:
    text = replace_once(example_text(), "max_photos = 5", 'max_photos = "five"')
    path = write_config(tmp_path, text)

    assert config_error(path) == (
        f"{path}: limits.max_photos: Input should be a valid integer "
        "(got the string 'five'; write a whole number, without quotes)"
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "port = 8080",
            'port = "8080"',
            "web.port: Input should be a valid integer (got the string '8080'; "
            "write a whole number, without quotes)",
        ),
        (
            "max_photos = 5",
            'max_photos = "5"',
            "limits.max_photos: Input should be a valid integer (got the string '5'",
        ),
        (
            "enabled = false\n# Community access token",
            'enabled = "yes"\n# Community access token',
            "vk.enabled: Input should be a valid boolean (got the string 'yes'; "
            "write true or false, without quotes)",
        ),
        (
            "enabled = false\n# Community access token",
            "enabled = 0\n# Community access token",
            "vk.enabled: Input should be a valid boolean",
        ),
        ("port = 8080", "port = 8080.0", "web.port: Input should be a valid integer"),
        ("port = 8080", "port = true", "web.port: Input should be a valid integer"),
        (
            "max_backoff_seconds = 60",
            'max_backoff_seconds = "60"',
            "delivery.max_backoff_seconds: Input should be a valid number (got the string '60'",
        ),
        ('name = "Администрация Октябрьского района"', "name = 5", "bot.name: Input should be"),
    ],
)
def test_toml_values_are_not_converted(tmp_path: Path, old: str, new: str, expected: str) -> None:
    """Strict types (issue 14): a value of the wrong TOML type is refused, not converted."""
    path = write_config(tmp_path, replace_once(example_text(), old, new))

    assert config_error(path).startswith(f"{path}: {expected}")


def test_environment_values_are_still_converted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment has only strings: strict types must not refuse them."""
    monkeypatch.setenv("APPEALS_WEB__PORT", "8081")
    monkeypatch.setenv("APPEALS_VK__ENABLED", "false")
    monkeypatch.setenv("APPEALS_DELIVERY__MAX_BACKOFF_SECONDS", "0.5")
    monkeypatch.setenv("APPEALS_TELEGRAM__SEND_RATE", "7")

    config = load_config(EXAMPLE)

    assert config.web.port == 8081
    assert config.vk.enabled is False
    assert config.delivery.max_backoff_seconds == 0.5
    assert config.telegram.send_rate == 7.0


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'title = "Андра"',
            'title = "Сергино"',
            "settlements[8].title: title 'Сергино' is already used by settlements[1]",
        ),
        (
            'title = "Андра"',
            'title = " сЕргино "',
            "settlements[8].title: title 'Сергино' is already used by settlements[1]",
        ),
        (
            'title = "Дороги"',
            'title = "ЖКХ"',
            "categories[2].title: title 'ЖКХ' is already used by categories[0]",
        ),
    ],
)
def test_duplicate_titles(tmp_path: Path, old: str, new: str, expected: str) -> None:
    """A resident picks by typing the title: two alike (case and spacing aside) would
    always give the first."""
    path = write_config(tmp_path, replace_once(example_text(), old, new))

    assert config_error(path) == f"{path}: {expected} " + (
        "(residents pick by typing the title, so titles must differ)"
    )


def test_titles_that_differ_only_by_yo_are_duplicates(tmp_path: Path) -> None:
    text = replace_once(example_text(), 'title = "Андра"', 'title = "Ёлкино"')
    text = replace_once(text, 'title = "Приобье"', 'title = "Елкино"')
    path = write_config(tmp_path, text)

    assert config_error(path).startswith(f"{path}: settlements[2].title: title 'Елкино'")


def test_value_out_of_range(tmp_path: Path) -> None:
    text = replace_once(example_text(), "port = 8080", "port = 70000")
    path = write_config(tmp_path, text)

    assert config_error(path).startswith(f"{path}: web.port: Input should be less than or equal")


def test_unknown_platform_in_identity(tmp_path: Path) -> None:
    text = replace_once(example_text(), "ids = []", 'ids = ["xx:5"]')
    path = write_config(tmp_path, text)

    assert config_error(path) == (
        f"{path}: moderators.ids[0]: "
        "unknown platform 'xx' in identity 'xx:5' (expected vk, tg, ok, console, max)"
    )


def test_bad_identity_of_a_settlement_admin(tmp_path: Path) -> None:
    text = example_text().replace("admins = []", 'admins = ["vk:1", "telegram:2"]', 2)
    path = write_config(tmp_path, text)

    line = config_error(path)

    assert line.startswith(f"{path}: settlements[0].admins[1]: unknown platform 'telegram'")
    assert line.endswith("(and 1 more problem)")


def test_duplicate_settlement_code(tmp_path: Path) -> None:
    text = replace_once(example_text(), 'code = "talinka"', 'code = "andra"')
    path = write_config(tmp_path, text)

    assert config_error(path) == f"{path}: settlements[3].code: duplicate settlement code 'andra'"


def test_duplicate_category_code(tmp_path: Path) -> None:
    text = replace_once(example_text(), 'code = "other"', 'code = "housing"')
    path = write_config(tmp_path, text)

    assert config_error(path) == f"{path}: categories[7].code: duplicate category code 'housing'"


def test_bad_code(tmp_path: Path) -> None:
    text = replace_once(example_text(), 'code = "roads"', 'code = "Roads"')
    path = write_config(tmp_path, text)

    assert config_error(path).startswith(f"{path}: categories[2].code: code 'Roads' must be")


def test_no_settlements(tmp_path: Path) -> None:
    text = example_text().split("[[settlements]]")[0]
    path = write_config(tmp_path, text)

    assert config_error(path) == (
        f"{path}: settlements: at least one [[settlements]] entry is required"
    )


def test_unreadable_toml(tmp_path: Path) -> None:
    text = replace_once(example_text(), "max_photos = 5", "max_photos = ")
    path = write_config(tmp_path, text)

    line = config_error(path)

    assert line.startswith(f"{path}: not valid TOML: ")
    assert "line" in line


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(example_text().encode("cp1251"))

    assert config_error(path).startswith(f"{path}: not valid UTF-8 text")


def test_unknown_key(tmp_path: Path) -> None:
    text = replace_once(example_text(), "max_photos = 5", "max_foto = 5")
    path = write_config(tmp_path, text)

    assert config_error(path) == f"{path}: unknown key 'limits.max_foto'"


def test_unknown_section(tmp_path: Path) -> None:
    path = write_config(tmp_path, example_text() + "\n[vkontakte]\nenabled = true\n")

    assert config_error(path) == f"{path}: unknown key 'vkontakte'"


def test_enabled_channel_without_token(tmp_path: Path) -> None:
    text = replace_once(
        example_text(), "enabled = false\n# Community access token", "enabled = true\n#"
    )
    text = replace_once(text, "group_id = 0", "group_id = 123")
    path = write_config(tmp_path, text)

    assert config_error(path) == f"{path}: vk.token: required when vk.enabled = true"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"APPEALS_VK__ENABLED": "true", "APPEALS_VK__TOKEN": "t"},
            "vk.group_id: the community id is required when vk.enabled = true",
        ),
        (
            {
                "APPEALS_VK__ENABLED": "true",
                "APPEALS_VK__TOKEN": "t",
                "APPEALS_VK__GROUP_ID": "1",
                "APPEALS_VK__MODE": "callback",
            },
            'vk.callback_secret: required when vk.mode = "callback"',
        ),
        (
            {"APPEALS_TELEGRAM__ENABLED": "true"},
            "telegram.token: required when telegram.enabled = true",
        ),
        (
            {
                "APPEALS_TELEGRAM__ENABLED": "true",
                "APPEALS_TELEGRAM__TOKEN": "t",
                "APPEALS_TELEGRAM__MODE": "webhook",
            },
            'telegram.webhook_url: required when telegram.mode = "webhook"',
        ),
        (
            {"APPEALS_OK__ENABLED": "true", "APPEALS_OK__TOKEN": "t"},
            "ok.webhook_url: required when ok.enabled = true",
        ),
        (
            {"APPEALS_OK__WEBHOOK_PATH": "ok/webhook"},
            "ok.webhook_path: 'ok/webhook' must start with '/'",
        ),
        (
            {"APPEALS_STORAGE__URL": "mysql://u:p@db/appeals"},
            "storage.url: expected sqlite:///PATH or postgresql://user:pass@host:5432/db",
        ),
        (
            {"APPEALS_BOT__TIMEZONE": "Asia/Nowhere"},
            "bot.timezone: unknown time zone 'Asia/Nowhere'",
        ),
        (
            {"APPEALS_SLA__REMIND_BEFORE_HOURS": "24"},
            "sla.remind_before_hours: must be less than sla.answer_within_hours (24)",
        ),
        (
            {"APPEALS_LIMITS__MAX_DESCRIPTION": "5"},
            "limits.max_description: must be at least limits.min_description (10)",
        ),
        (
            {"APPEALS_LIMITS__MAX_PHOTOS": "11"},
            "limits.max_photos: Input should be less than or equal to 10",
        ),
    ],
)
def test_cross_field_checks_name_the_key(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    line = config_error(EXAMPLE)

    assert line.startswith(f"{EXAMPLE}: {expected}")
    assert "p@db" not in line


def test_cross_checks_are_listed_beside_type_errors(tmp_path: Path) -> None:
    """check-config lists every problem at once: a duplicate title is found even when
    another section has a wrong value."""
    text = replace_once(example_text(), "port = 8080", 'port = "8080"')
    text = replace_once(text, 'title = "Андра"', 'title = "Сергино"')
    text = replace_once(text, 'code = "other"', 'code = "housing"')
    path = write_config(tmp_path, text)

    with pytest.raises(ConfigError) as info:
        load_config(path)

    assert [problem.split(":")[0] for problem in info.value.problems] == [
        "web.port",
        "categories[7].code",
        "settlements[8].title",
    ]


def test_several_problems_are_counted(tmp_path: Path) -> None:
    text = replace_once(example_text(), "max_photos = 5", 'max_photos = "five"')
    text = replace_once(text, "port = 8080", 'port = "http"')
    text = replace_once(text, "ids = []", 'ids = ["xx:5"]')
    path = write_config(tmp_path, text)

    with pytest.raises(ConfigError) as info:
        load_config(path)

    assert str(info.value).startswith(f"{path}: web.port: ")
    assert str(info.value).endswith(" (and 2 more problems)")
    assert len(info.value.problems) == 3
    assert info.value.path == str(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    assert config_error(path) == f"{path}: file not found"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    assert config_error(tmp_path) == f"{tmp_path}: is a directory, not a file"


# --- the command line: appeals-bot check-config --------------------------------------------


def run_check_config(path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("APPEALS_")}
    return subprocess.run(
        [sys.executable, "-m", "bot", "check-config", "--config", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_check_config_accepts_the_example() -> None:
    result = run_check_config(EXAMPLE)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_cli_check_config_rejects_a_bad_file_with_one_line(tmp_path: Path) -> None:
    text = replace_once(example_text(), "max_photos = 5", 'max_photos = "five"')
    path = write_config(tmp_path, text)

    result = run_check_config(path)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "limits.max_photos" in lines[0]


def test_cli_check_config_rejects_a_missing_file(tmp_path: Path) -> None:
    result = run_check_config(tmp_path / "absent.toml")

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "file not found" in lines[0]


def test_cli_check_config_lists_every_problem(tmp_path: Path) -> None:
    text = replace_once(example_text(), "max_photos = 5", 'max_photos = "5"')
    text = replace_once(text, "port = 8080", 'port = "8080"')
    text = replace_once(text, "ids = []", 'ids = ["vk:abc", "vk:-5", "tg:0"]')
    text = replace_once(text, 'title = "Андра"', 'title = "Сергино"')
    path = write_config(tmp_path, text)

    result = run_check_config(path)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "more problem" not in result.stderr
    keys = [line.split(": ")[2] for line in result.stderr.splitlines()]
    assert all(line.startswith(f"error: {path}: ") for line in result.stderr.splitlines())
    assert keys == [
        "web.port",
        "limits.max_photos",
        "moderators.ids[0]",
        "moderators.ids[1]",
        "moderators.ids[2]",
        "settlements[8].title",
    ]
