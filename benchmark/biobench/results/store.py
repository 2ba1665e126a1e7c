"""A folder of result records: where each run's record lives, which runs are done, atomic writes.

The one place that decides whether a run must run again (resume): the in-process
runner and every executor ask :meth:`ResultStore.existing`.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from biobench.results import records

#: A temporary record file this old (seconds) is removed even if its writer's process id is in use
#: (a reused id, or a writer on another machine sharing the folder).
STALE_TEMP_AGE_S = 3600.0
_TEMP_NAME = re.compile(r"^\.(?P<record>.+\.json)\.(?P<pid>\d+)\.[^.]+\.tmp$")


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class ResultsWriteError(RuntimeError):
    """A record could not be written (read-only folder, disk full): the grid stops."""


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)


class ResultStore:
    """The records of one results folder; ``force`` makes every run count as not done.

    ``warn`` receives a message whenever a file is moved aside (default: a Python warning).
    """

    def __init__(self, folder: Path, force: bool = False, warn: Callable[[str], None] | None = None) -> None:
        self.folder = Path(folder)
        self.force = force
        self.warn = warn or _warn

    def path(self, run_id: str) -> Path:
        """Where the record of ``run_id`` lives."""
        return self.folder / f"{run_id}.json"

    def existing(self, run_id: str, config: dict[str, Any]) -> dict[str, Any] | None:
        """The stored record of ``run_id`` if it is valid, has the same config and finished (not failed).

        A file at the run's path that is not a valid record is never trusted and never
        silently overwritten: it is moved aside (see :meth:`move_aside`) and the run is done again.
        """
        path = self.path(run_id)
        if not path.exists():
            return None
        try:
            record = records.read_record(path)
        except records.RecordError as exc:
            moved = self.move_aside(path)
            self.warn(f"{exc}; moved it to {moved} and running again")
            return None
        if self.force or record["config_hash"] != records.config_hash(config) or record["status"] in ("failed", "pruned"):
            return None
        return record

    def move_aside(self, path: Path) -> Path:
        """Rename ``path`` to ``<name>.invalid-<UTC time>`` (no longer read as a record); return the new path."""
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        target = path.with_name(f"{path.name}.invalid-{stamp}")
        counter = 1
        while target.exists():
            target = path.with_name(f"{path.name}.invalid-{stamp}-{counter}")
            counter += 1
        path.rename(target)
        return target

    def write(self, record: dict[str, Any]) -> Path:
        """Validate and write ``record`` atomically; returns its path.

        An operating-system error (read-only folder, disk full) raises
        :class:`ResultsWriteError`; no partial record is left.
        """
        path = self.path(record["run_id"])
        try:
            records.write_record(path, record)
        except OSError as exc:
            raise ResultsWriteError(
                f"cannot write the record {path.name} into {self.folder}: {exc.strerror or exc}"
            ) from None
        return path

    def written_since(self, run_id: str, since: float) -> dict[str, Any] | None:
        """The valid record of ``run_id`` if it was written at or after ``since`` (epoch seconds)."""
        path = self.path(run_id)
        try:
            if path.stat().st_mtime < since:
                return None
            return records.read_record(path)
        except (FileNotFoundError, records.RecordError):
            return None

    def remove_stale_temp_files(self, older_than_s: float = STALE_TEMP_AGE_S) -> list[Path]:
        """Delete the temporary record files that killed writers left behind; return them.

        ``records.write_record`` writes ``.<record>.json.<pid>.<random>.tmp`` and removes
        it on any exception; only a process killed between creating and renaming it
        (SIGKILL, power loss) leaves one. A file whose writer process no longer exists
        is removed at once; one whose process id is in use only after ``older_than_s``
        (the id may have been reused), and so is one without a process id in its name.
        """
        removed = []
        now = time.time()
        for path in self.folder.glob(".*.json.*.tmp"):
            match = _TEMP_NAME.match(path.name)
            try:
                orphan = match is not None and not _process_exists(int(match["pid"]))
                if orphan or now - path.stat().st_mtime > older_than_s:
                    path.unlink()
                    removed.append(path)
            except FileNotFoundError:  # renamed or removed by its writer meanwhile
                continue
        return removed
