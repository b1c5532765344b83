"""The command line: `appeals-bot run | demo | check-config` (SPEC §11)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.config import Config, ConfigError, load_config
from bot.logs import setup_logging

DEFAULT_CONFIG = "config.toml"


def example_config_path() -> Path:
    """The example configuration: beside the package in a checkout, inside it when installed."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "config.example.toml", here / "config.example.toml"):
        if candidate.is_file():
            return candidate
    raise ConfigError("config.example.toml", ["file not found (is the package complete?)"])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="appeals-bot",
        description="Citizens' appeals through VK, Odnoklassniki and Telegram.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the enabled channels until SIGTERM")
    run.add_argument("--config", default=DEFAULT_CONFIG, help="TOML file (default: config.toml)")
    run.add_argument(
        "--console",
        action="store_true",
        help="also talk to the bot in this terminal (as a resident)",
    )
    run.add_argument("--log-level", default="INFO")

    demo = commands.add_parser("demo", help="the whole product in this terminal, no tokens")
    demo.add_argument("--db", type=Path, help="keep the database in this file between runs")
    demo.add_argument("--config", type=Path, help="configuration (default: the example)")
    demo.add_argument("--log-level", default="WARNING")

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("--config", default=DEFAULT_CONFIG)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check-config":
            config = load_config(args.config)
            print(
                f"{args.config}: OK ({len(config.settlements)} settlements, "
                f"{len(config.categories)} categories)"
            )
            return 0
        if args.command == "run":
            setup_logging(args.log_level)
            return asyncio.run(_run(load_config(args.config), console=args.console))
        if args.command == "demo":
            setup_logging(args.log_level)
            return _demo(args.config or example_config_path(), args.db)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


def _demo(config_path: Path, db: Path | None) -> int:
    from bot.demo import DemoDatabase, demo_config
    from handlers import texts

    config = load_config(config_path)
    with DemoDatabase(db) as database:
        print(texts.DEMO_INTRO)
        if database.kept:
            print(texts.DEMO_DATABASE.format(path=database.path))
        return asyncio.run(
            _run(demo_config(config, database.path), console=True, channels_from_config=False)
        )


async def _run(config: Config, *, console: bool, channels_from_config: bool = True) -> int:
    from bot.app import App
    from bot.channels.base import Channel
    from bot.channels.registry import ChannelUnavailable, build_channels

    try:
        channels: list[Channel] = build_channels(config) if channels_from_config else []
    except ChannelUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    console_channel = None
    if console:
        from bot.channels.console import ConsoleChannel

        console_channel = ConsoleChannel()
        channels.append(console_channel)
    if not channels:
        print(
            "error: no channel is enabled: set vk.enabled, telegram.enabled or ok.enabled "
            "(or pass --console)",
            file=sys.stderr,
        )
        return 1
    app = App(config, channels)
    if console_channel is not None:
        console_channel.settle = app.settle
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await app.start()
    try:
        waiters = [asyncio.create_task(stop.wait())]
        if console_channel is not None:
            waiters.append(asyncio.create_task(console_channel.finished.wait()))
        _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await app.stop()
    return 0
