"""Difference target propagation and the difference reconstruction loss on hand-computed cases."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from biobench import Network, OptimizerSettings
from biobench_plugins.architectures.mlp import MLP
from biobench_plugins.rules.difference_reconstruction_loss import DifferenceReconstructionLoss
from biobench_plugins.rules.difference_target_propagation import DifferenceTargetPropagation

X = torch.tensor([[1.0, 2.0]])
Y = torch.tensor([1])
NOISE = torch.tensor([[0.1, -0.1]])


def network_of(weights, activation="relu"):
    """An MLP whose layers get the given (W, b) pairs."""
    sizes = [len(weights[0][0][0])] + [len(w) for w, _ in weights]
    network = MLP(hidden=sizes[1:-1], activation=activation).build(
        sizes[0], sizes[-1], torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        for layer, (w, b) in zip(network.layers, weights, strict=True):
            layer.weight.copy_(torch.tensor(w))
            layer.bias.copy_(torch.tensor(b))
    return network


def hand_network():
    # layer 1: ReLU, W1 = I (drives positive, so f' = 1); layer 2: linear logits
    return network_of([([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0]), ([[1.0, 1.0], [0.0, 1.0]], [0.0, 0.0])])


def bind(rule_cls, network, **options):
    rule = rule_cls(**options)
    rule.bind(network, torch.Generator().manual_seed(1))
    return rule


def set_identity_feedback(rule):
    with torch.no_grad():
        rule.feedback_matrices["1"].copy_(torch.eye(2))
        rule.feedback_biases["1"].zero_()


def test_dtp_targets_and_updates_on_a_hand_computed_case():
    network = hand_network()
    rule = bind(DifferenceTargetPropagation, network, target_stepsize=0.5, sigma=0.1, feedback_activation="linear")
    set_identity_feedback(rule)
    rule.reconstruction_noise = lambda like: NOISE.clone()
    loss, logits = rule.compute_update(X, Y, F.cross_entropy)
    # h1 = (1, 2), h2 = (3, 2), e = softmax(h2) - (0, 1) = (0.731059, -0.731059)
    assert torch.allclose(logits, torch.tensor([[3.0, 2.0]]))
    assert loss.item() == pytest.approx(1.313262, abs=1e-6)
    # t2 = h2 - 0.5 e = (2.634471, 2.365529); t1 = h1 + g2(t2) - g2(h2) = (0.634471, 2.365529)
    _, signals = network.forward_with_signals(X)
    t2 = torch.tensor([[3.0, 2.0]]) - 0.5 * torch.tensor([[0.731059, -0.731059]])
    t1, t2_again = rule.targets(t2, signals)
    assert torch.allclose(t1, torch.tensor([[0.634471, 2.365529]]), atol=1e-6)
    assert torch.equal(t2_again, t2)
    # W.grad = 2 f'(u) (h - t)^T h_prev; here 2 beta = 1, so the output layer gets backprop's gradient
    expected = torch.tensor([[0.731059, 1.462117], [-0.731059, -1.462117]])
    first, second = network.layers
    assert torch.allclose(second.weight.grad, expected, atol=1e-5)
    assert torch.allclose(second.bias.grad, torch.tensor([0.731059, -0.731059]), atol=1e-6)
    # the hidden layer's DTP update differs from backprop's [[0.731059, 1.462117], [0, 0]]
    assert torch.allclose(first.weight.grad, expected, atol=1e-5)
    assert torch.allclose(first.bias.grad, torch.tensor([0.731059, -0.731059]), atol=1e-6)
    # reconstruction: h~ = (1.1, 1.9), f2(h~) = (3.0, 1.9) = g2(f2(h~)); loss 100 * mean((1.9, 0)^2) = 180.5
    assert torch.allclose(rule.feedback_matrices["1"].grad, torch.tensor([[570.0, 361.0], [0.0, 0.0]]), atol=1e-3)
    assert torch.allclose(rule.feedback_biases["1"].grad, torch.tensor([190.0, 0.0]), atol=1e-4)
    assert rule.feedback_loss(1, signals, NOISE).item() == pytest.approx(180.5, rel=1e-6)


def test_drl_reconstruction_on_the_same_hand_case():
    network = hand_network()
    rule = bind(DifferenceReconstructionLoss, network, target_stepsize=0.5, sigma=0.1, feedback_activation="linear")
    set_identity_feedback(rule)
    rule.reconstruction_noise = lambda like: NOISE.clone()
    rule.compute_update(X, Y, F.cross_entropy)
    # r1 = h1 + g2(f2(h~)) - g2(h2) = (1.0, 1.9); loss = 100 * mean((r1 - h~)^2) = 0.5
    _, signals = network.forward_with_signals(X)
    assert rule.feedback_loss(1, signals, NOISE).item() == pytest.approx(0.5, rel=1e-5)
    assert torch.allclose(rule.feedback_matrices["1"].grad, torch.tensor([[0.0, 1.0], [0.0, 0.0]]), atol=1e-5)
    assert torch.allclose(rule.feedback_biases["1"].grad, torch.zeros(2), atol=1e-6)  # c cancels in the difference
    # forward updates are DTP's
    expected = torch.tensor([[0.731059, 1.462117], [-0.731059, -1.462117]])
    assert torch.allclose(network.layers[0].weight.grad, expected, atol=1e-5)


def test_updates_are_batch_means_and_the_output_layer_gets_2_beta_over_b_times_backprop():
    network = network_of([
        ([[0.5, -0.3, 0.2], [-0.4, 0.1, 0.6]], [0.1, -0.2]),
        ([[0.7, -0.5], [0.3, 0.8]], [0.05, -0.05]),
    ], activation="tanh")
    x = torch.tensor([[1.0, 0.5, 0.25], [0.2, 0.9, 0.4], [0.3, 0.3, 0.9]])
    y = torch.tensor([0, 1, 1])
    rule = bind(DifferenceTargetPropagation, network, target_stepsize=0.2)
    rule.compute_update(x, y, F.cross_entropy)
    dtp = network.layers[1].weight.grad.clone()
    for p in network.module.parameters():
        p.grad = None
    F.cross_entropy(network(x), y).backward()
    # t_L = h_L - beta dL/dh_L and the loss is a batch mean: 2 beta (e/B) per example, then a batch mean
    assert torch.allclose(dtp, 2 * 0.2 / 3 * network.layers[1].weight.grad, atol=1e-7)


def test_with_exact_inverses_of_a_linear_regime_the_targets_are_consistent_and_both_losses_vanish():
    # positive weights and inputs keep every ReLU in its linear regime
    w = [[1.0, 0.2, 0.1], [0.1, 1.0, 0.3], [0.2, 0.1, 1.0]]
    network = network_of([(w, [0.1, 0.2, 0.3]), (w, [0.0, 0.1, 0.0]), (w, [0.2, 0.0, 0.1])])
    x = torch.tensor([[1.0, 2.0, 0.5], [0.5, 0.4, 1.5]])
    for rule_cls in (DifferenceTargetPropagation, DifferenceReconstructionLoss):
        rule = bind(rule_cls, network, feedback_activation="linear", sigma=0.01)
        inverse = torch.linalg.inv(torch.tensor(w))
        with torch.no_grad():
            for key in ("1", "2"):
                rule.feedback_matrices[key].copy_(inverse)
                # g_l(h) = (h - b_l) W_l^-T inverts f_l exactly (targets would not depend on this bias)
                rule.feedback_biases[key].copy_(-network.layers[int(key)].bias @ inverse.t())
        _, signals = network.forward_with_signals(x)
        output_target = signals[-1].post + torch.tensor([[0.01, -0.02, 0.0], [0.0, 0.01, 0.01]])
        targets = rule.targets(output_target, signals)
        for layer, below, above in zip(network.layers[1:], targets[:-1], targets[1:], strict=True):
            assert torch.allclose(layer(below), above, atol=1e-5)  # f_l(t_{l-1}) = t_l
        noise = rule.reconstruction_noise(signals[1].pre)
        for index in (1, 2):
            assert rule.feedback_loss(index, signals, noise).item() < 1e-6


def test_the_feedback_parameters_get_their_own_step_size_decay_and_betas():
    network = MLP(hidden=[4, 3], activation="tanh").build(5, 2, torch.Generator().manual_seed(0))
    rule = bind(DifferenceReconstructionLoss, network)
    assert [tuple(q.shape) for q in rule.feedback_matrices.values()] == [(4, 3), (3, 2)]
    optimizer = rule.configure_optimizer(rule.trainable_parameters(), OptimizerSettings.resolve(rule.optimizer))
    forward, feedback = optimizer.param_groups
    assert forward["lr"] == pytest.approx(2.968902530985572e-05 / 0.06858850589618244)
    assert forward["betas"] == (0.9, 0.99) and forward["weight_decay"] == 0.0
    assert feedback["lr"] == pytest.approx(2.0123315498373473e-05)
    assert feedback["betas"] == (0.99, 0.999)
    assert feedback["weight_decay"] == pytest.approx(5.384963778780523e-06)
    assert {id(p) for p in feedback["params"]} == {id(p) for p in rule.feedback_parameters()}
    sgd = rule.configure_optimizer(rule.trainable_parameters(), OptimizerSettings(name="sgd", lr=0.1))
    assert "betas" not in sgd.param_groups[1] and sgd.param_groups[1]["lr"] == pytest.approx(2.0123315498373473e-05)


def test_a_network_whose_layers_do_not_chain_is_refused():
    a = MLP(hidden=[4], activation="tanh").build(5, 2, torch.Generator().manual_seed(0))
    b = MLP(hidden=[3], activation="tanh").build(5, 2, torch.Generator().manual_seed(0))
    broken = Network(module=a.module, layers=[a.layers[0], b.layers[1]], architecture=a.architecture)
    with pytest.raises(ValueError, match="chain"):
        bind(DifferenceTargetPropagation, broken)
