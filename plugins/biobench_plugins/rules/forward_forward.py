"""Forward-Forward (Hinton 2022): every layer learns to tell positive from negative data by its goodness."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from biobench import (
    Hyperparameter,
    LearningRule,
    LogUniform,
    LossFn,
    Network,
    OptimizerSettings,
    PlasticLayer,
    build_optimizer,
    derived_generator,
    hookimpl,
)

LABEL_GOODNESS = "label_goodness"
#: Hinton's official code, as ported to numpy (the code read here).
FF_CODE = "Hinton's official Matlab ffcode as ported to numpy by jesper-olsen/ff-py (main.py)"


class ForwardForward(LearningRule):
    """The Forward-Forward algorithm (Hinton 2022), supervised version with the label in the input.

    Positive data is the image with its own label embedded, negative data the same image
    with a wrong label (the architecture's ``embed_label``, capability ``label_goodness``).
    Every layer ``l`` sees the normalised activity ``z_{l-1}`` of the layer below (held
    fixed: no gradient crosses layers), computes ``y_l = relu(z_{l-1} W_l^T + b_l)`` and
    its goodness ``G_l = sum_j y_{l,j}^2``, and the probability that the data is positive
    is ``p_l = sigma(G_l - theta_l)`` with ``theta_l = threshold_per_unit * units``.
    Each layer maximises ``log p`` on positive and ``log(1 - p)`` on negative data:

        L_l = (1/B) sum_b [ softplus(theta_l - G_l(x_b+)) + softplus(G_l(x_b-) - theta_l) ]
        W_l.grad = (1/2) dL_l/dW_l = (1/B) sum_b [ -(1 - p_b+) (y_b+ * 1[u_b+ > 0])^T z_b+  +  p_b- (y_b- * 1[u_b- > 0])^T z_b- ]

    (and likewise for ``b_l``): half the gradient, as in Hinton's code, which leaves out
    the factor 2 of ``dG/dy`` (``dCbydin = (1 - posprobs) * states``). All layers update
    at once from the same forward sweep. Negative labels: ``negatives="hard"`` draws, for
    every image, a wrong label with probability proportional to ``exp(logit_k)`` over the
    wrong classes, ``logit_k`` the network's goodness score for label ``k`` (the
    architecture's logits, computed anyway for the returned logits); ``"uniform"`` draws
    uniformly among the wrong labels. The default optimiser is Hinton's code's: its
    gradient smoothing ``g <- 0.9 g + 0.1 dW`` with step 0.01 is SGD with momentum 0.9
    and step 0.001, and its weight cost 0.002 on the weights (subtracted at every step,
    outside the smoothing) is, in the long run, SGD's weight decay 0.002 under that
    momentum, applied here to the weights only, as there (:meth:`configure_optimizer`).

    Departures from Hinton's code: its hard negatives are drawn from a separately
    trained linear softmax readout on the normalised neutral-label activities (here:
    from the goodness scores, as the ff-mlp has no readout); its peer normalisation
    (``LAMBDAMEAN = 0.03``, pushing each unit's mean activity towards the layer's) and
    the linear decay of the step size over the second half of training are not
    implemented; it trains on 50,000 images for 100 epochs. The paper itself was not
    read here beyond its abstract; its MNIST error (1.36 % for a 4x2000 network, as
    quoted by reimplementations) is not declared as a published value because neither
    the paper's table nor the official code's output could be read. A third-party port
    of the official code reports 1.34 % test error (goodness) after 100 epochs and 4.29
    / 2.64 % validation error after 5 / 10 epochs (jesper-olsen/ff-py README; 784-3x1000).

    Cost: every update runs the ``num_classes`` label passes of the network's logits
    (for the hard negatives and the training accuracy) plus a forward and backward pass
    of each layer on the positive and negative batch, and every evaluation costs
    ``num_classes`` passes: a ``ci`` run takes several times backprop's on the MLP
    (backprop on the ff-mlp itself is slower still: it differentiates through all label
    passes). Architectures: only those that put the label in the input and classify by
    goodness (``label_goodness``, e.g. ``ff-mlp``); on an MLP, KAN or spiking network
    there is no label input and no goodness readout, so those pairings are unsupported.
    """

    name = "forward_forward"
    description = "Forward-Forward: each layer separates positive from negative (wrong-label) data by its goodness"
    citation = "Hinton (2022), The Forward-Forward Algorithm: Some Preliminary Investigations, arXiv:2212.13345"
    family = "forward-only"
    requires = frozenset({"differentiable", LABEL_GOODNESS})
    weight_transport = False
    global_error = False
    optimizer = {
        "name": Hyperparameter("sgd", f"{FF_CODE}: smoothed-gradient steps (momentum)"),
        "lr": Hyperparameter(
            1e-3, f"{FF_CODE}: EPSILON = 0.01 on the gradient smoothed with DELAY = 0.9, i.e. 0.01 x 0.1",
            minimum=0.0, exclusive_minimum=True, search=LogUniform(1e-4, 1e-1),
        ),
        "momentum": Hyperparameter(0.9, f"{FF_CODE}: DELAY = 0.9", minimum=0.0, maximum=1.0),
        "weight_decay": Hyperparameter(
            0.002, f"{FF_CODE}: WC = 0.002 (weight cost on forward weights)", minimum=0.0,
        ),
    }
    defaults = {
        "negatives": Hyperparameter(
            "hard",
            f"{FF_CODE}: negative labels drawn in proportion to the network's predictions over the "
            "wrong labels (choosefrom(softmax(labin - 1000 targets))); uniform: loeweX/Forward-Forward",
            choices=("hard", "uniform"),
        ),
        "threshold_per_unit": Hyperparameter(
            1.0, f"{FF_CODE}: theta = LAYERS[l], the number of units, with TEMP = 1", minimum=0.0,
        ),
    }

    def configure_optimizer(
        self, params: list[nn.Parameter], settings: OptimizerSettings | None = None
    ) -> torch.optim.Optimizer:
        """The run's optimiser, with its weight decay on the layers' weights only (Hinton's weight cost)."""
        settings = settings or OptimizerSettings.resolve(self.optimizer)
        weights = {id(layer.weight) for layer in self.network.layers}
        groups = [
            {"params": [p for p in params if id(p) in weights], "weight_decay": settings.weight_decay},
            {"params": [p for p in params if id(p) not in weights], "weight_decay": 0.0},
        ]
        return build_optimizer([g for g in groups if g["params"]], settings)

    def bind(self, network: Network, generator: torch.Generator) -> None:
        """Create the generator of the negative labels, on the network's device (where the labels are drawn)."""
        super().bind(network, generator)
        self.negative_generator = derived_generator(generator, network.device)

    def negative_labels(self, logits: Tensor, y: Tensor) -> Tensor:
        """One wrong label per example: in proportion to ``softmax(logits)`` over the wrong ones, or uniformly."""
        if self.config["negatives"] == "hard":
            scores = logits.detach().double().masked_fill(F.one_hot(y, logits.shape[-1]).bool(), float("-inf"))
            probabilities = torch.softmax(scores, -1)
        else:
            probabilities = 1.0 - F.one_hot(y, logits.shape[-1]).double()
        return torch.multinomial(probabilities, 1, generator=self.negative_generator).squeeze(1)

    def layer_update(self, layer: PlasticLayer, positive: Tensor, negative: Tensor) -> tuple[Tensor, Tensor]:
        """Accumulate the layer's update for normalised inputs ``positive``/``negative``; return its activities."""
        theta = float(self.config["threshold_per_unit"]) * layer.out_features
        with torch.enable_grad():
            both = layer(torch.cat([positive, negative]).detach())
            goodness = both.pow(2).sum(-1)
            batch = len(positive)
            loss = F.softplus(theta - goodness[:batch]).mean() + F.softplus(goodness[batch:] - theta).mean()
            (0.5 * loss).backward()
        both = both.detach()
        return both[:batch], both[batch:]

    def compute_update(self, x: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor]:
        """Goodness logits, negative labels, then every layer's local update on positive and negative data."""
        module = self.network.module
        with torch.no_grad():
            logits = self.network(x)
        loss = loss_fn(logits, y)
        negative = self.negative_labels(logits, y)
        positive_input = module.normalize(module.embed_label(x, y))
        negative_input = module.normalize(module.embed_label(x, negative))
        for layer in self.network.layers:
            positive_post, negative_post = self.layer_update(layer, positive_input, negative_input)
            positive_input, negative_input = module.normalize(positive_post), module.normalize(negative_post)
        return loss.detach(), logits.detach()


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register Forward-Forward."""
    return [ForwardForward]
