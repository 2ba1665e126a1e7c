"""A folder of result records: where each run's record lives, which runs are done, atomic writes.

The one place that decides whether a run must run again (resume): the in-process
runner and every executor ask :meth:`ResultStore.existing`.
"""

from __future__ import annotations

import os
import re
import time
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


class ResultStore:
    """The records of one results folder; ``force`` makes every run count as not done."""

    def __init__(self, folder: Path, force: bool = False) -> None:
        self.folder = Path(folder)
        self.force = force

    def path(self, run_id: str) -> Path:
        """Where the record of ``run_id`` lives."""
        return self.folder / f"{run_id}.json"

    def existing(self, run_id: str, config: dict[str, Any]) -> dict[str, Any] | None:
        """The stored record of ``run_id`` if it is valid, has the same config and did not fail."""
        path = self.path(run_id)
        if self.force or not path.exists():
            return None
        try:
            record = records.read_record(path)
        except records.RecordError:
            return None
        if record["config_hash"] != records.config_hash(config) or record["status"] == "failed":
            return None
        return record

    def write(self, record: dict[str, Any]) -> Path:
        """Validate and write ``record`` atomically; returns its path."""
        path = self.path(record["run_id"])
        records.write_record(path, record)
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
