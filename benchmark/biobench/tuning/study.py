"""``biobench tune``: the same tuning budget for every pairing, chosen on validation, reported on fresh seeds.

For each pairing an Optuna study searches the options its plugins declare tunable
(:mod:`biobench.tuning.space`): ``trials`` trials, each a run of the chosen profile
(``epochs_per_trial`` epochs if given) on the tuning seed, through the usual
executors. A trial is scored by its validation accuracy after its last epoch; its
test split is never evaluated (``evaluate_test`` off) and the harness's
measurements are not taken. Hopeless trials are stopped early by Optuna's median
pruner on the per-epoch validation accuracy (status ``pruned``); a trial that
diverges scores 0. The sampler is a scrambled Sobol sequence (``qmc``, the default:
with a budget of a few trials it covers the space evenly, where TPE would still be
in its random start-up phase) or TPE (``tpe``), seeded, so a study is reproducible.

The best trial's options are then run on the evaluation seeds (default 0-4, the
seeds of the defaults track, so the two tracks pair by seed) with every
measurement, as records of track ``tuned`` that carry the search space, the budget,
the number of trials and the trial they came from.

Studies live in a storage (``sqlite:///<out>/tuning/studies.db`` by default, or any
database URL Optuna accepts, for a study shared by several machines); a study that
is interrupted resumes where it stopped: finished trials are kept, a trial that was
running is marked failed and asked again. Trial records go to
``<out>/tuning/<study>/``, apart from the leaderboard's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from biobench.plugin_api.registry import Registry
from biobench.training import runner
from biobench.tuning import pruning
from biobench.tuning import space as space_mod

SAMPLERS = ("tpe", "qmc")
PRUNERS = pruning.PRUNERS
#: The seed of every tuning trial: never one of the evaluation seeds.
TRIAL_SEED = 1000


@dataclass(frozen=True)
class TuningBudget:
    """What every pairing gets: trials, epochs per trial, profile, sampler, pruner and evaluation seeds."""

    trials: int = 8
    epochs_per_trial: int | None = None
    profile: str = "ci"
    sampler: str = "qmc"
    pruner: str = "median"
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    trial_seed: int = TRIAL_SEED

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise ValueError(f"trials must be at least 1, got {self.trials}")
        if self.epochs_per_trial is not None and self.epochs_per_trial < 1:
            raise ValueError(f"epochs per trial must be at least 1, got {self.epochs_per_trial}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; known: {', '.join(SAMPLERS)}")
        if self.pruner not in PRUNERS:
            raise ValueError(f"unknown pruner {self.pruner!r}; known: {', '.join(PRUNERS)}")
        if not self.seeds or any(s < 0 or s == self.trial_seed for s in self.seeds):
            raise ValueError(f"evaluation seeds must be non-negative and not the trial seed {self.trial_seed}")

    def describe(self) -> dict[str, Any]:
        """JSON-ready (stored in the study and in every tuned record)."""
        out = asdict(self)
        out["seeds"] = list(self.seeds)
        return out


@dataclass
class TuningProgress:
    """Callbacks reporting a study's progress (all optional)."""

    trial: Callable[[str, int, int, str, float | None, float | None, float], None] = (
        lambda study, done, total, status, value, best, eta: None
    )
    note: Callable[[str], None] = lambda text: None


@dataclass
class TuningResult:
    """What one pairing's tuning gave: its study, best options and the tuned records."""

    study: str
    pairing: tuple[str, str, str]
    trials_complete: int
    trials_pruned: int
    trials_failed: int
    best_value: float | None
    best_options: dict[str, dict[str, Any]]
    records: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""


def study_name(task: str, architecture: str, rule: str, profile: str) -> str:
    """The study of a pairing: ``task__architecture__rule__profile``."""
    return f"{task}__{architecture}__{rule}__{profile}"


def default_storage(out_dir: Path) -> str:
    """``sqlite:///<out>/tuning/studies.db`` (the folder is created)."""
    folder = Path(out_dir) / "tuning"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / 'studies.db').resolve()}"


def _sampler(name: str, seed: int) -> Any:
    import optuna

    if name == "qmc":
        return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed, warn_independent_sampling=False)
    return optuna.samplers.TPESampler(seed=seed)


def open_study(name: str, storage: str, budget: TuningBudget) -> Any:
    """Create or load the study; a stored study with another budget is an error (it would mix budgets)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=name, storage=storage, load_if_exists=True, direction="maximize",
        sampler=_sampler(budget.sampler, budget.trial_seed), pruner=pruning.make_pruner(budget.pruner),
    )
    stored = study.user_attrs.get("budget")
    described = budget.describe()
    comparable = {k: v for k, v in described.items() if k != "seeds"}
    if stored is None:
        study.set_user_attr("budget", described)
    elif {k: v for k, v in stored.items() if k != "seeds"} != comparable:
        raise ValueError(
            f"study {name!r} in {storage} was run with another budget ({stored}); use another storage or "
            "the same budget"
        )
    return study


def _count(study: Any) -> dict[str, int]:
    import optuna

    states = [t.state for t in study.trials]
    return {
        "complete": states.count(optuna.trial.TrialState.COMPLETE),
        "pruned": states.count(optuna.trial.TrialState.PRUNED),
        "failed": states.count(optuna.trial.TrialState.FAIL),
    }


def _abandon_running(study: Any) -> None:
    """Trials left running by an interrupted study cannot resume: mark them failed."""
    import optuna

    for trial in study.trials:
        if trial.state == optuna.trial.TrialState.RUNNING:
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)


def _spec(base: runner.RunSpec, options: dict[str, dict[str, Any]], **changes: Any) -> runner.RunSpec:
    return replace(
        base,
        architecture_options=tuple(sorted({**dict(base.architecture_options), **options["architecture"]}.items())),
        rule_options=tuple(sorted({**dict(base.rule_options), **options["rule"]}.items())),
        optimizer_options=tuple(sorted({**dict(base.optimizer_options), **options["optimizer"]}.items())),
        **changes,
    )


def tune_pairing(
    base: runner.RunSpec,
    registry: Registry,
    out_dir: Path,
    data_dir: str | None,
    budget: TuningBudget,
    storage: str,
    run_grid: Callable[[list[runner.RunSpec], runner.RunContext], list[dict[str, Any]]],
    progress: TuningProgress | None = None,
    parallel: int = 1,
) -> TuningResult:
    """Tune one pairing (``base``: its names, profile and fixed options) and run the best options on fresh seeds.

    ``run_grid(specs, ctx)`` runs specs through an executor (the caller chooses
    which); ``parallel`` trials are asked at a time (the executor's parallelism):
    the sampler sees every finished trial before it proposes the next batch.
    """
    import optuna

    progress = progress or TuningProgress()
    resolved = runner.resolve(base, registry)
    name = study_name(base.task, base.architecture, base.rule, base.profile)
    dimensions = space_mod.dimensions(type(resolved.architecture), resolved.rule_cls)
    distributions = {d.name: space_mod.distribution(d) for d in dimensions}
    study = open_study(name, storage, budget)
    _abandon_running(study)
    trial_dir = Path(out_dir) / "tuning" / name
    trial_ctx = runner.RunContext(
        registry=registry, out_dir=trial_dir, data_dir=data_dir, measurement_factories=[pruning.trial_reporter]
    )
    trial_base = replace(
        base, seed=budget.trial_seed, epochs=budget.epochs_per_trial or base.epochs,
        run_options=tuple(sorted({**dict(base.run_options), "evaluate_test": False}.items())),
    )
    started, finished_here = time.perf_counter(), 0
    while True:
        counts = _count(study)
        done = counts["complete"] + counts["pruned"]
        if done >= budget.trials:
            break
        batch = [study.ask(distributions) for _ in range(min(max(1, parallel), budget.trials - done))]
        specs = [
            _spec(trial_base, space_mod.options_of(t.params), provenance=json.dumps({"trial": {
                "study": name, "storage": storage, "trial": t.number, "trial_id": t._trial_id,
                "pruner": budget.pruner,
            }}, sort_keys=True))
            for t in batch
        ]
        results = run_grid(specs, trial_ctx)
        for trial, record in zip(batch, results, strict=True):
            status, value = record["status"], None
            if status == "ok":
                value = record["metrics"].get("val_acc")
                study.tell(trial, value if value is not None else 0.0)
            elif status == "pruned":
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            elif status == "diverged":
                value = 0.0
                study.tell(trial, 0.0)  # a configuration that diverges is as bad as it gets
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            finished_here += 1
            counts = _count(study)
            done = counts["complete"] + counts["pruned"]
            elapsed = time.perf_counter() - started
            eta = elapsed / finished_here * max(budget.trials - done, 0)
            best = _best_value(study)
            progress.trial(name, done, budget.trials, status, value, best, eta)
    counts = _count(study)
    best_trial = _best_trial(study)
    if best_trial is None:
        return TuningResult(name, (base.task, base.architecture, base.rule), counts["complete"], counts["pruned"],
                            counts["failed"], None, {}, note="no trial completed; nothing to evaluate")
    options = space_mod.options_of(best_trial.params)
    provenance = {
        "study": name, "storage": storage, "search_space": space_mod.describe(dimensions),
        "budget": budget.describe(), "trials": counts["complete"] + counts["pruned"],
        "trials_complete": counts["complete"], "trials_pruned": counts["pruned"], "trials_failed": counts["failed"],
        "best_trial": best_trial.number, "best_validation_accuracy": best_trial.value,
        "selected_on": "validation accuracy after the trial's last epoch (test split not evaluated in trials)",
        "options": options,
    }
    finals = [
        _spec(base, options, seed=seed, track="tuned", provenance=json.dumps({"tuning": provenance}, sort_keys=True))
        for seed in budget.seeds
    ]
    final_ctx = runner.RunContext(registry=registry, out_dir=Path(out_dir), data_dir=data_dir)
    records = run_grid(finals, final_ctx)
    note = "" if dimensions else "no tunable option: the tuned track runs the defaults"
    return TuningResult(
        name, (base.task, base.architecture, base.rule), counts["complete"], counts["pruned"], counts["failed"],
        best_trial.value, options, records, note,
    )


def _best_trial(study: Any) -> Any:
    import optuna

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]
    if not complete:
        return None
    return max(complete, key=lambda t: (t.value, -t.number))


def _best_value(study: Any) -> float | None:
    best = _best_trial(study)
    return None if best is None else float(best.value)
