"""Published setups as runs: every :class:`~biobench.plugin_api.reproductions.PaperSetup` the plugins declare.

``biobench reproduce`` lists them (:func:`published_setups`) and turns the chosen
ones into run specs (:func:`setup_specs`): the setup's exact configuration, on its
number of seeds. Budget ``full`` runs the setup's own epochs; ``short`` runs its
``short_epochs`` (cheap enough for CI) and is compared with the published values of
the epochs it reaches.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from biobench.plugin_api.registry import Registry
from biobench.plugin_api.reproductions import PaperSetup
from biobench.training.runner import RunSpec

BUDGETS = ("short", "full")


@dataclass(frozen=True)
class DeclaredSetup:
    """A setup with the plugin that declares it."""

    setup: PaperSetup
    kind: str
    plugin: str
    distribution: str


def published_setups(registry: Registry) -> list[DeclaredSetup]:
    """Every published setup of the loaded plugins, by id; two setups with one id are an error."""
    found: dict[str, DeclaredSetup] = {}
    for kind, entries in registry.entries.items():
        for name, entry in entries.items():
            for setup in getattr(entry.cls, "published_setups", ()):
                if setup.id in found:
                    other = found[setup.id]
                    raise ValueError(
                        f"published setup id {setup.id!r} is declared by {kind} {name!r} and by "
                        f"{other.kind} {other.plugin!r}"
                    )
                found[setup.id] = DeclaredSetup(setup, kind, name, entry.source.distribution)
    return [found[k] for k in sorted(found)]


def epochs_for(setup: PaperSetup, budget: str) -> int | None:
    """The epochs a budget runs: the setup's ``short_epochs`` for ``short``, its own for ``full``."""
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; known: {', '.join(BUDGETS)}")
    full = setup.run.get("epochs")
    if budget == "short":
        return setup.short_epochs or full
    return full


def setup_specs(declared: DeclaredSetup, budget: str, seeds: int | None = None) -> list[RunSpec]:
    """The runs of a setup under a budget: its configuration on seeds 0..n-1 (n: ``seeds`` or the setup's).

    Each run's provenance carries the setup's citation, source, notes and published
    values, so the reproduction table is rendered from the records alone.
    """
    setup = declared.setup
    run = dict(setup.run)
    epochs = epochs_for(setup, budget)
    batch_size = run.pop("batch_size", None)
    run.pop("epochs", None)
    provenance = json.dumps({"reproduction": {
        "setup": setup.id, "budget": budget, "citation": setup.citation, "source": setup.source,
        "notes": setup.notes, "declared_by": f"{declared.kind} {declared.plugin} ({declared.distribution})",
        "published": [asdict(v) for v in setup.published],
    }}, sort_keys=True)
    return [
        RunSpec(
            task=setup.task, architecture=setup.architecture, rule=setup.rule, seed=seed, profile=setup.profile,
            epochs=epochs, batch_size=batch_size,
            architecture_options=_items(setup.architecture_options), rule_options=_items(setup.rule_options),
            optimizer_options=_items(setup.optimizer), run_options=_items(run),
            task_options=_items(setup.task_options), provenance=provenance,
        )
        for seed in range(seeds or setup.seeds)
    ]


def _items(options: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(options.items()))
