"""Published setups: every declaration resolves, the MNIST setups say what their sources ran, comparisons read records."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from biobench.cli import main
from biobench.results import reproductions
from biobench.training import runner, setups
from biobench.training.setups import epochs_for, setup_specs
from biobench_plugins.tasks.mnist import AKROUT_ACCURACY, FRENKEL_ERROR, MNIST_SETUPS


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def declared(registry):
    return setups.published_setups(registry)


def test_the_built_in_plugins_declare_at_least_eight_setups_with_unique_ids(declared):
    ids = [d.setup.id for d in declared]
    assert len(ids) >= 8 and len(ids) == len(set(ids))
    assert {s.id for s in MNIST_SETUPS} <= set(ids)


def test_every_declared_setup_resolves_against_its_plugins(declared, registry):
    for d in declared:
        assert d.setup.problems() == [], d.setup.id
        for budget in ("short", "full"):
            specs = setup_specs(d, budget, seeds=1)
            resolved = runner.resolve(specs[0], registry)  # unknown or out-of-range options raise here
            assert resolved.profile.epochs == epochs_for(d.setup, budget)
            for key, value in d.setup.run.items():
                if key != "epochs":
                    assert resolved.config["run"][key] == value, (d.setup.id, key)
            for key, value in d.setup.optimizer.items():
                assert resolved.config["run"]["optimizer"][key] == value, (d.setup.id, key)


def _mnist_setup(setup_id):
    return next(s for s in MNIST_SETUPS if s.id == setup_id)


def test_akrout_setups_draw_weights_from_the_authors_gaussian(registry):
    setup = _mnist_setup("akrout2019_bp_mnist_repository")
    arch_cls = registry.get("architecture", "mlp").cls
    network = arch_cls(**setup.architecture_options).build(784, 10, generator(0))
    first = network.layers[0]
    expected = math.sqrt(1.0 / (784 + 500))  # N(0, 1/(fan_in + fan_out)), FCNN_BP.py
    assert first.weight.std().item() == pytest.approx(expected, rel=0.02)
    assert first.bias.std().item() == pytest.approx(expected, rel=0.2)  # 500 draws
    assert setup.optimizer == {"name": "sgd", "lr": 0.2, "momentum": 0.0, "weight_decay": 0.0}
    published = {v.epoch: v.value for v in setup.published if v.metric == "test_acc"}
    assert published[400] == pytest.approx(AKROUT_ACCURACY["backprop"][400] / 100)


def test_akrout_kolen_pollack_has_no_decay_as_in_the_authors_code():
    setup = _mnist_setup("akrout2019_kp_mnist_repository")
    assert setup.optimizer["weight_decay"] == 0.0 and setup.optimizer["lr"] == 0.3
    metrics = {v.metric for v in setup.published}
    assert metrics == {
        "test_acc", "feedback_angle_curve.per_layer.fc2", "signal_angle_curve.per_example.per_layer.fc1",
    }


def test_frenkel_learning_rate_gives_the_authors_step_under_the_tasks_summed_bce(registry):
    """F.binary_cross_entropy (mean over batch and units) at lr 1e-4 = the task's bce (summed over units) at 1e-5."""
    setup = _mnist_setup("frenkel2021_bp_mnist_500")
    task = registry.get("task", "mnist").cls(**setup.task_options)
    logits = torch.randn(7, 10, generator=generator(1), dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 10, (7,), generator=generator(2))
    authors = torch.autograd.grad(F.binary_cross_entropy(torch.sigmoid(logits), F.one_hot(y, 10).double()), logits)[0]
    ours = torch.autograd.grad(task.loss(logits, y), logits)[0]
    assert torch.allclose(1e-4 * authors, setup.optimizer["lr"] * ours, atol=1e-15)
    assert setup.optimizer["nesterov"] is True and setup.optimizer["momentum"] == 0.9
    assert setup.published[0].value == pytest.approx(1 - FRENKEL_ERROR["backprop"][0] / 100)


def _record(setup_id, budget, acc_history, angle_points, test_acc, seed=0):
    return {
        "run_id": f"r{seed}", "status": "ok", "seed": seed,
        "metrics": {
            "test_acc": test_acc,
            "history": {"test_acc": acc_history},
            "feedback_angle_curve": [{"epoch": e, "per_layer": {"fc2": a}} for e, a in angle_points],
        },
        "provenance": {"reproduction": {
            "setup": setup_id, "budget": budget,
            "published": [
                {"metric": "test_acc", "value": 0.9, "tolerance": 0.01, "what": "acc at 2", "epoch": 2},
                {"metric": "feedback_angle_curve.per_layer.fc2", "value": 30.0, "tolerance": 5.0,
                 "what": "angle at 1", "epoch": 1},
                {"metric": "test_acc", "value": 0.95, "tolerance": 0.01, "what": "final", "epoch": None},
            ],
        }},
    }


def test_comparisons_read_history_curves_and_final_values_by_budget():
    records = [
        _record("s", "short", [0.85, 0.905], [(0, 90.0), (1, 33.0)], 0.905, seed=0),
        _record("s", "short", [0.86, 0.895], [(0, 90.0), (1, 37.0)], 0.895, seed=1),
    ]
    by_key = {(c.metric, c.epoch): c for c in reproductions.compare(records)}
    acc = by_key[("test_acc", 2)]
    assert acc.measured == (0.905, 0.895) and acc.verdict == "agrees"
    angle = by_key[("feedback_angle_curve.per_layer.fc2", 1)]
    assert angle.measured == (33.0, 37.0) and angle.verdict == "agrees"  # mean 35, 5 from 30
    assert by_key[("test_acc", None)].measured == ()  # a final value is compared at the full budget only
    full = reproductions.compare([_record("s", "full", [0.85, 0.90], [(1, 50.0)], 0.93)])
    by_key = {(c.metric, c.epoch): c for c in full}
    assert by_key[("test_acc", None)].verdict == "differs"
    assert by_key[("feedback_angle_curve.per_layer.fc2", 1)].verdict == "differs"


def test_the_reproduction_table_goes_beside_the_records_folder(tmp_path, data_dir, capsys):
    out = tmp_path / "somewhere" / "records"
    out.mkdir(parents=True)
    assert main(["reproduce", "--render", "--out", str(out)]) == 0
    assert (tmp_path / "somewhere" / "REPRODUCTIONS.md").is_file()
