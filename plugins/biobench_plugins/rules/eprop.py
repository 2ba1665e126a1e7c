"""e-prop (Bellec et al. 2020): eligibility traces times a broadcast learning signal in a recurrent spiking network."""

from __future__ import annotations

import torch
from torch import Tensor

from biobench import (
    Hyperparameter,
    LearningRule,
    LogUniform,
    LossFn,
    Network,
    accumulate_grad,
    exponential_trace,
    hookimpl,
)

RECURRENT = "recurrent"
FEEDBACK_KINDS = ("random", "symmetric")


def summed_outer(post: Tensor, pre: Tensor) -> Tensor:
    """``sum_{t,b} post[t, b, :] pre[t, b, :]^T``: (post features, pre features)."""
    return post.reshape(-1, post.shape[-1]).t() @ pre.reshape(-1, pre.shape[-1])


def reverse_trace(signal: Tensor, decay: float) -> Tensor:
    """``r[s] = sum_{t >= s} decay^(t - s) signal[t]`` along the leading (time) dimension."""
    return exponential_trace(signal.flip(0), decay).flip(0)


class Eprop(LearningRule):
    """e-prop (Bellec, Scherr, Subramoney, Hajek, Salaj, Legenstein & Maass 2020), LIF neurons.

    Runs on a recurrent LIF network with a leaky readout (capability ``recurrent``, e.g.
    ``rsnn``): ``v^t = alpha v^{t-1} + W_in x^t + W_rec z^{t-1} - v_th z^{t-1}``,
    ``z^t = H(v^t - v_th)``, ``y^t = kappa y^{t-1} + W_out z^t + b_out``. The gradient of the
    loss ``E`` factorises as ``dE/dW_ji = sum_t dE/dz_j^t [dz_j^t/dW_ji]_local`` (the paper's
    eq. 1); e-prop keeps the local factor exactly and replaces the total derivative
    ``dE/dz_j^t`` by the learning signal that reaches neuron ``j`` from the readout at the same
    step. In the authors' notation (their code's hard-coded e-prop, eq. 4, LIF case):

    *Eligibility traces* (``psi`` the pseudo-derivative that the architecture's surrogate uses,
    ``psi_j^t = (gamma / v_th) max(0, 1 - |v_j^t - v_th| / v_th)``):

        input synapses      e_ji^t = psi_j^t xbar_i^t,        xbar^t = alpha xbar^{t-1} + x^t
        recurrent synapses  e_ji^t = psi_j^t zbar_i^{t-1},    zbar^t = alpha zbar^{t-1} + z^t    (e_jj = 0)

    ``e_ji^t`` is exactly ``dv_j^t/dW_ji`` when the dependence of ``v^t`` on ``z^{t-1}`` (through
    the recurrent weights and the reset) is cut.

    *Learning signal*: ``L_j^t = sum_k B_kj dE/dy_k^t``, the readout error at step ``t`` sent back
    through ``B = W_out`` (``feedback = symmetric``) or a fixed random matrix (``random``; drawn
    once from N(0, 1) as in the authors' tutorial). ``dE/dy^t`` is autograd's derivative of the
    batch-mean task loss with respect to the readout sequence (for the last-step readout and
    cross-entropy: ``(softmax(y^T) - onehot(label)) / N`` at ``t = T``, 0 before).

    *Updates* (descent convention, written into ``.grad``), with the traces filtered by the
    readout's own filter ``F_kappa(e)^t = kappa F_kappa(e)^{t-1} + e^t``:

        grad W_in_ji  = sum_n sum_t L_j^t F_kappa(e_ji)^t
        grad W_rec_ji = sum_n sum_t L_j^t F_kappa(e_ji)^t                (diagonal 0)
        grad W_out_kj = sum_n sum_t dE/dy_k^t F_kappa(z_j)^t             (the exact gradient)
        grad b_out_k  = sum_n sum_t dE/dy_k^t F_kappa(1)^t

    Computed in the equivalent factorised order ``sum_t L^t F_kappa(e)^t = sum_s psi^s
    Ltilde^s pre^s`` with ``Ltilde^s = sum_{t >= s} kappa^{t-s} L^t`` (``pre`` = ``xbar`` or
    ``zbar^{s-1}``): the same numbers as the online, forward-in-time form, without storing one
    trace per synapse. With ``feedback = symmetric`` this equals autograd's gradient of ``E`` with
    ``z^{t-1}`` detached where it enters ``v^t``, and differs from BPTT by exactly those paths.

    **Locality.** A synapse needs its pre-synaptic trace, its post-synaptic pseudo-derivative
    and the learning signal broadcast to its neuron (a three-factor rule: ``global_error``);
    one phase, forward in time, no backpropagation through time. ``weight_transport`` is
    False: it describes the default ``random`` feedback; ``symmetric`` feedback uses ``W_out^T``
    (weight transport) and is recorded under the same flag.

    **Cost.** One simulation without a graph, then one (neurons x inputs) matrix product per
    weight matrix over all steps: on ``rsnn`` (batch 100, 28 steps, one CPU thread) about 0.8
    times backprop through time per update.

    **Departures from the paper.** LIF neurons only (no adaptive thresholds, which the authors
    use for long memory); analog input currents (one image row per step on ``rsnn``) instead
    of Poisson spike trains; no firing-rate regulariser (the rule follows the task loss, the
    quantity the harness's reference differentiates); the readout filters ``z`` without the
    ``(1 - kappa)`` factor of the tutorials' ``exp_convolve`` and has a bias (a rescaling of the
    readout, with the eligibility traces filtered consistently); the update is applied once per
    sequence (batch) by the run's optimiser, by default Adam with the tutorial's step size 5e-3.
    """

    name = "eprop"
    description = "e-prop: eligibility traces times a learning signal broadcast from the readout (recurrent LIF)"
    citation = (
        "Bellec, Scherr, Subramoney, Hajek, Salaj, Legenstein & Maass (2020), A solution to the "
        "learning dilemma for recurrent networks of spiking neurons, Nature Communications 11:3625, "
        "doi:10.1038/s41467-020-17236-y"
    )
    family = "eligibility traces"
    requires = frozenset({RECURRENT})
    weight_transport = False
    global_error = True
    defaults = {
        "feedback": Hyperparameter(
            "random",
            "random e-prop (fixed random B, no weight transport; Bellec et al. 2020); 'symmetric' "
            "uses B = W_out^T (both are the --feedback flag of the authors' tutorials)",
            choices=FEEDBACK_KINDS,
        ),
    }
    optimizer = {
        "name": Hyperparameter("adam", "Adam, as in Bellec et al.'s tutorials (tf.train.AdamOptimizer)"),
        "lr": Hyperparameter(
            5e-3,
            "learning_rate = 0.005 of Bellec et al.'s evidence-accumulation tutorial",
            minimum=0.0,
            exclusive_minimum=True,
            search=LogUniform(1e-4, 1e-2),
        ),
    }

    def bind(self, network: Network, generator: torch.Generator) -> None:
        """Draw the fixed random feedback matrix B (classes, neurons) from N(0, 1)."""
        super().bind(network, generator)
        readout = self._layer("out")
        matrix = torch.randn(readout.out_features, readout.in_features, generator=generator)
        self.register_buffer("random_feedback", matrix.to(readout.weight.dtype))

    def _layer(self, name: str):
        for layer in self.network.layers:
            if layer.layer_name == name:
                return layer
        raise RuntimeError(f"the network has no plastic layer {name!r} (capability {RECURRENT!r} promises one)")

    def feedback_matrix(self) -> Tensor:
        """``B`` (classes, neurons): ``W_out`` for symmetric feedback, the random matrix otherwise."""
        if self.config["feedback"] == "symmetric":
            return self._layer("out").forward_matrix().detach()
        return self.random_feedback

    def compute_update(self, x: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor]:
        """Simulate once, then write the e-prop gradient estimates into ``.grad``."""
        module = self.network.module
        layers = {layer.layer_name: layer for layer in self.network.layers}
        with torch.no_grad():
            logits, recorded = self.network.forward_with_signals(x)
        signals = {layer.layer_name: s for layer, s in zip(self.network.layers, recorded, strict=True)}
        loss = loss_fn(logits, y)
        inputs, spikes = signals["in"].pre, signals["in"].post
        previous, membrane, potentials = signals["rec"].pre, signals["in"].membrane, signals["out"].post
        with torch.enable_grad():
            readout = potentials.detach().requires_grad_(True)
            (readout_error,) = torch.autograd.grad(loss_fn(module.readout(readout), y), readout)
        with torch.no_grad():
            alpha, kappa = float(module.alpha), float(module.kappa)
            learning_signal = readout_error @ self.feedback_matrix()
            factor = module.pseudo_derivative(membrane) * reverse_trace(learning_signal, kappa)
            input_trace = exponential_trace(inputs, alpha)
            recurrent_trace = exponential_trace(previous, alpha)
            accumulate_grad(layers["in"].weight, summed_outer(factor, input_trace))
            recurrent = summed_outer(factor, recurrent_trace)
            accumulate_grad(layers["rec"].weight, recurrent * module.rec_mask)
            steps = factor.shape[0]
            ones = exponential_trace(torch.ones(steps, dtype=factor.dtype, device=factor.device), alpha)
            for name in ("in", "rec"):
                if layers[name].bias is not None:
                    accumulate_grad(layers[name].bias, (factor.sum(1) * ones[:, None]).sum(0))
            readout_ones = exponential_trace(torch.ones(steps, dtype=factor.dtype, device=factor.device), kappa)
            accumulate_grad(layers["out"].weight, summed_outer(readout_error, exponential_trace(spikes, kappa)))
            if layers["out"].bias is not None:
                accumulate_grad(layers["out"].bias, (readout_error.sum(1) * readout_ones[:, None]).sum(0))
        return loss.detach(), logits.detach()

    def feedback_weights(self) -> dict[str, Tensor]:
        """Random feedback: ``B`` (classes, neurons) for ``in`` and ``rec``; symmetric: none (W_out itself)."""
        if self.config["feedback"] == "symmetric":
            return {}
        matrix = self.random_feedback.detach().clone()
        return {"in": matrix, "rec": matrix.clone()}


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register e-prop."""
    return [Eprop]
