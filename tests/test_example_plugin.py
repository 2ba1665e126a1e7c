"""The third-party path: a package with an entry point adds a rule, with no edit of biobench."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from helpers import record_file

from biobench.plugin_api.registry import load_registry

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "plugins" / "examples" / "biobench-drtp"


def _fake_installed_distribution(site: Path) -> None:
    """Lay out a distribution the way pip installs it: a dist-info folder with entry points."""
    info = site / "biobench_drtp_copy-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: biobench-drtp-copy\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[biobench]\ndrtp-copy = drtp_copy\n")
    source = (EXAMPLE / "biobench_drtp" / "__init__.py").read_text()
    source = source.replace('name = "drtp"', 'name = "drtp-copy"')
    (site / "drtp_copy.py").write_text(source)


def _run_cli(args: list[str], site: Path, **env: str) -> subprocess.CompletedProcess:
    environ = dict(os.environ, PYTHONPATH=str(site), **env)
    return subprocess.run(
        [sys.executable, "-m", "biobench.cli", *args], capture_output=True, text=True, env=environ,
        timeout=300,
    )


def test_a_distribution_on_the_path_shows_up_in_plugins_and_runs(tmp_path, data_dir):
    site = tmp_path / "site"
    _fake_installed_distribution(site)
    listing = _run_cli(["plugins", "--json"], site)
    assert listing.returncode == 0, listing.stderr
    rules = {r["name"]: r for r in json.loads(listing.stdout)["rule"]}
    assert rules["drtp-copy"]["distribution"] == "biobench-drtp-copy"
    assert rules["drtp-copy"]["version"] == "0.1.0"

    out = tmp_path / "results"
    run = _run_cli(
        ["run", "--arch", "mlp", "--rule", "drtp-copy", "--profile", "smoke", "--out", str(out),
         "--data-dir", data_dir],
        site,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    record = json.loads(record_file(out, "mnist__mlp__drtp-copy__smoke__seed0").read_text())
    assert record["status"] == "ok"
    assert record["config"]["rule"]["distribution"] == "biobench-drtp-copy"


def test_installed_example_is_listed_when_installed():
    registry = load_registry(disable=[], only=[])
    if "drtp" not in registry.rules:  # the README's set-up command installs it
        import pytest

        pytest.skip("biobench-drtp is not installed in this environment")
    assert registry.rules["drtp"].source.distribution == "biobench-drtp"


def _load_example_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("drtp_under_test", EXAMPLE / "biobench_drtp" / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_drtp_update_matches_hand_computation():
    """2 -> 2 -> 2 network, relu hidden; hidden grad = ((B^T y*) * f'(z1)) x^T, output grad local."""
    from biobench import Network, PlasticLinear
    from biobench_plugins.architectures.mlp import MLP

    drtp = _load_example_module()
    fc1 = PlasticLinear("fc1", 2, 2, activation=torch.relu)
    fc2 = PlasticLinear("fc2", 2, 2)
    with torch.no_grad():
        fc1.weight.copy_(torch.tensor([[1.0, -1.0], [0.5, 2.0]]))
        fc1.bias.zero_()
        fc2.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        fc2.bias.zero_()
    net = Network(torch.nn.Sequential(fc1, fc2), [fc1, fc2], MLP())
    rule = drtp.DirectRandomTargetProjection()
    rule.bind(net, torch.Generator().manual_seed(0))
    with torch.no_grad():
        rule.projection_0.copy_(torch.tensor([[0.5, -1.0], [2.0, 3.0]]))  # (classes, hidden)
    x = torch.tensor([[1.0, 2.0]])
    y = torch.tensor([1])
    rule.compute_update(x, y, torch.nn.functional.cross_entropy)
    # z1 = [1-2, 0.5+4] = [-1, 4.5] -> relu' = [0, 1]; B^T y* = row 1 of B = [2, 3]
    # delta1 = [0, 3]; grad W1 = delta1^T x = [[0, 0], [3, 6]]
    assert torch.allclose(fc1.weight.grad, torch.tensor([[0.0, 0.0], [3.0, 6.0]]))
    assert torch.allclose(fc1.bias.grad, torch.tensor([0.0, 3.0]))
    # output: h = [0, 4.5], logits = h; softmax([0, 4.5]) - onehot(1)
    p = torch.softmax(torch.tensor([0.0, 4.5]), 0)
    e = p - torch.tensor([0.0, 1.0])
    assert torch.allclose(fc2.weight.grad, torch.outer(e, torch.tensor([0.0, 4.5])), atol=1e-6)
