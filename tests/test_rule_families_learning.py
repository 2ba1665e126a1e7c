"""Weight mirror, PEPITA, DTP, DRL and Forward-Forward learn MNIST through the harness (slow tier).

One epoch on the first 10,000 training images (100 updates of 100 images), smoke profile
otherwise (1,000 test images, chance 0.1, sd 0.01). Each bound is far above chance and
below the value seed 0 reaches (noted beside it), so a rule that stops learning fails.
"""

from __future__ import annotations

import dataclasses

import pytest
from helpers import run_context

from biobench.results import records
from biobench.training import runner

CASES = [
    # (architecture, rule, architecture options, bound; seed 0 reached)
    ("mlp", "weight_mirror", (), 0.8),  # 0.873
    ("mlp", "pepita", (), 0.7),  # 0.802
    ("mlp", "difference_target_propagation", (("hidden", [256, 256]), ("activation", "tanh")), 0.65),  # 0.778
    ("mlp", "difference_reconstruction_loss", (("hidden", [256, 256]), ("activation", "tanh")), 0.65),  # 0.809
    ("ff-mlp", "forward_forward", (("hidden", [500, 500]),), 0.5),  # 0.665
]


@pytest.mark.slow
@pytest.mark.parametrize(("architecture", "rule", "options", "bound"), CASES, ids=[c[1] for c in CASES])
def test_the_rule_learns_mnist_within_100_updates(tmp_path, data_dir, architecture, rule, options, bound):
    ctx = run_context(tmp_path, data_dir)
    (spec,) = runner.plan_grid(ctx.registry, ["mnist"], [architecture], [rule], [0], "smoke")
    spec = dataclasses.replace(spec, run_options=(("train_subset", 10000),), architecture_options=options)
    runner.execute(spec, ctx)
    stored = records.read_record(ctx.record_path(spec))
    assert stored["status"] == "ok", stored["reason"]
    assert stored["metrics"]["test_acc"] > bound, stored["metrics"]["test_acc"]
