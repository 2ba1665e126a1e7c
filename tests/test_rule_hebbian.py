"""Supervised Hebbian learning, plain and with Oja's normalisation: hand-computed updates and stability.

The 3-2-2 ReLU network below has hidden rates h = [0.5, 0] for the first example
(drives 0.5 and -0.4) and h = [0.01, 0.05] for the second (drives 0.01 and 0.05);
the expected numbers were worked out by hand from these.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from biobench import OptimizerSettings
from biobench_plugins.architectures.mlp import MLP
from biobench_plugins.rules.hebbian import SupervisedHebbian
from biobench_plugins.rules.hebbian_oja import HebbianOja

X = torch.tensor([[1.0, 0.5, 0.25], [0.2, 0.9, 0.4]])
Y = torch.tensor([0, 1])
W1 = [[0.5, -0.3, 0.2], [-0.4, 0.1, 0.6]]
B1 = [0.1, -0.2]
W2 = [[0.7, -0.5], [0.3, 0.8]]
B2 = [0.05, -0.05]


def tiny_network():
    network = MLP(hidden=[2], activation="relu").build(3, 2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for layer, (w, b) in zip(network.layers, [(W1, B1), (W2, B2)], strict=True):
            layer.weight.copy_(torch.tensor(w))
            layer.bias.copy_(torch.tensor(b))
    return network


def bound(rule, network):
    rule.bind(network, torch.Generator().manual_seed(0))
    return rule


def close(tensor, expected):
    return torch.allclose(tensor, torch.tensor(expected), atol=1e-6)


def test_plain_hebbian_update_by_hand():
    network = tiny_network()
    loss, logits = bound(SupervisedHebbian(), network).compute_update(X, Y, F.cross_entropy)
    fc1, fc2 = network.layers
    # -(1/2) sum_n h_n x_n^T
    assert close(fc1.weight.grad, [[-0.251, -0.1295, -0.0645], [-0.005, -0.0225, -0.01]])
    assert close(fc1.bias.grad, [-0.255, -0.025])
    # output clamped to the one-hot target: -(1/2) sum_n t_n h_n^T
    assert close(fc2.weight.grad, [[-0.25, 0.0], [-0.005, -0.025]])
    assert close(fc2.bias.grad, [-0.5, -0.5])
    assert torch.allclose(loss, F.cross_entropy(logits, Y))


def test_oja_update_by_hand():
    network = tiny_network()
    bound(HebbianOja(), network).compute_update(X, Y, F.cross_entropy)
    fc1, fc2 = network.layers
    # -(1/2) (H^T X - (H^T H) W1), with H^T H = [[0.2501, 0.0005], [0.0005, 0.0025]]
    assert close(fc1.weight.grad, [[-0.188575, -0.16699, -0.03934], [-0.005375, -0.02245, -0.0092]])
    assert close(fc1.bias.grad, [-0.242545, -0.025225])
    # clamped output, T^T T = I: -(1/2) (T^T H - W2)
    assert close(fc2.weight.grad, [[0.1, -0.25], [0.145, 0.375]])
    assert close(fc2.bias.grad, [-0.475, -0.525])


def test_hebbian_rules_leave_weights_untouched():
    for rule_cls in (SupervisedHebbian, HebbianOja):
        network = tiny_network()
        before = [p.detach().clone() for p in network.module.parameters()]
        bound(rule_cls(), network).compute_update(X, Y, F.cross_entropy)
        assert all(torch.equal(p.detach(), b) for p, b in zip(network.module.parameters(), before, strict=True))
        assert rule_cls.requires == {"signals", "dense", "rate"}


def weight_norms_after_training(rule_cls, steps):
    network = MLP(hidden=[8], activation="relu").build(12, 3, torch.Generator().manual_seed(0))
    rule = bound(rule_cls(), network)
    optimiser = rule.configure_optimizer(rule.trainable_parameters(), OptimizerSettings(lr=0.01))
    generator = torch.Generator().manual_seed(1)
    prototypes = torch.rand(3, 12, generator=generator)
    norms = []
    for _ in range(steps):
        y = torch.randint(0, 3, (32,), generator=generator)
        x = (prototypes[y] + 0.1 * torch.rand(32, 12, generator=generator)).clamp(0, 1)
        optimiser.zero_grad(set_to_none=True)
        rule.compute_update(x, y, F.cross_entropy)
        optimiser.step()
        norms.append(max(layer.weight.detach().norm(dim=1).max().item() for layer in network.layers))
    return norms, network, prototypes


def test_oja_keeps_weights_bounded_where_plain_hebbian_grows_without_limit():
    plain, _, _ = weight_norms_after_training(SupervisedHebbian, 400)
    oja, network, prototypes = weight_norms_after_training(HebbianOja, 400)
    assert plain[-1] > 1.8 * plain[199] > 5.0  # keeps growing, linearly in the steps
    assert max(oja) < 3.0 and abs(oja[-1] - oja[199]) < 0.25  # settles
    fc1, fc2 = network.layers
    assert fc1.weight.detach().norm(dim=1).max() < 1.05  # Oja's fixed points have unit norm
    # the clamped output rows converge to the mean hidden activity of their class
    with torch.no_grad():
        class_means = torch.relu((prototypes + 0.05) @ fc1.weight.T + fc1.bias)
    assert F.cosine_similarity(fc2.weight, class_means, dim=1).min() > 0.95
    ratio = fc2.weight.detach().norm(dim=1) / class_means.norm(dim=1)
    assert ((ratio > 0.9) & (ratio < 1.1)).all()
