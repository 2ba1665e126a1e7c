"""KAN architecture and KAN rules: equivalence to pykan, hooks, and hand-computed coefficient updates.

The hand-computed cases use a 2 -> 2 -> 2 KAN of piecewise-linear splines (k = 1,
G = 2 intervals) whose basis functions are hats, so every number below can be
checked with pencil and paper:

* layer 1: grid range [-1, 1], knots -2, -1, 0, 1, 2, hats peaking at -1, 0, 1;
* layer 2: grid range [-4, 4], knots -8, -4, 0, 4, 8, hats peaking at -4, 0, 4;
* base function: identity, ``b(x) = x``.

For the input ``x = (0.5, -0.25)``: ``B(0.5) = (0, 0.5, 0.5)`` and
``B(-0.25) = (0.25, 0.75, 0)``.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from biobench import Network, derived_generator
from biobench_plugins.architectures.kan import KAN, KAN_CAPABILITY, KANPlasticLayer
from biobench_plugins.rules.feedback_alignment import FeedbackAlignment
from biobench_plugins.rules.kan_hebbian import KANHebbian
from biobench_plugins.rules.kan_node_perturbation import KANNodePerturbation

X = torch.tensor([[0.5, -0.25]])


def _hat_grid(half_range: float) -> torch.Tensor:
    step = half_range
    knots = torch.tensor([-2 * step, -step, 0.0, step, 2 * step])
    return knots.expand(2, 5).clone()


def tiny_kan() -> Network:
    """The hand-computable 2 -> 2 -> 2 KAN (parameters indexed [in, out, basis])."""
    layer1 = KANPlasticLayer(
        "kan1",
        coef=torch.tensor(
            [[[1.0, 2.0, 3.0], [0.0, -1.0, 1.0]], [[2.0, 0.0, -2.0], [1.0, 1.0, 1.0]]]
        ),
        scale_base=torch.tensor([[0.5, 0.0], [0.0, -1.0]]),
        scale_sp=torch.tensor([[1.0, 2.0], [1.0, 1.0]]),
        grid=_hat_grid(1.0),
        mask=torch.ones(2, 2),
        spline_order=1,
        base_function="identity",
    )
    layer2 = KANPlasticLayer(
        "kan2",
        coef=torch.tensor(
            [[[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], [[-1.0, 1.0, 0.0], [0.0, 0.0, 2.0]]]
        ),
        scale_base=torch.tensor([[0.2, 0.0], [0.0, 0.0]]),
        scale_sp=torch.ones(2, 2),
        grid=_hat_grid(4.0),
        mask=torch.ones(2, 2),
        spline_order=1,
        base_function="identity",
    )
    return Network(module=nn.Sequential(layer1, layer2), layers=[layer1, layer2], architecture=KAN())


# Hand-computed forward pass of tiny_kan on X:
# spline outputs s1[i, o] = sum_k coef B_k(x_i): s1 = [[2.5, 0], [0.5, 1]]
# u1_0 = 0.5*0.5 + 1*2.5 + 0*(-0.25) + 1*0.5 = 3.25;  u1_1 = 0 + 2*0 + (-1)*(-0.25) + 1*1 = 1.25
# layer 2: B(3.25) = (0, 0.1875, 0.8125), B(1.25) = (0, 0.6875, 0.3125)
# s2 = [[0.8125, 0.1875], [0.6875, 0.625]]
# z_0 = 0.2*3.25 + 0.8125 + 0.6875 = 2.15;  z_1 = 0.1875 + 0.625 = 0.8125
HIDDEN = [3.25, 1.25]
LOGITS = [2.15, 0.8125]


def test_tiny_kan_forward_matches_hand_computation():
    net = tiny_kan()
    logits, signals = net.forward_with_signals(X)
    assert torch.allclose(signals[0].drive, torch.tensor([HIDDEN]))
    assert torch.allclose(logits, torch.tensor([LOGITS]))
    assert set(signals[0].extras) == {"basis", "base"}
    assert torch.allclose(signals[0].extras["basis"], torch.tensor([[[0.0, 0.5, 0.5], [0.25, 0.75, 0.0]]]))
    assert torch.allclose(signals[1].extras["basis"], torch.tensor([[[0.0, 0.1875, 0.8125], [0.0, 0.6875, 0.3125]]]))
    assert torch.allclose(signals[0].extras["base"], X)
    assert torch.equal(signals[0].pre, X) and torch.equal(signals[0].post, signals[0].drive)


def test_drive_noise_is_added_to_the_node_sums():
    net = tiny_kan()
    net.layers[1].drive_noise = torch.tensor([[0.5, -1.0]])
    assert torch.allclose(net(X), torch.tensor([[LOGITS[0] + 0.5, LOGITS[1] - 1.0]]))
    with net.plain():
        assert torch.allclose(net(X), torch.tensor([LOGITS]))


def test_kan_hebbian_update_matches_hand_computation():
    """post_o * du_o/dtheta; output clamped to the target (label 1 -> t = (0, 1))."""
    net = tiny_kan()
    rule = KANHebbian()
    rule.bind(net, torch.Generator().manual_seed(0))
    before = [p.detach().clone() for p in net.plastic_parameters()]
    # the same example twice: the batch mean equals the single-example update
    loss, logits = rule.compute_update(X.repeat(2, 1), torch.tensor([1, 1]), F.cross_entropy)
    assert all(torch.equal(a, b) for a, b in zip(before, net.plastic_parameters(), strict=True))
    expected_loss = -LOGITS[1] + math.log(math.exp(LOGITS[0]) + math.exp(LOGITS[1]))
    assert loss.item() == pytest.approx(expected_loss, rel=1e-6)
    layer1, layer2 = net.layers
    # output layer: post = t = (0, 1); dcoef[i, 1, :] = scale_sp * B(h_i); column o = 0 untouched
    assert torch.allclose(
        -layer2.weight.grad,
        torch.tensor([[[0, 0, 0], [0, 0.1875, 0.8125]], [[0, 0, 0], [0, 0.6875, 0.3125]]]),
    )
    assert torch.allclose(-layer2.scale_base.grad, torch.tensor([[0.0, 3.25], [0.0, 1.25]]))
    assert torch.allclose(-layer2.scale_sp.grad, torch.tensor([[0.0, 0.1875], [0.0, 0.625]]))
    # hidden layer: post = u1 = (3.25, 1.25)
    assert torch.allclose(
        -layer1.weight.grad,
        torch.tensor(
            [
                [[0, 1.625, 1.625], [0, 1.25, 1.25]],  # 3.25*1*B(0.5), 1.25*2*B(0.5)
                [[0.8125, 2.4375, 0], [0.3125, 0.9375, 0]],  # 3.25*B(-0.25), 1.25*B(-0.25)
            ]
        ),
    )
    assert torch.allclose(-layer1.scale_base.grad, torch.tensor([[1.625, 0.625], [-0.8125, -0.3125]]))
    assert torch.allclose(-layer1.scale_sp.grad, torch.tensor([[8.125, 0.0], [1.625, 1.25]]))


def _local_derivatives(layer: KANPlasticLayer, x: torch.Tensor, node: int) -> list[torch.Tensor]:
    """du_node/dtheta for one example by autograd (independent of the einsum code)."""
    params = [layer.weight, layer.scale_base, layer.scale_sp]
    with torch.enable_grad():
        u = layer(x)[0, node]
        return list(torch.autograd.grad(u, params))


def test_kan_node_perturbation_update_equals_the_formula_with_the_same_noise():
    """dL/dtheta ~= (1/B) sum_n ((l_n(xi) - l_n(0)) / sigma^2) sum_o xi_no du_no/dtheta."""
    net = tiny_kan()
    x = torch.tensor([[0.5, -0.25], [-0.6, 0.3]])
    y = torch.tensor([1, 0])
    sigma = 0.05
    rule = KANNodePerturbation(sigma=sigma)
    rule.bind(net, torch.Generator().manual_seed(3))
    before = [p.detach().clone() for p in net.plastic_parameters()]
    rule.compute_update(x, y, F.cross_entropy)
    assert all(torch.equal(a, b) for a, b in zip(before, net.plastic_parameters(), strict=True))

    # replay the rule's noise: its generator is derived from the bind generator, layer by layer
    noise_generator = derived_generator(torch.Generator().manual_seed(3))
    xi1 = torch.randn(2, 2, generator=noise_generator) * sigma
    xi2 = torch.randn(2, 2, generator=noise_generator) * sigma
    layer1, layer2 = net.layers
    with torch.no_grad():
        hidden = layer1(x)
        clean = F.cross_entropy(layer2(hidden), y, reduction="none")
        noisy_hidden = layer1(x) + xi1
        noisy = F.cross_entropy(layer2(noisy_hidden) + xi2, y, reduction="none")
    coefficient = (noisy - clean) / sigma**2
    for layer, inputs, xi in ((layer1, x, xi1), (layer2, hidden, xi2)):
        expected = [torch.zeros_like(p) for p in (layer.weight, layer.scale_base, layer.scale_sp)]
        for n in range(2):
            for o in range(2):
                derivatives = _local_derivatives(layer, inputs[n : n + 1], o)
                for e, d in zip(expected, derivatives, strict=True):
                    e += coefficient[n] * xi[n, o] * d / 2
        got = [layer.weight.grad, layer.scale_base.grad, layer.scale_sp.grad]
        for g, e in zip(got, expected, strict=True):
            assert torch.allclose(g, e, atol=1e-5, rtol=1e-4)


def test_kan_node_perturbation_estimates_the_gradient_on_average():
    """Over many noise draws the estimate points along backprop's gradient.

    Every example of a batch gets its own noise, so a batch of 500 copies of two
    examples averages 500 draws per example in one update; its batch-mean loss has
    the same gradient as the two examples'.
    """
    net = tiny_kan()
    x = torch.tensor([[0.5, -0.25], [-0.6, 0.3]])
    y = torch.tensor([1, 0])
    params = net.plastic_parameters()
    with torch.enable_grad():
        true = torch.autograd.grad(F.cross_entropy(net(x), y), params)
    rule = KANNodePerturbation(sigma=1e-3)
    rule.bind(net, torch.Generator().manual_seed(0))
    rule.compute_update(x.repeat(500, 1), y.repeat(500), F.cross_entropy)
    flat_true = torch.cat([t.flatten() for t in true])
    flat_estimate = torch.cat([p.grad.flatten() for p in params])
    assert F.cosine_similarity(flat_true, flat_estimate, dim=0) > 0.95


def test_feedback_alignment_on_kan_sends_the_error_through_the_feedback_matrix():
    net = tiny_kan()
    x = torch.tensor([[0.5, -0.25], [-0.6, 0.3]])
    y = torch.tensor([1, 0])
    rule = FeedbackAlignment()
    rule.bind(net, torch.Generator().manual_seed(1))
    feedback = rule.feedback_weights()["kan2"]
    assert feedback.shape == (net.layers[1].out_features, net.layers[1].in_features) == (2, 2)
    rule.compute_update(x, y, F.cross_entropy)
    layer1, layer2 = net.layers
    with torch.enable_grad():
        hidden = layer1(x)
        logits = layer2(hidden.detach())
        error = torch.autograd.grad(F.cross_entropy(logits, y), logits)[0]
        g_hidden = error @ feedback  # fixed random numbers in place of phi'_{o,i}(h_i)
        expected1 = torch.autograd.grad((hidden * g_hidden).sum(), [layer1.weight, layer1.scale_sp])
        backprop_hidden = torch.autograd.grad(F.cross_entropy(layer2(hidden), y), hidden)[0]
    assert torch.allclose(layer1.weight.grad, expected1[0], atol=1e-6)
    assert torch.allclose(layer1.scale_sp.grad, expected1[1], atol=1e-6)
    assert not torch.allclose(g_hidden, backprop_hidden, atol=1e-3)  # the test can tell FA from BP


def test_forward_matrix_is_the_mean_edge_derivative_on_the_last_input():
    net = tiny_kan()
    layer = net.layers[0]
    # before any forward pass: the mean over the grid knots -1, 0, 1 of phi'
    knots = torch.tensor([[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]])
    assert torch.allclose(layer.forward_matrix(), _mean_jacobian(layer, knots), atol=1e-6)
    x = torch.tensor([[0.5, -0.25], [-0.6, 0.3], [0.1, 0.9]])
    net(x)
    matrix = layer.forward_matrix()
    assert matrix.shape == (layer.out_features, layer.in_features)
    assert torch.allclose(matrix, _mean_jacobian(layer, x), atol=1e-6)
    # hand-computed for x = (0.5, -0.25) alone: d/dx of the hats and the identity base
    net(X)
    # phi'_{o,i} = scale_base_{io} + scale_sp_{io} * sum_k coef_{iok} B_k'(x_i), with the hat slopes
    # B'(0.5) = (0, -1, 1) and B'(-0.25) = (-1, 1, 0)
    expected = torch.tensor([[0.5 + 1 * (-2 + 3), 0 + 1 * (-2 + 0)], [0 + 2 * (1 + 1), -1 + 1 * (-1 + 1)]])
    assert torch.allclose(layer.forward_matrix(), expected)


def _mean_jacobian(layer: KANPlasticLayer, x: torch.Tensor) -> torch.Tensor:
    """mean_b du_b/dx_b by autograd: (out, in)."""
    with torch.enable_grad():
        jac = torch.autograd.functional.jacobian(lambda z: layer._node_sums(z).sum(0), x)
    return jac.mean(1)


def test_basis_derivative_matches_autograd_on_cubic_splines():
    layer = KANPlasticLayer.from_pykan("l", _pykan_layer(3, 2, num=5, k=3, seed=0))
    x = torch.linspace(-1.3, 1.3, 27).reshape(9, 3)
    with torch.enable_grad():
        xg = x.clone().requires_grad_(True)
        basis = layer.basis(xg)
        expected = torch.stack(
            [torch.autograd.grad(basis[:, :, k].sum(), xg, retain_graph=True)[0] for k in range(layer.num_basis)],
            dim=2,
        )
    assert torch.allclose(layer.basis_derivative(x), expected, atol=1e-5)


def _pykan_layer(n_in: int, n_out: int, num: int, k: int, seed: int):
    from kan.KANLayer import KANLayer

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = KANLayer(in_dim=n_in, out_dim=n_out, num=num, k=k)
        with torch.no_grad():  # non-trivial values for every parameter
            layer.coef.normal_()
            layer.scale_base.normal_()
            layer.scale_sp.normal_()
    return layer


def test_layer_equals_pykan_kanlayer():
    reference = _pykan_layer(7, 5, num=5, k=3, seed=1)
    layer = KANPlasticLayer.from_pykan("l", reference)
    x = torch.linspace(-2.5, 2.5, 7 * 13).reshape(13, 7)  # inside and beyond the extended grid
    y, _, postacts, _ = reference(x)
    assert torch.allclose(layer(x), y, atol=1e-5)
    assert torch.allclose(layer.edge_outputs(x), postacts.permute(0, 2, 1), atol=1e-6)
    assert {n for n, _ in layer.named_parameters()} == {"weight", "scale_base", "scale_sp"}
    assert layer.weight.shape == (7, 5, 8) and (layer.in_features, layer.out_features) == (7, 5)


def test_basis_per_distinct_value_equals_b_batch():
    from kan.spline import B_batch

    layer = KANPlasticLayer.from_pykan("l", _pykan_layer(50, 2, num=5, k=3, seed=3))
    pixels = torch.randint(0, 256, (20, 50)) / 255.0  # few distinct values: the gathered path
    continuous = torch.rand(20, 50) * 3 - 1.5  # all distinct: pykan's B_batch directly
    for x in (pixels, continuous):
        assert torch.equal(layer.basis(x), B_batch(x, layer.grid, k=3))
    with torch.enable_grad():  # inputs that need a gradient keep pykan's differentiable path
        x = pixels.clone().requires_grad_(True)
        # sum_k k B_k(x) has slope 1/h = 2.5 inside the grid range (the basis sums to 1 there)
        (layer.basis(x) * torch.arange(8.0)).sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, 2.5), atol=1e-4)


def test_network_equals_pykan_multkan_and_gradients_agree():
    from kan import MultKAN

    with torch.random.fork_rng(devices=[]):
        reference = MultKAN(width=[6, 4, 3], grid=4, k=3, symbolic_enabled=False, save_act=False,
                            auto_save=False, seed=2)
    layers = [KANPlasticLayer.from_pykan(f"kan{i + 1}", sub) for i, sub in enumerate(reference.act_fun)]
    net = Network(module=nn.Sequential(*layers), layers=layers, architecture=KAN())
    x = torch.rand(11, 6)
    y = torch.randint(0, 3, (11,))
    with torch.enable_grad():
        ours = net(x)
        theirs = reference(x)
        assert torch.allclose(ours, theirs, atol=1e-5)
        grads_ours = torch.autograd.grad(F.cross_entropy(ours, y), [layers[0].weight, layers[1].scale_sp])
        sub = reference.act_fun
        grads_theirs = torch.autograd.grad(F.cross_entropy(theirs, y), [sub[0].coef, sub[1].scale_sp])
    for a, b in zip(grads_ours, grads_theirs, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_build_is_seeded_by_the_generator_only():
    arch = KAN(hidden=[3])
    state = torch.random.get_rng_state()
    first = arch.build(8, 2, torch.Generator().manual_seed(5))
    assert torch.equal(torch.random.get_rng_state(), state)
    second = arch.build(8, 2, torch.Generator().manual_seed(5))
    other = arch.build(8, 2, torch.Generator().manual_seed(6))
    pairs = list(zip(first.plastic_parameters(), second.plastic_parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in pairs)
    assert not torch.equal(first.layers[0].weight, other.layers[0].weight)
    assert [layer.weight.shape for layer in first.layers] == [(8, 3, 8), (3, 2, 8)]
    assert len(first.plastic_parameters()) == 6  # coef, scale_base, scale_sp per layer; grid is a buffer


def test_pairing_reasons_for_dense_rules_and_kan_rules(registry):
    task = registry.get("task", "mnist").cls()
    kan, mlp = KAN(), registry.get("architecture", "mlp").cls()
    reason = registry.unsupported_reason(kan, registry.get("rule", "hebbian").cls, task)
    assert reason is not None and "kan_hebbian" in reason and "dense" in reason
    reason = registry.unsupported_reason(kan, registry.get("rule", "node_perturbation").cls, task)
    assert reason is not None and "kan_node_perturbation" in reason
    assert registry.unsupported_reason(mlp, KANHebbian, task) is not None
    assert KAN_CAPABILITY in registry.unsupported_reason(mlp, KANNodePerturbation, task)
    for name in ("backprop", "feedback_alignment", "weight_perturbation", "kan_hebbian", "kan_node_perturbation"):
        assert registry.unsupported_reason(kan, registry.get("rule", name).cls, task) is None
