"""PEPITA (Dellaferrera & Kreiman 2022): two forward passes, the second on an error-modulated input."""

from __future__ import annotations

import torch
from torch import Tensor

from biobench import (
    OPTIMIZER_OPTIONS,
    Hyperparameter,
    LearningRule,
    LogUniform,
    LossFn,
    Network,
    accumulate_grad,
    hookimpl,
)

#: The authors' code and the commit read.
PEPITA_REPOSITORY = "github.com/GiorgiaD/PEPITA @ 3fe03d8"


class Pepita(LearningRule):
    """PEPITA, "present the error to perturb the input to modulate activity" (Dellaferrera & Kreiman 2022).

    No backward pass. A first forward pass gives the activities ``h_l`` and the output
    error ``e = B dL/dh_L`` (``= softmax(h_L) - onehot(y)`` for the batch-mean
    cross-entropy: the authors' ``error = outputs - target``). The error is projected
    onto the input by a fixed random matrix ``F`` (input_size x num_classes) and a
    second pass runs on the modulated input:

        x_mod = x + e F^T,    h_l^mod = activities of the second pass,  e_mod = B dL/dh_L^mod

    Updates (descent convention, batch means; ``h_0^mod = x_mod``):

        hidden layer l < L:  W_l.grad = (1/B) sum_b (h_l - h_l^mod)_b^T h_{l-1,b}^mod,   b_l.grad = mean_b (h_l - h_l^mod)
        output layer:        W_L.grad = (1/B) sum_b (e_mod)_b^T h_{L-1,b}^mod,           b_L.grad = mean_b e_mod

    as in the authors' code (``functions.py``: ``layer.diff = m_output - output``, the
    last layer's ``delta_a`` is the error of the second pass; the PyTorch tutorial
    ``Tutorial_PEPITA_FullyConnectedNets_CIFAR-10.ipynb`` does the same with
    ``mod_error``). ``last_layer_error="first"`` uses the first pass's ``e`` instead
    (the other reading of the paper's Algorithm 1, which could not be read here). ``F``
    is drawn once, ``U(-s sqrt(6/input_size), s sqrt(6/input_size))`` with ``s`` =
    ``projection_scale`` = 0.05 (He-uniform times 0.05, ``functions.py`` and the tutorial's
    ``B``). The default optimiser is the authors' fully connected MNIST setting: SGD
    with momentum 0.9 and step size 0.1 (README command; the numpy code's
    ``v = 0.9 v + eta dW/B; W -= v`` is PyTorch's SGD with momentum at a constant step
    size), decayed by 0.1 after 60 epochs.

    Departures: the authors' networks have no biases (their MNIST network is
    784-1024-10, He-uniform weights); the biobench MLP has biases and PyTorch's
    initialisation, and its biases get the same updates as a weight from an always-on
    unit (not in the source). The authors' code decays the step size at epochs 60 *and*
    90; the run's step schedule decays every 60 epochs, so the second decay is at 120
    (irrelevant below 90 epochs). Their dropout (keep rate 0.9, the same mask in both
    passes) is not applied: the MLP has no dropout. Their batch is 64 (biobench's
    profiles: 100). The paper's reported accuracies could not be read (its tables); no
    published setup is declared. Architectures: the update compares two deterministic
    passes unit by unit and uses dense outer products, so it needs ``signals``,
    ``dense`` and static rate units (``rate``): the MLPs. KANs have no dense matrix (a
    node-factor form would be possible but is unpublished); spiking networks are not
    supported: differences of spike trains between two stochastic rate-coded passes
    are not the activity differences the rule was derived for, and no source runs it
    on them.
    """

    name = "pepita"
    description = "PEPITA: a second forward pass on an error-modulated input; updates from activity differences"
    citation = (
        "Dellaferrera & Kreiman (2022), Error-driven input modulation: solving the credit "
        "assignment problem without a backward pass, ICML 2022, PMLR 162:4937-4955"
    )
    family = "forward-only"
    requires = frozenset({"signals", "dense", "rate"})
    weight_transport = False
    global_error = True
    optimizer = {
        "name": Hyperparameter("sgd", f"{PEPITA_REPOSITORY}: README MNIST command, --update_type mom (SGD with momentum)",
                               choices=OPTIMIZER_OPTIONS["name"].choices),
        "lr": Hyperparameter(
            0.1, f"{PEPITA_REPOSITORY}: README MNIST command, --eta 0.1 (fully connected, numpy code)",
            minimum=0.0, exclusive_minimum=True, search=LogUniform(1e-3, 0.3),
        ),
        "momentum": Hyperparameter(0.9, f"{PEPITA_REPOSITORY}: functions.py, gamma 0.9 of update_type mom",
                                   minimum=0.0, maximum=1.0),
        "schedule": Hyperparameter("step", f"{PEPITA_REPOSITORY}: --eta_decay, eta x 0.1 at epochs 60 and 90",
                                   choices=OPTIMIZER_OPTIONS["schedule"].choices),
        "step_epochs": Hyperparameter(60, f"{PEPITA_REPOSITORY}: first decay at epoch 60 (the one at 90 is not reproduced)",
                                      minimum=1),
        "gamma": Hyperparameter(0.1, f"{PEPITA_REPOSITORY}: eta x 0.1 per decay", minimum=0.0,
                                exclusive_minimum=True, maximum=1.0),
    }
    defaults = {
        "projection_scale": Hyperparameter(
            0.05,
            f"{PEPITA_REPOSITORY}: F = He-uniform(input_size) x 0.05 (functions.py; the tutorial's B; "
            "main_pytorch.py --Bstd 0.05)",
            minimum=0.0, exclusive_minimum=True, search=LogUniform(0.005, 0.5),
        ),
        "last_layer_error": Hyperparameter(
            "modulated",
            f"{PEPITA_REPOSITORY}: the output layer learns from the second pass's error (functions.py, tutorial)",
            choices=("modulated", "first"),
        ),
    }

    def bind(self, network: Network, generator: torch.Generator) -> None:
        """Draw the fixed input projection ``F`` (input_size x num_classes)."""
        super().bind(network, generator)
        inputs, classes = network.layers[0].in_features, network.layers[-1].out_features
        bound = float(self.config["projection_scale"]) * (6.0 / inputs) ** 0.5
        self.register_buffer("projection", (torch.rand(inputs, classes, generator=generator) * 2.0 - 1.0) * bound)

    @staticmethod
    def output_error(loss_fn: LossFn, logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """(loss, ``B dL/dlogits``): the per-example output error of the batch-mean task loss."""
        with torch.enable_grad():
            output = logits.detach().requires_grad_(True)
            loss = loss_fn(output, y)
            (grad,) = torch.autograd.grad(loss, output)
        return loss.detach(), grad * len(y)

    @torch.no_grad()
    def compute_update(self, x: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor]:
        """Two forward passes; hidden layers learn from activity differences, the output layer from its error."""
        layers = self.network.layers
        logits, first = self.network.forward_with_signals(x)
        if any(s is None or s.time_major for s in first):
            raise RuntimeError("pepita needs one static (batch, units) recording per layer")
        loss, error = self.output_error(loss_fn, logits, y)
        modulated_input = x + error @ self.projection.t()
        modulated_logits, second = self.network.forward_with_signals(modulated_input)
        batch = len(y)
        for layer, one, two in zip(layers[:-1], first[:-1], second[:-1], strict=True):
            difference = one.post - two.post
            accumulate_grad(layer.weight, difference.t() @ two.pre / batch)
            if layer.bias is not None:
                accumulate_grad(layer.bias, difference.mean(0))
        if self.config["last_layer_error"] == "modulated":
            _, error = self.output_error(loss_fn, modulated_logits, y)
        output = layers[-1]
        accumulate_grad(output.weight, error.t() @ second[-1].pre / batch)
        if output.bias is not None:
            accumulate_grad(output.bias, error.mean(0))
        return loss, logits.detach()


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register PEPITA."""
    return [Pepita]
