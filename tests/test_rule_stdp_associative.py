"""Gupta's STDP-derived associative rule, its sigmoid MLP, its pairing check and the digit-pair tasks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from biobench_plugins.architectures.mlp import MLP, SigmoidMLP
from biobench_plugins.rules.stdp_associative import StdpAssociative, stdp_change
from biobench_plugins.tasks.mnist import Mnist


def test_stdp_change_by_hand():
    pre = torch.tensor([[0.8, 0.2, 0.0, 0.5]])
    post = torch.tensor([[0.5, 0.6]])
    change = stdp_change(pre, post, 1e-9)
    assert change.shape == (1, 2, 4)
    # x=0.8, p=0.5: 0.512 * 0.5 * 0.3 / (0.2^2 + 1e-9) = 0.0768 / 0.04 = 1.92
    assert change[0, 0, 0].item() == pytest.approx(1.92, rel=1e-6)
    # x=0.2, p=0.6: 0.008 * 0.6 * (-0.4) / (1.0^2 + 1e-9) = -0.00192 (post fires first: depression)
    assert change[0, 1, 1].item() == pytest.approx(-0.00192, rel=1e-6)
    # a silent pre-synaptic unit never changes its synapses
    assert change[0, :, 2].abs().max().item() == 0.0
    # equal rates (x = p = 0.5): no change
    assert change[0, 0, 3].item() == 0.0
    # x = 2p: the (2p - x)^2 term vanishes and epsilon alone bounds the change
    assert stdp_change(torch.tensor([[0.5]]), torch.tensor([[0.25]]), 1e-9).item() == pytest.approx(
        0.125 * 0.25 * 0.25 / 1e-9, rel=1e-5
    )


def test_associativities_are_balanced_and_opposite_for_the_two_labels():
    generator = torch.Generator().manual_seed(0)
    binary = StdpAssociative.draw_associativities(32, 2, generator)
    assert binary.shape == (2, 32)
    assert torch.equal(binary[0], -binary[1])
    assert binary[1].sum() == 0 and set(binary.unique().tolist()) == {-1.0, 1.0}
    multi = StdpAssociative.draw_associativities(7, 10, generator)
    assert multi.shape == (10, 7)
    assert (multi.sum(1) == 1).all()  # 4 x +1 and 3 x -1 per class when the width is odd
    assert len({tuple(row.tolist()) for row in multi}) > 1  # drawn per class


def test_stdp_update_on_a_tiny_sigmoid_network():
    network = SigmoidMLP(hidden=[2]).build(3, 2, torch.Generator().manual_seed(0))
    w1 = np.array([[0.5, -0.3, 0.2], [-0.4, 0.1, 0.6]])
    w2 = np.array([[0.7, -0.5], [0.3, 0.8]])
    with torch.no_grad():
        network.layers[0].weight.copy_(torch.tensor(w1))
        network.layers[1].weight.copy_(torch.tensor(w2))
        for layer in network.layers:
            layer.bias.zero_()
    rule = StdpAssociative()
    rule.bind(network, torch.Generator().manual_seed(0))
    table = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])  # (class, hidden unit)
    rule.associativity_0.copy_(table)
    x = torch.tensor([[1.0, 0.5, 0.25], [0.2, 0.9, 0.4]])
    y = torch.tensor([0, 1])
    before = [p.detach().clone() for p in network.module.parameters()]
    loss, logits = rule.compute_update(x, y, F.cross_entropy)

    xs = x.numpy().astype(np.float64)
    h = 1 / (1 + np.exp(-(xs @ w1.T)))
    out = 1 / (1 + np.exp(-(h @ w2.T)))

    def expected(pre, post, z):
        total = np.zeros((post.shape[1], pre.shape[1]))
        for n in range(len(pre)):
            for k in range(post.shape[1]):
                for i in range(pre.shape[1]):
                    a, p = pre[n, i], post[n, k]
                    total[k, i] += z[n, k] * a**3 * p * (a - p) / ((2 * p - a) ** 2 + 1e-9)
        return -total / len(pre)  # descent convention: .grad = -dW / eta

    hidden_z = table.numpy()[y.numpy()]
    output_z = np.array([[1.0, -1.0], [-1.0, 1.0]])  # +1 for the target unit, -1 for the other
    np.testing.assert_allclose(network.layers[0].weight.grad.numpy(), expected(xs, h, hidden_z), rtol=1e-4)
    np.testing.assert_allclose(network.layers[1].weight.grad.numpy(), expected(h, out, output_z), rtol=1e-4)
    assert all(layer.bias.grad is None for layer in network.layers)  # biases keep their values
    assert all(torch.equal(p.detach(), b) for p, b in zip(network.module.parameters(), before, strict=True))
    assert torch.allclose(loss, F.cross_entropy(logits, y))


def test_stdp_on_relu_mlp_is_unsupported_with_a_precise_reason(registry):
    reason = registry.unsupported_reason(MLP(), StdpAssociative, Mnist())
    assert reason is not None
    assert "bounded_rate" in reason and "'relu'" in reason and "mlp-sigmoid" in reason
    assert registry.unsupported_reason(SigmoidMLP(), StdpAssociative, Mnist()) is None


def test_sigmoid_mlp_is_the_papers_network_and_keeps_its_promise():
    network = SigmoidMLP().build(784, 2, torch.Generator().manual_seed(0))
    assert [(layer.in_features, layer.out_features) for layer in network.layers] == [(784, 32), (32, 16), (16, 2)]
    with torch.no_grad():
        _, signals = network.forward_with_signals(torch.rand(5, 784))
    assert all(0.0 <= float(s.post.min()) and float(s.post.max()) <= 1.0 for s in signals[:-1])
    assert "bounded_rate" in SigmoidMLP.capabilities and "bounded_rate" not in MLP.capabilities
    with pytest.raises(ValueError, match="only uses sigmoid"):
        SigmoidMLP(activation="relu").build(784, 2, torch.Generator().manual_seed(0))


def test_digit_pair_tasks_keep_two_digits_with_binary_labels(registry, data_dir):
    from biobench.data import load_mnist_arrays

    names = {f"mnist-0v{k}" for k in range(1, 6)}
    assert names <= set(registry.tasks)
    task = registry.get("task", "mnist-0v3").cls()
    assert task.num_classes == 2 and task.input_size == 784
    data = task.load(data_dir)
    arrays = load_mnist_arrays(data_dir)
    train_labels = arrays.train_labels[:55000]
    assert len(data.train_y) == int(((train_labels == 0) | (train_labels == 3)).sum())
    assert int(data.train_y.sum()) == int((train_labels == 3).sum())
    val_labels = arrays.train_labels[55000:]
    assert len(data.val_y) == int(((val_labels == 0) | (val_labels == 3)).sum())
    assert len(data.test_y) == int(((arrays.test_labels == 0) | (arrays.test_labels == 3)).sum())
    assert set(data.test_y.unique().tolist()) == {0, 1}
    zero_images = arrays.test_images[arrays.test_labels == 0].reshape(-1, 784) / 255.0
    assert torch.allclose(data.test_x[data.test_y == 0], torch.from_numpy(zero_images).float())
    assert 0.0 <= float(data.train_x.min()) and float(data.train_x.max()) <= 1.0
