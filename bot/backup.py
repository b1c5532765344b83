"""`appeals-bot backup`: a consistent, verified copy of a live SQLite database (SPEC §17).

The copy goes through SQLite's online backup API (`sqlite3.Connection.backup`), so the bot
may go on writing meanwhile. It is written to a hidden temporary file beside the target,
checked (`PRAGMA integrity_check` must say ``ok``; the file must be an appeals-bot database:
a schema version and an ``appeals`` table), made durable (fsync) and only then renamed onto
the target in one step. A failure at any point removes the temporary file and raises
:class:`BackupError`, whose text is one line for the command line to print: the target is
either the complete, verified copy or what it was before (nothing, or an older backup).

How the copy meets a running bot depends on the source's journal mode:

* **WAL** (every database the bot has opened: `storage.db` sets it, and it persists in the
  file). The whole copy is made in one step, that is one read transaction. In WAL mode a
  reader never blocks a writer, so the bot keeps committing throughout; the copy is the
  database as it was when the step began. (Meanwhile the bot's checkpoints cannot pass
  that moment, so its -wal file may grow for as long as the copy takes.) Copying in slices
  would gain nothing here and lose the guarantee to finish: SQLite restarts a backup from
  the first page whenever another connection writes between two steps, and a busy bot
  writes every few milliseconds.
* **Rollback journal** (a file the bot has not opened, or one switched back by hand). There
  a reader does hold writers off, so the copy goes in slices of ``pages_per_step`` pages
  with a pause of ``pause`` seconds between them, in which writers get their turn. If
  writes keep restarting it (more than ``MAX_RESTARTS`` times), it is made again in one
  step, holding writers off for the length of one copy rather than never finishing.

The source is opened without being created or written (``query_only``).

The copy is left in rollback-journal mode, a single self-contained file (no ``-wal`` or
``-shm`` beside it); the bot switches a restored file back to WAL when it opens it. It is
created readable by its owner only (mode 0600): it holds residents' personal data.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MAX_RESTARTS",
    "BackupError",
    "BackupResult",
    "backup_sqlite",
    "backup_sqlite_sync",
]

PAGES_PER_STEP = 256  # rollback-journal sources: pages copied per step (1 MiB at 4 KiB)
PAUSE_SECONDS = 0.01  # ... and the pause after each step, in which writers get the lock
MAX_RESTARTS = 5  # restarts caused by writers before the rest is copied in one step
BUSY_TIMEOUT_SECONDS = 5.0  # opening the source waits this long for a writer's lock
# A step that finds the source locked by a writer (rollback journal) is retried after this
# long (Python's default is 0.25 s, long beside a bot's commits of a few milliseconds).
BUSY_RETRY_SECONDS = 0.005
# Files SQLite keeps beside a database; a temporary file's are removed with it.
_SIDE_FILES = ("-journal", "-wal", "-shm")


class BackupError(Exception):
    """The backup failed and left no file behind; ``str()`` is one line to print."""


@dataclass(frozen=True)
class BackupResult:
    """What a finished backup holds, for the command line to print."""

    target: Path
    appeals: int  # rows in the copy's appeals table
    size_bytes: int  # the copy's size on disk
    schema_version: int  # the copy's PRAGMA user_version
    seconds: float  # how long the backup took, verification included


class _Restarted(Exception):
    """Raised from the progress callback to abandon a backup that writers keep restarting."""


async def backup_sqlite(
    source: Path,
    target: Path,
    *,
    pages_per_step: int = PAGES_PER_STEP,
    pause: float = PAUSE_SECONDS,
) -> BackupResult:
    """Copy the SQLite database ``source`` to ``target``, verified, in a worker thread.

    The event loop stays free meanwhile (a bot in the same process goes on writing). If the
    caller is cancelled, the copy in the thread still runs to its end, and then either
    leaves a complete target or nothing. See :func:`backup_sqlite_sync`.
    """
    return await asyncio.to_thread(
        backup_sqlite_sync, source, target, pages_per_step=pages_per_step, pause=pause
    )


def backup_sqlite_sync(
    source: Path,
    target: Path,
    *,
    pages_per_step: int = PAGES_PER_STEP,
    pause: float = PAUSE_SECONDS,
) -> BackupResult:
    """Copy ``source`` to ``target`` (replacing an older file there), verify the copy and
    return its figures. Raises :class:`BackupError` and leaves no new file on any failure.

    ``target``'s directory must exist; ``target`` must not be the source itself (nor one
    of its ``-wal``, ``-shm`` or ``-journal`` files), nor a directory.
    """
    if pages_per_step < 1:
        raise ValueError("pages_per_step must be at least 1")
    started = time.monotonic()
    source, target = Path(source), Path(target)
    _check_paths(source, target)
    partial = _new_partial(target)
    try:
        schema_version, appeals = _copy_and_verify(source, partial, pages_per_step, pause)
        _fsync(partial)
        try:
            os.replace(partial, target)
        except OSError as error:
            problem = _os_text(error)
            raise BackupError(f"{target}: cannot put the copy in place: {problem}") from None
    except BaseException:
        _remove(partial)
        raise
    _fsync_directory(target.parent)
    return BackupResult(
        target=target,
        appeals=appeals,
        size_bytes=target.stat().st_size,
        schema_version=schema_version,
        seconds=time.monotonic() - started,
    )


def _check_paths(source: Path, target: Path) -> None:
    if not source.exists():
        raise BackupError(f"{source}: no database file here")
    if not source.is_file():
        raise BackupError(f"{source}: not a file")
    if target.is_dir():
        raise BackupError(
            f"{target}: is a directory; give the copy's file name, e.g. {target / 'appeals.db'}"
        )
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent}: no such directory (create it first)")
    real_source = source.resolve()
    real_target = target.resolve()
    if real_target == real_source or (target.exists() and os.path.samefile(source, target)):
        raise BackupError(f"{target}: is the database itself; choose another file")
    if real_target in {real_source.with_name(real_source.name + s) for s in _SIDE_FILES}:
        raise BackupError(f"{target}: is one of the database's own files; choose another file")


def _new_partial(target: Path) -> Path:
    """An empty, owner-only temporary file beside the target (the same file system, so the
    final rename is atomic), hidden by its leading dot."""
    try:
        handle, name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".partial", dir=target.parent
        )
    except OSError as error:
        raise BackupError(f"{target.parent}: cannot write here: {_os_text(error)}") from None
    os.close(handle)
    return Path(name)


def _copy_and_verify(source: Path, partial: Path, pages: int, pause: float) -> tuple[int, int]:
    """Copy into ``partial`` and check it; returns (schema version, appeals)."""
    try:
        # Never created (mode=rw), never written (query_only). Not mode=ro: a read-only
        # connection that is the last one on a WAL database cannot tidy up after itself,
        # and would leave a -wal and a -shm of the backup user's (root's, run by hand) beside
        # a stopped bot's database, which the bot could then not open. SQLite falls back to
        # reading only where the file is write-protected.
        src = sqlite3.connect(
            f"{source.resolve().as_uri()}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_SECONDS
        )
    except sqlite3.Error as error:
        raise BackupError(f"{source}: cannot open the database: {error}") from None
    try:
        try:
            src.execute("PRAGMA query_only = 1")
            journal_mode = str(src.execute("PRAGMA journal_mode").fetchone()[0]).lower()
            _identify(src, source)  # fail early, before a long copy of the wrong file
        except sqlite3.Error as error:
            raise BackupError(f"{source}: cannot read the database: {error}") from None
        try:
            dest = sqlite3.connect(partial, isolation_level=None)
        except sqlite3.Error as error:
            raise BackupError(f"{partial.parent}: cannot create the copy: {error}") from None
        try:
            try:
                _copy(src, dest, pages=-1 if journal_mode == "wal" else pages, pause=pause)
            except sqlite3.Error as error:
                raise BackupError(f"{source}: the copy failed: {error}") from None
            try:
                # One self-contained file: no -wal or -shm beside the backup.
                dest.execute("PRAGMA journal_mode = DELETE").fetchall()
                _check_integrity(dest, source)
                version = _identify(dest, source)
                appeals = int(dest.execute("SELECT count(*) FROM appeals").fetchone()[0])
            except sqlite3.Error as error:
                raise BackupError(f"{source}: the copy cannot be read back: {error}") from None
            return version, appeals
        finally:
            dest.close()
    finally:
        src.close()


def _copy(src: sqlite3.Connection, dest: sqlite3.Connection, *, pages: int, pause: float) -> None:
    """The backup proper: in one step (``pages`` = -1), or in slices with a pause after
    each; a copy that writers restart more than MAX_RESTARTS times is finished in one step.
    """
    if pages < 0:
        src.backup(dest, sleep=BUSY_RETRY_SECONDS)
        return
    restarts = 0
    last_remaining: int | None = None

    def progress(status: int, remaining: int, total: int) -> None:
        nonlocal restarts, last_remaining
        if last_remaining is not None and remaining >= last_remaining:
            restarts += 1  # no progress: SQLite began again from page 1, someone wrote
            if restarts > MAX_RESTARTS:
                raise _Restarted
        last_remaining = remaining
        if remaining:
            time.sleep(pause)  # the source is unlocked between steps: writers go now

    try:
        src.backup(dest, pages=pages, progress=progress, sleep=BUSY_RETRY_SECONDS)
    except _Restarted:
        src.backup(dest, sleep=BUSY_RETRY_SECONDS)


def _check_integrity(conn: sqlite3.Connection, source: Path) -> None:
    rows = [str(row[0]) for row in conn.execute("PRAGMA integrity_check").fetchall()]
    if rows != ["ok"]:
        first = " ".join(rows[0].split()) if rows else "no answer"
        more = f" (and {len(rows) - 1} more problems)" if len(rows) > 1 else ""
        raise BackupError(f"{source}: the copy fails integrity_check: {first}{more}")


def _identify(conn: sqlite3.Connection, source: Path) -> int:
    """The schema version of an appeals-bot database; BackupError for any other file."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version <= 0:
        raise BackupError(f"{source}: not an appeals-bot database (no schema version)")
    found = conn.execute(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'appeals'"
    ).fetchone()
    if found is None:
        raise BackupError(f"{source}: not an appeals-bot database (no appeals table)")
    return version


def _fsync(path: Path) -> None:
    try:
        with path.open("rb") as stream:
            os.fsync(stream.fileno())
    except OSError as error:
        raise BackupError(f"{path}: cannot flush the copy to disk: {_os_text(error)}") from None


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable; some file systems cannot sync a directory, which is fine."""
    with contextlib.suppress(OSError):
        handle = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def _remove(partial: Path) -> None:
    for path in (partial, *(partial.with_name(partial.name + s) for s in _SIDE_FILES)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _os_text(error: OSError) -> str:
    return error.strerror or str(error)
