"""The command line: `appeals-bot run | demo | check-config | report | export | backup`
(SPEC §11, §17).

`backup` copies the live SQLite database through the online backup API (bot/backup.py).
`report`, `export` and `backup` read the database beside a running bot (WAL lets them) and
import no messenger library, so they start fast and can run from cron.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import gc
import json
import os
import signal
import sqlite3
import sys
import tempfile
import tomllib
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TextIO

from bot.community_ids import ids_to_learn, learn_community_ids
from bot.config import Config, ConfigError, load_config
from bot.logs import setup_logging
from bot.settings import handler_settings
from handlers.figures.chart import ChartUnavailable, draw_chart, require_matplotlib
from handlers.figures.report import (
    FIRST_DAY,
    LAST_DAY,
    PeriodError,
    Titles,
    check_day,
    month_bounds,
    period_bounds,
    register_header,
    register_row,
    report_json,
    report_rows,
    report_text,
)
from handlers.staff.args import parse_date
from storage.migrate import available_migrations
from storage.reports import ReportError, ReportQueries, connect_reader

DEFAULT_CONFIG = "config.toml"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
# How the README installs the optional chart extra: from the checkout.
CHART_INSTALL = "pip install -e '.[chart]' in the appeals-bot checkout (or pip install matplotlib)"
# The shell's code for a process whose reader went away (128 + SIGPIPE): `export | head`.
BROKEN_PIPE_EXIT = 141


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
    _add_log_options(run, "INFO")

    demo = commands.add_parser("demo", help="the whole product in this terminal, no tokens")
    demo.add_argument("--db", type=Path, help="keep the database in this file between runs")
    demo.add_argument("--config", type=Path, help="configuration (default: the example)")
    _add_log_options(demo, "WARNING")

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

    backup = commands.add_parser(
        "backup", help="a verified copy of the live SQLite database (safe while the bot runs)"
    )
    backup.add_argument(
        "--to", dest="target", type=Path, required=True, metavar="FILE", help="the copy's file"
    )
    source = backup.add_mutually_exclusive_group()
    source.add_argument(
        "--config",
        type=Path,
        help="take the database from this configuration (default: config.toml)",
    )
    source.add_argument("--db", type=Path, help="the database file itself")

    move = commands.add_parser(
        "migrate-db", help="move an installation from SQLite into an empty PostgreSQL database"
    )
    move.add_argument("--from", dest="source", required=True, metavar="sqlite:///PATH")
    move.add_argument("--to", dest="target", required=True, metavar="postgresql://…")
    return parser


def _add_log_options(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=default,
        metavar="LEVEL",
        help=f"what to log on standard error: {', '.join(LOG_LEVELS)} "
        f"(any case; default: {default})",
    )
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text: one readable line per event (the default); json: one JSON object per "
        "line, for a log collector",
    )


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
        metavar="CHAR",
        help="CSV field separator: ';' (the default, as Excel expects in Russian) or ','",
    )


def _date(text: str) -> date:
    try:
        return check_day(parse_date(text))
    except PeriodError:  # a ValueError too: first
        raise argparse.ArgumentTypeError(
            f"{text!r} is outside the dates reports cover ({FIRST_DAY} to {LAST_DAY})"
        ) from None
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check-config":
            config = load_config(args.config)
            _check_storage(args.config, config)
            learned = "".join(
                f"; {u.key} of {u.entry} learned from its token at start"
                for u in ids_to_learn(config)
            )
            print(
                f"{args.config}: OK ({len(config.settlements)} settlements, "
                f"{len(config.categories)} categories{learned})"
            )
            return 0
        if args.command == "run":
            setup_logging(args.log_level, log_format=args.log_format)
            config = load_config(args.config)
            _check_storage(args.config, config)
            return asyncio.run(_run(config, console=args.console, config_path=args.config))
        if args.command == "demo":
            setup_logging(args.log_level, log_format=args.log_format)
            return _demo(args.config or example_config_path(), args.db)
        if args.command == "backup":
            return _backup(args)
        if args.command == "migrate-db":
            return asyncio.run(_migrate_db(args.source, args.target))
        if args.command in ("report", "export"):
            return asyncio.run(_report(args) if args.command == "report" else _export(args))
    except ConfigError as error:
        # Every problem, one line each: fixing a file one problem per run is no way to work.
        for problem in error.problems:
            print(f"error: {ConfigError(error.path, [problem])}", file=sys.stderr)
        return 1
    except _Failed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return _reader_went_away()
    except KeyboardInterrupt:
        return 130
    return 2


class _Failed(Exception):
    """A command cannot do its work; the text is the one line to print after `error: `."""


def _reader_went_away() -> int:
    """Standard output's reader closed it (`export | head -2`): stop quietly. Standard output
    is pointed at /dev/null, or Python's own flush at exit would complain about it."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return BROKEN_PIPE_EXIT


# --- the database file of `run` and `demo` -----------------------------------------------


def database_problem(path: Path) -> str | None:
    """Why the bot cannot keep its appeals in this file, or None. A file that does not exist
    yet is fine when its folder does: the bot creates it. An existing one is only read here
    (read-only), never changed."""
    folder = path.parent
    if not folder.exists():
        return f"the folder {folder} does not exist"
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if path.is_dir():
        return "is a directory, not a database file"
    if not path.exists():
        if not os.access(folder, os.W_OK | os.X_OK):
            return f"cannot create the database file in {folder}: permission denied"
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as error:
        return f"cannot open the database ({error})"
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = int(
            conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%'"
            ).fetchone()[0]
        )
    except sqlite3.OperationalError as error:
        if "locked" in str(error) or "busy" in str(error):
            return None  # another process writes it: the bot waits for its turn
        return f"not an appeals-bot database ({error})"
    except sqlite3.Error as error:
        return f"not an appeals-bot database ({error})"
    finally:
        conn.close()
    newest = len(available_migrations())
    if version == 0 and tables:
        return "not an appeals-bot database (it holds another program's tables)"
    if version > newest:
        return (
            f"database schema version {version} is newer than this appeals-bot knows "
            f"({newest}); use a newer appeals-bot"
        )
    return None


def _check_storage(config_path: str | Path, config: Config) -> None:
    """check-config and run: the configured database must be usable (ConfigError if not).
    A PostgreSQL database is checked by connecting to it, at start-up."""
    if config.storage.is_postgres:
        return
    path = config.storage.sqlite_path
    problem = database_problem(path)
    if problem is not None:
        raise ConfigError(config_path, [f"storage.url: {path}: {problem}"])


def _demo(config_path: Path, db: Path | None) -> int:
    from bot.demo import DemoDatabase, demo_config
    from handlers import texts

    config = load_config(config_path)
    if db is not None:
        problem = database_problem(db)
        if problem is not None:
            raise _Failed(f"{db}: {problem}")
    with DemoDatabase(db) as database:
        print(texts.DEMO_INTRO)
        if database.kept:
            print(texts.DEMO_DATABASE.format(path=database.path))
        return asyncio.run(
            _run(demo_config(config, database.path), console=True, channels_from_config=False)
        )


async def _run(
    config: Config,
    *,
    console: bool,
    channels_from_config: bool = True,
    config_path: str | Path = DEFAULT_CONFIG,
) -> int:
    from bot.app import App
    from bot.channels.base import Channel
    from bot.channels.registry import build_channels

    if channels_from_config:
        # Ids of communities the file leaves out, asked of the platforms before the channels
        # and the handlers' settings are built on them (ConfigError if one cannot be had).
        config = await learn_community_ids(config, config_path)
    channels: list[Channel] = build_channels(config) if channels_from_config else []
    console_channel = None
    if console:
        from bot.channels.console import ConsoleChannel

        console_channel = ConsoleChannel()
        channels.append(console_channel)
    if not channels:
        print(
            "error: no channel is enabled: set vk.enabled, telegram.enabled, ok.enabled "
            "or max.enabled (or pass --console)",
            file=sys.stderr,
        )
        return 1
    app = App(config, channels)
    if console_channel is not None:
        console_channel.settle = app.settle
        console_channel.settlements = {s.code: s.title for s in config.settlements}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await app.start()
    except sqlite3.Error as error:  # what database_problem could not foresee
        await app.stop(grace_seconds=0)
        raise _Failed(f"{config.storage.described}: cannot use the database ({error})") from None
    except Exception as error:
        if not config.storage.is_postgres:
            raise
        # psycopg's errors, the pool's timeout: named, never with the URL (its password).
        await app.stop(grace_seconds=0)
        raise _Failed(
            f"{config.storage.described}: cannot use the database ({type(error).__name__})"
        ) from None
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


def _source(args: argparse.Namespace) -> tuple[Path | str, Titles]:
    """The database to read and the deployment's titles: from --config, or, with only
    --db, the example configuration's titles (the district's categories and settlements)."""
    if args.config is not None:
        config = load_config(args.config)
    elif args.db is not None:
        config = load_config(example_config_path())
    else:
        config = load_config(DEFAULT_CONFIG)
    titles = Titles.of(handler_settings(config))
    if args.db is not None:
        return args.db, titles
    storage = config.storage
    return (storage.url if storage.is_postgres else storage.sqlite_path), titles


def _check_target(option: str, path: Path | None, db: Path | str) -> None:
    """A file to write (--output, --chart) must be writable before any work starts, and
    must not be the database itself."""
    if path is None:
        return
    folder = path.parent
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise _Failed(f"{option} {path}: the folder {folder} {what}")
    if path.is_dir():
        raise _Failed(f"{option} {path}: is a directory; give a file name")
    if isinstance(db, Path) and path.exists() and db.exists() and path.resolve() == db.resolve():
        raise _Failed(f"{option} {path}: is the database itself")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise _Failed(f"{option} {path}: cannot write into {folder}: permission denied")


def _write_failed(path: Path, error: OSError) -> _Failed:
    return _Failed(f"{path}: cannot write: {error.strerror or error}")


@contextlib.contextmanager
def _output(path: Path | None, *, bom: bool) -> Iterator[TextIO]:
    """Standard output, or the file. A file is written under a temporary name beside it
    (created afresh, readable by its owner only: the register holds names and phones) and
    renamed into place when complete; whatever fails, the temporary file is removed, so
    neither half a file under the real name nor a stray copy of the data is left behind.
    CSV gets a BOM: Excel then reads the file as UTF-8 and shows Cyrillic."""
    if path is None:
        if bom:
            sys.stdout.write("\ufeff")
        yield sys.stdout
        sys.stdout.flush()
        return
    try:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as error:
        raise _write_failed(path, error) from None
    partial = Path(name)
    try:
        with open(handle, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as stream:
            yield stream
        partial.replace(path)
    except OSError as error:
        raise _write_failed(path, error) from None
    finally:
        partial.unlink(missing_ok=True)


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
        _check_target("--output", args.output, db)
        _check_target("--chart", args.chart, db)
        since, until = period_bounds(start, end, titles.timezone)
        months = month_bounds(start, end, titles.timezone) if args.chart else []
        conn = await connect_reader(db)
        try:
            queries = ReportQueries(conn)
            figures = await queries.figures(since, until)
            monthly = await queries.months([(s, u) for _, s, u in months])
        finally:
            await conn.close()
    except ChartUnavailable:
        raise _Failed(f"a chart needs matplotlib: {CHART_INSTALL}") from None
    except ReportError as error:
        raise _Failed(str(error)) from None
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
        try:
            draw_chart(
                titles,
                [(m[0], f) for m, f in zip(months, monthly, strict=True)],
                start,
                end,
                args.chart,
            )
        except OSError as error:
            raise _write_failed(args.chart, error) from None
        print(f"chart: {args.chart}", file=sys.stderr)
    return 0


async def _export(args: argparse.Namespace) -> int:
    db, titles = _source(args)
    _check_target("--output", args.output, db)
    try:
        conn = await connect_reader(db)
    except ReportError as error:
        raise _Failed(str(error)) from None
    now = datetime.now(UTC)
    count = 0
    try:
        with _output(args.output, bom=True) as stream:
            writer = csv.writer(stream, delimiter=args.delimiter)
            writer.writerow(register_header())
            async with contextlib.aclosing(ReportQueries(conn).register()) as batches:
                async for batch in batches:
                    writer.writerows(register_row(titles, row, now) for row in batch)
                    count += len(batch)
    finally:
        await conn.close()
    if args.output is not None:
        print(f"{count} appeals written to {args.output}", file=sys.stderr)
    return 0


# --- migrate-db (SPEC §15) -------------------------------------------------------------------


async def _migrate_db(source: str, target: str) -> int:
    """Copy everything, then one line per table with its rows on both sides; exit code 1
    unless every count matches. The target URL is never printed (it may hold a password)."""
    from storage.transfer import TransferError, sqlite_to_postgres

    if not source.startswith("sqlite:///") or not source.removeprefix("sqlite:///"):
        raise _Failed("--from must be sqlite:///PATH")
    if not target.startswith(("postgresql://", "postgres://")):
        raise _Failed("--to must be postgresql://user:pass@host:5432/db")
    path = Path(source.removeprefix("sqlite:///"))
    try:
        counts = await sqlite_to_postgres(path, target)
    except TransferError as error:
        raise _Failed(str(error)) from None
    width = max(len(c.table) for c in counts)
    print(f"{'table':<{width}}  {'sqlite':>9}  {'postgresql':>10}")
    for count in counts:
        mark = "" if count.source == count.target else "  MISMATCH"
        print(f"{count.table:<{width}}  {count.source:>9}  {count.target:>10}{mark}")
    if any(c.source != c.target for c in counts):
        raise _Failed("the counts differ: the PostgreSQL database is not a complete copy")
    print(f"moved {sum(c.source for c in counts)} rows of {len(counts)} tables from {path}")
    return 0


# --- backup (SPEC §17) -----------------------------------------------------------------------

PG_DUMP_HINT = "backup copies a SQLite database; for PostgreSQL use pg_dump (README, «Deploy»)"


def _backup(args: argparse.Namespace) -> int:
    """`appeals-bot backup --to FILE`: the copy made, verified and put in place, then one
    line with its figures; on any failure one `error:` line and exit code 1."""
    from bot.backup import BackupError, backup_sqlite

    if args.db is not None:
        source = args.db
    else:
        config_path = args.config if args.config is not None else Path(DEFAULT_CONFIG)
        try:
            storage = load_config(config_path).storage
            if storage.is_postgres:
                raise _Failed(PG_DUMP_HINT)
            source = storage.sqlite_path
        except ConfigError as error:
            if _names_another_database(config_path, error):
                raise _Failed(PG_DUMP_HINT) from None
            raise
    try:
        result = asyncio.run(backup_sqlite(source, args.target))
    except BackupError as error:
        raise _Failed(str(error)) from None
    print(
        f"{result.target}: {result.appeals} appeals, {result.size_bytes} bytes, "
        f"schema version {result.schema_version}, integrity ok ({result.seconds:.1f} s)"
    )
    return 0


def _names_another_database(config_path: Path, error: ConfigError) -> bool:
    """Whether the configuration was refused because its storage.url is not SQLite (a
    PostgreSQL deployment): then pg_dump is the tool, and the user is told so."""
    if not any(problem.startswith("storage.url") for problem in error.problems):
        return False
    url = os.environ.get("APPEALS_STORAGE__URL")
    if url is None:
        try:
            with config_path.open("rb") as stream:
                url = str(tomllib.load(stream).get("storage", {}).get("url", ""))
        except (OSError, tomllib.TOMLDecodeError, AttributeError):
            return False
    return url.startswith(("postgres://", "postgresql://", "postgresql+"))
