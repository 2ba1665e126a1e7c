"""Goodness MLP: the network of the Forward-Forward algorithm (Hinton 2022), classifying by goodness.

The label is part of the input: ``embed_label(x, k)`` overwrites the first
``num_classes`` pixels of a flattened image with the one-hot code of ``k`` (times
``label_strength``; MNIST's top-left pixels are background). Every layer reads the
*normalised* activity of the layer below, ``normalize(h) = h / sqrt(mean_j h_j^2 + eps)``
(the input too), and has ReLU units ``y_l = relu(z_{l-1} W_l^T + b_l)``; its
goodness is ``G_l = sum_j y_{l,j}^2``, measured before normalisation, so a layer
cannot read the goodness of the one below. The network's output for an image is, for
every class ``k``, the total goodness with ``k`` embedded:

    logit_k(x) = sum_{l >= first_goodness_layer} G_l(embed_label(x, k))

(``num_classes`` passes, computed as one stacked batch); the predicted class is the
one with the highest goodness, Hinton's goodness-based classification. There is no
output layer: the last plastic layer is the last hidden layer.

Defaults follow Hinton's official Matlab code as ported to numpy by
jesper-olsen/ff-py (``main.py``; the paper's own network is not re-read here):
784-1000-1000-1000 ReLU, weights N(0, 1/fan_in), biases 0, label strength 1,
goodness counted from the second hidden layer (``MINLEVELENERGY = 2``). The
normalisation puts ``eps = 1e-12`` inside the square root, which keeps the gradient
finite for an all-zero activity vector (the code adds 1e-20 outside it). Profiles:
``smoke`` uses ``hidden=[100, 100]`` and ``ci`` ``hidden=[500, 500]``
(``profile_overrides``): every update and evaluation costs ``num_classes`` passes, and
784-500-500 keeps a three-epoch ``ci`` run within minutes on two CPU cores.

**What the harness's measurements mean here.** Accuracy is goodness classification.
The harness's task loss is the cross-entropy of the goodness scores (a softmax over
classes, temperature 1, the same softmax that Hinton's code uses to pick hard
negatives), and its backprop reference is the exact gradient of that loss through
all ``num_classes`` label passes and the normalisations. Backprop on this
architecture is therefore a legitimate baseline (the same goodness classifier trained
end to end on a discriminative loss), and a rule's gradient bias measures how far its
update is from that gradient — not from the gradient of the rule's own objective
(Forward-Forward's per-layer logistic losses on positive and negative data are a
different objective, so its bias is large by construction).

Signals: ``Network.forward_with_signals`` records one extra pass per call with the
*neutral* label (``label_strength / num_classes`` in every label pixel, as in the
code's softmax readout), so the recorded activities (and the representational
metrics) describe an image without a label. The label passes compute each layer
from its weight and bias directly; the layers' ``feedback`` and ``drive_noise`` hooks
are not used, and the architecture declares neither ``feedback`` nor ``node_noise``:
the feedback-pathway rules assume the logits are the output of the last plastic
layer, which is not so here. It does not declare ``signals`` either, because a rule
reading them would not see the label passes that produce the logits.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from biobench import Architecture, Hyperparameter, Network, PlasticLinear, hookimpl

LABEL_GOODNESS = "label_goodness"
#: Inside the square root of the normalisation (see the module docstring).
NORMALIZATION_EPS = 1e-12
#: Hinton's code, as ported by jesper-olsen/ff-py.
FF_CODE = "Hinton's official Matlab ffcode as ported to numpy by jesper-olsen/ff-py (main.py)"


class GoodnessLayer(PlasticLinear):
    """A ReLU ``PlasticLinear`` that says whether it is being recorded (:attr:`recording`)."""

    def __init__(self, name: str, in_features: int, out_features: int, generator: torch.Generator) -> None:
        super().__init__(name, in_features, out_features, activation=torch.relu, generator=generator)
        self.recording = False
        with torch.no_grad():  # N(0, 1/fan_in) weights and zero biases, as in Hinton's code
            self.weight.normal_(0.0, in_features**-0.5, generator=generator)
            self.bias.zero_()

    def start_recording(self) -> None:
        """Record the following forward calls (the neutral-label pass)."""
        super().start_recording()
        self.recording = True

    def stop_recording(self):
        """Stop recording and return the signals."""
        self.recording = False
        return super().stop_recording()

    def activity(self, z: Tensor) -> Tensor:
        """``relu(z W^T + b)`` without the rule hooks and without recording."""
        return torch.relu(F.linear(z, self.weight, self.bias))


class GoodnessNetwork(nn.Module):
    """The module of ``ff-mlp``: label embedding, normalisation and goodness logits (module docstring)."""

    def __init__(
        self, layers: list[GoodnessLayer], num_classes: int, label_strength: float, first_goodness_layer: int
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.num_classes = num_classes
        self.label_strength = label_strength
        self.first_goodness_layer = first_goodness_layer

    def embed_label(self, x: Tensor, labels: Tensor) -> Tensor:
        """``x`` with its first ``num_classes`` values replaced by ``label_strength`` times the one-hot labels."""
        out = x.clone()
        out[:, : self.num_classes] = F.one_hot(labels, self.num_classes).to(x.dtype) * self.label_strength
        return out

    def embed_neutral(self, x: Tensor) -> Tensor:
        """``x`` with every label value set to ``label_strength / num_classes``."""
        out = x.clone()
        out[:, : self.num_classes] = self.label_strength / self.num_classes
        return out

    @staticmethod
    def normalize(h: Tensor) -> Tensor:
        """``h / sqrt(mean_j h_j^2 + eps)`` per row: unit root-mean-square activity."""
        return h / torch.sqrt(h.pow(2).mean(-1, keepdim=True) + NORMALIZATION_EPS)

    def activities(self, embedded: Tensor) -> list[Tensor]:
        """Every layer's (unnormalised) activity for label-embedded inputs."""
        out, z = [], self.normalize(embedded)
        for layer in self.layers:
            y = layer.activity(z)
            out.append(y)
            z = self.normalize(y)
        return out

    def goodness_scores(self, x: Tensor) -> Tensor:
        """``(batch, num_classes)``: the counted layers' summed goodness with each label embedded."""
        batch, classes = len(x), self.num_classes
        labels = torch.arange(classes, device=x.device).repeat_interleave(batch)
        stacked = self.embed_label(x.repeat(classes, 1), labels)
        activities = self.activities(stacked)[self.first_goodness_layer - 1 :]
        goodness = sum(y.pow(2).sum(-1) for y in activities)
        return goodness.reshape(classes, batch).t()

    def forward(self, x: Tensor) -> Tensor:
        """Goodness logits; when the layers are being recorded, also one recorded neutral-label pass."""
        if any(layer.recording for layer in self.layers):
            z = self.normalize(self.embed_neutral(x))
            for layer in self.layers:
                z = self.normalize(layer(z))
        return self.goodness_scores(x)


class GoodnessMLP(Architecture):
    """ReLU layers with normalisation between them whose logits are label-conditioned goodness (module docstring)."""

    name = "ff-mlp"
    description = "Goodness MLP (Forward-Forward): label in the input, logits = goodness per label, 784-3x1000"
    capabilities = frozenset({"differentiable", "dense", LABEL_GOODNESS})
    defaults = {
        "hidden": Hyperparameter([1000, 1000, 1000], f"{FF_CODE}: LAYERS = [784, 1000, 1000, 1000]"),
        "label_strength": Hyperparameter(1.0, f"{FF_CODE}: LABELSTRENGTH = 1", minimum=0.0, exclusive_minimum=True),
        "first_goodness_layer": Hyperparameter(
            2, f"{FF_CODE}: MINLEVELENERGY = 2 (the first hidden layer's goodness is not counted)", minimum=1
        ),
    }
    profile_overrides = {"smoke": {"hidden": [100, 100]}, "ci": {"hidden": [500, 500]}}

    def build(self, input_size: int, num_classes: int, generator: torch.Generator) -> Network:
        """Build the layers (N(0, 1/fan_in) weights, zero biases) from ``generator``."""
        hidden = [int(h) for h in self.config["hidden"]]
        if not hidden or any(h < 1 for h in hidden):
            raise ValueError(f"ff-mlp needs at least one hidden layer of positive width, got {hidden}")
        first = int(self.config["first_goodness_layer"])
        if first > len(hidden):
            raise ValueError(
                f"ff-mlp: first_goodness_layer={first} but the network has {len(hidden)} hidden layer(s); "
                "count from layer 1 (--arch-option first_goodness_layer=1) or add layers"
            )
        if num_classes < 2:
            raise ValueError(f"ff-mlp scores one goodness per class and needs at least 2 outputs, got {num_classes}")
        if num_classes > input_size:
            raise ValueError(f"ff-mlp embeds {num_classes} labels in the input, which has only {input_size} values")
        sizes = [input_size, *hidden]
        layers = [GoodnessLayer(f"ff{i + 1}", sizes[i], sizes[i + 1], generator) for i in range(len(hidden))]
        module = GoodnessNetwork(layers, num_classes, float(self.config["label_strength"]), first)
        return Network(module=module, layers=list(layers), architecture=self)


@hookimpl
def biobench_register_architectures() -> list[type[Architecture]]:
    """Register the goodness MLP."""
    return [GoodnessMLP]
