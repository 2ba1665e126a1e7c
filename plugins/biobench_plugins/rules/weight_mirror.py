"""Weight mirror (Akrout et al. 2019): feedback weights learned from noise in a separate mirror mode."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

from biobench import (
    FeedbackPathwayRule,
    Hyperparameter,
    IntRange,
    LearningRule,
    LogUniform,
    Network,
    PaperSetup,
    PlasticLayer,
    PublishedValue,
    derived_generator,
    hookimpl,
    uniform_feedback,
)

AKROUT_2019 = (
    "Akrout, Wilson, Humphreys, Lillicrap & Tweed (2019), Deep learning without weight "
    "transport, NeurIPS 32, pp. 976-984"
)
#: The authors' public reimplementation, and the commit whose code and logs were read.
AKROUT_REPOSITORY = "github.com/makrout/Deep-Learning-without-Weight-Transport @ 688f47a"


def _akrout_mnist_values() -> tuple[PublishedValue, ...]:
    """Test accuracies of ``experiments/mnist/wm-V0/results.json`` (per epoch, as fractions)."""
    accuracy = {1: 78.48, 3: 86.54, 5: 88.48, 10: 90.49, 20: 92.62, 50: 96.51, 100: 97.97, 200: 98.38, 400: 98.49}
    values = []
    for epoch, percent in accuracy.items():
        # Early epochs depend on how fast B aligns from its random start (61 degrees after epoch 1
        # in the log), which the differences listed in the notes change; later ones less so.
        tolerance = 0.03 if epoch <= 10 else 0.01
        values.append(PublishedValue(
            "test_acc", percent / 100, tolerance,
            f"test accuracy after epoch {epoch} of the authors' single run (seed 1111), "
            "experiments/mnist/wm-V0/results.json", epoch=epoch,
        ))
    return tuple(values)


class WeightMirror(FeedbackPathwayRule):
    """Weight mirror (Akrout, Wilson, Humphreys, Lillicrap & Tweed 2019).

    Two modes alternate. **Engaged mode** is feedback alignment with learned feedback
    matrices ``B_l`` (shape (out, in) like ``W_l``, every layer but the first):
    ``delta_{l-1} = (delta_l B_l) * f'(u_{l-1})`` and the local update
    ``W_l.grad = (1/B) sum_b delta_l^T x_{l-1}`` (through the ``feedback`` hook of
    :class:`biobench.FeedbackPathwayRule`). In **mirror mode** (:meth:`mirror`, run by
    :meth:`after_step` after every optimiser step, on the updated weights) the input
    units of each such layer are driven by fresh zero-mean noise ``xi`` (``n`` samples,
    drawn independently for every layer, as in the authors' code), the forward synapses
    answer with ``y = xi W_l^T`` and the feedback synapses change Hebbianly with decay
    (Akrout et al. 2019, the mirror rule with weight decay; written in the (out, in)
    convention):

        B_l <- B_l + eta_B ( (1/n) sum_n y_n^T xi_n  -  lambda B_l )

    Since ``E[y^T xi] = sigma^2 W_l`` for noise of variance ``sigma^2``, ``B_l`` tends to
    ``(sigma^2 / lambda) W_l``: with the defaults (``sigma = 1``, ``lambda = 1``) to
    ``W_l`` itself, so the error is carried by a copy of the forward weights that was
    learned locally, never transported. Mirror mode is plain SGD with its own rate
    ``eta_B = mirror_lr``, outside the run's optimiser, which applies the engaged-mode
    update to the forward weights only; ``.grad`` therefore holds only the forward
    update and the harness measures that. Before training, ``mirror_warmup_steps``
    mirror steps run at :meth:`bind` on the initial weights (the authors' code runs one
    epoch of noise batches, 60000/128 = 468, before the first engaged step). The
    harness's feedback angle (``feedback_angle_deg``) reads ``feedback_weights()`` (the ``B_l``).

    Options that reproduce the authors' numpy code (``fcnn/FCNN_WM.py``): noise
    ``mirror_noise="uniform"`` with ``mirror_sigma = 0.1/sqrt(12)`` (their
    ``0.1 * (U[0, 1) - 0.5)``), ``mirror_response="sigmoid"`` (their
    ``y = sigmoid(W xi + b)`` instead of ``y = xi W^T``), ``mirror_lr = 0.01 * 128``
    (their step is 0.01 times a *sum* over the 128 noise samples) and
    ``mirror_decay = 0`` (their code has no working decay: the block meant to rescale
    ``B`` assigns to a loop variable and changes nothing), ``mirror_batch = 128``.

    Departures: the paper's text (its mirror equations, noise statistics, decay and
    the values used on ImageNet) could not be read here; the rule follows the mirror
    rule as the authors' repository and README state it (their "equation 7") plus the
    decay that makes ``B`` converge, and its defaults are justified below rather than
    taken from the paper. The mirror step runs after every update of the forward
    weights (as in the authors' code); the paper's schedule of the two modes is not
    verified. The first layer has no ``B`` (the input needs no error; the authors
    mirror it too but never use it). Only dense synaptic matrices can be mirrored:
    KAN layers have none (noise through a KAN edge would estimate its Jacobian at the
    noise, and mirroring its batch-mean derivative would be weight transport).
    Spiking networks run (their ``PlasticLinear`` synapses are dense and the mirror
    involves only the synapse matrix, not the neuron dynamics); no source reports
    weight mirrors on spiking networks.
    """

    name = "weight_mirror"
    description = "Weight mirror: feedback weights learned Hebbianly from noise in a separate mirror mode"
    citation = AKROUT_2019
    family = "feedback alignment"
    requires = frozenset({"differentiable", "feedback", "dense"})
    weight_transport = False
    global_error = True
    defaults = {
        "feedback_scale": Hyperparameter(
            1.0, "initial B drawn like feedback alignment's (uniform, bound 1/sqrt(fan_in))", minimum=0.0
        ),
        "mirror_noise": Hyperparameter(
            "gaussian",
            "zero-mean noise driving the input units in mirror mode: gaussian (the usual "
            "analysis; Kunin et al. 2020's weight-mirror code offers normal noise) or uniform "
            "(the authors' numpy code)",
            choices=("gaussian", "uniform"),
        ),
        "mirror_sigma": Hyperparameter(
            1.0,
            "standard deviation of the mirror noise: unit variance, so that B tends to W/lambda "
            "(Kunin et al. 2020's default input_stddev 1.0); the authors' code uses 0.1/sqrt(12)",
            minimum=0.0, exclusive_minimum=True,
        ),
        "mirror_response": Hyperparameter(
            "drive",
            "what the forward synapses answer to the noise: drive = xi W^T (the mirror rule), "
            "sigmoid = sigmoid(xi W^T + b) (the authors' numpy code, FCNN_WM.py line 49)",
            choices=("drive", "sigmoid"),
        ),
        "mirror_lr": Hyperparameter(
            0.01,
            "eta_B, SGD step per mirror batch on the batch-mean Hebbian term: the authors' "
            "mirror_learning_rate 0.01 (FCNN_WM.py line 30), here on a mean instead of their sum; "
            "with lambda = 1 B relaxes over about 100 updates and averages the noise of ~100 "
            "batches (measured 7 degrees from W after 3 MNIST epochs, 20 degrees with 0.1)",
            minimum=0.0, exclusive_minimum=True, search=LogUniform(1e-3, 1e-1),
        ),
        "mirror_decay": Hyperparameter(
            1.0,
            "lambda, the decay of B in mirror mode: sigma^2, so that B tends to W itself "
            "(the authors' code has none, see the docstring)",
            minimum=0.0, search=LogUniform(0.1, 10.0),
        ),
        "mirror_batch": Hyperparameter(
            128, "noise samples per mirror step: the authors' code uses the training batch, 128", minimum=1,
            search=IntRange(16, 512),
        ),
        "mirror_warmup_steps": Hyperparameter(
            468,
            "mirror steps before training: one epoch of noise batches in the authors' code "
            "(60000/128 = 468, FCNN_WM.py line 80)",
            minimum=0,
        ),
    }
    published_setups = (
        PaperSetup(
            id="akrout2019_wm_mnist_repository",
            citation=AKROUT_2019,
            source=(
                f"{AKROUT_REPOSITORY}: run.sh (wm), experiments/mnist/wm-V0/experiment_config.txt, "
                "log.txt and results.json (per-epoch test accuracy); code fcnn/FCNN_WM.py, "
                "FCNN_FA.py, FCNN_BP.py; no MNIST number is in the paper (its experiments are on ImageNet)"
            ),
            task="mnist",
            architecture="mlp",
            rule="weight_mirror",
            published=_akrout_mnist_values(),
            run={"epochs": 400, "batch_size": 128, "validation": False},
            optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.0},
            task_options={"loss": "bce"},
            architecture_options={"hidden": [500], "activation": "sigmoid"},
            rule_options={
                "mirror_noise": "uniform",
                "mirror_sigma": 0.1 / math.sqrt(12.0),
                "mirror_response": "sigmoid",
                "mirror_lr": 0.01 * 128,
                "mirror_decay": 0.0,
                "mirror_batch": 128,
                "mirror_warmup_steps": 468,
            },
            profile="full",
            short_epochs=20,
            notes=(
                "784-500-10 with sigmoid hidden and output units and sigmoid cross-entropy summed "
                "over the 10 outputs, averaged over the batch (the task's loss=bce), plain SGD with "
                "lr 0.05 on batches of 128, 400 epochs, 60,000 training images (validation off), "
                "one seed (numpy seed 1111; a reproduction runs three). Known differences between the authors' code and this "
                "setup: (1) their batches are taken in the fixed file order, never shuffled, and the "
                "last 96 images of every epoch are dropped (468 batches); biobench reshuffles every "
                "epoch and keeps the last partial batch; (2) their bias step is lr/B times the "
                "batch-mean bias gradient, i.e. biases learn 128 times slower than the weights; "
                "here biases get the same step as weights; (3) their 'prevent feedback weights "
                "growing too large' block in mirror() rebinds a loop variable and changes nothing, "
                "so B has no decay and grows in norm while its direction aligns (mirror_decay=0 "
                "reproduces that); (4) their weights, biases and B are drawn from N(0, 1/(fan_in + "
                "fan_out)); here the MLP's PyTorch initialisation U(+-1/sqrt(fan_in)) and B from "
                "U(+-1/sqrt(fan_in)); (5) they also mirror the first layer's B, which is never used. "
                "The same log reports the angle between W2^T and B2 (18.7 degrees after epoch 20, "
                "9.3 after 100, 3.8 after 400), comparable to the harness's feedback angle of "
                "layer fc2 (feedback_angle_curve)."
            ),
        ),
    )

    def bind(self, network: Network, generator: torch.Generator) -> None:
        """Draw the initial feedback matrices and the mirror-noise generator, then run the warm-up mirror steps."""
        super().bind(network, generator)
        scale = float(self.config["feedback_scale"])
        self._buffer_of: dict[str, str] = {}
        for index, layer in enumerate(network.layers):
            if index == 0:
                continue
            matrix = uniform_feedback(layer.out_features, layer.in_features, layer.in_features, scale, generator)
            # drawn on the CPU, mirrored where the forward weights are (the warm-up steps below)
            self.register_buffer(f"feedback_{index}", matrix.to(network.device))
            self._buffer_of[layer.layer_name] = f"feedback_{index}"
        self.noise_generator = derived_generator(generator, network.device)
        for _ in range(int(self.config["mirror_warmup_steps"])):
            self.mirror()

    def feedback_matrix(self, layer: PlasticLayer) -> Tensor:
        """The current (mirrored) feedback matrix of ``layer``."""
        return getattr(self, self._buffer_of[layer.layer_name])

    def mirror_noise(self, samples: int, units: int) -> Tensor:
        """``(samples, units)`` zero-mean noise of standard deviation ``mirror_sigma`` from the rule's generator, on its device."""
        sigma = float(self.config["mirror_sigma"])
        if self.config["mirror_noise"] == "uniform":
            half_width = sigma * math.sqrt(3.0)
            uniform = torch.rand(samples, units, generator=self.noise_generator, device=self.noise_generator.device)
            return (uniform * 2.0 - 1.0) * half_width
        return torch.randn(samples, units, generator=self.noise_generator, device=self.noise_generator.device) * sigma

    def hebbian_term(self, layer: PlasticLayer, noise: Tensor) -> Tensor:
        """``(1/n) sum_n y_n^T xi_n`` for noise ``xi`` (n, in) at ``layer``'s input, shape (out, in)."""
        weight = layer.weight.detach()
        if self.config["mirror_response"] == "sigmoid":
            bias = None if layer.bias is None else layer.bias.detach()
            response = torch.sigmoid(F.linear(noise, weight, bias))
        else:
            response = F.linear(noise, weight)
        return response.t() @ noise / noise.shape[0]

    @torch.no_grad()
    def mirror(self, noises: dict[str, Tensor] | None = None) -> None:
        """One mirror step for every layer with a feedback matrix (fresh noise unless ``noises`` gives it by layer name)."""
        eta, decay = float(self.config["mirror_lr"]), float(self.config["mirror_decay"])
        samples = int(self.config["mirror_batch"])
        for layer in self.feedback_layers():
            noise = None if noises is None else noises.get(layer.layer_name)
            if noise is None:
                noise = self.mirror_noise(samples, layer.in_features)
            matrix = self.feedback_matrix(layer)
            matrix.add_(eta * (self.hebbian_term(layer, noise) - decay * matrix))

    def after_step(self) -> None:
        """Mirror mode after every update of the forward weights."""
        self.mirror()


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register the weight mirror."""
    return [WeightMirror]
