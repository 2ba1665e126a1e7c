"""Multi-layer perceptron: 784 -> hidden ... -> 10 dense layers with a configurable activation.

**Depth.** ``hidden`` lists the widths of the hidden layers, any number of them
(``[]``: a single dense layer, 784 -> 10). ``activation`` is the elementwise
function of every hidden layer; the output layer has none (its drives are the
logits; the task's loss applies a sigmoid for ``bce``/``mse``).

**Initialisation.** ``init`` (with scale ``s = init_scale``) chooses the
distribution of every layer's weights (``biobench.INIT_SCHEMES``):
``default`` keeps PyTorch's ``nn.Linear`` draw U(-1/sqrt(in), 1/sqrt(in)) and
multiplies it by ``s``; ``uniform`` draws U(-s, s) and ``gaussian`` N(0, s^2)
(``s`` is the bound or the standard deviation itself); ``xavier_uniform``,
``xavier_normal`` (gain ``s``), ``kaiming_uniform`` and ``kaiming_normal``
(times ``s``) are ``torch.nn.init``'s with fan_in = the layer's inputs, fan_out =
its outputs; ``zero`` sets every weight and bias to 0. ``bias_init`` ``same``
draws the biases from the weights' distribution (as ``nn.Linear`` does), ``zero``
sets them to 0. Everything is drawn from the run's generator, layer by layer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from biobench import (
    Architecture,
    Hyperparameter,
    Network,
    PlasticLinear,
    hookimpl,
    initialize_linear,
    weight_init_options,
)

ACTIVATIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gelu": F.gelu,
}

class MLP(Architecture):
    """A feed-forward network of :class:`PlasticLinear` layers; logits are the last layer's drive.

    The module is the ``nn.Sequential`` of its plastic layers applied to the input itself,
    hence ``layer_chain`` (``biobench_plugins.capabilities.layer_chain``).
    """

    name = "mlp"
    description = "Multi-layer perceptron, 784 -> hidden ... -> 10, configurable depth, activation and initialisation"
    capabilities = frozenset(
        {"differentiable", "feedback", "node_noise", "signals", "rate", "dense", "layer_chain"}
    )
    defaults = {
        "hidden": Hyperparameter(
            [256], "the seed study's two-layer MLP; width as in Lillicrap et al. 2016", minimum=1
        ),
        "activation": Hyperparameter("relu", "common default for MNIST MLPs", choices=tuple(ACTIVATIONS)),
        **weight_init_options(),
    }

    def chain_input(self, x: Tensor) -> Tensor:
        """The first layer's input: the batch itself (``layer_chain``)."""
        return x

    def build(self, input_size: int, num_classes: int, generator: torch.Generator) -> Network:
        """Build the layers (PyTorch's default draw from ``generator``), then apply ``init``."""
        name = self.config["activation"]
        if name not in ACTIVATIONS:
            raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}")
        hidden = [int(h) for h in self.config["hidden"]]
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden widths must be positive, got {hidden}")
        sizes = [input_size, *hidden, num_classes]
        layers = []
        for i in range(len(sizes) - 1):
            layer = PlasticLinear(
                f"fc{i + 1}",
                sizes[i],
                sizes[i + 1],
                activation=ACTIVATIONS[name] if i < len(sizes) - 2 else None,
                generator=generator,
            )
            initialize_linear(
                layer, self.config["init"], float(self.config["init_scale"]), generator, self.config["bias_init"]
            )
            layers.append(layer)
        module = nn.Sequential(*layers)
        return Network(module=module, layers=list(layers), architecture=self)


class SigmoidMLP(MLP):
    """The MLP with sigmoid units whose activities are firing rates in [0, 1].

    Declares ``bounded_rate`` (``biobench_plugins.capabilities.bounded_rate``): every hidden
    unit's activity lies in [0, 1] and the logits are the drives of sigmoid output
    units. The default widths are the network of Gupta (2020), 784-32-16-out.
    """

    name = "mlp-sigmoid"
    description = "Multi-layer perceptron with sigmoid (firing-rate) units, 784 -> 32 -> 16 -> 10"
    capabilities = MLP.capabilities | {"bounded_rate"}
    defaults = {
        "hidden": Hyperparameter(
            [32, 16], "Gupta (2020), A More Biologically Plausible Local Learning Rule for ANNs", minimum=1
        ),
        "activation": Hyperparameter(
            "sigmoid", "rates bounded in [0, 1] (Gupta 2020); build() refuses the others", choices=tuple(ACTIVATIONS)
        ),
        **weight_init_options(),
    }

    def build(self, input_size: int, num_classes: int, generator: torch.Generator) -> Network:
        """Build the sigmoid MLP; other activations would break its ``bounded_rate`` promise."""
        if self.config["activation"] != "sigmoid":
            raise ValueError(
                f"mlp-sigmoid only uses sigmoid units (got {self.config['activation']!r}); "
                "use the 'mlp' architecture for other activations"
            )
        return super().build(input_size, num_classes, generator)


@hookimpl
def biobench_register_architectures() -> list[type[Architecture]]:
    """Register the MLP architectures."""
    return [MLP, SigmoidMLP]
