"""The deployment files (SPEC §17, issue 20): Dockerfile, .dockerignore, compose.yaml, the
systemd units and the container's health check.

Each file is parsed, not grepped: the command a container or a unit runs must be this
project's console script with arguments that bot.cli's own argparse parser accepts, so a
renamed option fails here and not on a server. No Docker engine is needed.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import importlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pytest
from pydantic import BaseModel

import bot.cli
from bot.config import Config, load_config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CONFIG_PATH = "/etc/appeals-bot/config.toml"
STATE_DIR = "/var/lib/appeals-bot"
APP_GRACE_SECONDS = 10  # `run` sends what it can for 10 s after SIGTERM (README)


# --- the real command line ---------------------------------------------------------------


def console_scripts() -> dict[str, str]:
    with (ROOT / "pyproject.toml").open("rb") as stream:
        scripts: dict[str, str] = tomllib.load(stream)["project"]["scripts"]
    return scripts


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = bot.cli._parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("bot.cli's parser has no subcommands")


def parse_cli(argv: list[str]) -> argparse.Namespace:
    """`argv` (program first) as `appeals-bot` would take it: the program must be this
    project's console script for bot.cli:main, the rest must satisfy bot.cli's parser."""
    program = PurePosixPath(argv[0]).name
    scripts = console_scripts()
    assert program in scripts, f"{argv[0]!r} is not a console script of pyproject.toml"
    module, _, function = scripts[program].partition(":")
    assert getattr(importlib.import_module(module), function) is bot.cli.main
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            args = bot.cli._parser().parse_args(argv[1:])
    except SystemExit:
        raise AssertionError(f"appeals-bot rejects {argv[1:]}: {errors.getvalue()}") from None
    # argparse also takes an unambiguous abbreviation (--conf); a deployment file spells
    # every option out, so that a new option beside it never makes it ambiguous.
    known = {o for action in subcommands()[args.command]._actions for o in action.option_strings}
    for word in argv[2:]:
        if word.startswith("--"):
            assert word.split("=", 1)[0] in known, f"appeals-bot rejects {word}: not spelt out"
    return args


def assert_runs_the_bot(argv: list[str]) -> None:
    args = parse_cli(argv)
    assert args.command == "run"
    assert str(args.config) == CONFIG_PATH
    assert not args.console


def test_parse_cli_tells_a_real_command_from_a_wrong_one() -> None:
    assert_runs_the_bot(["/opt/x/bin/appeals-bot", "run", "--config", CONFIG_PATH])
    for wrong in (
        ["appeals-bot", "start", "--config", CONFIG_PATH],
        ["appeals-bot", "run", "--conf", CONFIG_PATH],
        ["appeals-bot", "run", "--config"],
    ):
        with pytest.raises(AssertionError, match="rejects"):
            parse_cli(wrong)
    with pytest.raises(AssertionError, match="not a console script"):
        parse_cli(["appeals_bot", "run", "--config", CONFIG_PATH])


def assert_config_key(variable: str) -> None:
    """`APPEALS_SECTION__KEY` names a real key of the configuration."""
    assert variable.startswith("APPEALS_"), variable
    model: type[BaseModel] | None = Config
    for part in variable.removeprefix("APPEALS_").lower().split("__"):
        assert model is not None, f"{variable}: {part!r} is below a plain value"
        assert part in model.model_fields, f"{variable}: no key {part!r}"
        annotation = model.model_fields[part].annotation
        is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        model = annotation if is_model else None
    assert model is None, f"{variable} names a whole section, not a key"


# --- Dockerfile --------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    rest: str
    stage: int


def dockerfile() -> list[Instruction]:
    """The instructions, continuation lines joined and comments dropped, each with the index
    of its build stage (-1 before the first FROM)."""
    logical: list[str] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text("utf-8").splitlines():
        if line.lstrip().startswith("#"):
            continue  # a comment (also between continuation lines) or a parser directive
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        pending += line
        if pending.strip():
            logical.append(pending.strip())
        pending = ""
    assert not pending.strip(), "the Dockerfile ends in a continuation line"
    instructions: list[Instruction] = []
    stage = -1
    for text in logical:
        keyword, _, rest = text.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword.upper(), rest.strip(), stage))
    return instructions


def exec_form(text: str) -> list[str]:
    """The JSON array of an exec-form instruction (a shell-form string fails here)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise AssertionError(f"not exec form (a JSON array): {text}") from None
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), text
    return value


def final_stage() -> list[Instruction]:
    instructions = dockerfile()
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def only(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in instructions if i.keyword == keyword]
    assert found, f"no {keyword} in the final stage"
    return found[-1]  # the one in force


def test_dockerfile_runs_the_real_cli_in_exec_form() -> None:
    stage = final_stage()
    entrypoint = exec_form(only(stage, "ENTRYPOINT").rest)
    command = exec_form(only(stage, "CMD").rest)
    assert_runs_the_bot(entrypoint + command)
    # The entrypoint alone is the program, so `docker run IMAGE check-config …` and
    # `docker exec … appeals-bot backup …` reach the same CLI.
    assert entrypoint == ["appeals-bot"]
    assert only(stage, "STOPSIGNAL").rest == "SIGTERM"


def test_dockerfile_is_two_stages_slim_and_without_build_tools() -> None:
    instructions = dockerfile()
    args = dict(i.rest.split("=", 1) for i in instructions if i.keyword == "ARG" and i.stage == -1)
    froms = [i.rest for i in instructions if i.keyword == "FROM"]
    assert len(froms) == 2
    base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], froms[-1].split()[0])
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", base), base
    builder = [i for i in instructions if i.stage == 0]
    assert froms[0].split()[-1] == "builder"
    assert any("pip wheel" in i.rest for i in builder if i.keyword == "RUN")

    final = final_stage()
    runs = " ".join(i.rest for i in final if i.keyword == "RUN")
    for tool in ("apt-get", "apk ", "gcc", "build-essential", "make ", "git "):
        assert tool not in runs, f"{tool.strip()} in the final stage"
    install = next(i.rest for i in final if i.keyword == "RUN" and "pip install" in i.rest)
    assert "--no-index" in install and "from=builder" in install  # the builder's wheels only


def test_dockerfile_user_volume_and_workdir() -> None:
    stage = final_stage()
    user = only(stage, "USER").rest
    uid = user.split(":")[0]
    assert uid not in ("root", "0"), user
    assert uid.isdigit(), "a numeric uid, so runAsNonRoot can check it"
    assert any(f"--uid {uid}" in i.rest for i in stage if i.keyword == "RUN")
    assert exec_form(only(stage, "VOLUME").rest) == [STATE_DIR]
    # The working directory is the volume: `sqlite:///appeals.db` (the example's relative
    # path) lands on it.
    assert only(stage, "WORKDIR").rest == STATE_DIR
    example = load_config(ROOT / "config.example.toml")
    assert not example.storage.sqlite_path.is_absolute()
    for env in (i for i in stage if i.keyword == "ENV"):
        for name in re.findall(r"\b(APPEALS_\w+)=", env.rest):
            assert_config_key(name)


def healthcheck_command() -> list[str]:
    rest = only(final_stage(), "HEALTHCHECK").rest
    options, marker, command = rest.partition("CMD ")
    assert marker, f"HEALTHCHECK without CMD: {rest}"
    assert all(o.startswith("--") for o in options.split())
    return exec_form(command)


def test_dockerfile_healthcheck_runs_the_deploy_script_on_the_mounted_config() -> None:
    command = healthcheck_command()
    assert command[0] == "python"
    script = command[1]
    copies = [i.rest.split() for i in final_stage() if i.keyword == "COPY"]
    assert ["deploy/healthcheck.py", script] in copies
    assert command[2:] == [CONFIG_PATH]


class _Healthz(http.server.BaseHTTPRequestHandler):
    status = 200
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        body = json.dumps({"status": "ok" if self.status == 200 else "vk: no long poll"})
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def healthz_server() -> Iterator[tuple[int, type[_Healthz]]]:
    handler = type("Handler", (_Healthz,), {"paths": [], "status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def run_healthcheck(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("APPEALS_")}
    return subprocess.run(
        [sys.executable, str(DEPLOY / "healthcheck.py"), str(config)],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_healthcheck_asks_healthz_on_the_bots_port(
    tmp_path: Path, healthz_server: tuple[int, type[_Healthz]]
) -> None:
    port, handler = healthz_server
    config = tmp_path / "config.toml"
    config.write_text(f"[web]\nhost = '0.0.0.0'\nport = {port}\n")

    healthy = run_healthcheck(config)  # the port from the file
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert healthy.stdout.startswith("healthy: 200")

    handler.status = 503
    unhealthy = run_healthcheck(tmp_path / "missing.toml", APPEALS_WEB__PORT=str(port))
    assert unhealthy.returncode == 1
    assert "503" in unhealthy.stdout and "vk: no long poll" in unhealthy.stdout
    assert handler.paths == ["/healthz", "/healthz"]

    config.write_text(f"[web]\nport = {port}\n")
    # The environment wins over the file, as in the bot: here it names a closed port.
    closed = run_healthcheck(config, APPEALS_WEB__PORT="1")
    assert closed.returncode == 1 and closed.stdout.startswith("unhealthy:")
    assert len(handler.paths) == 2


# --- .dockerignore -----------------------------------------------------------------------


def _pattern(text: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(text):
        if text.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif text.startswith("**", i):
            out, i = out + ".*", i + 2
        elif text[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif text[i] == "?":
            out, i = out + "[^/]", i + 1
        elif text[i] == "[":
            end = text.index("]", i)
            out, i = out + text[i : end + 1], end + 1
        else:
            out, i = out + re.escape(text[i]), i + 1
    return re.compile(out)


def dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        path = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
        rules.append((include, _pattern(path)))
    return rules


def in_context(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parent
    directories decides; `!` lets a path back in."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    kept = True
    for include, pattern in rules:
        if any(pattern.fullmatch(c) for c in candidates):
            kept = include
    return kept


def test_dockerignore_lets_in_what_the_build_copies_and_keeps_secrets_out() -> None:
    rules = dockerignore()
    copied: list[str] = []
    for i in dockerfile():
        if i.keyword == "COPY" and "--from" not in i.rest:
            copied += i.rest.split()[:-1]
    assert copied
    for source in copied:
        path = ROOT / source
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        assert files, f"COPY {source}: nothing there"
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            if "__pycache__" in relative:
                continue
            assert in_context(relative, rules), f"{relative} is copied but kept out"
    assert in_context("storage/migrations/0001_initial.sql", rules)
    for secret in (
        "config.toml",
        "appeals-bot.env",
        ".env",
        "appeals.db",
        "appeals.db-wal",
        "backups/appeals-2026-03-02.db",
        ".venv/bin/python",
        ".git/config",
        "tests/test_deploy.py",
        "bot/__pycache__/cli.cpython-311.pyc",
    ):
        assert not in_context(secret, rules), f"{secret} would be sent to the builder"


# --- systemd units -----------------------------------------------------------------------


def unit(name: str) -> dict[str, list[tuple[str, str]]]:
    """A unit file as {section: [(key, value), ...]}, repeated keys kept in order."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    pending = ""
    for line in (DEPLOY / name).read_text("utf-8").splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith(("#", ";"))):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("["):
            current = sections.setdefault(line.strip()[1:-1], [])
            continue
        assert current is not None, f"{name}: {line!r} before any section"
        key, sep, value = line.partition("=")
        assert sep, f"{name}: not a key=value line: {line!r}"
        current.append((key.strip(), value.strip()))
    return sections


def values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in section if k == key]


def one(section: list[tuple[str, str]], key: str) -> str:
    found = values(section, key)
    assert len(found) == 1, f"{key}: {found}"
    return found[0]


def unescape(value: str) -> str:
    """What systemd passes on: "%%" is "%", "$$" is "$"; a lone "%" or "$" would be a
    specifier or a variable of systemd's own, which these units must not use by accident."""
    assert not re.search(r"%[^%]", value.replace("%%", "")), value
    assert not re.search(r"\$(?!\$)", value.replace("$$", "")), value
    return value.replace("%%", "%").replace("$$", "$")


def seconds(value: str) -> float:
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    total = 0.0
    for number, suffix in re.findall(r"(\d+)\s*([a-z]*)", value):
        total += int(number) * units[suffix]
    return total


def test_service_runs_the_real_cli_as_its_own_user() -> None:
    service = unit("appeals-bot.service")["Service"]
    argv = shlex.split(unescape(one(service, "ExecStart")))
    assert_runs_the_bot(argv)
    assert argv[0] == "/opt/appeals-bot/.venv/bin/appeals-bot"
    user = one(service, "User")
    assert user not in ("root", "0") and one(service, "Group") == user
    assert values(service, "DynamicUser") == []  # a named user: see the unit's comment
    sysusers = (DEPLOY / "appeals-bot.sysusers").read_text("utf-8")
    assert re.search(rf"^u {re.escape(user)} ", sysusers, re.MULTILINE)


def test_service_restarts_stops_gently_and_keeps_state_in_its_directory() -> None:
    service = unit("appeals-bot.service")["Service"]
    assert one(service, "Restart") == "on-failure"
    assert one(service, "KillSignal") == "SIGTERM"
    assert seconds(one(service, "TimeoutStopSec")) > APP_GRACE_SECONDS
    assert one(service, "StateDirectory") == "appeals-bot"
    # The working directory is the state directory: a relative sqlite path lands there.
    assert one(service, "WorkingDirectory") == STATE_DIR
    assert one(service, "EnvironmentFile") == "-/etc/appeals-bot/env"
    for assignment in values(service, "Environment"):
        for name in re.findall(r"\b(APPEALS_\w+)=", assignment):
            assert_config_key(name)


HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "CapabilityBoundingSet": "",
}


@pytest.mark.parametrize(
    ("name", "families"),
    [
        ("appeals-bot.service", {"AF_INET", "AF_INET6", "AF_UNIX"}),  # messengers, webhooks
        ("appeals-bot-backup.service", {"AF_UNIX"}),  # a file copy needs no network
    ],
)
def test_units_are_hardened(name: str, families: set[str]) -> None:
    service = unit(name)["Service"]
    for key, expected in HARDENING.items():
        assert one(service, key) == expected, key
    assert set(one(service, "RestrictAddressFamilies").split()) == families
    assert "@system-service" in values(service, "SystemCallFilter")
    assert one(service, "UMask") == "0077"  # the database and backups hold personal data


def backup_scripts() -> list[str]:
    """The backup unit's ExecStart lines, each `/bin/sh -c SCRIPT`: the scripts, as the
    shell gets them, checked for the shell's syntax."""
    service = unit("appeals-bot-backup.service")["Service"]
    scripts = []
    for line in values(service, "ExecStart"):
        shell, flag, script = shlex.split(unescape(line))
        assert (shell, flag) == ("/bin/sh", "-c")
        assert subprocess.run(["sh", "-n", "-c", script], timeout=10).returncode == 0, script
        scripts.append(script)
    assert len(scripts) == 2  # the backup, then (only if it succeeded) the pruning
    return scripts


def test_backup_unit_runs_backup_with_the_bots_config_and_user() -> None:
    bot_service = unit("appeals-bot.service")["Service"]
    service = unit("appeals-bot-backup.service")["Service"]
    assert one(service, "Type") == "oneshot"
    for key in ("User", "Group", "WorkingDirectory", "EnvironmentFile"):
        assert one(service, key) == one(bot_service, key), key
    assert one(service, "StateDirectory").split() == ["appeals-bot", "appeals-bot/backups"]

    backup = shlex.split(backup_scripts()[0])
    assert backup[0] == "exec"
    argv = backup[1:]
    assert argv[0] == one(bot_service, "ExecStart").split()[0]
    assert argv[1:4] == ["backup", "--config", CONFIG_PATH]
    assert argv[4] == "--to"
    assert argv[5] == f"{STATE_DIR}/backups/appeals-$(date +%F).db"
    if "backup" not in subcommands():
        pytest.skip("`appeals-bot backup` is not in bot.cli yet (issue 20): options unchecked")
    args = parse_cli(argv)
    assert args.command == "backup"
    assert str(args.config) == CONFIG_PATH


def test_backup_unit_keeps_the_newest_fourteen(tmp_path: Path) -> None:
    script = backup_scripts()[1]
    assert f"{STATE_DIR}/backups/" in script
    script = script.replace(f"{STATE_DIR}/backups/", f"{tmp_path}/")
    days = [f"appeals-2026-{month:02d}-{day:02d}.db" for month in (1, 2) for day in (1, 15, 28)]
    days += [f"appeals-2026-03-{day:02d}.db" for day in range(1, 15)]
    for name in days:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a backup")
    subprocess.run(["sh", "-c", script], check=True, timeout=10)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == [*sorted(days)[-14:], "notes.txt"]
    # With nothing to prune (a fresh machine) it succeeds too.
    for name in kept:
        (tmp_path / name).unlink()
    subprocess.run(["sh", "-c", script], check=True, timeout=10)


def test_timer_starts_the_backup_nightly_and_catches_up() -> None:
    timer = unit("appeals-bot-backup.timer")
    assert one(timer["Timer"], "OnCalendar")
    assert one(timer["Timer"], "Persistent") == "true"
    assert values(timer["Timer"], "Unit") in ([], ["appeals-bot-backup.service"])
    assert one(timer["Install"], "WantedBy") == "timers.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd's own check, with the installed program's path pointed at this venv's
    appeals-bot (verify wants every ExecStart program to exist)."""
    program = Path(sys.executable).parent / "appeals-bot"
    assert program.exists()
    names = ["appeals-bot.service", "appeals-bot-backup.service", "appeals-bot-backup.timer"]
    for name in names:
        text = (DEPLOY / name).read_text("utf-8")
        (tmp_path / name).write_text(
            text.replace("/opt/appeals-bot/.venv/bin/appeals-bot", str(program))
        )
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / n) for n in names)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr


# --- compose.yaml ------------------------------------------------------------------------


class _Lines:
    def __init__(self, text: str) -> None:
        self.items: list[tuple[int, str]] = []
        for raw in text.splitlines():
            content = _strip_comment(raw).rstrip()
            if content.strip():
                self.items.append((len(content) - len(content.lstrip(" ")), content.strip()))


def _strip_comment(line: str) -> str:
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _scalar(text: str) -> Any:
    if text[:1] in "&*!|>{" or text.startswith("<<"):
        raise ValueError(f"YAML beyond the subset this test reads: {text!r}")
    if text.startswith(("[", '"')):
        return json.loads(text)  # flow sequences of double-quoted strings, double-quoted
    if text.startswith("'"):
        assert text.endswith("'")
        return text[1:-1].replace("''", "'")
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if text in ("", "~", "null"):
        return None
    return text


def _block(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[Any, int]:
    if lines[i][1].startswith("- "):
        items = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
            item = lines[i][1][2:].strip()
            if re.match(r"[\w.-]+:( |$)", item):
                raise ValueError(f"mappings in sequences are beyond this subset: {item!r}")
            items.append(_scalar(item))
            i += 1
        return items, i
    mapping: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent:
        match = re.fullmatch(r"([\w.-]+):(?: +(.*))?", lines[i][1])
        if match is None:
            raise ValueError(f"not a 'key: value' line: {lines[i][1]!r}")
        key, value = match.group(1), match.group(2)
        assert key not in mapping, f"duplicate key {key!r}"
        i += 1
        if value:
            mapping[key] = _scalar(value)
        elif i < len(lines) and lines[i][0] > indent:
            mapping[key], i = _block(lines, i, lines[i][0])
        else:
            mapping[key] = None
    if i < len(lines) and lines[i][0] > indent:
        raise ValueError(f"unexpected indentation: {lines[i][1]!r}")
    return mapping, i


def load_yaml_subset(text: str) -> Any:
    """Block YAML as compose.yaml is written: nested mappings, sequences of scalars, quoted
    and plain scalars, flow sequences of double-quoted strings. Anything else (anchors,
    multi-line strings, flow mappings) is refused rather than misread. PyYAML is not a
    dependency of this project; where it is installed, the two readings are compared."""
    lines = _Lines(text).items
    value, end = _block(lines, 0, lines[0][0])
    assert end == len(lines)
    return value


def compose() -> dict[str, Any]:
    loaded = load_yaml_subset((ROOT / "compose.yaml").read_text("utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_compose_reader_agrees_with_pyyaml_where_installed() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed; the subset reader is used")
    text = (ROOT / "compose.yaml").read_text("utf-8")
    assert load_yaml_subset(text) == yaml.safe_load(text)


def profiles(service: dict[str, Any]) -> list[str]:
    found = service.get("profiles", [])
    assert isinstance(found, list)
    return found


def is_bot(service: dict[str, Any]) -> bool:
    return service.get("build") == "." or str(service.get("image", "")).startswith("appeals-bot")


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment as a mapping"
    return {k: str(v) for k, v in env.items()}


def assert_bot_service(service: dict[str, Any]) -> None:
    assert service["build"] == "." and service["image"] == "appeals-bot:latest"
    # The image's command runs (checked above), or one the CLI accepts.
    if "command" in service:
        assert_runs_the_bot(["appeals-bot", *service["command"]])
    assert f"./config.toml:{CONFIG_PATH}:ro" in service["volumes"]
    assert service["env_file"] == "appeals-bot.env"
    assert seconds(service["stop_grace_period"]) > APP_GRACE_SECONDS
    assert service.get("stop_signal", "SIGTERM") == "SIGTERM"
    for published in service.get("ports", []):
        assert published.startswith("127.0.0.1:"), "only the TLS proxy on this host reaches it"
    assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
    for name in environment(service):
        assert_config_key(name)


def test_compose_default_is_one_bot_on_sqlite_in_a_volume() -> None:
    document = compose()
    services = document["services"]
    default = [name for name, service in services.items() if not profiles(service)]
    assert default == ["bot"]  # `docker compose up` starts exactly this
    bot_service = services["bot"]
    assert_bot_service(bot_service)
    volume = next(v for v in bot_service["volumes"] if v.endswith(f":{STATE_DIR}"))
    assert volume.split(":")[0] in document["volumes"]  # a named volume
    assert "APPEALS_STORAGE__URL" not in environment(bot_service)  # the file's sqlite URL


def test_compose_postgres_profile_is_postgres_15_and_two_bots() -> None:
    services = compose()["services"]
    in_profile = {n: s for n, s in services.items() if "postgres" in profiles(s)}
    databases = [n for n, s in in_profile.items() if str(s.get("image", "")).startswith("postgres")]
    bots = [n for n, s in in_profile.items() if is_bot(s)]
    assert len(databases) == 1 and len(bots) == 2
    assert sorted(databases + bots) == sorted(in_profile)
    database = in_profile[databases[0]]
    assert re.fullmatch(r"postgres:15(\.\d+)?(-[\w.]+)?", database["image"])
    assert "pg_isready" in " ".join(database["healthcheck"]["test"])
    assert "ports" not in database  # reached by the bots only
    env = environment(database)
    assert env["POSTGRES_PASSWORD"].startswith("${")  # never written in this file

    ports = []
    for name in bots:
        service = in_profile[name]
        assert profiles(service) == ["postgres"]
        assert_bot_service(service)
        url = urlsplit(environment(service)["APPEALS_STORAGE__URL"])
        assert url.scheme == "postgresql"
        assert url.hostname == databases[0] and url.path == f"/{env['POSTGRES_DB']}"
        assert url.username == env["POSTGRES_USER"]
        assert service["depends_on"][databases[0]]["condition"] == "service_healthy"
        assert not any(v.endswith(f":{STATE_DIR}") for v in service["volumes"])  # no SQLite
        ports += [p.rsplit(":", 1)[0] for p in service["ports"]]
    assert len(set(ports)) == len(ports) == 2


def test_env_example_names_real_config_keys() -> None:
    names = re.findall(
        r"^#?(APPEALS_\w+)=", (DEPLOY / "appeals-bot.env.example").read_text("utf-8"), re.M
    )
    assert "APPEALS_VK__TOKEN" in names and "APPEALS_TELEGRAM__TOKEN" in names
    for name in names:
        assert_config_key(name)
