"""Weight and node perturbation: the estimator's equation, exact restoration, and the small-noise limit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from biobench import per_example_losses
from biobench_plugins.architectures.mlp import MLP
from biobench_plugins.rules.backprop import Backprop
from biobench_plugins.rules.node_perturbation import NodePerturbation
from biobench_plugins.rules.weight_perturbation import WeightPerturbation

W1 = [[0.5, -0.3, 0.2], [-0.4, 0.1, 0.6]]
B1 = [0.1, -0.2]
W2 = [[0.7, -0.5], [0.3, 0.8]]
B2 = [0.05, -0.05]
X = torch.tensor([[1.0, 0.5, 0.25], [0.2, 0.9, 0.4], [0.6, 0.1, 0.8]])
Y = torch.tensor([0, 1, 1])


def tiny_network(hidden=(2,), inputs=3, classes=2, explicit=True):
    network = MLP(hidden=list(hidden), activation="tanh").build(
        inputs, classes, torch.Generator().manual_seed(0)
    )
    if explicit:
        with torch.no_grad():
            for layer, (w, b) in zip(network.layers, [(W1, B1), (W2, B2)], strict=True):
                layer.weight.copy_(torch.tensor(w))
                layer.bias.copy_(torch.tensor(b))
    return network


def numpy_losses(params, x, y, noise=(0.0, 0.0)):
    """Per-example cross-entropy of the tanh 3-2-2 network, with optional drive noise per layer."""
    w1, b1, w2, b2 = params
    h = np.tanh(x @ w1.T + b1 + noise[0])
    z = h @ w2.T + b2 + noise[1]
    z = z - z.max(1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -log_p[np.arange(len(y)), y], h


def as_numpy(network):
    return [p.detach().numpy().astype(np.float64) for p in network.module.parameters()]


def test_weight_perturbation_update_follows_the_estimator_equation():
    sigma = 0.05
    network = tiny_network()
    rule = WeightPerturbation(sigma=sigma)
    rule.bind(network, torch.Generator().manual_seed(3))
    state = rule.noise_generator.get_state()
    before = [p.detach().clone() for p in network.module.parameters()]
    loss, logits = rule.compute_update(X, Y, F.cross_entropy)

    replay = torch.Generator()
    replay.set_state(state)
    noises = [torch.randn(p.shape, generator=replay).numpy().astype(np.float64) * sigma for p in before]
    params = [p.numpy().astype(np.float64) for p in before]
    x, y = X.numpy().astype(np.float64), Y.numpy()
    clean = numpy_losses(params, x, y)[0].mean()
    perturbed = numpy_losses([p + n for p, n in zip(params, noises, strict=True)], x, y)[0].mean()
    for param, noise in zip(network.module.parameters(), noises, strict=True):
        expected = (perturbed - clean) * noise / sigma**2
        np.testing.assert_allclose(param.grad.numpy(), expected, rtol=2e-3, atol=1e-6)
    # weights restored bit for bit; loss is the clean one
    assert all(torch.equal(p.detach(), b) for p, b in zip(network.module.parameters(), before, strict=True))
    assert abs(float(loss) - clean) < 1e-6
    assert torch.allclose(logits, network(X))


def test_weight_perturbation_averages_several_perturbations():
    network = tiny_network()
    rule = WeightPerturbation(sigma=0.05, perturbations=3)
    rule.bind(network, torch.Generator().manual_seed(3))
    state = rule.noise_generator.get_state()
    rule.compute_update(X, Y, F.cross_entropy)
    got = [p.grad.clone() for p in network.module.parameters()]

    single = tiny_network()
    for p in single.module.parameters():
        p.grad = None
    one = WeightPerturbation(sigma=0.05)
    one.bind(single, torch.Generator().manual_seed(0))
    one.noise_generator.set_state(state)
    for _ in range(3):  # three single estimates from the same noise stream, accumulated
        one.compute_update(X, Y, F.cross_entropy)
    for g, p in zip(got, single.module.parameters(), strict=True):
        assert torch.allclose(g, p.grad / 3, rtol=1e-5, atol=1e-7)


def test_node_perturbation_update_follows_the_estimator_equation():
    sigma = 0.05
    network = tiny_network()
    rule = NodePerturbation(sigma=sigma)
    rule.bind(network, torch.Generator().manual_seed(3))
    state = rule.noise_generator.get_state()
    loss, logits = rule.compute_update(X, Y, F.cross_entropy)

    replay = torch.Generator()
    replay.set_state(state)
    noise1 = torch.randn(3, 2, generator=replay).numpy().astype(np.float64) * sigma
    noise2 = torch.randn(3, 2, generator=replay).numpy().astype(np.float64) * sigma
    params = as_numpy(network)
    x, y = X.numpy().astype(np.float64), Y.numpy()
    clean, h = numpy_losses(params, x, y)
    noisy, _ = numpy_losses(params, x, y, noise=(noise1, noise2))
    coefficient = (noisy - clean) / sigma**2
    expected = [
        (coefficient[:, None] * noise1).T @ x / 3,
        (coefficient[:, None] * noise1).mean(0),
        (coefficient[:, None] * noise2).T @ h / 3,  # the clean pass's pre-synaptic activity
        (coefficient[:, None] * noise2).mean(0),
    ]
    for param, want in zip(network.module.parameters(), expected, strict=True):
        np.testing.assert_allclose(param.grad.numpy(), want, rtol=2e-3, atol=1e-6)
    assert all(layer.drive_noise is None for layer in network.layers)
    assert abs(float(loss) - clean.mean()) < 1e-6
    assert torch.allclose(logits, network(X))


def test_per_example_losses_match_an_unreduced_cross_entropy():
    logits = torch.randn(7, 4, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2])
    expected = F.cross_entropy(logits, y, reduction="none")
    assert torch.allclose(per_example_losses(F.cross_entropy, logits, y), expected)

    def unbatchable(lo, t):  # vmap cannot batch .item(): the loop fallback is used
        return F.cross_entropy(lo, t) + 0.0 * lo.sum().item()

    assert torch.allclose(per_example_losses(unbatchable, logits, y), expected)


def cosine_to_gradient(rule_cls, sigma, network, x, y, draws):
    for p in network.module.parameters():
        p.grad = None
    backprop = Backprop()
    backprop.bind(network, torch.Generator().manual_seed(0))
    backprop.compute_update(x, y, F.cross_entropy)
    gradient = torch.cat([p.grad.flatten() for p in network.module.parameters()])
    for p in network.module.parameters():
        p.grad = None
    rule = rule_cls(sigma=sigma)
    rule.bind(network, torch.Generator().manual_seed(5))
    for _ in range(draws):  # .grad accumulates: the sum of the estimates
        rule.compute_update(x, y, F.cross_entropy)
    average = torch.cat([p.grad.flatten() for p in network.module.parameters()]) / draws
    return F.cosine_similarity(average, gradient, dim=0).item()


@pytest.mark.parametrize(("rule_cls", "batch", "draws"), [(WeightPerturbation, 8, 1000), (NodePerturbation, 256, 200)])
def test_average_update_approaches_the_gradient_as_the_noise_shrinks(rule_cls, batch, draws):
    network = tiny_network(hidden=(4,), explicit=False)
    x = torch.rand(batch, 3, generator=torch.Generator().manual_seed(1))
    y = (x[:, 0] + x[:, 1] > 1).long()  # a learnable labelling: a sizeable batch gradient
    cosines = [cosine_to_gradient(rule_cls, s, network, x, y, draws) for s in (10.0, 1.0, 0.01)]
    assert cosines[0] + 0.05 < cosines[1] and cosines[1] + 0.02 < cosines[2]
    assert cosines[0] < 0.8 and cosines[2] > 0.98
