"""The spiking network's budget and SAL's feedback alignment during training."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from biobench.training import runner


def test_ci_budget_of_the_snn_is_recorded_in_the_config(registry):
    (spec,) = runner.plan_grid(registry, ["mnist"], ["snn"], ["backprop"], [0], "ci")
    resolved = runner.resolve(spec, registry)
    architecture, profile, config = resolved.architecture, resolved.profile, resolved.config
    assert (architecture.config["hidden"], architecture.config["num_steps"]) == ([128], 10)
    assert (profile.epochs, profile.train_subset) == (1, 20000)
    assert config["run"]["train_subset"] == 20000


def _angle(a: torch.Tensor, b: torch.Tensor) -> float:
    return math.degrees(math.acos(float((a * b).sum() / (a.norm() * b.norm()))))


@pytest.mark.slow
def test_sal_aligns_feedback_during_training_faster_than_feedback_alignment(registry, data_dir):
    """Same network, data and initial B: after 100 updates SAL's B is much closer to W than FA's."""
    from biobench.data import load_mnist_arrays, to_tensors

    arrays = load_mnist_arrays(data_dir)
    x, y = to_tensors(arrays.train_images[:10000], arrays.train_labels[:10000])
    angles = {}
    for name in ("feedback_alignment", "spike_alignment_learning"):
        generator = torch.Generator().manual_seed(0)
        network = registry.get("architecture", "snn").cls(hidden=32, num_steps=8).build(784, 10, generator)
        rule = registry.get("rule", name).cls()
        rule.bind(network, generator)
        start = _angle(rule.feedback_weights()["fc2"], network.layers[1].weight)
        optimizer = rule.configure_optimizer(rule.trainable_parameters())
        for step in range(100):
            optimizer.zero_grad(set_to_none=True)
            batch = slice(100 * step, 100 * step + 100)
            rule.compute_update(x[batch], y[batch], nn.functional.cross_entropy)
            optimizer.step()
            rule.after_step()
        angles[name] = (start, _angle(rule.feedback_weights()["fc2"], network.layers[1].weight.detach()))
    fa, sal = angles["feedback_alignment"], angles["spike_alignment_learning"]
    assert fa[0] == pytest.approx(sal[0])  # the same initial feedback matrix
    assert sal[1] < 60.0
    assert sal[1] < fa[1] - 15.0
