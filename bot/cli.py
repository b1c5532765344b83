"""The command line: `appeals-bot run | demo | check-config | report | export` (SPEC §11).

`report` and `export` open the database read-only beside a running bot (WAL lets them) and
import no messenger library, so they start fast and can run from cron.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import gc
import json
import signal
import sys
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TextIO

from bot.config import Config, ConfigError, load_config
from bot.logs import setup_logging
from handlers.chart import ChartUnavailable, draw_chart, require_matplotlib
from handlers.figures import (
    Titles,
    month_bounds,
    period_bounds,
    register_header,
    register_row,
    report_json,
    report_rows,
    report_text,
)
from handlers.staff_args import parse_date
from storage.reports import ReportError, ReportQueries, connect_read_only

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

    report = commands.add_parser("report", help="figures of a period (SPEC §9)")
    report.add_argument(
        "--from", dest="start", type=_date, help="first day, YYYY-MM-DD (default: 1 January)"
    )
    report.add_argument("--to", dest="end", type=_date, help="last day, included (default: today)")
    report.add_argument("--format", choices=("text", "csv", "json"), default="text")
    report.add_argument(
        "--chart", type=Path, help="also draw appeals per month into this PNG (needs matplotlib)"
    )
    _add_source_and_output(report)

    export = commands.add_parser("export", help="the whole register, one row per appeal")
    export.add_argument("--format", choices=("csv",), default="csv")
    _add_source_and_output(export)
    return parser


def _add_source_and_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        help="configuration: the database and the titles (default: config.toml, "
        "or the example's titles when only --db is given)",
    )
    parser.add_argument("--db", type=Path, help="database file (default: the config's)")
    parser.add_argument("--output", type=Path, help="write here (default: standard output)")
    parser.add_argument(
        "--delimiter",
        choices=(";", ","),
        default=";",
        help="CSV field separator (default ';', as Excel expects in Russian)",
    )


def _date(text: str) -> date:
    try:
        return parse_date(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


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
        if args.command in ("report", "export"):
            return asyncio.run(_report(args) if args.command == "report" else _export(args))
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
    from bot.channels.registry import build_channels

    channels: list[Channel] = build_channels(config) if channels_from_config else []
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
    # Everything built so far (the libraries' modules, models and schemas: hundreds of
    # thousands of objects) lives as long as the process; frozen, the garbage collector
    # stops walking them on every full pass (bench/RESULTS.md).
    gc.collect()
    gc.freeze()
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


# --- report and export (SPEC §9) ---------------------------------------------------------


class _Failed(Exception):
    """A report or export cannot be made; the text is the one line to print."""


def _source(args: argparse.Namespace) -> tuple[Path, Titles]:
    """The database to read and the deployment's titles: from --config, or, with only
    --db, the example configuration's titles (the district's categories and settlements)."""
    if args.config is not None:
        config = load_config(args.config)
    elif args.db is not None:
        config = load_config(example_config_path())
    else:
        config = load_config(DEFAULT_CONFIG)
    titles = Titles(
        name=config.bot.name,
        timezone=config.bot.zone,
        answer_within_hours=config.sla.answer_within_hours,
        categories={c.code: c.title for c in config.categories},
        settlements={s.code: s.title for s in config.settlements},
    )
    return (args.db if args.db is not None else config.storage.sqlite_path), titles


@contextlib.contextmanager
def _output(path: Path | None, *, bom: bool) -> Iterator[TextIO]:
    """Standard output, or the file (written beside it first, then renamed into place, so
    an interrupted export never leaves half a file under the real name). CSV gets a BOM:
    Excel then reads the file as UTF-8 and shows Cyrillic."""
    if path is None:
        if bom:
            sys.stdout.write("\ufeff")
        yield sys.stdout
        sys.stdout.flush()
        return
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as stream:
        yield stream
    partial.replace(path)


async def _report(args: argparse.Namespace) -> int:
    db, titles = _source(args)
    today = datetime.now(titles.timezone).date()
    start = args.start or today.replace(month=1, day=1)
    end = args.end or today
    try:
        if start > end:
            raise _Failed(f"--from {start} is after --to {end}")
        if args.chart is not None:
            require_matplotlib()
        since, until = period_bounds(start, end, titles.timezone)
        months = month_bounds(start, end, titles.timezone) if args.chart else []
        conn = await connect_read_only(db)
        try:
            queries = ReportQueries(conn)
            figures = await queries.figures(since, until)
            monthly = await queries.months([(s, u) for _, s, u in months])
        finally:
            await conn.close()
    except (ReportError, ChartUnavailable, _Failed) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    with _output(args.output, bom=args.format == "csv") as stream:
        if args.format == "text":
            stream.write(report_text(titles, figures, start, end))
        elif args.format == "json":
            document = report_json(titles, figures, start, end)
            stream.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
        else:
            decimal = "," if args.delimiter == ";" else "."
            rows = report_rows(titles, figures, start, end, decimal=decimal)
            csv.writer(stream, delimiter=args.delimiter).writerows(rows)
    if args.chart is not None:
        draw_chart(
            titles,
            [(m[0], f) for m, f in zip(months, monthly, strict=True)],
            start,
            end,
            args.chart,
        )
        print(f"chart: {args.chart}", file=sys.stderr)
    return 0


async def _export(args: argparse.Namespace) -> int:
    db, titles = _source(args)
    try:
        conn = await connect_read_only(db)
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    count = 0
    try:
        with _output(args.output, bom=True) as stream:
            writer = csv.writer(stream, delimiter=args.delimiter)
            writer.writerow(register_header())
            async for batch in ReportQueries(conn).register():
                writer.writerows(register_row(titles, row) for row in batch)
                count += len(batch)
    finally:
        await conn.close()
    if args.output is not None:
        print(f"{count} appeals written to {args.output}", file=sys.stderr)
    return 0
