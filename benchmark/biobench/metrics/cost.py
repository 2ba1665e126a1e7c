"""What a rule costs: operations per example (inference and one training update) and peak memory.

One metric, :class:`RuleCost`, measured by the harness identically for every pairing
(the wall time per training epoch, ``time_per_epoch_s``, is
:class:`biobench.metrics.training.TrainingCost`'s), in three parts:

* synaptic operations, as NeuroBench defines them (Yik et al. 2025, The NeuroBench
  framework for benchmarking neuromorphic computing algorithms and systems, Nature
  Communications 16:1545; NeuroBench's documentation, "Synaptic Operations": Dense,
  Effective MACs, Effective ACs), counted from the plastic layers' actual inputs by
  forward hooks (:meth:`biobench.PlasticLayer.synaptic_operations`): dense layers
  ``in x out`` per input row, spiking layers presynaptic spikes x fan-out per time
  step, KAN layers their spline coefficients and base weights per edge;
* the multiply-accumulates of every matrix product torch executes
  (``torch.utils.flop_counter.FlopCounterMode``, FLOPs / 2): what forward hooks cannot
  see, the backward pass and a rule's own products (outer products, feedback
  projections), for one training update;
* the growth of the process's resident set size over the run.

Probes (the same for every pairing): inference on the first :data:`INFERENCE_EXAMPLES`
test examples in one batch (network in eval mode, no gradients); one training update
(``rule.compute_update``, no optimiser step) on the first ``batch_size`` training
examples of the run's profile, at the final weights, inside a
:class:`~biobench.metrics.state.TrainingState` snapshot with torch's generator seeded
from the run's seed. Both are divided by the number of examples.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from biobench.metrics.base import (
    NONNEGATIVE,
    Column,
    Metric,
    MetricDefinition,
    MetricUndefined,
    Outcome,
    ScatterFigure,
    per_layer_schema,
    scalar,
)
from biobench.metrics.harness import NOT_FINISHED, guarded
from biobench.metrics.measurement import Measurement, RunState
from biobench.metrics.state import TrainingState

#: Test examples of the inference probe.
INFERENCE_EXAMPLES = 256
#: Where Linux reports the resident set size (VmRSS) and its high-water mark (VmHWM).
PROC_STATUS = Path("/proc/self/status")
#: Writing "5" here resets the high-water mark of the resident set size (Linux 4.0+).
PROC_CLEAR_REFS = Path("/proc/self/clear_refs")
OPERATION_KINDS = ("dense", "effective_macs", "effective_acs")
OPS_SCHEMA = {"type": "object", "properties": {k: NONNEGATIVE for k in OPERATION_KINDS}}


class OperationCounter:
    """Forward hooks on a network's plastic layers that add up their synaptic operations.

    Use as a context manager around the passes to count; :meth:`per_example` divides
    the totals by the number of examples those passes processed.
    """

    def __init__(self, layers: list[nn.Module]) -> None:
        self.layers = layers
        self.totals = {layer.layer_name: dict.fromkeys(OPERATION_KINDS, 0.0) for layer in layers}
        self.failures: dict[str, str] = {}
        self._handles: list[Any] = []

    def _hook(self, layer: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        name = layer.layer_name
        if name in self.failures or not args or not torch.is_tensor(args[0]):
            return
        try:
            dense, effective, binary = layer.synaptic_operations(args[0])
        except Exception as exc:  # a layer that cannot count makes its entry null, never wrong
            self.failures[name] = f"{type(layer).__name__}.synaptic_operations raised {type(exc).__name__}: {exc}"
            return
        totals = self.totals[name]
        totals["dense"] += dense
        totals["effective_acs" if binary else "effective_macs"] += effective

    def __enter__(self) -> OperationCounter:
        self._handles = [layer.register_forward_hook(self._hook) for layer in self.layers]
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def per_example(self, examples: int) -> Outcome:
        """Totals and per-layer counts divided by ``examples``; a layer that could not count is null."""
        per_layer: dict[str, Any] = {}
        reasons = {f"per_layer.{name}": why for name, why in self.failures.items()}
        for name, totals in self.totals.items():
            per_layer[name] = None if name in self.failures else {k: v / examples for k, v in totals.items()}
        value: dict[str, Any] = {"per_layer": per_layer}
        for kind in OPERATION_KINDS:
            value[kind] = None if self.failures else sum(v[kind] for v in per_layer.values())
            if self.failures:
                reasons[kind] = f"layer(s) {', '.join(self.failures)} could not count their operations"
        return Outcome(value, reasons)


def matmul_macs(fn: Callable[[], Any]) -> float:
    """Multiply-accumulates of the matrix products (mm, addmm, bmm, convolutions...) ``fn`` runs.

    torch's FLOP counter counts 2 FLOPs per multiply-accumulate of those operators, in
    the forward and in the backward pass; elementwise arithmetic is not counted.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 2


def _status_kib(field: str) -> int | None:
    match = re.search(rf"^{field}:\s+(\d+) kB", PROC_STATUS.read_text(), re.MULTILINE) if PROC_STATUS.exists() else None
    return int(match.group(1)) if match else None


def reset_peak_rss() -> int | None:
    """Reset the process's RSS high-water mark; the RSS now in bytes, or None where that is impossible."""
    try:
        PROC_CLEAR_REFS.write_text("5")
        rss = _status_kib("VmRSS")
    except OSError:
        return None
    return None if rss is None else rss * 1024


def peak_rss() -> int | None:
    """The RSS high-water mark since the last reset, in bytes (None without /proc)."""
    try:
        hwm = _status_kib("VmHWM")
    except OSError:
        return None
    return None if hwm is None else hwm * 1024


def effective_synops(metrics: dict[str, Any], key: str = "inference_synops") -> float | None:
    """Effective MACs + ACs per example of a record's ``key`` (None when undefined)."""
    macs, acs = scalar(metrics, key, "effective_macs"), scalar(metrics, key, "effective_acs")
    return None if macs is None or acs is None else macs + acs


def megabytes(metrics: dict[str, Any], key: str) -> float | None:
    """A byte count of the record in MB (10^6 bytes), or None."""
    value = scalar(metrics, key)
    return None if value is None else value / 1e6


class RuleCost(Metric):
    """What training and running a pairing costs: operations per example and peak memory."""

    definition = MetricDefinition(
        keys=(
            "inference_synops", "update_synops", "inference_macs", "update_macs", "peak_rss_bytes",
            "peak_rss_growth_bytes",
        ),
        measures=(
            "(1) synaptic operations per example (Yik et al. 2025, NeuroBench's Dense, Effective MACs and "
            "Effective ACs) of the plastic layers, counted by forward hooks from their actual inputs: "
            "`inference_synops` for one forward pass, `update_synops` for every forward pass one training "
            "update makes (one for backprop, several for perturbation rules); (2) `inference_macs`, "
            "`update_macs`: multiply-accumulates per example of every matrix product torch executes, "
            "the update's backward pass and the rule's own products (outer products, feedback "
            "projections) included, zero inputs included; (3) CPU memory: the peak resident set size "
            "(RSS) of the process from the start of training (data loaded, network built) to the record, "
            "and its growth over the RSS at that start (training, evaluation and the harness's "
            "measurements; the dataset is in the baseline; accelerator memory is not in it)"
        ),
        formula=(
            "(1) dense = Σ_calls rows·in·out; effective = Σ_calls Σ_rows Σ_i [pre_i ≠ 0]·#{o: W_oi ≠ 0} "
            "(presynaptic activity × fan-out; a spiking layer's rows are its time steps, so spikes × "
            "fan-out per step), ACs when every input is −1, 0 or 1 (spikes), else MACs; biases not "
            "counted; KAN layers: G+k+1 synapses per edge (spline coefficients and base weight), "
            "effective where B_k(x_i) or b(x_i) ≠ 0, the basis evaluation (the presynaptic activation "
            "function) not counted. (2) torch.utils.flop_counter.FlopCounterMode FLOPs / 2 (mm, addmm, "
            "bmm, convolutions); elementwise arithmetic (activations, noise, traces, surrogate "
            "derivatives, optimiser step) not counted. (3) VmHWM of /proc/self/status after a reset "
            "(5 written to /proc/self/clear_refs) at the start of training; growth = VmHWM − VmRSS at "
            "the reset"
        ),
        sign="lower is cheaper",
        eps="none",
        averaging=(
            f"(1, 2) inference: the first {INFERENCE_EXAMPLES} test examples in one batch, eval mode; "
            "update: one `compute_update` (no optimiser step) on the first `batch_size` training "
            "examples at the final weights; totals / examples; `per_layer` by plastic layer. (3) one "
            "process over one run; allocator caching makes it depend on the machine and on earlier "
            "runs in the process"
        ),
        unit="operations per example; bytes",
        when="operations once, after the last epoch; memory from before the first update to the record",
        null_when=(
            "operations: training stopped early, a plastic layer cannot count its operations "
            "(`per_layer` says which) or the pass raised; memory: the high-water mark cannot be reset "
            "(no Linux /proc, or not permitted)"
        ),
    )
    order = 300
    schemas = {
        **{key: per_layer_schema(OPS_SCHEMA, extra=dict.fromkeys(OPERATION_KINDS, NONNEGATIVE))
           for key in ("inference_synops", "update_synops")},
        **dict.fromkeys(("inference_macs", "update_macs", "peak_rss_bytes", "peak_rss_growth_bytes"), NONNEGATIVE),
    }
    columns = (
        Column("update_macs", "Update MACs/ex", "multiply-accumulates of matrix products per example of one "
               "training update (forward, backward and the rule's own)", lambda m: scalar(m, "update_macs"),
               order=92, integer=True),
        Column("inference_synops_effective", "SynOps/ex", "effective synaptic operations (MACs + ACs) per "
               "example of inference (NeuroBench)", effective_synops, order=94, integer=True),
        Column("peak_rss_growth_mb", "Peak RSS +MB", "growth of the process's peak resident memory over the "
               "run (machine and order dependent)", lambda m: megabytes(m, "peak_rss_growth_bytes"),
               order=96, digits=0),
    )
    figures = (
        ScatterFigure(
            y=lambda m: scalar(m, "test_acc"),
            ylabel="test accuracy",
            panels=(
                (lambda m: scalar(m, "update_macs"), "MACs per example of one update (log)", True),
                (lambda m: effective_synops(m), "effective SynOps per example of inference (log)", True),
                (lambda m: scalar(m, "time_per_epoch_s"), "seconds per training epoch (log)", True),
                (lambda m: megabytes(m, "peak_rss_growth_bytes"), "peak RSS growth over the run (MB)", False),
            ),
            stem="accuracy_vs_cost",
            section="cost",
            title="Accuracy against cost",
            caption=(
                "One point per pairing (colour: rule, marker: architecture), the mean over its ok seeds. "
                "Operations are per example (harness probes); time and memory depend on the machine."
            ),
        ),
    )


class CostMeasurement(Measurement):
    """Measures :class:`RuleCost` for one run (see the module docstring)."""

    def __init__(self, run: RunState, inference_examples: int = INFERENCE_EXAMPLES) -> None:
        self.network, self.rule, self.task, self.seed = run.network, run.rule, run.task, int(run.seed)
        batch = int(getattr(run.profile, "batch_size", 1) or 1)
        self.infer_x = run.data.test_x[:inference_examples]
        self.update_x, self.update_y = run.data.train_x[:batch], run.data.train_y[:batch]
        self.started = False
        self.rss_start: int | None = None
        self.outcomes: dict[str, Outcome] = {}
        self.seconds = 0.0

    def at_start(self, step: int) -> None:
        """Reset the RSS high-water mark and note the RSS."""
        self.started = True
        self.rss_start = reset_peak_rss()

    def _inference(self) -> tuple[Outcome, Outcome]:
        if len(self.infer_x) == 0:
            raise MetricUndefined("no test examples")
        self.network.module.eval()
        counter = OperationCounter(self.network.layers)
        with counter, torch.no_grad():
            macs = matmul_macs(lambda: self.network(self.infer_x))
        n = len(self.infer_x)
        return counter.per_example(n), Outcome(macs / n)

    def _update(self) -> tuple[Outcome, Outcome]:
        if len(self.update_x) == 0:
            raise MetricUndefined("no training examples")
        self.network.module.train()
        for p in self.rule.trainable_parameters():
            p.grad = None
        torch.manual_seed(self.seed)
        counter = OperationCounter(self.network.layers)
        with counter:
            macs = matmul_macs(lambda: self.rule.compute_update(self.update_x, self.update_y, self.task.loss))
        n = len(self.update_x)
        return counter.per_example(n), Outcome(macs / n)

    def at_end(self, epochs: int, step: int) -> None:
        """Count the operations of inference and of one update at the final weights."""
        started = time.perf_counter()
        state = TrainingState(self.network, self.rule)
        try:
            for kind, count in (("inference", self._inference), ("update", self._update)):
                pair = guarded(lambda count=count: Outcome(count()))  # an error becomes both entries' reason
                synops, macs = pair.value if pair.value is not None else (pair, pair)
                self.outcomes[f"{kind}_synops"], self.outcomes[f"{kind}_macs"] = synops, macs
                state.restore()
        finally:
            state.restore()
            self.seconds += time.perf_counter() - started

    def contribute(self, metrics: dict[str, Any], reasons: dict[str, str], finished: bool) -> None:
        """Operation counts (null unless training finished) and peak memory."""
        for key in ("inference_synops", "update_synops", "inference_macs", "update_macs"):
            outcome = self.outcomes.get(key) if finished else None
            outcome = outcome or Outcome.undefined(NOT_FINISHED)
            metrics[key] = outcome.value
            reasons.update(outcome.flat_reasons(key))
        peak = peak_rss() if self.rss_start is not None else None
        if peak is None:
            why = ("training did not start" if not self.started else
                   f"the RSS high-water mark cannot be reset here (needs Linux and a writable {PROC_CLEAR_REFS})")
            metrics["peak_rss_bytes"] = metrics["peak_rss_growth_bytes"] = None
            reasons["peak_rss_bytes"] = reasons["peak_rss_growth_bytes"] = why
        else:
            metrics["peak_rss_bytes"] = peak
            metrics["peak_rss_growth_bytes"] = max(peak - self.rss_start, 0)
        metrics["cost_probe"] = {
            "inference_examples": len(self.infer_x),
            "update_examples": len(self.update_x),
            "operation_counting_time_s": self.seconds,
        }


def cost_measurement(run: RunState) -> CostMeasurement:
    """The cost measurement of one run (every pairing gets one)."""
    return CostMeasurement(run)


MEASUREMENTS = (cost_measurement,)
