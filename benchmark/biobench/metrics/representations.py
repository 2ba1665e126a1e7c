"""Representational geometry, measured after training: an RDM of every plastic layer on a probe set.

**Probe set.** The first :data:`PROBE_PER_CLASS` images of every class in the
task's test split, in file order, grouped by class (class 0 first). Every
pairing sees the same images: profiles cut the test split to a prefix, so the
probe indices are indices into the full test split as long as the prefix holds
them, and each record stores them.

**Activity pattern.** After training, the network runs once on the probe set
through ``Network.forward_with_signals``; a layer's pattern is its post-synaptic
activity ``post`` (batch, units). Spiking layers (``LayerSignals.time_major``)
use the spike count: ``post`` summed over the time dimension. Stochastic input
encoders draw from a generator forked from the run's seed, so the measurement
neither depends on nor disturbs the training random state.

**RDM.** ``rsatoolbox.rdm.calc_rdm(..., method="correlation")``: the
dissimilarity of probes i and j is ``1 - r_ij``, with ``r_ij`` the Pearson
correlation of their activity patterns across the layer's units (range [0, 2]).
It is undefined when a probe's pattern is constant across units (e.g. a layer
that does not spike for that image); the layer's RDM is then ``null`` with the
reason. The record keeps the upper triangle (row-major, without the diagonal,
``n (n - 1) / 2`` values, rounded to :data:`RDM_DECIMALS` decimals) together
with the probe indices and labels. Comparing the RDMs of pairings is report-time
analysis (:mod:`biobench.results.geometry`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from biobench.metrics.base import Metric, MetricDefinition
from biobench.metrics.measurement import Measurement, RunState
from biobench.metrics.state import TrainingState

PROBE_PER_CLASS = 5
DISSIMILARITY = "correlation"
COMPARISON = "spearman"
RDM_DECIMALS = 5
METRIC_KEY = "representations"


def probe_indices(labels: torch.Tensor, num_classes: int, per_class: int = PROBE_PER_CLASS) -> list[int]:
    """The first ``per_class`` indices of every class in ``labels`` (file order), class 0 first.

    Raises ValueError when a class has fewer than ``per_class`` examples, so a
    probe set is always exactly class-balanced.
    """
    labels = labels.detach().cpu().long()
    chosen: list[int] = []
    for c in range(num_classes):
        idx = torch.nonzero(labels == c).flatten()[:per_class].tolist()
        if len(idx) < per_class:
            raise ValueError(
                f"class {c} has {len(idx)} test examples, fewer than the {per_class} the probe set needs"
            )
        chosen.extend(int(i) for i in idx)
    return chosen


def layer_patterns(network: Any, x: torch.Tensor) -> list[tuple[str, np.ndarray | None, str]]:
    """``(layer name, activity pattern (probes, units) or None, what the pattern is)`` per plastic layer."""
    _, signals = network.forward_with_signals(x)
    out: list[tuple[str, np.ndarray | None, str]] = []
    for layer, sig in zip(network.layers, signals, strict=True):
        name = getattr(layer, "layer_name", type(layer).__name__)
        if sig is None:
            out.append((name, None, "no signals recorded"))
            continue
        post = sig.post.detach().float()
        if sig.time_major:
            post, what = post.sum(dim=0), "spike count (post summed over time)"
        else:
            what = "post-synaptic activity"
        out.append((name, post.reshape(post.shape[0], -1).cpu().numpy().astype(np.float64), what))
    return out


def compute_rdm(patterns: np.ndarray, labels: list[int]) -> np.ndarray | None:
    """Upper triangle of the correlation-distance RDM of ``patterns`` (rsatoolbox); None if undefined."""
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm

    dataset = Dataset(patterns, obs_descriptors={"label": np.asarray(labels)})
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        vector = calc_rdm(dataset, method=DISSIMILARITY).get_vectors()[0]
    return vector if np.all(np.isfinite(vector)) else None


def is_constant(vector: Any) -> bool:
    """Whether an RDM's dissimilarities are all equal (after rounding to the stored decimals)."""
    values = np.round(np.asarray(vector, dtype=np.float64), RDM_DECIMALS)
    return values.size == 0 or bool(np.ptp(values) == 0)


def _constant_probes(patterns: np.ndarray) -> list[int]:
    return [int(i) for i in np.nonzero(np.ptp(patterns, axis=1) == 0)[0]]


def measure(
    network: Any, data: Any, num_classes: int, seed: int, rule: Any = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``representations`` metric of a trained network, and reasons for layers without an RDM.

    The probe pass runs in eval mode without gradients; with ``rule`` given, the
    whole training state (weights, buffers, neuron states, generators) is
    snapshotted before and restored after it.
    """
    indices = probe_indices(data.test_y, num_classes)
    x, y = data.test_x[indices], data.test_y[indices]
    labels = [int(v) for v in y.tolist()]  # one copy from the device, not one per label
    state = TrainingState(network, rule) if rule is not None else None
    module = network.module
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            patterns = layer_patterns(network, x)
    finally:
        module.train(was_training)
        if state is not None:
            state.restore()
    layers, reasons = [], {}
    for name, pattern, what in patterns:
        entry: dict[str, Any] = {"name": name, "activity": what, "units": None, "rdm": None, "reason": None}
        if pattern is None:
            entry["reason"] = f"layer {name} recorded no signals during the probe pass"
        elif not np.all(np.isfinite(pattern)):
            entry["units"] = int(pattern.shape[1])
            entry["reason"] = f"layer {name} has non-finite activity on the probe set"
        else:
            entry["units"] = int(pattern.shape[1])
            vector = compute_rdm(pattern, labels)
            if vector is None:
                flat = _constant_probes(pattern)
                entry["reason"] = (
                    f"correlation distance undefined: {len(flat)} probe image(s) give a constant "
                    f"activity pattern in layer {name} (first probe positions {flat[:5]})"
                )
            elif is_constant(vector):
                entry["reason"] = (
                    f"degenerate RDM: every pair of probe images is equally dissimilar in layer {name} "
                    f"({float(vector[0]):.4g}), so it has no geometry to compare (a rank correlation with it "
                    "is undefined)"
                )
            else:
                entry["rdm"] = [round(float(v), RDM_DECIMALS) for v in vector]
        if entry["reason"]:
            reasons[f"{METRIC_KEY}.{name}"] = entry["reason"]
        layers.append(entry)
    value = {
        "dissimilarity": DISSIMILARITY,
        "library": "rsatoolbox.rdm.calc_rdm",
        "probe": {
            "split": "test",
            "per_class": PROBE_PER_CLASS,
            "indices": indices,
            "labels": labels,
        },
        "layers": layers,
    }
    return value, reasons


class Representations(Metric):
    """Representational dissimilarity matrices of every plastic layer on a fixed probe set."""

    definition = MetricDefinition(
        keys=(METRIC_KEY,),
        measures=(
            "the representational geometry of each plastic layer: how dissimilar its activity "
            "patterns are for every pair of probe images"
        ),
        formula=(
            "RDM_ij = 1 − Pearson r(a_i, a_j), a_i the layer's post-synaptic activity for probe i "
            "(spike count for spiking layers), by rsatoolbox.rdm.calc_rdm(method='correlation'); "
            "stored as the upper triangle without the diagonal, row-major, rounded to "
            f"{RDM_DECIMALS} decimals"
        ),
        sign="0: identical patterns, 1: uncorrelated, 2: anti-correlated",
        eps="none",
        averaging=(
            f"none; the probe is the first {PROBE_PER_CLASS} images of every class in the test split, "
            "grouped by class, network in eval mode"
        ),
        unit="dimensionless, in [0, 2]",
        when="once, after the last epoch",
        null_when=(
            "a layer recorded no signals, its activity is not finite, or a probe's pattern is constant "
            "across units (correlation undefined); the test split lacks a class's probes"
        ),
    )
    order = 60


class RepresentationMeasurement(Measurement):
    """Measures the layers' RDMs on the probe set once training has ended."""

    def __init__(self, network: Any, rule: Any, task: Any, data: Any, seed: int) -> None:
        self.network, self.rule, self.task, self.data, self.seed = network, rule, task, data, seed
        self.value: dict[str, Any] | None = None
        self.reasons: dict[str, str] = {}
        self.error: str | None = None

    def at_end(self, epochs: int, step: int) -> None:
        """Run the probe pass on the trained network."""
        try:
            self.value, self.reasons = measure(self.network, self.data, int(self.task.num_classes), self.seed, self.rule)
        except ValueError as exc:  # e.g. a test split too small for a balanced probe set
            self.error = str(exc)
        except Exception as exc:  # a measurement never fails the run; the error is recorded
            self.error = f"the probe pass raised {type(exc).__name__}: {exc}"

    def contribute(self, metrics: dict[str, Any], reasons: dict[str, str], finished: bool) -> None:
        """Add ``representations`` (or null with the reason) to the record."""
        if self.value is None:
            metrics[METRIC_KEY] = None
            reasons[METRIC_KEY] = self.error or "training did not reach its end; no probe pass"
            return
        metrics[METRIC_KEY] = self.value
        reasons.update(self.reasons)


def representation_measurement(run: RunState) -> RepresentationMeasurement:
    """The RDM measurement of one run (every pairing gets one)."""
    return RepresentationMeasurement(run.network, run.rule, run.task, run.data, int(run.seed))


MEASUREMENTS = (representation_measurement,)
