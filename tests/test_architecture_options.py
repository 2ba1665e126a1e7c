"""Options of the built-in architectures: depth, initialisation, spiking input and readout, KAN input range.

Every option is validated; depth and initialisation are checked on small networks with
exact expectations; the current encoding, the membrane readouts and the per-step loss
against hand-computed cases; and the default options against the construction the
architectures used before they had these options (bit for bit).
"""

from __future__ import annotations

import math
import re

import pytest
import snntorch as snn
import torch
from torch.nn import functional as F

from biobench import (
    INIT_SCHEMES,
    OptimizerSettings,
    PlasticLinear,
    init_bound_or_std,
    init_matrix,
    initialize_linear,
    per_example_losses,
    step_outputs,
    with_step_outputs,
)
from biobench.training.profiles import get_profile
from biobench_plugins.architectures.kan import KAN
from biobench_plugins.architectures.mlp import MLP, SigmoidMLP
from biobench_plugins.architectures.snn import (
    SNNTORCH_TUTORIAL_5,
    LeakyLinear,
    SpikingMLP,
    SpikingNetwork,
    rate_encode,
)
from biobench_plugins.tasks.mnist import Mnist


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------- validation

BAD_OPTIONS = [
    # (architecture, option, bad value, what the message says)
    (MLP, "hidden", [64, 0], "must be >= 1"),
    (MLP, "hidden", "64", "must be a list"),
    (MLP, "activation", "swish", "is not one of"),
    (MLP, "init", "orthogonal", "is not one of"),
    (MLP, "init_scale", 0.0, "must be > 0.0"),
    (MLP, "init_scale", -1.0, "must be > 0.0"),
    (MLP, "bias_init", "one", "is not one of"),
    (SigmoidMLP, "init", "he", "is not one of"),
    (SpikingNetwork, "hidden", [128, -1], "must be >= 1"),
    (SpikingNetwork, "hidden", 0, "must be >= 1"),
    (SpikingNetwork, "num_steps", 0, "must be >= 1"),
    (SpikingNetwork, "beta", 1.5, "must be <= 1.0"),
    (SpikingNetwork, "beta", -0.1, "must be >= 0.0"),
    (SpikingNetwork, "threshold", 0.0, "must be > 0.0"),
    (SpikingNetwork, "surrogate", "heaviside", "is not one of"),
    (SpikingNetwork, "surrogate_slope", 0.0, "must be > 0.0"),
    (SpikingNetwork, "encoding", "latency", "is not one of"),
    (SpikingNetwork, "readout", "membrane", "is not one of"),
    (SpikingNetwork, "per_step_loss", "max", "is not one of"),
    (SpikingNetwork, "init", "uniformly", "is not one of"),
    (SpikingNetwork, "init_scale", -2.0, "must be > 0.0"),
    (SpikingNetwork, "bias_init", "none", "is not one of"),
    (KAN, "hidden", [16, 0], "must be >= 1"),
    (KAN, "grid_size", 0, "must be >= 1"),
    (KAN, "spline_order", 0, "must be >= 1"),
    (KAN, "grid_range", [1.0, -1.0], "two numbers [low, high] with low < high"),
    (KAN, "grid_range", [0.0], "two numbers [low, high] with low < high"),
    (KAN, "input_range", [1.0, 1.0], "two numbers [low, high] with low < high"),
    (KAN, "input_range", [-1.0, 0.0, 1.0], "two numbers [low, high] with low < high"),
    (KAN, "first_layer_grid", "inputs", "is not one of"),
    (KAN, "base_function", "gelu", "is not one of"),
    (KAN, "init", "lecun", "is not one of"),
    (KAN, "init_scale", 0.0, "must be > 0.0"),
    (KAN, "noise_scale", -0.1, "must be >= 0.0"),
    (KAN, "scale_base_sigma", -1.0, "must be >= 0.0"),
]


@pytest.mark.parametrize(("cls", "option", "value", "message"), BAD_OPTIONS)
def test_bad_architecture_options_are_refused_with_a_clear_message(cls, option, value, message):
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        cls(**{option: value})
    assert option in str(info.value)


def test_every_new_option_is_stored_in_the_config_with_todays_defaults():
    assert MLP().config == {
        "hidden": [256], "activation": "relu", "init": "default", "init_scale": 1.0, "bias_init": "same",
    }
    snn_config = SpikingNetwork().config
    assert {k: snn_config[k] for k in ("hidden", "encoding", "readout", "per_step_loss", "init")} == {
        "hidden": [256], "encoding": "rate", "readout": "spike_count", "per_step_loss": "none", "init": "default",
    }
    kan_config = KAN().config
    assert (kan_config["input_range"], kan_config["first_layer_grid"], kan_config["init"]) == (
        [0.0, 1.0], "grid_range", "default",
    )


def test_an_integer_snn_width_means_one_hidden_layer():
    assert SpikingNetwork(hidden=64).config["hidden"] == [64]


def test_the_sigmoid_mlp_still_refuses_other_activations():
    with pytest.raises(ValueError, match="only uses sigmoid"):
        SigmoidMLP(activation="tanh").build(784, 10, generator())


# ---------------------------------------------------------------------------- depth


def test_mlp_depth_widths_and_activations():
    network = MLP(hidden=[5, 4, 3], activation="tanh").build(7, 2, generator())
    assert [(layer.in_features, layer.out_features) for layer in network.layers] == [(7, 5), (5, 4), (4, 3), (3, 2)]
    assert [layer.activation for layer in network.layers] == [torch.tanh, torch.tanh, torch.tanh, None]
    _, signals = network.forward_with_signals(torch.rand(6, 7))
    assert all(torch.equal(s.post, torch.tanh(s.drive)) for s in signals[:-1])
    assert torch.equal(signals[-1].post, signals[-1].drive)
    assert [(layer.in_features, layer.out_features) for layer in MLP(hidden=[]).build(7, 2, generator()).layers] == [
        (7, 2)
    ]


def test_snn_with_several_hidden_layers_chains_spikes_through_every_layer():
    network = SpikingNetwork(hidden=[6, 5, 4], num_steps=3).build(8, 2, generator())
    assert [(layer.in_features, layer.out_features) for layer in network.layers] == [(8, 6), (6, 5), (5, 4), (4, 2)]
    logits, signals = network.forward_with_signals(torch.rand(2, 8))
    assert [tuple(s.post.shape) for s in signals] == [(3, 2, 6), (3, 2, 5), (3, 2, 4), (3, 2, 2)]
    for below, above in zip(signals, signals[1:], strict=False):
        assert torch.equal(above.pre, below.post)
    assert torch.equal(logits, signals[-1].post.sum(0))


def test_kan_with_several_hidden_layers():
    network = KAN(hidden=[3, 2], grid_size=4, spline_order=2).build(5, 2, generator())
    assert [tuple(layer.weight.shape) for layer in network.layers] == [(5, 3, 6), (3, 2, 6), (2, 2, 6)]
    assert network(torch.rand(4, 5)).shape == (4, 2)


# ---------------------------------------------------------------------------- initialisation


@pytest.mark.parametrize(
    ("scheme", "scale", "kind", "expected"),
    [
        ("default", 2.0, "bound", 2.0 / math.sqrt(300)),
        ("uniform", 0.05, "bound", 0.05),
        ("gaussian", 0.05, "std", 0.05),
        ("xavier_uniform", 1.0, "bound", math.sqrt(6 / 700)),
        ("xavier_uniform", 0.5, "bound", 0.5 * math.sqrt(6 / 700)),
        ("xavier_normal", 1.0, "std", math.sqrt(2 / 700)),
        ("kaiming_uniform", 1.0, "bound", math.sqrt(6 / 300)),
        ("kaiming_normal", 3.0, "std", 3.0 * math.sqrt(2 / 300)),
    ],
)
def test_init_schemes_draw_the_documented_distributions(scheme, scale, kind, expected):
    # (rows, columns) = (fan_out, fan_in) = (400, 300): 120,000 draws
    w = init_matrix(400, 300, scheme, scale, generator())
    assert w.shape == (400, 300) and w.dtype == torch.float32
    assert init_bound_or_std(scheme, scale, 400, 300) == pytest.approx(expected)
    assert abs(float(w.mean())) < 0.01 * expected
    if kind == "bound":
        assert float(w.abs().max()) <= expected
        assert float(w.abs().max()) > 0.999 * expected
        # U(-b, b) has standard deviation b / sqrt(3); 120,000 draws: relative error < 1 %
        assert float(w.std()) == pytest.approx(expected / math.sqrt(3), rel=0.01)
    else:
        assert float(w.std()) == pytest.approx(expected, rel=0.01)
    assert torch.equal(w, init_matrix(400, 300, scheme, scale, generator()))


def test_zero_init_and_bad_init_arguments():
    assert torch.equal(init_matrix(3, 2, "zero", 1.0, generator()), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="unknown initialisation 'orthogonal'"):
        init_matrix(3, 2, "orthogonal", 1.0, generator())
    with pytest.raises(ValueError, match="scale must be positive"):
        init_matrix(3, 2, "uniform", 0.0, generator())
    assert set(INIT_SCHEMES) == {
        "default", "uniform", "gaussian", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "zero",
    }


def test_initialize_linear_draws_biases_from_the_weights_distribution_or_zero():
    layer = PlasticLinear("fc", 300, 400, generator=generator())
    initialize_linear(layer, "xavier_uniform", 1.0, generator(), bias="same")
    bound = math.sqrt(6 / 700)
    assert float(layer.weight.abs().max()) <= bound and float(layer.bias.abs().max()) <= bound
    assert float(layer.bias.abs().max()) > 0.9 * bound
    initialize_linear(layer, "gaussian", 0.1, generator(), bias="zero")
    assert torch.equal(layer.bias, torch.zeros(400))
    assert float(layer.weight.std()) == pytest.approx(0.1, rel=0.01)


def test_default_init_with_a_scale_multiplies_pytorchs_draw_exactly():
    one = MLP(hidden=[20]).build(30, 3, generator())
    two = MLP(hidden=[20], init_scale=2.0).build(30, 3, generator())
    for a, b in zip(one.layers, two.layers, strict=True):
        assert torch.equal(2.0 * a.weight, b.weight) and torch.equal(2.0 * a.bias, b.bias)


@pytest.mark.parametrize("cls", [MLP, SpikingNetwork])
def test_every_dense_layer_gets_its_own_xavier_bound(cls):
    network = cls(hidden=[200, 100], init="xavier_uniform").build(300, 10, generator())
    for layer in network.layers:
        bound = math.sqrt(6 / (layer.in_features + layer.out_features))
        assert float(layer.weight.abs().max()) <= bound
        assert float(layer.weight.abs().max()) > 0.99 * bound
        assert float(layer.weight.std()) == pytest.approx(bound / math.sqrt(3), rel=0.03)


def test_kan_init_draws_scale_base_as_an_out_by_in_matrix():
    layer = KAN(hidden=[], init="kaiming_normal", init_scale=0.5).build(300, 200, generator()).layers[0]
    assert layer.scale_base.shape == (300, 200)
    assert float(layer.scale_base.std()) == pytest.approx(0.5 * math.sqrt(2 / 300), rel=0.01)
    pykan = KAN(hidden=[]).build(300, 200, generator()).layers[0]
    doubled = KAN(hidden=[], init_scale=2.0).build(300, 200, generator()).layers[0]
    assert torch.equal(doubled.scale_base, 2.0 * pykan.scale_base)
    assert torch.equal(doubled.weight, pykan.weight)
    # pykan's default: (0 + 1 * U(-1, 1)) / sqrt(in)
    assert float(pykan.scale_base.abs().max()) <= 1 / math.sqrt(300) + 1e-7


# ---------------------------------------------------------------------------- today's behaviour, bit for bit


def test_default_mlp_is_pytorchs_draw_layer_by_layer():
    g = generator(3)
    expected = [PlasticLinear("fc1", 30, 20, generator=g), PlasticLinear("fc2", 20, 4, generator=g)]
    network = MLP(hidden=[20]).build(30, 4, generator(3))
    for a, b in zip(network.layers, expected, strict=True):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


def test_default_snn_is_built_encoded_and_read_out_as_before():
    g = generator(4)
    layers = [
        LeakyLinear(f"fc{i + 1}", n_in, n_out, neuron=snn.Leaky(beta=0.95), generator=g)
        for i, (n_in, n_out) in enumerate([(30, 12), (12, 4)])
    ]
    encoding_seed = int(torch.randint(0, 2**62, (1,), generator=g))
    network = SpikingNetwork(hidden=[12], num_steps=6).build(30, 4, generator(4))
    assert network.module.encoding_seed == encoding_seed
    for a, b in zip(network.layers, layers, strict=True):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    x = torch.rand(5, 30)
    assert torch.equal(network.module.encode(x), rate_encode(x, 6, encoding_seed))
    logits, signals = network.forward_with_signals(x)
    assert torch.equal(logits, signals[-1].post.sum(0))
    assert step_outputs(logits) is None and not network.layers[-1].keep_membrane


def test_default_kan_sees_the_pixels_unchanged():
    network = KAN(hidden=[4]).build(6, 3, generator())
    x = torch.rand(5, 6)
    assert torch.equal(network(x), network.module(x))
    for layer in network.layers:  # pykan's grid over grid_range, for every layer
        assert float(layer.grid[0, 3]) == -1.0 and float(layer.grid[0, -4]) == 1.0


# ---------------------------------------------------------------------------- spiking input and readout


def tiny_snn(readout: str = "spike_count", per_step_loss: str = "none", **options) -> object:
    """Input 2 -> output 1 LIF neuron, W = [0.6, 0.2], b = 0, beta 0.5, threshold 1, 4 steps."""
    network = SpikingNetwork(
        hidden=[], num_steps=4, beta=0.5, encoding="current", readout=readout, per_step_loss=per_step_loss, **options
    ).build(2, 1, generator())
    with torch.no_grad():
        network.layers[0].weight.copy_(torch.tensor([[0.6, 0.2]]))
        network.layers[0].bias.zero_()
    return network


def test_current_encoding_feeds_the_image_at_every_step():
    network = tiny_snn()
    x = torch.tensor([[1.0, 0.5], [0.0, 0.25]])
    encoded = network.module.encode(x)
    assert encoded.shape == (4, 2, 2)
    assert all(torch.equal(encoded[t], x) for t in range(4))
    # I = 0.6 + 0.1 = 0.7 every step; U = 0.7, 1.05 (spike), 0.525 + 0.7 - 1 = 0.225, 0.8125
    _, signals = network.forward_with_signals(x[:1])
    assert torch.allclose(signals[0].drive.view(4), torch.full((4,), 0.7))
    assert torch.allclose(signals[0].membrane.view(4), torch.tensor([0.7, 1.05, 0.225, 0.8125]))
    assert signals[0].post.view(4).tolist() == [0.0, 1.0, 0.0, 0.0]
    assert torch.equal(signals[0].pre[:, 0], x[:1].expand(4, 2))


@pytest.mark.parametrize(
    ("readout", "logit", "grad"),
    [
        ("spike_count", 1.0, None),
        # mean of U: (0.7 + 1.05 + 0.225 + 0.8125) / 4; dU/dI over the steps 1, 1.5, 1.75, 1.875 (the
        # reset is not differentiated), so d mean U / dx = 1.53125 * W
        ("membrane_mean", 0.696875, [1.53125 * 0.6, 1.53125 * 0.2]),
        ("membrane_last", 0.8125, [1.875 * 0.6, 1.875 * 0.2]),
    ],
)
def test_readouts_match_the_hand_computed_membrane(readout, logit, grad):
    network = tiny_snn(readout)
    x = torch.tensor([[1.0, 0.5]], requires_grad=True)
    logits = network(x)
    assert logits.shape == (1, 1)
    assert float(logits) == pytest.approx(logit, abs=1e-6)
    if grad is not None:
        logits.sum().backward()
        assert x.grad.view(2).tolist() == pytest.approx(grad, abs=1e-6)


def two_class_snn(per_step_loss: str) -> object:
    """Input 1 -> 2 LIF outputs, W = [[1.0], [0.5]], b = 0, beta 0.5, threshold 1, 3 steps, current input."""
    network = SpikingNetwork(
        hidden=[], num_steps=3, beta=0.5, encoding="current", per_step_loss=per_step_loss
    ).build(1, 2, generator())
    with torch.no_grad():
        network.layers[0].weight.copy_(torch.tensor([[1.0], [0.5]]))
        network.layers[0].bias.zero_()
    return network


def test_per_step_loss_is_the_cross_entropy_of_the_membrane_at_every_step():
    # x = 0.8: I = (0.8, 0.4). Neuron 0: U = 0.8, 1.2 (spike), 0.6 + 0.8 - 1 = 0.4.
    # Neuron 1: U = 0.4, 0.6, 0.7 (never fires). Label 0: CE(z, 0) = log(1 + exp(z1 - z0)).
    per_step = [math.log1p(math.exp(-0.4)), math.log1p(math.exp(-0.6)), math.log1p(math.exp(0.3))]
    x, y = torch.tensor([[0.8]]), torch.tensor([0])
    task = Mnist()
    for reduction, expected in (("sum", sum(per_step)), ("mean", sum(per_step) / 3)):
        logits = two_class_snn(reduction)(x)
        assert logits.tolist() == [[1.0, 0.0]]  # the prediction still comes from the spike counts
        assert task.predict(logits).tolist() == [0]
        assert float(task.loss(logits, y)) == pytest.approx(expected, abs=1e-6)
        assert step_outputs(logits).values.shape == (3, 1, 2)
    plain = two_class_snn("none")(x)
    assert step_outputs(plain) is None
    assert float(task.loss(plain, y)) == pytest.approx(math.log1p(math.exp(-1.0)), abs=1e-6)


def test_per_step_loss_trains_through_the_membrane():
    network = two_class_snn("sum")
    x, y = torch.tensor([[0.8]]), torch.tensor([1])
    Mnist().loss(network(x), y).backward()
    # dL/dU_t = softmax(U_t) - onehot(1); dU_t/dW = (1, 1.5, 1.75) * x with the reset not differentiated
    grad = torch.zeros(2)
    for z, du in (((0.8, 0.4), 1.0), ((1.2, 0.6), 1.5), ((0.4, 0.7), 1.75)):
        p = torch.softmax(torch.tensor(z), 0) - torch.tensor([0.0, 1.0])
        grad += p * du * 0.8
    assert torch.allclose(network.layers[0].weight.grad.view(2), grad, atol=1e-6)


def test_step_outputs_give_per_example_losses_and_are_checked():
    values = torch.randn(3, 4, 5, generator=generator())
    y = torch.tensor([0, 3, 4, 1])
    task = Mnist()
    logits = with_step_outputs(values.sum(0), values, "mean")
    expected = torch.stack([
        sum(F.cross_entropy(values[t, i : i + 1], y[i : i + 1]) for t in range(3)) / 3 for i in range(4)
    ])
    assert torch.allclose(per_example_losses(task.loss, logits, y), expected, atol=1e-6)
    assert float(task.loss(logits, y)) == pytest.approx(float(expected.mean()), abs=1e-6)
    with pytest.raises(ValueError, match="do not fit logits"):
        with_step_outputs(torch.zeros(4, 5), values[:, :3], "sum")
    with pytest.raises(ValueError, match="unknown step reduction"):
        with_step_outputs(torch.zeros(4, 5), values, "max")


def test_spiking_mlp_refuses_unknown_modes():
    layer = LeakyLinear("fc1", 2, 2, neuron=snn.Leaky(beta=0.5), generator=generator())
    with pytest.raises(ValueError, match="encoding 'latency'"):
        SpikingMLP([layer], 3, 0, encoding="latency")


def test_rules_that_an_encoding_or_a_per_step_loss_rules_out_are_unsupported(registry):
    task = registry.get("task", "mnist").cls()
    rule = {name: registry.get("rule", name).cls for name in (
        "stdp", "spike_error_propagation", "direct_feedback_alignment", "spike_alignment_learning", "backprop",
    )}
    default = SpikingNetwork()
    assert all(registry.unsupported_reason(default, r, task) is None for r in rule.values())
    current = SpikingNetwork(encoding="current")
    for name in ("stdp", "spike_error_propagation"):
        reason = registry.unsupported_reason(current, rule[name], task)
        assert reason is not None and name in reason and "encoding='current'" in reason
    for name in ("direct_feedback_alignment", "spike_alignment_learning", "backprop"):
        assert registry.unsupported_reason(current, rule[name], task) is None
    per_step = SpikingNetwork(per_step_loss="sum", readout="membrane_mean")
    reason = registry.unsupported_reason(per_step, rule["direct_feedback_alignment"], task)
    assert reason is not None and "dL/dlogits" in reason
    for name in ("stdp", "spike_error_propagation", "spike_alignment_learning", "backprop"):
        assert registry.unsupported_reason(per_step, rule[name], task) is None


# ---------------------------------------------------------------------------- KAN input range


def test_kan_input_range_maps_pixels_and_the_first_grid_can_follow_it():
    network = KAN(hidden=[3], input_range=[-1.0, 1.0]).build(4, 2, generator())
    x = torch.rand(5, 4)
    assert torch.equal(network(x), network.module(2.0 * x - 1.0))
    unit_grid = KAN(hidden=[3], first_layer_grid="input_range").build(4, 2, generator())
    first, second = unit_grid.layers
    k = first.spline_order
    assert float(first.grid[0, k]) == 0.0 and float(first.grid[0, -1 - k]) == 1.0
    assert float(second.grid[0, k]) == -1.0 and float(second.grid[0, -1 - k]) == 1.0
    # the default grid [-1, 1] with inputs in [-1, 1] is the same network whichever grid option
    a = KAN(hidden=[3], input_range=[-1.0, 1.0]).build(4, 2, generator())
    b = KAN(hidden=[3], input_range=[-1.0, 1.0], first_layer_grid="input_range").build(4, 2, generator())
    assert torch.equal(a(x), b(x))


@pytest.mark.parametrize("base", ["relu", "tanh", "sigmoid"])
def test_kan_activations_have_the_right_edge_derivatives(base):
    layer = KAN(hidden=[], base_function=base).build(3, 2, generator()).layers[0]
    x = (torch.rand(7, 3, generator=generator(2)) * 1.6 - 0.8).requires_grad_(True)
    edges = layer.edge_outputs(x)  # (batch, in, out)
    per_edge = torch.stack([
        torch.autograd.grad(edges[:, :, o].sum(), x, retain_graph=True)[0] for o in range(2)
    ])  # (out, batch, in)
    assert torch.allclose(layer.edge_derivatives_mean(x.detach()), per_edge.mean(1), atol=1e-5)


# ---------------------------------------------------------------------------- published setup


def test_the_snntorch_tutorial_setup_is_valid_and_its_options_are_accepted():
    setup = SNNTORCH_TUTORIAL_5
    assert setup.problems() == []
    architecture = SpikingNetwork(**setup.architecture_options)
    assert architecture.config["hidden"] == [1000] and architecture.config["num_steps"] == 25
    assert architecture.config["encoding"] == "current" and architecture.config["per_step_loss"] == "sum"
    settings = OptimizerSettings.resolve({}, setup.optimizer)
    assert (settings.name, settings.lr, settings.beta1, settings.beta2) == ("adam", 5e-4, 0.9, 0.999)
    profile = get_profile(setup.profile).with_overrides(setup.run)
    assert (profile.epochs, profile.batch_size, profile.validation) == (1, 128, False)
    assert [(v.metric, v.value) for v in setup.published] == [("test_acc", 0.9387)]
    assert SpikingNetwork.published_setups == (setup,)


def test_a_timed_input_is_used_as_given_whatever_the_encoding(registry):
    architecture = SpikingNetwork(hidden=[4], num_steps=7, encoding="current", readout="membrane_mean")
    architecture.input_steps = 3  # what the harness sets from a task with time bins
    network = architecture.build(3 * 2, 2, generator())
    x = torch.tensor([[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]])
    encoded = network.module.encode(x)
    assert encoded.shape == (3, 1, 2)
    assert encoded[:, 0].tolist() == [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    assert network(x).shape == (1, 2)
    timed = registry.get("task", "nmnist").cls
    stdp = registry.get("rule", "stdp").cls
    assert registry.unsupported_reason(architecture, stdp, timed()) is None
    static = registry.get("task", "mnist").cls()
    assert "encoding='current'" in registry.unsupported_reason(architecture, stdp, static)
