"""`appeals-bot demo`: the whole product in a terminal, on a temporary SQLite file and the
example configuration, with console identities for one administrator per settlement and a
moderator, so one person can file an appeal, answer it and see the answer arrive."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bot.channels.console import MODERATOR, PLATFORM
from bot.config import Config, StorageSection


def demo_config(config: Config, db: Path) -> Config:
    """The configuration with the demo database and the console staff added."""
    settlements = [
        s.model_copy(update={"admins": [*s.admins, f"{PLATFORM}:admin-{s.code}"]})
        for s in config.settlements
    ]
    moderators = config.moderators.model_copy(
        update={"ids": [*config.moderators.ids, f"{PLATFORM}:{MODERATOR}"]}
    )
    return config.model_copy(
        update={
            "storage": StorageSection(url=f"sqlite:///{db}"),
            "settlements": settlements,
            "moderators": moderators,
        }
    )


class DemoDatabase:
    """A temporary database file removed at the end, or the one given with --db (kept)."""

    def __init__(self, db: Path | None) -> None:
        self.kept = db is not None
        self._workdir: Path | None = None
        if db is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="appeals-demo-"))
            db = self._workdir / "demo.db"
        self.path = db

    def __enter__(self) -> DemoDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
