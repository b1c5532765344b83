"""What the benchmarks share: a fake server in its own process (tests/fakes/serve_bench.py),
`appeals-bot` configuration files and processes, /proc readings, and the table printer."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bot.cli import example_config_path
from tests.fakes.telegram import TOKEN as TG_TOKEN

ROOT = Path(__file__).resolve().parent.parent
VK_GROUP = 777
VK_TOKEN = "vk-bench-token"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# The resident dialogue as text (a button's label typed works as pressing it), each step
# with a piece of the reply that ends it (tests/test_process.py walks the same steps).
DIALOGUE: list[tuple[str, str | None]] = [
    ("Подать обращение", "Вы даёте согласие?"),
    ("Согласен", "Выберите тему"),
    ("Дороги", "населённый пункт"),
    ("Сергино", "Опишите проблему"),
    ("Яма на дороге возле дома культуры, глубокая", "Укажите адрес или место"),
    ("ул. Центральная, 5", "Приложите фото"),
    ("Пропустить", "Как к вам обращаться?"),
    ("Оставить как есть", "Телефон для связи"),
    ("Пропустить", "Проверьте обращение"),
    ("Отправить", "зарегистрировано"),
]
# Half-way: the draft holds a category, a settlement and a description.
HALF_DIALOGUE = DIALOGUE[:5]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("APPEALS_")}
    env.update(extra)
    return env


# --- the fake server process ------------------------------------------------------------


class FakeProcess:
    """`python -m tests.fakes.serve_bench KIND` and its control API."""

    def __init__(self, kind: str, folder: Path, hold: float = 0.2) -> None:
        self.kind = kind
        port_file = folder / f"fake-{kind}.json"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fakes.serve_bench",
                kind,
                "--port-file",
                str(port_file),
                "--hold",
                str(hold),
            ],
            cwd=ROOT,
            env=clean_env(),
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fake {kind} did not start")
            time.sleep(0.02)
        info = json.loads(port_file.read_text("utf-8"))
        self.api_url: str = info["api_url"]
        self.control: str = info["control"]

    def call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.control + path, data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("/stats")
        return result

    def close(self) -> None:
        stop(self.process)


def stop(process: subprocess.Popen[Any], within: float = 15.0) -> None:
    if process.poll() is None:
        if os.environ.get("BENCH_PROFILE"):  # py-spy writes its record once the bot exits
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
            for child in children.read_text().split():
                os.kill(int(child), signal.SIGTERM)
        else:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(within)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def fakes(
    folder: Path, kinds: Sequence[str], hold: float = 0.2
) -> Iterator[dict[str, FakeProcess]]:
    started: dict[str, FakeProcess] = {}
    try:
        for kind in kinds:
            started[kind] = FakeProcess(kind, folder, hold)
        yield started
    finally:
        for fake in started.values():
            fake.close()


# --- appeals-bot configuration and process ----------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def write_config(
    folder: Path,
    *,
    vk: str | None = None,
    telegram: str | None = None,
    unlimited: bool = False,
    name: str = "config.toml",
    storage_url: str | None = None,
) -> Path:
    """config.toml: the example, with VK and/or Telegram pointed at fakes (api URLs), a
    database file in `folder`; `unlimited` sets send_rate = per_chat_rate = 0 and raises
    the flood limit, so that only the product is measured."""
    data = tomllib.loads(example_config_path().read_text("utf-8"))
    data["storage"]["url"] = storage_url or f"sqlite:///{folder / 'appeals.db'}"
    data["web"]["port"] = 0
    admins: list[str] = []
    if vk is not None:
        data["vk"].update(enabled=True, token=VK_TOKEN, group_id=VK_GROUP, api_url=vk)
        admins.append("vk:1")
    if telegram is not None:
        data["telegram"].update(enabled=True, token=TG_TOKEN, api_url=telegram)
        admins.append("tg:1")
    if unlimited:
        data["vk"]["send_rate"] = 0
        data["telegram"]["send_rate"] = 0
        data["telegram"]["per_chat_rate"] = 0
        data["limits"]["messages_per_minute"] = 1_000_000
    for settlement in data["settlements"]:
        settlement["admins"] = admins if settlement["code"] == "sergino" else []
    path = folder / name
    write_toml(path, data)
    return path


def write_toml(path: Path, data: dict[str, Any]) -> None:
    """A configuration as TOML: tables of scalars and lists, and arrays of tables."""
    lines: list[str] = []
    for section, values in data.items():
        items = values if isinstance(values, list) else [values]
        for item in items:
            lines.append(f"[[{section}]]" if isinstance(values, list) else f"[{section}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in item.items()]
            lines.append("")
    path.write_text("\n".join(lines), "utf-8")


def spawn_bot(config: Path, folder: Path, log_level: str = "WARNING") -> subprocess.Popen[bytes]:
    """`python -m bot run --config …`, its log into folder/bot.log."""
    log = (folder / "bot.log").open("ab")
    command = [sys.executable, "-m", "bot", "run", "--config", str(config)]
    command += ["--log-level", log_level]
    profile = os.environ.get("BENCH_PROFILE")  # a folder: py-spy samples the bot into it
    if profile:
        out = Path(profile) / f"{folder.name}.txt"
        spy = ["py-spy", "record", "--format", "raw", "--rate", "250"]
        command = [*spy, "--threads", "-o", str(out), "--", *command]
    cprofile = os.environ.get("BENCH_CPROFILE")  # a folder: cProfile traces the bot into it
    if cprofile:
        out = Path(cprofile) / f"{folder.name}.prof"
        command[1:1] = ["-m", "cProfile", "-o", str(out)]
    return subprocess.Popen(
        command,
        cwd=folder,
        env=clean_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_until(predicate: Any, within: float, what: str, every: float = 0.02) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {within} s in vain for {what}")
        time.sleep(every)


# --- /proc ----------------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/PID/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


# --- output ---------------------------------------------------------------------------


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """min / median / max."""
    if not values:
        return "—"
    if len(values) == 1:
        return fmt.format(values[0])
    return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [
            cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ]
        print("  ".join(cells))
