"""Forward-Forward and its goodness MLP (ff-mlp) on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from biobench_plugins.architectures.ff_mlp import GoodnessLayer, GoodnessMLP
from biobench_plugins.rules.forward_forward import ForwardForward


def small_network(first_goodness_layer=1):
    """4 inputs (the first 2 hold the label), 2 classes, two ReLU layers of 2 units with set weights."""
    network = GoodnessMLP(hidden=[2, 2], first_goodness_layer=first_goodness_layer).build(
        4, 2, torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        first, second = network.layers
        first.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]))
        second.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 1.0]]))
        first.bias.zero_()
        second.bias.zero_()
    return network


X = torch.tensor([[0.3, 0.7, 1.0, 0.0]])


def test_the_layer_update_on_a_hand_computed_case():
    layer = GoodnessLayer("ff1", 3, 2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))
    rule = ForwardForward()  # theta = 1 per unit: 2
    # inputs of RMS 1: y+ = relu(2, -1) = (2, 0), G+ = 4; y- = relu(0, 1) = (0, 1), G- = 1
    positive, negative = torch.tensor([[1.0, -1.0, 1.0]]), torch.tensor([[1.0, 1.0, -1.0]])
    pos_post, neg_post = rule.layer_update(layer, positive, negative)
    assert torch.equal(pos_post, torch.tensor([[2.0, 0.0]])) and torch.equal(neg_post, torch.tensor([[0.0, 1.0]]))
    # half the gradient of softplus(2 - 4) + softplus(1 - 2): -(1 - p+) y+ z+ + p- y- z-, p = sigma(G - 2)
    a, b = 2 * (1 - 1 / (1 + math.exp(-2.0))), 1 / (1 + math.exp(1.0))  # 0.238406, 0.268941
    assert a == pytest.approx(0.238406, abs=1e-6) and b == pytest.approx(0.268941, abs=1e-6)
    expected = torch.tensor([[-a, a, -a], [b, b, -b]])
    assert torch.allclose(layer.weight.grad, expected, atol=1e-6)
    assert torch.allclose(layer.bias.grad, torch.tensor([-a, b]), atol=1e-6)


def test_label_embedding_normalisation_and_goodness_logits_by_hand():
    network = small_network(first_goodness_layer=1)
    module = network.module
    embedded = module.embed_label(X, torch.tensor([1]))
    assert torch.equal(embedded, torch.tensor([[0.0, 1.0, 1.0, 0.0]]))
    assert torch.equal(module.embed_neutral(X), torch.tensor([[0.5, 0.5, 1.0, 0.0]]))
    assert torch.allclose(module.normalize(embedded), torch.tensor([[0.0, 2**0.5, 2**0.5, 0.0]]))
    # label 0: z1 = (1.414, 0, 1.414, 0) -> y1 = (1.414, 1.414), G1 = 4 -> z2 = (1, 1) -> y2 = (2, 1), G2 = 5
    # label 1: z1 = (0, 1.414, 1.414, 0) -> y1 = (0, 1.414), G1 = 2 -> z2 = (0, 1.414) -> y2 = (0, 1.414), G2 = 2
    assert torch.allclose(network(X), torch.tensor([[9.0, 4.0]]), atol=1e-5)
    assert torch.allclose(small_network(first_goodness_layer=2)(X), torch.tensor([[5.0, 2.0]]), atol=1e-5)
    # a batch: each row gets its own scores
    two = torch.cat([X, torch.tensor([[0.0, 0.0, 0.0, 2.0]])])
    scores = network(two)
    assert scores.shape == (2, 2) and torch.allclose(scores[0], torch.tensor([9.0, 4.0]), atol=1e-5)


def test_signals_record_one_neutral_label_pass():
    network = small_network()
    logits, signals = network.forward_with_signals(X)
    assert torch.allclose(logits, torch.tensor([[9.0, 4.0]]), atol=1e-5)
    first, second = signals
    assert not first.time_major and first.post.shape == (1, 2) and second.post.shape == (1, 2)
    neutral = network.module.normalize(network.module.embed_neutral(X))
    assert torch.allclose(first.pre, neutral)
    assert torch.allclose(second.pre, network.module.normalize(first.post))
    assert network(X).shape == (1, 2) and not any(layer.recording for layer in network.layers)


def test_forward_forward_trains_each_layer_on_its_own_inputs_only():
    torch.manual_seed(0)
    x = torch.rand(8, 4)
    y = torch.randint(0, 2, (8,))
    updates = []
    for upper_scale in (1.0, 3.0):
        network = small_network()
        with torch.no_grad():
            network.layers[1].weight.mul_(upper_scale)
        rule = ForwardForward()
        rule.bind(network, torch.Generator().manual_seed(1))
        rule.negative_labels = lambda logits, labels: 1 - labels  # the one wrong label of 2 classes
        loss, logits = rule.compute_update(x, y, F.cross_entropy)
        assert torch.allclose(loss, F.cross_entropy(logits, y))
        updates.append(network.layers[0].weight.grad.clone())
        # the first layer's update is its own layer update on the embedded, normalised data
        module, check = network.module, GoodnessLayer("c", 4, 2, torch.Generator().manual_seed(0))
        with torch.no_grad():
            check.weight.copy_(network.layers[0].weight)
            check.bias.copy_(network.layers[0].bias)
        rule.layer_update(check, module.normalize(module.embed_label(x, y)), module.normalize(module.embed_label(x, 1 - y)))
        assert torch.allclose(check.weight.grad, updates[-1], atol=1e-7)
    assert torch.allclose(updates[0], updates[1])  # no gradient crosses layers


def test_negative_labels_are_wrong_and_hard_ones_follow_the_softmax_of_the_goodness():
    network = small_network()
    rule = ForwardForward()
    rule.bind(network, torch.Generator().manual_seed(2))
    n = 20000
    logits = torch.tensor([[5.0, 0.0, math.log(3.0)]]).repeat(n, 1)
    y = torch.zeros(n, dtype=torch.long)
    hard = rule.negative_labels(logits, y)
    assert (hard != 0).all()
    assert (hard == 2).float().mean().item() == pytest.approx(0.75, abs=0.015)  # 3 / (1 + 3)
    uniform = ForwardForward(negatives="uniform")
    uniform.bind(network, torch.Generator().manual_seed(2))
    labels = uniform.negative_labels(logits, y)
    assert (labels != 0).all() and (labels == 2).float().mean().item() == pytest.approx(0.5, abs=0.015)


def test_backprop_through_the_goodness_logits_stays_finite_when_a_layer_is_silent():
    network = small_network()
    with torch.no_grad():
        network.layers[0].bias.fill_(-100.0)  # every first-layer unit off: its normalised output is 0
    loss = F.cross_entropy(network(X), torch.tensor([0]))
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in network.module.parameters())


def test_ff_mlp_refuses_impossible_configurations():
    with pytest.raises(ValueError, match="first_goodness_layer=2"):
        GoodnessMLP(hidden=[10]).build(784, 10, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="at least 2 outputs"):
        GoodnessMLP(hidden=[10, 10]).build(784, 1, torch.Generator().manual_seed(0))
    network = GoodnessMLP().build(784, 10, torch.Generator().manual_seed(0))
    assert [layer.out_features for layer in network.layers] == [1000, 1000, 1000]
    w = network.layers[1].weight
    assert w.std().item() == pytest.approx(1000**-0.5, rel=0.02) and torch.count_nonzero(network.layers[1].bias) == 0


def test_the_default_optimiser_is_hintons_smoothed_sgd_with_weight_cost_on_weights_only():
    from biobench import OptimizerSettings

    network = small_network()
    rule = ForwardForward()
    rule.bind(network, torch.Generator().manual_seed(0))
    optimizer = rule.configure_optimizer(rule.trainable_parameters(), OptimizerSettings.resolve(rule.optimizer))
    assert isinstance(optimizer, torch.optim.SGD)
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.002 and plain["weight_decay"] == 0.0
    assert decayed["lr"] == 1e-3 and decayed["momentum"] == 0.9
    assert {id(p) for p in decayed["params"]} == {id(layer.weight) for layer in network.layers}
    assert {id(p) for p in plain["params"]} == {id(layer.bias) for layer in network.layers}
