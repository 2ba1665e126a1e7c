"""Representational geometry at report time: comparing the RDMs that records hold, and a 2-D map.

The RDMs themselves are measured after training (:mod:`biobench.metrics.representations`).

**Comparison**: the RDMs of a pairing's seeds are averaged (``rsatoolbox.rdm.RDMs.mean``);
two pairings' RDMs are compared by the Spearman rank correlation of their upper
triangles (``rsatoolbox.rdm.compare(method="spearman")``), which only assumes that
the dissimilarities are monotonically related. Within an architecture, layers are
matched by name; across architectures by depth *slot*: ``hidden`` (the
penultimate plastic layer) and ``output`` (the last one).

**Projection.** For each slot, metric MDS (scikit-learn, 2 components,
classical-MDS initialisation where available, ``random_state=0``) embeds every
pairing from the dissimilarity ``1 - Spearman rho``; coordinates are centred,
rotated onto their principal axes and signed so that each axis's largest
absolute coordinate is positive, which makes the picture reproducible.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from biobench.metrics.representations import (
    COMPARISON,
    DISSIMILARITY,
    METRIC_KEY,
    PROBE_PER_CLASS,
    is_constant,
)

SLOTS = ("hidden", "output")
MDS_SEED = 0

__all__ = ["PROBE_PER_CLASS", "SLOTS", "PairingRDMs", "analyse", "collect", "mds_projection", "rdm_matrix"]


@dataclass
class PairingRDMs:
    """The seed-averaged RDMs of one pairing, by layer name in depth order."""

    task: str
    architecture: str
    rule: str
    profile: str
    seeds: list[int]
    layers: dict[str, list[float]]
    layer_order: list[str]

    @property
    def key(self) -> str:
        """``task/architecture/rule`` (plus ``@profile`` is kept separately)."""
        return f"{self.task}/{self.architecture}/{self.rule}"

    def slot(self, slot: str) -> str | None:
        """The layer name filling depth ``slot`` (``hidden``: penultimate, ``output``: last)."""
        if slot == "output" and self.layer_order:
            return self.layer_order[-1]
        if slot == "hidden" and len(self.layer_order) >= 2:
            return self.layer_order[-2]
        return None


def _probe_signature(value: dict[str, Any]) -> tuple[int, ...]:
    return tuple(value["probe"]["indices"])


def collect(records: list[dict[str, Any]]) -> tuple[list[PairingRDMs], dict[str, Any] | None, list[str]]:
    """Seed-averaged RDMs per pairing from ``ok`` records; returns (pairings, probe, notes).

    All pairings must share one probe set: records with another one (or another
    dissimilarity) are left out with a note. A layer enters a pairing's average
    only from seeds where its RDM exists.
    """
    from rsatoolbox.rdm import RDMs

    notes: list[str] = []
    usable = [
        r for r in records
        if r["status"] == "ok" and isinstance(r["metrics"].get(METRIC_KEY), dict)
    ]
    if not usable:
        return [], None, ["no ok record holds representations"]
    signatures: dict[tuple[int, ...], int] = {}
    for r in usable:
        sig = _probe_signature(r["metrics"][METRIC_KEY])
        signatures[sig] = signatures.get(sig, 0) + 1
    reference = max(sorted(signatures), key=lambda s: signatures[s])
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    probe: dict[str, Any] | None = None
    for r in usable:
        value = r["metrics"][METRIC_KEY]
        if _probe_signature(value) != reference or value.get("dissimilarity") != DISSIMILARITY:
            notes.append(f"{r['run_id']}: another probe set or dissimilarity; left out of the comparison")
            continue
        probe = probe or value["probe"]
        groups.setdefault((r["task"], r["architecture"], r["rule"], r["profile"]), []).append(r)
    pairings = []
    for (task, arch, rule, profile), recs in sorted(groups.items()):
        recs = sorted(recs, key=lambda r: r["seed"])
        order = [layer["name"] for layer in recs[0]["metrics"][METRIC_KEY]["layers"]]
        layers: dict[str, list[float]] = {}
        for name in order:
            vectors = [
                layer["rdm"]
                for r in recs
                for layer in r["metrics"][METRIC_KEY]["layers"]
                if layer["name"] == name and layer["rdm"] is not None
            ]
            if not vectors:
                notes.append(f"{task}/{arch}/{rule} layer {name}: no seed has an RDM")
                continue
            mean = RDMs(np.asarray(vectors, dtype=np.float64), dissimilarity_measure=DISSIMILARITY).mean()
            layers[name] = [float(v) for v in mean.get_vectors()[0]]
        pairings.append(PairingRDMs(task, arch, rule, profile, [r["seed"] for r in recs], layers, order))
    return pairings, probe, notes


def similarity_matrix(vectors: list[list[float]]) -> np.ndarray:
    """Spearman rank correlation between every pair of RDM upper triangles (rsatoolbox)."""
    from rsatoolbox.rdm import RDMs, compare

    rdms = RDMs(np.asarray(vectors, dtype=np.float64), dissimilarity_measure=DISSIMILARITY)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(compare(rdms, rdms, method=COMPARISON), dtype=np.float64)


def _mds_estimator() -> Any:
    from sklearn.manifold import MDS

    params = inspect.signature(MDS).parameters
    if "metric_mds" in params:  # scikit-learn >= 1.8
        return MDS(n_components=2, metric="precomputed", init="classical_mds", random_state=MDS_SEED)
    return MDS(n_components=2, dissimilarity="precomputed", n_init=4, random_state=MDS_SEED)


def canonical_orientation(points: np.ndarray) -> np.ndarray:
    """Centre ``points`` (n, 2), rotate onto principal axes, sign each axis by its largest |value|."""
    centred = points - points.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    rotated = centred @ vt.T
    for k in range(rotated.shape[1]):
        column = rotated[:, k]
        if column[np.argmax(np.abs(column))] < 0:
            rotated[:, k] = -column
    return rotated


def mds_projection(similarity: np.ndarray) -> tuple[np.ndarray, float]:
    """2-D metric MDS of ``1 - similarity`` (canonically oriented) and its stress."""
    dissimilarity = np.clip(1.0 - similarity, 0.0, None)
    dissimilarity = (dissimilarity + dissimilarity.T) / 2
    np.fill_diagonal(dissimilarity, 0.0)
    estimator = _mds_estimator()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        coords = estimator.fit_transform(dissimilarity)
    return canonical_orientation(np.asarray(coords, dtype=np.float64)), float(estimator.stress_)


def _rounded(matrix: np.ndarray, decimals: int = 4) -> list[list[float | None]]:
    return [[None if not np.isfinite(v) else round(float(v), decimals) for v in row] for row in matrix]


def _block(
    pairings: list[PairingRDMs], layer_of: Callable[[PairingRDMs], str | None], notes: list[str] | None = None
) -> dict[str, Any] | None:
    """Similarities between the pairings' RDMs of one layer; degenerate (constant) RDMs are left out.

    A constant RDM has no ranks, so its Spearman correlation with anything is not a
    correlation; it would break the matrix (off-unit diagonal, asymmetry), so it never
    enters one. ``notes`` receives what was left out.
    """
    members = [(p, layer_of(p)) for p in pairings]
    members = [(p, name) for p, name in members if name is not None and name in p.layers]
    for p, name in [m for m in members if is_constant(m[0].layers[m[1]])]:
        if notes is not None:
            notes.append(f"{p.key} layer {name}: constant RDM left out of the comparisons")
    members = [(p, name) for p, name in members if not is_constant(p.layers[name])]
    if len(members) < 2:
        return None
    sim = similarity_matrix([p.layers[name] for p, name in members])
    return {
        "pairings": [p.key for p, _ in members],
        "architectures": [p.architecture for p, _ in members],
        "rules": [p.rule for p, _ in members],
        "layers": [name for _, name in members],
        "similarity": _rounded(sim),
        "_sim": sim,
    }


def analyse(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Comparisons and MDS coordinates from ``records``: JSON-ready, deterministic, with notes."""
    pairings, probe, notes = collect(records)
    result: dict[str, Any] = {
        "dissimilarity": f"{DISSIMILARITY} distance (1 - Pearson r), rsatoolbox.rdm.calc_rdm",
        "comparison": f"{COMPARISON} rank correlation of RDM upper triangles, rsatoolbox.rdm.compare",
        "projection": "metric MDS of 1 - Spearman rho (scikit-learn), canonical orientation",
        "probe": probe,
        "pairings": [
            {
                "key": p.key, "task": p.task, "architecture": p.architecture, "rule": p.rule,
                "profile": p.profile, "seeds": p.seeds, "layers": p.layer_order,
                "rdm_layers": [n for n in p.layer_order if n in p.layers],
            }
            for p in pairings
        ],
        "within_architecture": [],
        "across_architectures": [],
        "slots": {},
        "notes": notes,
    }
    by_arch: dict[tuple[str, str], list[PairingRDMs]] = {}
    for p in pairings:
        by_arch.setdefault((p.task, p.architecture), []).append(p)
    for (task, arch), members in sorted(by_arch.items()):
        for name in members[0].layer_order:
            block = _block(members, lambda p, n=name: n, result["notes"])
            if block is not None:
                block.pop("_sim")
                result["within_architecture"].append({"task": task, "architecture": arch, "layer": name, **block})
    by_rule: dict[tuple[str, str], list[PairingRDMs]] = {}
    for p in pairings:
        by_rule.setdefault((p.task, p.rule), []).append(p)
    for (task, rule), members in sorted(by_rule.items()):
        for slot in SLOTS:
            block = _block(members, lambda p, s=slot: p.slot(s), result["notes"])
            if block is not None:
                block.pop("_sim")
                result["across_architectures"].append({"task": task, "rule": rule, "slot": slot, **block})
    for slot in SLOTS:
        block = _block(pairings, lambda p, s=slot: p.slot(s), result["notes"])
        if block is None:
            result["notes"].append(f"slot {slot}: fewer than two pairings with an RDM; no projection")
            continue
        sim = block.pop("_sim")
        if not np.all(np.isfinite(sim)):
            result["notes"].append(f"slot {slot}: undefined similarities (a constant RDM); no projection")
            block["mds"] = None
        else:
            coords, stress = mds_projection(sim)
            block["mds"] = {"coordinates": _rounded(coords), "stress": round(stress, 6)}
        result["slots"][slot] = block
    result["notes"] = list(dict.fromkeys(result["notes"]))
    return result


def rdm_matrix(vector: list[float]) -> np.ndarray:
    """The square RDM of an upper-triangle vector (rsatoolbox)."""
    from rsatoolbox.rdm import RDMs

    return RDMs(np.asarray([vector], dtype=np.float64), dissimilarity_measure=DISSIMILARITY).get_matrices()[0]
