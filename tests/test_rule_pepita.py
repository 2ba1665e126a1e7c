"""PEPITA: two forward passes on a hand-computed case, its limits and its default optimiser."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from biobench import OptimizerSettings
from biobench_plugins.architectures.mlp import MLP
from biobench_plugins.rules.pepita import Pepita


def hand_network():
    """2-2-2, ReLU hidden, identity weights, zero biases."""
    network = MLP(hidden=[2], activation="relu").build(2, 2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for layer in network.layers:
            layer.weight.copy_(torch.eye(2))
            layer.bias.zero_()
    return network


def bind(network, **options):
    rule = Pepita(**options)
    rule.bind(network, torch.Generator().manual_seed(1))
    return rule


@pytest.mark.parametrize(
    ("last_layer_error", "expected_output_grad"),
    [
        # e_mod = softmax(0.9, 1.1) - (1, 0) = (-0.549834, 0.549834), times h1_mod = (0.9, 1.1)
        ("modulated", [[-0.494851, -0.604817], [0.494851, 0.604817]]),
        # e = (-0.5, 0.5) times h1_mod
        ("first", [[-0.45, -0.55], [0.45, 0.55]]),
    ],
)
def test_pepita_on_a_hand_computed_case(last_layer_error, expected_output_grad):
    network = hand_network()
    rule = bind(network, last_layer_error=last_layer_error)
    rule.projection.copy_(0.2 * torch.eye(2))
    x, y = torch.tensor([[1.0, 1.0]]), torch.tensor([0])
    loss, logits = rule.compute_update(x, y, F.cross_entropy)
    # pass 1: h1 = (1, 1), p = (0.5, 0.5), e = (-0.5, 0.5); x_mod = x + e F^T = (0.9, 1.1) = h1_mod
    assert torch.allclose(logits, torch.tensor([[1.0, 1.0]]))
    assert loss.item() == pytest.approx(0.693147, abs=1e-6)
    hidden, output = network.layers
    # W1.grad = (h1 - h1_mod)^T x_mod = (0.1, -0.1)^T (0.9, 1.1)
    assert torch.allclose(hidden.weight.grad, torch.tensor([[0.09, 0.11], [-0.09, -0.11]]), atol=1e-6)
    assert torch.allclose(hidden.bias.grad, torch.tensor([0.1, -0.1]), atol=1e-6)
    assert torch.allclose(output.weight.grad, torch.tensor(expected_output_grad), atol=1e-6)
    assert torch.allclose(output.bias.grad, torch.tensor(expected_output_grad)[:, 0] / 0.9, atol=1e-6)


def test_without_input_modulation_hidden_layers_do_not_learn_and_the_output_layer_gets_backprop():
    network = MLP(hidden=[6, 5], activation="tanh").build(4, 3, torch.Generator().manual_seed(2))
    x = torch.rand(8, 4, generator=torch.Generator().manual_seed(3))
    y = torch.randint(0, 3, (8,), generator=torch.Generator().manual_seed(4))
    rule = bind(network)
    rule.projection.zero_()
    rule.compute_update(x, y, F.cross_entropy)
    for layer in network.layers[:-1]:
        assert torch.count_nonzero(layer.weight.grad) == 0 and torch.count_nonzero(layer.bias.grad) == 0
    got = [p.grad.clone() for p in network.layers[-1].parameters()]
    for p in network.module.parameters():
        p.grad = None
    F.cross_entropy(network(x), y).backward()
    for g, p in zip(got, network.layers[-1].parameters(), strict=True):
        assert torch.allclose(g, p.grad, atol=1e-7)


def test_for_a_small_projection_the_first_layer_update_is_its_linear_response():
    # h1 - h1_mod ~ -f'(u1) * (e F^T W1^T): a feedback-alignment-like signal through W1 F
    network = MLP(hidden=[5], activation="tanh").build(4, 3, torch.Generator().manual_seed(5))
    network.module.double()
    x = torch.rand(6, 4, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    y = torch.randint(0, 3, (6,), generator=torch.Generator().manual_seed(7))
    rule = bind(network, projection_scale=1e-4).double()
    rule.compute_update(x, y, F.cross_entropy)
    layer = network.layers[0]
    e = torch.softmax(network(x), 1) - F.one_hot(y, 3)
    u = x @ layer.weight.t() + layer.bias
    linear = -(1 - torch.tanh(u) ** 2) * (e @ rule.projection.t() @ layer.weight.t())
    expected = linear.t() @ x / len(y)
    assert torch.allclose(layer.weight.grad, expected, rtol=1e-3, atol=1e-4 * expected.abs().max().item())


def test_the_projection_is_he_uniform_times_the_scale():
    network = MLP(hidden=[16]).build(784, 10, torch.Generator().manual_seed(0))
    rule = bind(network)
    bound = 0.05 * (6 / 784) ** 0.5
    assert rule.projection.shape == (784, 10)
    assert rule.projection.abs().max() <= bound and rule.projection.abs().max() > 0.95 * bound
    assert rule.projection.std().item() == pytest.approx(bound / 3**0.5, rel=0.05)


def test_the_default_optimiser_is_the_authors_momentum_sgd_with_step_decay():
    settings = OptimizerSettings.resolve(Pepita.optimizer)
    assert (settings.name, settings.lr, settings.momentum) == ("sgd", 0.1, 0.9)
    assert (settings.schedule, settings.step_epochs, settings.gamma) == ("step", 60, 0.1)
    assert OptimizerSettings.resolve(Pepita.optimizer, {"lr": 0.01}).lr == 0.01
