"""Feedback alignment, sign symmetry, Kolen-Pollack and direct feedback alignment.

Each update is checked against its equation written out independently here (numpy),
on tiny networks with explicit weights, plus the limits that must hold.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from biobench import OptimizerSettings
from biobench_plugins.architectures.mlp import MLP
from biobench_plugins.rules.backprop import Backprop
from biobench_plugins.rules.direct_feedback_alignment import DirectFeedbackAlignment
from biobench_plugins.rules.feedback_alignment import FeedbackAlignment
from biobench_plugins.rules.kolen_pollack import KolenPollack
from biobench_plugins.rules.sign_symmetry import SignSymmetry

X = torch.tensor([[1.0, 0.5, 0.25], [0.2, 0.9, 0.4]])
Y = torch.tensor([0, 1])
W1 = [[0.5, -0.3, 0.2], [-0.4, 0.1, 0.6]]
B1 = [0.1, -0.2]
W2 = [[0.7, -0.5], [0.3, 0.8]]
B2 = [0.05, -0.05]


def tiny_network(hidden=(2,), activation="relu", weights=None, inputs=3, classes=2):
    """An MLP with the given widths; ``weights`` is a list of (W, b) set explicitly."""
    network = MLP(hidden=list(hidden), activation=activation).build(
        inputs, classes, torch.Generator().manual_seed(0)
    )
    if weights is not None:
        with torch.no_grad():
            for layer, (w, b) in zip(network.layers, weights, strict=True):
                layer.weight.copy_(torch.tensor(w))
                layer.bias.copy_(torch.tensor(b))
    return network


def zero_grads(network, rule=None):
    for p in network.module.parameters():
        p.grad = None
    if rule is not None:
        for p in rule.parameters():
            p.grad = None


def softmax_error(z, y):
    """e = dL/dz for the batch-mean cross-entropy."""
    z = z - z.max(1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    return (p - np.eye(z.shape[1])[y]) / len(y)


def one_hidden_expected(feedback, activation="relu"):
    """Local updates of the 3-2-2 network with ``g_in = e @ feedback`` (numpy)."""
    x, y = X.numpy().astype(np.float64), Y.numpy()
    w1, b1, w2, b2 = (np.array(a, dtype=np.float64) for a in (W1, B1, W2, B2))
    a1 = x @ w1.T + b1
    h = np.maximum(a1, 0.0) if activation == "relu" else np.tanh(a1)
    dh = (a1 > 0).astype(float) if activation == "relu" else 1.0 - np.tanh(a1) ** 2
    e = softmax_error(h @ w2.T + b2, y)
    delta1 = (e @ np.array(feedback, dtype=np.float64)) * dh
    return {"W1": delta1.T @ x, "b1": delta1.sum(0), "W2": e.T @ h, "b2": e.sum(0)}


def grads_of(network):
    (l1, l2) = network.layers
    return {"W1": l1.weight.grad, "b1": l1.bias.grad, "W2": l2.weight.grad, "b2": l2.bias.grad}


def assert_grads(network, expected):
    for key, grad in grads_of(network).items():
        np.testing.assert_allclose(grad.numpy(), expected[key], rtol=1e-5, atol=1e-7, err_msg=key)


def bind(rule, network, seed=1):
    rule.bind(network, torch.Generator().manual_seed(seed))
    return rule


def test_feedback_alignment_update_on_a_hand_built_network():
    network = tiny_network(weights=[(W1, B1), (W2, B2)])
    rule = bind(FeedbackAlignment(), network)
    feedback = [[1.0, -2.0], [0.5, 0.25]]
    rule.feedback_1.copy_(torch.tensor(feedback))
    loss, logits = rule.compute_update(X, Y, F.cross_entropy)
    assert_grads(network, one_hidden_expected(feedback))
    # the first example's second hidden unit is silent (drive -0.4, ReLU' = 0): that unit's
    # update comes from the second example alone, so it is proportional to its input
    ratio = network.layers[0].weight.grad[1] / X[1]
    assert torch.allclose(ratio, ratio[0].expand(3)) and ratio[0].abs() > 1e-3
    assert torch.allclose(loss, F.cross_entropy(logits, Y))
    assert all(layer.feedback is None for layer in network.layers)  # hooks removed afterwards


def test_feedback_alignment_with_the_forward_matrix_as_feedback_is_backprop():
    network = tiny_network(hidden=(16, 8), activation="tanh", inputs=20, classes=5)
    x = torch.rand(32, 20, generator=torch.Generator().manual_seed(3))
    y = torch.randint(0, 5, (32,), generator=torch.Generator().manual_seed(4))
    reference = bind(Backprop(), network)
    reference.compute_update(x, y, F.cross_entropy)
    expected = [p.grad.clone() for p in network.module.parameters()]
    zero_grads(network)
    rule = bind(FeedbackAlignment(), network)
    for name, layer in zip(("feedback_1", "feedback_2"), network.layers[1:], strict=True):
        getattr(rule, name).copy_(layer.weight.detach())
    rule.compute_update(x, y, F.cross_entropy)
    got = [p.grad for p in network.module.parameters()]
    assert len(got) == 6
    for g, e in zip(got, expected, strict=True):
        assert torch.allclose(g, e, rtol=1e-6, atol=1e-8)
    # and with its own random feedback the hidden updates differ from backprop's
    zero_grads(network)
    bind(FeedbackAlignment(), network, seed=7).compute_update(x, y, F.cross_entropy)
    assert not torch.allclose(network.layers[0].weight.grad, expected[0], atol=1e-4)


def test_feedback_alignment_matrices_are_fixed_seeded_and_shaped_like_the_forward_matrix():
    network = tiny_network(hidden=(6, 4), inputs=10, classes=3)
    a = bind(FeedbackAlignment(), network, seed=5).feedback_weights()
    b = bind(FeedbackAlignment(), network, seed=5).feedback_weights()
    assert set(a) == {"fc2", "fc3"}
    assert a["fc2"].shape == (4, 6) and a["fc3"].shape == (3, 4)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["fc2"].abs().max() <= 1 / 6**0.5  # U(-1/sqrt(in), 1/sqrt(in))
    rule = bind(FeedbackAlignment(), network, seed=5)
    rule.compute_update(torch.rand(4, 10), torch.tensor([0, 1, 2, 0]), F.cross_entropy)
    assert torch.equal(rule.feedback_weights()["fc2"], a["fc2"])  # not learned


def test_sign_symmetry_update_uses_the_signs_of_the_forward_weights():
    network = tiny_network(weights=[(W1, B1), (W2, B2)])
    rule = bind(SignSymmetry(), network)
    rule.compute_update(X, Y, F.cross_entropy)
    assert_grads(network, one_hidden_expected([[1.0, -1.0], [1.0, 1.0]]))
    assert torch.equal(rule.feedback_weights()["fc2"], torch.tensor([[1.0, -1.0], [1.0, 1.0]]))


def test_kolen_pollack_feedback_gets_the_forward_update():
    network = tiny_network(weights=[(W1, B1), (W2, B2)])
    rule = bind(KolenPollack(), network)
    feedback = [[-0.2, 0.9], [0.4, -0.6]]
    with torch.no_grad():
        rule.feedback_matrices["1"].copy_(torch.tensor(feedback))
    rule.compute_update(X, Y, F.cross_entropy)
    expected = one_hidden_expected(feedback)
    assert_grads(network, expected)
    matrix = rule.feedback_matrices["1"]
    np.testing.assert_allclose(matrix.grad.numpy(), expected["W2"], rtol=1e-5, atol=1e-7)
    assert torch.equal(matrix.grad, network.layers[1].weight.grad)


def test_kolen_pollack_on_a_deeper_network_mirrors_every_forward_update():
    network = tiny_network(hidden=(12, 7), activation="tanh", inputs=9, classes=4)
    rule = bind(KolenPollack(), network)
    x = torch.rand(16, 9, generator=torch.Generator().manual_seed(2))
    y = torch.randint(0, 4, (16,), generator=torch.Generator().manual_seed(3))
    rule.compute_update(x, y, F.cross_entropy)
    for key, layer in (("1", network.layers[1]), ("2", network.layers[2])):
        assert torch.allclose(rule.feedback_matrices[key].grad, layer.weight.grad, rtol=1e-6, atol=1e-9)


def test_kolen_pollack_feedback_converges_to_the_forward_matrix():
    lr, decay, steps = 1e-2, 10.0, 100
    network = tiny_network(hidden=(12, 7), activation="tanh", inputs=9, classes=4)
    rule = bind(KolenPollack(), network)
    optimiser = rule.configure_optimizer(
        rule.trainable_parameters(), OptimizerSettings(name="adamw", lr=lr, weight_decay=decay)
    )
    pairs = [(network.layers[1].weight, rule.feedback_matrices["1"]),
             (network.layers[2].weight, rule.feedback_matrices["2"])]
    start = [(w.detach() - b.detach()).clone() for w, b in pairs]
    generator = torch.Generator().manual_seed(11)

    def cosine(w, b):
        return F.cosine_similarity(w.detach().flatten(), b.detach().flatten(), dim=0).item()

    cosines = [[cosine(w, b) for w, b in pairs]]
    for _ in range(steps):
        optimiser.zero_grad(set_to_none=True)
        x = torch.rand(16, 9, generator=generator)
        y = torch.randint(0, 4, (16,), generator=generator)
        rule.compute_update(x, y, F.cross_entropy)
        optimiser.step()
        cosines.append([cosine(w, b) for w, b in pairs])
    shrink = (1 - lr * decay) ** steps
    for (w, b), difference in zip(pairs, start, strict=True):
        # W - B = (1 - lr * decay)^t (W0 - B0): identical Adam steps, identical decay
        assert torch.allclose(w.detach() - b.detach(), shrink * difference, atol=1e-5)
    assert max(cosines[0]) < 0.5 and min(cosines[-1]) > 0.999
    # weight decay only on the forward weights that have a feedback partner, and on the partners
    decayed, plain = optimiser.param_groups
    assert decayed["weight_decay"] == decay and plain["weight_decay"] == 0.0
    ids = {id(p) for p in decayed["params"]}
    assert ids == {id(w) for w, _ in pairs} | {id(b) for _, b in pairs}
    assert id(network.layers[0].weight) not in ids and id(network.layers[1].bias) not in ids


def test_direct_feedback_alignment_sends_the_output_error_to_each_hidden_layer():
    weights = [
        ([[0.2, -0.1, 0.4], [0.3, 0.5, -0.2], [-0.6, 0.1, 0.2], [0.1, 0.1, 0.1]], [0.0, 0.1, -0.1, 0.2]),
        ([[0.3, -0.2, 0.1, 0.5], [-0.4, 0.2, 0.6, -0.1], [0.2, 0.2, -0.3, 0.4]], [0.05, -0.05, 0.0]),
        ([[0.5, -0.4, 0.3], [-0.2, 0.6, 0.1]], [0.1, -0.1]),
    ]
    network = tiny_network(hidden=(4, 3), activation="tanh", weights=weights)
    rule = bind(DirectFeedbackAlignment(), network)
    d1 = [[0.3, -0.7, 0.2, 0.5], [-0.4, 0.1, 0.9, -0.3]]
    d2 = [[0.8, -0.2, 0.4], [0.1, 0.6, -0.5]]
    rule.direct_feedback_0.copy_(torch.tensor(d1))
    rule.direct_feedback_1.copy_(torch.tensor(d2))
    loss, logits = rule.compute_update(X, Y, F.cross_entropy)

    x = X.numpy().astype(np.float64)
    (w1, b1), (w2, b2), (w3, b3) = ((np.array(w), np.array(b)) for w, b in weights)
    a1 = x @ w1.T + b1
    h1 = np.tanh(a1)
    a2 = h1 @ w2.T + b2
    h2 = np.tanh(a2)
    e = softmax_error(h2 @ w3.T + b3, Y.numpy())
    delta2 = (e @ np.array(d2)) * (1 - np.tanh(a2) ** 2)
    delta1 = (e @ np.array(d1)) * (1 - np.tanh(a1) ** 2)
    expected = [delta1.T @ x, delta1.sum(0), delta2.T @ h1, delta2.sum(0), e.T @ h2, e.sum(0)]
    for param, want in zip(network.module.parameters(), expected, strict=True):
        np.testing.assert_allclose(param.grad.numpy(), want, rtol=1e-5, atol=1e-7)
    shapes = {k: tuple(v.shape) for k, v in rule.feedback_weights().items()}
    assert shapes == {"fc1": (2, 4), "fc2": (2, 3)}
    assert torch.allclose(loss, F.cross_entropy(logits, Y))
    assert all(layer.feedback is None for layer in network.layers)


def test_direct_feedback_alignment_with_the_output_weights_is_backprop_for_one_hidden_layer():
    network = tiny_network(hidden=(16,), activation="tanh", inputs=20, classes=5)
    x = torch.rand(32, 20, generator=torch.Generator().manual_seed(3))
    y = torch.randint(0, 5, (32,), generator=torch.Generator().manual_seed(4))
    bind(Backprop(), network).compute_update(x, y, F.cross_entropy)
    expected = [p.grad.clone() for p in network.module.parameters()]
    zero_grads(network)
    rule = bind(DirectFeedbackAlignment(), network)
    rule.direct_feedback_0.copy_(network.layers[1].weight.detach())  # (classes, hidden)
    rule.compute_update(x, y, F.cross_entropy)
    for param, want in zip(network.module.parameters(), expected, strict=True):
        assert torch.allclose(param.grad, want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("rule_cls", [FeedbackAlignment, SignSymmetry, KolenPollack, DirectFeedbackAlignment])
def test_feedback_rules_leave_weights_untouched_and_return_the_current_loss(rule_cls):
    network = tiny_network(hidden=(5,), inputs=4, classes=3)
    rule = bind(rule_cls(), network)
    before = [p.detach().clone() for p in network.module.parameters()]
    x, y = torch.rand(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    loss, logits = rule.compute_update(x, y, F.cross_entropy)
    after = list(network.module.parameters())
    assert all(torch.equal(a.detach(), b) for a, b in zip(after, before, strict=True))
    with torch.no_grad():
        assert torch.allclose(loss, F.cross_entropy(network(x), y))
    assert rule_cls.requires == {"differentiable", "feedback"}
