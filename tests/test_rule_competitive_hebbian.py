"""Krotov & Hopfield's competing hidden units, SoftHebb, their networks and the exact plasticity step."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from biobench import OptimizerSettings, PlasticityOptimizer, build_optimizer
from biobench.plugin_api.optimization import build_scheduler
from biobench_plugins.architectures.competitive_mlp import RectifiedPowerMLP, SoftmaxMLP
from biobench_plugins.architectures.mlp import MLP, SigmoidMLP
from biobench_plugins.rules.krotov_hopfield import (
    KrotovHopfield,
    competing_units_change,
    lebesgue_currents,
    ranking_activity,
)
from biobench_plugins.rules.softhebb import SoftHebb, norm_dependent_rate, softhebb_change
from biobench_plugins.tasks.mnist import Mnist

KROTOV_W = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.5, -0.5]])
KROTOV_V = torch.tensor([[1.0, 0.25]])


# ---------------------------------------------------------------- Krotov & Hopfield


def test_krotov_currents_and_ranking_by_hand():
    # p = 3: I_mu = sum_i sgn(W) |W|^2 v_i: [1, 0.36 + 0.64 * 0.25, 0.25 - 0.25 * 0.25]
    currents = lebesgue_currents(KROTOV_V, KROTOV_W, 3.0)
    torch.testing.assert_close(currents, torch.tensor([[1.0, 0.52, 0.1875]]))
    g = ranking_activity(currents, rank=2, delta=0.4)
    torch.testing.assert_close(g, torch.tensor([[1.0, -0.4, 0.0]]))
    # unit 2, ranked neither first nor k-th, gets no activity and so no update
    g3 = ranking_activity(torch.tensor([[0.2, 0.9, 0.5, 0.1]]), rank=3, delta=0.4)
    torch.testing.assert_close(g3, torch.tensor([[0.0, 1.0, 0.0, 0.0]]) + torch.tensor([[-0.4, 0.0, 0.0, 0.0]]))


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        # p = 2: I = [1, 0.8, 0.375]; ds_0 = v - 1 * [1, 0] = [0, 0.25];
        # ds_1 = -0.4 (v - 0.8 [0.6, 0.8]) = [-0.208, 0.156]; max |ds| = 0.25
        (2.0, [[0.0, 1.0], [-0.832, 0.624], [0.0, 0.0]]),
        # p = 3: I = [1, 0.52, 0.1875]; ds_1 = -0.4 (v - 0.52 [0.6, 0.8]) = [-0.2752, 0.0664]; max = 0.2752
        (3.0, [[0.0, 0.25 / 0.2752], [-1.0, 0.0664 / 0.2752], [0.0, 0.0]]),
    ],
)
def test_krotov_plasticity_by_hand(p, expected):
    change = competing_units_change(KROTOV_V, KROTOV_W, p, rank=2, delta=0.4)
    torch.testing.assert_close(change, torch.tensor(expected), rtol=1e-5, atol=1e-6)


def test_krotov_rows_converge_to_the_unit_lebesgue_sphere():
    """Repeated steps on a few inputs bring every winning row to sum_i |W_i|^p = 1."""
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(4, 5, generator=generator)
    inputs = torch.rand(6, 5, generator=generator)
    for _ in range(3000):
        weight += 0.01 * competing_units_change(inputs, weight, 3.0, rank=2, delta=0.4)
    winners = lebesgue_currents(inputs, weight, 3.0).argmax(1).unique()
    norms = weight.abs().pow(3).sum(1)
    assert len(winners) >= 1
    torch.testing.assert_close(norms[winners], torch.ones(len(winners)), atol=0.05, rtol=0)


def _tiny(architecture, rule, hidden_weight, readout_weight):
    network = architecture.build(2, 2, torch.Generator().manual_seed(0))
    rule.bind(network, torch.Generator().manual_seed(0))
    with torch.no_grad():
        network.layers[0].weight.copy_(hidden_weight)
        network.layers[1].weight.copy_(readout_weight)
        network.layers[1].bias.zero_()
    return network


def test_krotov_rule_update_on_a_tiny_network_by_hand():
    """Hidden: -ds/max|ds| (p = 3, k = 2); read-out: (softmax(S h) - onehot) h^T, h = relu(W v)^4.5."""
    rule = KrotovHopfield(rank=2, lebesgue_p=3.0)
    readout = torch.tensor([[0.5, -0.2, 0.1], [0.0, 0.3, -0.4]])
    network = _tiny(RectifiedPowerMLP(hidden=3), rule, KROTOV_W, readout)
    loss, logits = rule.compute_update(KROTOV_V, torch.tensor([1]), F.cross_entropy)
    expected_hidden = -torch.tensor([[0.0, 0.25 / 0.2752], [-1.0, 0.0664 / 0.2752], [0.0, 0.0]])
    torch.testing.assert_close(network.layers[0].weight.grad, expected_hidden, rtol=1e-5, atol=1e-6)
    h = np.array([1.0, 0.8, 0.375]) ** 4.5  # W v = [1, 0.8, 0.375], all positive
    z = readout.numpy() @ h
    softmax = np.exp(z) / np.exp(z).sum()
    error = softmax - np.array([0.0, 1.0])
    np.testing.assert_allclose(network.layers[1].weight.grad.numpy(), np.outer(error, h), rtol=1e-5)
    np.testing.assert_allclose(network.layers[1].bias.grad.numpy(), error, rtol=1e-5)
    np.testing.assert_allclose(logits.numpy()[0], z, rtol=1e-5)
    assert loss.item() == pytest.approx(-math.log(softmax[1]), rel=1e-5)
    torch.testing.assert_close(network.layers[0].weight, KROTOV_W)  # the weights are left as they were


def test_krotov_binds_normal_weights_and_zeroes_the_hidden_bias_of_an_mlp():
    network = MLP(hidden=[500]).build(784, 10, torch.Generator().manual_seed(0))
    KrotovHopfield().bind(network, torch.Generator().manual_seed(1))
    weight = network.layers[0].weight.detach()
    assert abs(float(weight.mean())) < 0.01 and float(weight.std()) == pytest.approx(1.0, abs=0.01)
    assert float(network.layers[0].bias.abs().max()) == 0.0


# ---------------------------------------------------------------- SoftHebb


def test_softhebb_plasticity_by_hand():
    """W = [[1,0,0],[0,1,0]], x = [1, 0.5, 0], t = 1: u = [1, 0.5], y = softmax(u) = [0.622459, 0.377541].

    dW_0 = y_0 (x - 1 * W_0) = [0, 0.311230, 0]; dW_1 = y_1 (x - 0.5 * W_1) = [0.377541, 0, 0];
    divided by the largest entry 0.377541. Anti-Hebbian: the loser's row changes sign.
    """
    weight = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    x = torch.tensor([[1.0, 0.5, 0.0]])
    ratio = 0.311230 / 0.377541
    torch.testing.assert_close(
        softhebb_change(x, weight, 1.0, anti_hebbian=False), torch.tensor([[0.0, ratio, 0.0], [1.0, 0.0, 0.0]]),
        rtol=1e-5, atol=1e-6,
    )
    torch.testing.assert_close(
        softhebb_change(x, weight, 1.0, anti_hebbian=True), torch.tensor([[0.0, ratio, 0.0], [-1.0, 0.0, 0.0]]),
        rtol=1e-5, atol=1e-6,
    )


def test_softhebb_norm_dependent_rate_by_hand():
    weight = torch.tensor([[2.0, 0.0], [0.0, 0.5], [0.6, 0.8]])  # norms 2, 0.5, 1
    rate = norm_dependent_rate(weight, 0.5)
    torch.testing.assert_close(rate, torch.tensor([1.0, math.sqrt(0.5), 1e-5]), rtol=1e-4, atol=0)


def test_softhebb_rule_update_on_a_tiny_network_by_hand():
    rule = SoftHebb(inverse_temperature=1.0, power_lr=0.5)
    weight = torch.tensor([[2.0, 0.0], [0.0, 0.5]])  # norms 2 and 0.5: factors 1 and sqrt(0.5)
    readout = torch.tensor([[0.5, -0.2], [0.0, 0.3]])
    network = _tiny(SoftmaxMLP(hidden=2, inverse_temperature=5.0), rule, weight, readout)
    x = torch.tensor([[1.0, 0.5]])
    loss, logits = rule.compute_update(x, torch.tensor([0]), F.cross_entropy)
    u = np.array([2.0, 0.25])
    y = np.exp(u) / np.exp(u).sum()
    change = np.stack([y[0] * (x[0].numpy() - u[0] * weight[0].numpy()), y[1] * (x[0].numpy() - u[1] * weight[1].numpy())])
    change /= np.abs(change).max()
    change *= np.array([[1.0], [math.sqrt(0.5)]])
    np.testing.assert_allclose(network.layers[0].weight.grad.numpy(), -change, rtol=1e-4, atol=1e-7)
    h = np.exp(5 * u) / np.exp(5 * u).sum()
    z = readout.numpy() @ h
    error = np.exp(z) / np.exp(z).sum() - np.array([1.0, 0.0])
    np.testing.assert_allclose(network.layers[1].weight.grad.numpy(), np.outer(error, h), rtol=1e-5)


def test_softhebb_binds_the_positive_radius_35_initialisation():
    network = SoftmaxMLP(hidden=400).build(784, 10, torch.Generator().manual_seed(0))
    SoftHebb().bind(network, torch.Generator().manual_seed(1))
    weight = network.layers[0].weight.detach()
    bound = math.sqrt(3 * 35.0**2 / 784)  # 2.1651
    assert float(weight.min()) >= 0.0 and float(weight.max()) <= bound
    assert float(weight.max()) > 0.99 * bound
    assert float(weight.pow(2).sum(1).mean().sqrt()) == pytest.approx(35.0, rel=0.01)


def test_softhebb_rows_converge_to_the_unit_sphere():
    generator = torch.Generator().manual_seed(0)
    weight = 2.0 * torch.rand(3, 4, generator=generator)
    inputs = torch.rand(8, 4, generator=generator)
    for _ in range(4000):
        change = softhebb_change(inputs, weight, 1.0, anti_hebbian=False)
        weight += 0.01 * change
    torch.testing.assert_close(weight.norm(dim=1), torch.ones(3), atol=0.05, rtol=0)


# ---------------------------------------------------------------- optimiser, schedule, pairings


def test_plasticity_optimizer_steps_exactly_and_follows_the_linear_schedule():
    plastic = torch.nn.Parameter(torch.zeros(2))
    other = torch.nn.Parameter(torch.zeros(1))
    optimizer = PlasticityOptimizer([plastic], 0.5, build_optimizer([other], OptimizerSettings(name="sgd", lr=0.1)))
    schedule = build_scheduler(optimizer, OptimizerSettings(schedule="linear"), epochs=4)
    for epoch, factor in enumerate([1.0, 0.75, 0.5, 0.25]):
        before = plastic.detach().clone(), other.detach().clone()
        optimizer.zero_grad()
        plastic.grad = torch.tensor([-1.0, 2.0])
        other.grad = torch.tensor([1.0])
        optimizer.step()
        torch.testing.assert_close(plastic.detach() - before[0], -0.5 * factor * torch.tensor([-1.0, 2.0]))
        torch.testing.assert_close(other.detach() - before[1], torch.tensor([-0.1 * factor]))
        schedule.step()
        assert epoch < 3 or optimizer.param_groups[0]["lr"] == 0.0


def test_a_rule_step_moves_the_hidden_weights_by_exactly_the_plasticity():
    rule = KrotovHopfield(rank=2, plasticity_lr=0.02)
    network = _tiny(RectifiedPowerMLP(hidden=3), rule, KROTOV_W, torch.zeros(2, 3))
    optimizer = rule.configure_optimizer(rule.trainable_parameters())
    optimizer.zero_grad()
    rule.compute_update(KROTOV_V, torch.tensor([0]), F.cross_entropy)
    optimizer.step()
    expected = KROTOV_W + 0.02 * torch.tensor([[0.0, 0.25 / 0.2752], [-1.0, 0.0664 / 0.2752], [0.0, 0.0]])
    torch.testing.assert_close(network.layers[0].weight.detach(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rule", [KrotovHopfield, SoftHebb])
def test_competitive_rules_need_one_hidden_layer_of_static_units(registry, rule):
    task = Mnist()
    for architecture in (MLP(), RectifiedPowerMLP(), SoftmaxMLP()):
        assert registry.unsupported_reason(architecture, rule, task) is None, architecture.name
    reason = registry.unsupported_reason(SigmoidMLP(), rule, task)
    assert reason is not None and "2 hidden layers" in reason and rule.name in reason
    snn = registry.get("architecture", "snn").cls()
    assert "spiking" in registry.unsupported_reason(snn, rule, task)
    kan = registry.get("architecture", "kan").cls()
    assert "dense" in registry.unsupported_reason(kan, rule, task)


def test_the_competitive_networks_have_no_hidden_bias_and_the_papers_activations():
    x = torch.rand(3, 784, generator=torch.Generator().manual_seed(0))
    repu = RectifiedPowerMLP(hidden=20, power=3.0).build(784, 10, torch.Generator().manual_seed(0))
    soft = SoftmaxMLP(hidden=20, inverse_temperature=5.0).build(784, 10, torch.Generator().manual_seed(0))
    for network in (repu, soft):
        assert network.layers[0].bias is None and network.layers[1].bias is not None
    with torch.no_grad():
        _, signals = repu.forward_with_signals(x)
        torch.testing.assert_close(signals[0].post, torch.relu(x @ repu.layers[0].weight.t()).pow(3.0))
        _, signals = soft.forward_with_signals(x)
        torch.testing.assert_close(signals[0].post, torch.softmax(5.0 * x @ soft.layers[0].weight.t(), dim=1))
    assert "rate" in RectifiedPowerMLP.capabilities and "rate" not in SoftmaxMLP.capabilities


@pytest.mark.slow
@pytest.mark.parametrize(
    ("architecture", "rule", "hidden", "epochs", "floor"),
    [("mlp-repu", "krotov_hopfield", 400, 2, 0.75), ("mlp-softmax", "softhebb", 100, 3, 0.8)],
)
def test_competitive_rules_learn_mnist_with_a_small_budget(tmp_path, data_dir, architecture, rule, hidden, epochs, floor):
    """A few epochs on 20,000 images (seed 0): a read-out on features learnt without labels, far above chance
    (measured: 0.84 and 0.87; with 2,000 units and 10 or 5 epochs on all images, 0.954 and 0.956)."""
    from helpers import run_context

    from biobench.training import runner

    spec = runner.RunSpec(
        "mnist", architecture, rule, 0, "full", epochs=epochs,
        architecture_options=(("hidden", hidden),), run_options=(("train_subset", 20000),),
    )
    record = runner.execute(spec, run_context(tmp_path, data_dir))
    assert record["status"] == "ok", record.get("reason")
    assert record["metrics"]["test_acc"] > floor
