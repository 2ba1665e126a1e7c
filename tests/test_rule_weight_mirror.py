"""Weight mirror: the mirror step on hand-computed cases, its fixed point, and the engaged (FA) mode."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from biobench_plugins.architectures.mlp import MLP
from biobench_plugins.rules.backprop import Backprop
from biobench_plugins.rules.weight_mirror import WeightMirror

W2 = [[1.0, 2.0], [3.0, 4.0]]
B0 = [[0.0, 1.0], [1.0, 0.0]]
#: Two noise samples whose sample covariance is the identity.
NOISE = torch.tensor([[1.0, -1.0], [1.0, 1.0]])


def network_2_2_2(w1=((0.5, -0.3), (-0.4, 0.6)), b1=(0.1, 0.2), w2=W2, b2=(0.0, 0.0)):
    network = MLP(hidden=[2], activation="relu").build(2, 2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for layer, (w, b) in zip(network.layers, [(w1, b1), (w2, b2)], strict=True):
            layer.weight.copy_(torch.tensor(w))
            layer.bias.copy_(torch.tensor(b))
    return network


def bound_rule(network, **options):
    options.setdefault("mirror_warmup_steps", 0)
    rule = WeightMirror(**options)
    rule.bind(network, torch.Generator().manual_seed(1))
    return rule


def test_the_mirror_step_on_a_hand_computed_case():
    network = network_2_2_2()
    rule = bound_rule(network, mirror_lr=0.1, mirror_decay=0.5)
    rule.feedback_1.copy_(torch.tensor(B0))
    # y1 = xi1 W^T = (-1, -1), y2 = (3, 7); (1/2) sum y^T xi = W exactly (sample covariance I)
    assert torch.allclose(rule.hebbian_term(network.layers[1], NOISE), torch.tensor(W2))
    rule.mirror({"fc2": NOISE})
    # B1 = B0 + 0.1 (W - 0.5 B0)
    expected = torch.tensor([[0.10, 1.15], [1.25, 0.40]])
    assert torch.allclose(rule.feedback_1, expected, atol=1e-6)
    assert torch.allclose(rule.feedback_weights()["fc2"], expected, atol=1e-6)
    # the forward weights are untouched
    assert torch.equal(network.layers[1].weight.detach(), torch.tensor(W2))


def test_the_authors_sigmoid_response_through_the_bias():
    network = network_2_2_2(b2=(0.5, -1.0))
    rule = bound_rule(network, mirror_response="sigmoid")
    got = rule.hebbian_term(network.layers[1], NOISE)
    # y = sigmoid(xi W^T + b): xi1 -> sigmoid(-0.5, -2.0), xi2 -> sigmoid(3.5, 6.0)
    y1 = 1 / (1 + np.exp(-np.array([-0.5, -2.0])))
    y2 = 1 / (1 + np.exp(-np.array([3.5, 6.0])))
    expected = 0.5 * (np.outer(y1, [1.0, -1.0]) + np.outer(y2, [1.0, 1.0]))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)
    assert got[0, 0].item() == pytest.approx(0.5 * (0.377541 + 0.970688), abs=1e-6)


def test_engaged_mode_carries_the_error_through_the_mirrored_matrix():
    network = network_2_2_2()
    rule = bound_rule(network, mirror_lr=0.1, mirror_decay=0.5)
    rule.feedback_1.copy_(torch.tensor(B0))
    rule.mirror({"fc2": NOISE})
    x = torch.tensor([[1.0, 0.5], [0.2, 0.9]])
    y = torch.tensor([0, 1])
    loss, logits = rule.compute_update(x, y, F.cross_entropy)
    # numpy: hidden delta = (e @ B1) * relu'(a1), e = dL/dlogits of the batch-mean loss
    w1, b1 = np.array([[0.5, -0.3], [-0.4, 0.6]]), np.array([0.1, 0.2])
    a1 = x.numpy() @ w1.T + b1
    h = np.maximum(a1, 0)
    z = h @ np.array(W2).T
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    e = (p - np.eye(2)[y.numpy()]) / 2
    b1_matrix = np.array([[0.10, 1.15], [1.25, 0.40]])
    delta1 = (e @ b1_matrix) * (a1 > 0)
    np.testing.assert_allclose(network.layers[0].weight.grad.numpy(), delta1.T @ x.numpy(), rtol=1e-5)
    np.testing.assert_allclose(network.layers[1].weight.grad.numpy(), e.T @ h, rtol=1e-5)
    # g_in = g_out @ B1 on the notes' example: (0.5, -0.5) @ B1 = (-0.575, 0.375)
    g_in = torch.tensor([[0.5, -0.5]]) @ rule.feedback_1
    assert torch.allclose(g_in, torch.tensor([[-0.575, 0.375]]), atol=1e-6)
    assert torch.allclose(loss, F.cross_entropy(logits, y))
    assert all(layer.feedback is None for layer in network.layers)


def test_with_the_forward_matrix_as_feedback_the_update_is_backprop():
    network = MLP(hidden=[16, 8], activation="tanh").build(20, 5, torch.Generator().manual_seed(2))
    x = torch.rand(32, 20, generator=torch.Generator().manual_seed(3))
    y = torch.randint(0, 5, (32,), generator=torch.Generator().manual_seed(4))
    reference = Backprop()
    reference.bind(network, torch.Generator().manual_seed(0))
    reference.compute_update(x, y, F.cross_entropy)
    expected = [p.grad.clone() for p in network.module.parameters()]
    for p in network.module.parameters():
        p.grad = None
    rule = bound_rule(network)
    for index, layer in enumerate(network.layers[1:], start=1):
        getattr(rule, f"feedback_{index}").copy_(layer.weight.detach())
    before = {k: v.clone() for k, v in rule.feedback_weights().items()}
    rule.compute_update(x, y, F.cross_entropy)
    for p, e in zip(network.module.parameters(), expected, strict=True):
        assert torch.allclose(p.grad, e, rtol=1e-6, atol=1e-8)
    # compute_update leaves the feedback matrices alone; after_step mirrors them
    assert all(torch.equal(before[k], v) for k, v in rule.feedback_weights().items())
    rule.after_step()
    assert all(not torch.equal(before[k], v) for k, v in rule.feedback_weights().items())


def test_the_mirror_converges_to_the_forward_weights_scaled_by_sigma_squared_over_lambda():
    network = MLP(hidden=[30], activation="relu").build(40, 20, torch.Generator().manual_seed(5))
    forward = network.layers[1].weight.detach().clone()
    rule = bound_rule(network, mirror_lr=0.05, mirror_decay=1.0, mirror_sigma=1.0, mirror_batch=256)
    for _ in range(300):
        rule.mirror()
    learned = rule.feedback_1
    # relaxation (1 - 0.05)^300 ~ 2e-7 of the random start is left; the rest is sampling noise
    assert (learned - forward).norm() / forward.norm() < 0.1
    # with lambda = sigma^2 / 4 the fixed point is 4 W
    rule = bound_rule(network, mirror_lr=0.05, mirror_decay=0.25, mirror_sigma=1.0, mirror_batch=256)
    for _ in range(1200):
        rule.mirror()
    assert (rule.feedback_1 - 4 * forward).norm() / (4 * forward.norm()) < 0.1


def test_uniform_noise_has_the_requested_standard_deviation_and_bounds():
    network = network_2_2_2()
    sigma = 0.1 / math.sqrt(12.0)  # the authors' 0.1 * (U[0, 1) - 0.5)
    rule = bound_rule(network, mirror_noise="uniform", mirror_sigma=sigma)
    noise = rule.mirror_noise(200_000, 1)
    assert noise.abs().max() <= 0.05 + 1e-7
    assert noise.std().item() == pytest.approx(sigma, rel=0.01)
    assert abs(noise.mean().item()) < 1e-3 * 0.05 * 10


def test_warmup_mirror_steps_run_at_bind_from_the_rules_own_generator():
    cold = bound_rule(network_2_2_2())
    warm = WeightMirror(mirror_warmup_steps=5)
    warm.bind(network_2_2_2(), torch.Generator().manual_seed(1))
    again = WeightMirror(mirror_warmup_steps=5)
    again.bind(network_2_2_2(), torch.Generator().manual_seed(1))
    assert not torch.equal(cold.feedback_1, warm.feedback_1)
    assert torch.equal(warm.feedback_1, again.feedback_1)
    # five steps of B <- B + 0.01 (H - B) from the same start: B moves towards W by ~1 - 0.99^5
    start = cold.feedback_1
    moved = (warm.feedback_1 - start).norm() / (torch.tensor(W2) - start).norm()
    assert 0.02 < moved < 0.1
