"""Shared fixtures: the MNIST data root and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# One torch thread in the test process: tiny networks gain nothing from more, and on a machine
# whose cores are busy a second thread that spin-waits makes small tests ten times slower.
torch.set_num_threads(1)


def mnist_root() -> Path | None:
    """``$BIOBENCH_DATA`` if set, else ``../shared/datasets`` beside the repository."""
    env = os.environ.get("BIOBENCH_DATA")
    root = Path(env) if env else REPO.parent / "shared" / "datasets"
    return root if (root / "MNIST" / "raw").is_dir() else None


@pytest.fixture(scope="session")
def data_dir() -> str:
    """The data root holding MNIST/raw; tests needing MNIST skip, with the reason, without it."""
    root = mnist_root()
    if root is None:
        pytest.skip("MNIST not found: set BIOBENCH_DATA to a folder holding MNIST/raw/")
    return str(root)


@pytest.fixture(scope="session")
def registry():
    """The registry of installed plugins (loaded once)."""
    from biobench.plugin_api.registry import load_registry

    return load_registry(disable=[], only=[])


FIXTURE_RECORDS = Path(__file__).parent / "fixtures" / "records"


@pytest.fixture(scope="session")
def rendered_board(tmp_path_factory) -> Path:
    """A leaderboard folder (tables, README and report) of the fixture records, rendered once per session."""
    import shutil

    from biobench.cli import main
    from biobench.results import leaderboard as lb

    root = tmp_path_factory.mktemp("board")
    shutil.copytree(FIXTURE_RECORDS, root / "leaderboard" / "results")
    (root / "README.md").write_text(f"# biobench\n\n## Leaderboard\n\n{lb.README_START}\n{lb.README_END}\n\nMore text.\n")
    args = ["leaderboard", "--results", str(root / "leaderboard" / "results"), "--out", str(root / "leaderboard"),
            "--readme", str(root / "README.md")]
    assert main([*args, "--check"]) == 1  # nothing rendered yet
    assert main(args) == 0
    return root
