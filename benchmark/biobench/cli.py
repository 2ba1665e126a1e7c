"""The ``biobench`` command line: ``plugins``, ``run``, ``report`` and ``leaderboard``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from biobench.execution import EXECUTORS, ExecutorError
from biobench.plugin_api import registry as registry_mod
from biobench.plugin_api.optimization import OPTIMIZERS, SCHEDULES
from biobench.training.profiles import PROFILES

EXIT_OK, EXIT_FAILED_RUNS, EXIT_USAGE = 0, 1, 2
DEFAULT_OUT = "biobench-results"


class UsageError(Exception):
    """Bad input from the user: one clear message and exit code 2."""


def _split_names(values: Sequence[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def _load(args: argparse.Namespace) -> registry_mod.Registry:
    disable = _split_names(args.disable_plugins)
    if disable is not None:
        disable = disable + registry_mod.names_from_env(registry_mod.DISABLE_ENV)
    return registry_mod.load_registry(disable=disable)


def _report_plugin_errors(reg: registry_mod.Registry, console: Console) -> None:
    for err in reg.errors:
        console.print(
            f"[yellow]plugin {escape(err.entry_point)!s} ({escape(err.distribution)}) not loaded:[/] "
            f"{escape(err.error)}"
        )


def cmd_plugins(args: argparse.Namespace, console: Console) -> int:
    """List every architecture, rule and task with its distribution, version and description."""
    reg = _load(args)
    if args.json:
        payload = {
            kind: [
                {
                    "name": e.name,
                    "entry_point": e.source.entry_point,
                    "distribution": e.source.distribution,
                    "version": e.source.version,
                    "description": e.description,
                }
                for e in sorted(entries.values(), key=lambda e: e.name)
            ]
            for kind, entries in reg.entries.items()
        }
        payload["errors"] = [vars(e) for e in reg.errors]
        payload["disabled"] = reg.disabled
        print(json.dumps(payload, indent=2))
        return EXIT_OK
    for kind, title in (("architecture", "Architectures"), ("rule", "Learning rules"), ("task", "Tasks")):
        table = Table(title=title, title_justify="left")
        for col in ("name", "distribution", "version", "description"):
            table.add_column(col, overflow="fold")
        for entry in sorted(reg.entries[kind].values(), key=lambda e: e.name):
            table.add_row(
                escape(entry.name), escape(entry.source.distribution), escape(entry.source.version),
                escape(entry.description),
            )
        console.print(table)
    if reg.disabled:
        console.print(f"disabled plugins: {', '.join(reg.disabled)}")
    _report_plugin_errors(reg, console)
    return EXIT_OK


def _parse_option(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise UsageError(f"option {text!r} must look like key=value")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def _check_out_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create results folder {out}: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK):
        raise UsageError(f"results folder {out} is not writable")


#: Command-line flags of the optimiser and the optimiser setting each one sets.
OPTIMIZER_FLAGS = {
    "optimizer": "name", "lr": "lr", "momentum": "momentum", "nesterov": "nesterov",
    "weight_decay": "weight_decay", "lr_schedule": "schedule", "lr_step_epochs": "step_epochs",
    "lr_gamma": "gamma",
}


def add_accelerator_options(parser: argparse.ArgumentParser) -> None:
    """``--accelerator`` and ``--devices``: where every run of the command trains."""
    from biobench.training.devices import ACCELERATORS

    parser.add_argument(
        "--accelerator", choices=ACCELERATORS, default=None,
        help="where each run trains: auto (default) a CUDA GPU when torch sees one, else the CPU; cpu; gpu "
             "(an error before anything runs when there is none). Not part of the run's identity: the same "
             "run on either device has the same record id; the record's environment says where it ran",
    )
    parser.add_argument(
        "--devices", type=int, metavar="N", default=None,
        help="devices per run: only 1 is supported (the default); use --jobs (or the ray executor with a GPU "
             "per task) to run several pairings at once",
    )


def execution_options(args: argparse.Namespace) -> dict[str, Any]:
    """The run options of ``--accelerator`` / ``--devices`` that were given, checked before anything runs.

    ``gpu`` on a machine without CUDA is an error here (with the local executor; a
    Ray cluster's GPUs are checked once connected).
    """
    from biobench.training import devices

    accelerator, count = getattr(args, "accelerator", None), getattr(args, "devices", None)
    devices.preflight(accelerator or "auto", 1 if count is None else count, getattr(args, "executor", "local"))
    options: dict[str, Any] = {}
    if accelerator is not None:
        options["accelerator"] = accelerator
    if count is not None:
        options["devices"] = count
    return options


def plan_from_args(args: argparse.Namespace, reg: registry_mod.Registry) -> list[Any]:
    """The specs that ``run``'s arguments ask for, every option attached (not yet checked)."""
    from dataclasses import replace

    from biobench.training import runner

    if args.epochs is not None and args.epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {args.epochs}")
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    if any(s < 0 for s in args.seeds):
        raise UsageError(f"--seeds must be non-negative, got {args.seeds}")
    specs = runner.plan_grid(
        reg,
        tasks=_split_names(args.task) or ["mnist"],
        architectures=None if args.all and not args.arch else _split_names(args.arch),
        rules=None if args.all and not args.rule else _split_names(args.rule),
        seeds=args.seeds,
        profile=args.profile,
        epochs=args.epochs,
        batch_size=args.batch_size,
    )
    optimizer = {key: getattr(args, flag) for flag, key in OPTIMIZER_FLAGS.items() if getattr(args, flag) is not None}
    run_options = execution_options(args)
    if args.threads is not None:
        run_options["threads"] = args.threads
    if args.train_on_validation:
        run_options["validation"] = False
    return [
        replace(
            s,
            architecture_options=tuple(_parse_option(o) for o in args.arch_option or ()),
            rule_options=tuple(_parse_option(o) for o in args.rule_option or ()),
            task_options=tuple(_parse_option(o) for o in args.task_option or ()),
            optimizer_options=tuple(sorted(optimizer.items())),
            run_options=tuple(sorted(run_options.items())),
        )
        for s in specs
    ]


def preflight(
    specs: list[Any], reg: registry_mod.Registry, data_dir: str | None
) -> tuple[list[Any], dict[str, str]]:
    """Check every option, then ask each task once whether its data is present or fetchable.

    Returns the specs whose task has its data and, by task name, why the others are
    skipped (``Task.data_available``). Raises ValueError for a bad option, naming it;
    nothing is written.
    """
    from biobench.training import runner

    tasks = {}
    for spec in specs:
        resolved = runner.resolve(spec, reg)  # checks every option against its declaration
        if reg.unsupported_reason(resolved.architecture, resolved.rule_cls, resolved.task) is None:
            tasks.setdefault(spec.task, resolved.task)  # only runs that train need data
    skipped = {}
    for name, task in tasks.items():
        reason = task.data_available(data_dir)
        if reason is not None:
            skipped[name] = reason
    return [s for s in specs if s.task not in skipped], skipped


def runnable(specs: list[Any], reg: registry_mod.Registry, data_dir: str | None, console: Console) -> list[Any]:
    """The specs whose task has its data (:func:`preflight`); each skipped task is said once, with its reason.

    Raises UsageError when no requested task has its data.
    """
    kept, skipped = preflight(specs, reg, data_dir)
    for name, reason in skipped.items():
        # soft_wrap: a long reason (paths, addresses) is printed whole, never folded mid-word
        console.print(f"[yellow]skipped task {escape(name)!s}: its data is missing.[/] {escape(reason)}", soft_wrap=True)
    if specs and not kept:
        raise UsageError(f"nothing to run: no requested task has its data ({', '.join(skipped)}; see above)")
    return kept


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    """Train the requested pairings and write one record per run."""
    from biobench.results.store import ResultsWriteError
    from biobench.training import runner

    if not (args.all or args.arch or args.rule):
        raise UsageError("say what to run: --all, or --arch NAME and/or --rule NAME (repeatable)")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    if args.address and args.executor != "ray":
        raise UsageError("--address names a Ray cluster: use it with --executor ray")
    if args.executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UsageError("the ray executor needs Ray: pip install 'biobench[ray]'") from None
    execution_options(args)  # an impossible device request fails before plugins load
    reg = _load(args)
    _report_plugin_errors(reg, console)
    specs = plan_from_args(args, reg)
    out = Path(args.out)
    _check_out_dir(out)
    specs = runnable(specs, reg, args.data_dir, console)
    ctx = runner.RunContext(
        registry=reg, out_dir=out, data_dir=args.data_dir, force=args.force,
        warn=lambda message: console.print(f"[yellow]warning:[/] {escape(message)}"),
    )
    finished: list[dict[str, Any]] = []
    try:
        results = _run_with_progress(
            specs, ctx, console, finished, executor=args.executor, jobs=args.jobs, address=args.address
        )
    except (ResultsWriteError, ExecutorError) as exc:
        _summarise(finished, console, out)
        console.print(f"[red]the grid stopped:[/] {escape(str(exc))}")
        console.print(f"{len(finished)} of {len(specs)} runs finished before it stopped; run the same command again to resume")
        return EXIT_FAILED_RUNS
    code = _summarise(results, console, out)
    if reg.errors and code == EXIT_OK:
        console.print(f"[red]{len(reg.errors)} plugin(s) could not be loaded[/] (see above); exit code {EXIT_FAILED_RUNS}")
        return EXIT_FAILED_RUNS
    return code


def _run_with_progress(
    specs: list[Any], ctx: Any, console: Console, finished: list[dict[str, Any]], **executor: Any
) -> list[dict[str, Any]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from biobench import execution
    from biobench.training import runner

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=False,
        disable=not console.is_terminal and os.environ.get("BIOBENCH_PROGRESS") != "1",
    ) as progress:
        grid = progress.add_task("grid", total=len(specs), status="")
        current: dict[str, Any] = {}

        def start(spec: Any, total: int) -> None:
            current["task"] = progress.add_task(spec.label, total=total, status="training")

        def advance(steps: int, text: str) -> None:
            if "task" in current:
                progress.update(current["task"], advance=steps, status=text)

        def finish(spec: Any, record: dict[str, Any]) -> None:
            if "task" in current:
                progress.remove_task(current.pop("task"))
            acc = record.get("metrics", {}).get("test_acc")
            note = "skipped (record exists)" if record.get("skipped") else record["status"]
            if acc is not None:
                note += f", test acc {acc:.4f}"
            progress.console.print(f"{escape(spec.label)}: {escape(note)}")
            progress.update(grid, advance=1)
            finished.append(record)

        ctx.progress = runner.Progress(start=start, advance=advance, finish=finish)
        return execution.run(specs, ctx, **executor)


def _summarise(results: list[dict[str, Any]], console: Console, out: Path) -> int:
    table = Table(title="biobench results", title_justify="left")
    for col in ("task", "architecture", "rule", "seed", "status", "test acc", "epochs", "s/epoch"):
        table.add_column(col)
    counts: dict[str, int] = {}
    for rec in results:
        counts[rec["status"]] = counts.get(rec["status"], 0) + 1
        m = rec.get("metrics", {})
        acc = m.get("test_acc")
        tpe = m.get("time_per_epoch_s")
        table.add_row(
            escape(rec["task"]), escape(rec["architecture"]), escape(rec["rule"]), str(rec["seed"]),
            rec["status"] + (" (skipped)" if rec.get("skipped") else ""),
            "" if acc is None else f"{acc:.4f}", str(m.get("epochs", "")),
            "" if tpe is None else f"{tpe:.2f}",
        )
    console.print(table)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    console.print(f"{len(results)} runs: {summary}. Records in {out}/")
    for rec in results:
        if rec["status"] == "failed":
            first = (rec.get("reason") or "").splitlines()[0]
            console.print(f"[red]failed[/] {escape(rec['run_id'])}: {escape(first)}")
    return EXIT_FAILED_RUNS if counts.get("failed") else EXIT_OK


def _read_results(folder: Path) -> list[dict[str, Any]]:
    from biobench.results import leaderboard, records

    try:
        return leaderboard.load_records(folder)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    except records.RecordError as exc:
        raise UsageError(f"invalid record: {exc}") from None


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    """Render figures and the HTML page from the records in a results folder."""
    from biobench.results import leaderboard, report

    recs = _read_results(Path(args.results))
    if not recs:
        raise UsageError(f"no records (*.json) in {args.results}")
    out = Path(args.out)
    _check_out_dir(out)
    notes = report.build_report(
        recs, out, table_html=leaderboard.html_table(leaderboard.summarise(recs)),
        provenance=leaderboard.provenance(recs), embed_images=args.embed_images,
    )
    for note in notes:
        console.print(f"[yellow]not drawn:[/] {escape(note)}")
    console.print(f"report of {len(recs)} records: {escape(str(out / 'index.html'))}")
    return EXIT_OK


def cmd_tune(args: argparse.Namespace, console: Console) -> int:
    """Tune every chosen pairing with the same budget on validation, then run the best options on fresh seeds."""
    from dataclasses import replace

    from biobench import execution
    from biobench.training import runner
    from biobench.tuning.study import TuningBudget, TuningProgress, default_storage, tune_pairing

    if not (args.all or args.arch or args.rule):
        raise UsageError("say what to tune: --all, or --arch NAME and/or --rule NAME (repeatable)")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    budget = TuningBudget(
        trials=args.trials, epochs_per_trial=args.epochs_per_trial, profile=args.profile,
        sampler=args.sampler, pruner=args.pruner, seeds=tuple(args.seeds),
    )
    execution_options(args)
    reg = _load(args)
    _report_plugin_errors(reg, console)
    args.seeds, args.epochs, args.batch_size = [0], None, None
    args.threads, args.train_on_validation = None, False
    for flag in OPTIMIZER_FLAGS:
        setattr(args, flag, None)
    bases = plan_from_args(args, reg)
    out = Path(args.out)
    _check_out_dir(out)
    supported = []
    for spec in bases:
        resolved = runner.resolve(spec, reg)
        reason = reg.unsupported_reason(resolved.architecture, resolved.rule_cls, resolved.task)
        if reason:
            console.print(f"[yellow]not tuned:[/] {escape(spec.label)}: {escape(reason)}")
        else:
            supported.append(spec)
    supported = runnable(supported, reg, args.data_dir, console)
    storage = args.storage or default_storage(out)

    def run_grid(specs: list[Any], ctx: Any) -> list[dict[str, Any]]:
        return execution.run(specs, ctx, executor=args.executor, jobs=args.jobs, address=args.address)

    def trial(study: str, done: int, total: int, status: str, value: float | None, best: float | None, eta: float) -> None:
        shown = "—" if value is None else f"{value:.4f}"
        best_text = "—" if best is None else f"{best:.4f}"
        console.print(f"{escape(study)}: trial {done}/{total} {status}, validation {shown} (best {best_text}), "
                      f"about {eta:.0f} s left")

    results = []
    for base in supported:
        result = tune_pairing(
            replace(base, seed=budget.seeds[0]), reg, out, args.data_dir, budget, storage, run_grid,
            TuningProgress(trial=trial), parallel=args.jobs or 1,
        )
        results.append(result)
        best = "—" if result.best_value is None else f"{result.best_value:.4f}"
        console.print(
            f"[green]{escape(result.study)}[/]: {result.trials_complete} complete, {result.trials_pruned} pruned, "
            f"{result.trials_failed} failed; best validation {best} with {escape(json.dumps(result.best_options))}"
            + (f"; {escape(result.note)}" if result.note else "")
        )
    tuned = [r for result in results for r in result.records]
    if tuned:
        return _summarise(tuned, console, out)
    console.print("nothing was tuned")
    return EXIT_OK


def cmd_reproduce(args: argparse.Namespace, console: Console) -> int:
    """List, run, render or check the published setups that plugins declare."""
    from dataclasses import replace

    from biobench.results import records as records_mod
    from biobench.results import reproductions
    from biobench.training import runner, setups

    reg = _load(args)
    _report_plugin_errors(reg, console)
    declared = setups.published_setups(reg)
    out = Path(args.out)
    markdown = Path(args.markdown) if args.markdown else out.parent / "REPRODUCTIONS.md"
    if args.list:
        table = Table(title="Published setups", title_justify="left")
        for col in ("id", "pairing", "source", "published values", "seeds", "short epochs"):
            table.add_column(col, overflow="fold")
        for d in declared:
            s = d.setup
            values = "; ".join(
                f"{v.metric}{f'@{v.epoch}' if v.epoch else ''}={v.value:g}±{v.tolerance:g}" for v in s.published
            )
            table.add_row(
                escape(s.id), escape(f"{s.task}/{s.architecture}/{s.rule}"), escape(f"{s.citation}; {s.source}"),
                escape(values), str(s.seeds), str(s.short_epochs or "—"),
            )
        console.print(table)
        console.print(f"{len(declared)} published setups")
        return EXIT_OK
    if args.compare:
        fresh = records_mod.read_records(Path(args.compare), warn=lambda m: console.print(f"[yellow]{escape(m)}[/]"))
        committed = records_mod.read_records(out) if out.is_dir() else []
        problems = reproductions.regressions(fresh, committed)
        for problem in problems:
            console.print(f"[red]regression:[/] {escape(problem)}")
        console.print(f"{len(problems)} reproduction(s) that agreed no longer agree")
        return EXIT_FAILED_RUNS if problems else EXIT_OK
    if not args.render:
        execution = execution_options(args)  # an impossible device request fails before anything else
        known = {d.setup.id: d for d in declared}
        chosen = list(known) if args.all else list(args.setups or [])
        if not chosen:
            raise UsageError("name setups to run (see --list), or --all")
        unknown = [c for c in chosen if c not in known]
        if unknown:
            raise registry_mod.UnknownNameError("published setup", unknown[0], known)
        specs = [
            replace(spec, run_options=tuple(sorted({**dict(spec.run_options), **execution}.items())))
            for c in chosen for spec in setups.setup_specs(known[c], args.budget, args.seeds)
        ]
        _check_out_dir(out)
        specs = runnable(specs, reg, args.data_dir, console)
        ctx = runner.RunContext(
            registry=reg, out_dir=out, data_dir=args.data_dir, force=args.force,
            warn=lambda message: console.print(f"[yellow]warning:[/] {escape(message)}"),
        )
        results = _run_with_progress(specs, ctx, console, [], executor=args.executor, jobs=args.jobs, address=None)
        _summarise(results, console, out)
    if out.is_dir():
        recs = records_mod.read_records(out, warn=lambda m: console.print(f"[yellow]{escape(m)}[/]"))
        label = os.path.relpath(out.resolve(), markdown.parent.resolve())
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(reproductions.render_markdown(recs, Path(label).as_posix()), encoding="utf-8")
        console.print(f"reproduction table written to {escape(str(markdown))}")
    return EXIT_OK


def cmd_leaderboard(args: argparse.Namespace, console: Console) -> int:
    """Render (or with --check, verify) the leaderboard tables, README block, report and site."""
    from biobench.results import leaderboard, records

    results, out = Path(args.results), Path(args.out) if args.out else Path(args.results).parent
    readme = None if args.no_readme else Path(args.readme)
    if args.compare:
        try:
            fresh = leaderboard.load_records(Path(args.compare))
        except (FileNotFoundError, records.RecordError) as exc:
            raise UsageError(str(exc)) from None
        problems = leaderboard.compare_records(fresh, _read_results(results))
        for p in problems:
            console.print(f"[red]mismatch:[/] {escape(p)}")
        console.print(f"compared {len(fresh)} fresh records with {escape(str(results))}: "
                      f"{len(problems)} mismatch(es)")
        return EXIT_FAILED_RUNS if problems else EXIT_OK
    _read_results(results)  # a clear message for a missing folder or an invalid record
    if args.check:
        problems = leaderboard.check(results, out, readme)
        for p in problems:
            console.print(f"[red]stale:[/] {escape(p)}", soft_wrap=True)
        if problems:
            console.print("the leaderboard is stale: run `biobench leaderboard` and commit the result")
            return EXIT_FAILED_RUNS
        console.print("leaderboard up to date")
        return EXIT_OK
    notes = leaderboard.write(results, out, readme, report=not args.no_report, site=not args.no_site)
    for note in notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    console.print(f"leaderboard written to {escape(str(out))}/")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``biobench`` command."""
    parser = argparse.ArgumentParser(
        prog="biobench", description="Benchmark biologically plausible learning rules across architectures."
    )
    disable_help = (
        f"comma-separated entry-point names (or DISTRIBUTION:NAME) not to load (adds to ${registry_mod.DISABLE_ENV}); "
        "accepted before or after the subcommand"
    )
    parser.add_argument("--disable-plugins", action="append", metavar="NAMES", help=disable_help)
    # The same option after the subcommand; SUPPRESS keeps a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--disable-plugins", action="append", metavar="NAMES", default=argparse.SUPPRESS,
                        help=disable_help)
    sub = parser.add_subparsers(dest="command", required=True)
    _orig_add_parser = sub.add_parser

    def add_parser(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return _orig_add_parser(name, parents=[common], **kwargs)

    sub.add_parser = add_parser  # type: ignore[method-assign]

    p = sub.add_parser("plugins", help="list architectures, rules and tasks with their distributions")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=cmd_plugins)

    r = sub.add_parser("run", help="train pairings and write one result record per run")
    r.add_argument("--all", action="store_true", help="every architecture x every rule")
    r.add_argument("--arch", action="append", metavar="NAME", help="architecture (repeatable)")
    r.add_argument("--rule", action="append", metavar="NAME", help="learning rule (repeatable)")
    r.add_argument("--task", action="append", metavar="NAME", help="task (repeatable; default mnist)")
    r.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="SEED", help="seeds (default: 0)")
    r.add_argument("--epochs", type=int, help="override the profile's number of epochs")
    r.add_argument("--batch-size", type=int, help="override the profile's batch size")
    r.add_argument("--profile", choices=sorted(PROFILES), default="ci", help="training budget (default: ci)")
    r.add_argument("--out", default=DEFAULT_OUT, help=f"results folder (default: {DEFAULT_OUT})")
    r.add_argument("--data-dir", default=None, help="data root holding each task's folder, e.g. MNIST/raw (default: $BIOBENCH_DATA or the user cache)")
    r.add_argument("--force", action="store_true", help="re-run even when a record for the same config exists")
    r.add_argument("--arch-option", action="append", metavar="KEY=VALUE", help="architecture option (JSON value)")
    r.add_argument("--rule-option", action="append", metavar="KEY=VALUE", help="rule option (JSON value)")
    r.add_argument("--task-option", action="append", metavar="KEY=VALUE",
                   help="task option (JSON value), e.g. loss=bce or output_units=1 for a binary task")
    opt = r.add_argument_group("optimiser (default: the rule's, else Adam with step size 1e-3)")
    opt.add_argument("--optimizer", choices=OPTIMIZERS, help="the optimiser that applies the rule's update")
    opt.add_argument("--lr", type=float, metavar="X", help="step size")
    opt.add_argument("--momentum", type=float, metavar="X", help="momentum (sgd)")
    opt.add_argument("--nesterov", action="store_true", default=None, help="Nesterov momentum (sgd)")
    opt.add_argument("--weight-decay", type=float, metavar="X", help="weight decay (decoupled for adamw)")
    opt.add_argument("--lr-schedule", choices=SCHEDULES, help="per-epoch step-size schedule")
    opt.add_argument("--lr-step-epochs", type=int, metavar="N", help="step schedule: epochs between decays")
    opt.add_argument("--lr-gamma", type=float, metavar="X", help="step/exponential schedule: factor per decay")
    r.add_argument("--threads", type=int, metavar="N",
                   help="torch threads of every run (default: the profile's, 1); part of the run's configuration")
    r.add_argument("--train-on-validation", action="store_true",
                   help="train on the validation split too (e.g. all 60,000 MNIST images, as papers do); "
                        "validation metrics are then undefined")
    add_accelerator_options(r)
    r.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: this machine (default); ray: tasks on a Ray cluster (pip install 'biobench[ray]')")
    r.add_argument("--jobs", type=int, metavar="N",
                   help="local: N worker processes (default 1: in this process); ray: at most N pairings at "
                        "once, and the CPUs of a local Ray instance (default: all cores). Results do not "
                        "depend on it")
    r.add_argument("--address", metavar="ADDR", help="Ray cluster address (e.g. auto or HOST:6379); "
                   "default: start a local Ray instance")
    r.set_defaults(func=cmd_run)

    t = sub.add_parser(
        "tune",
        help="tune each pairing with the same budget on validation; run the best options on fresh seeds",
        description=(
            "Tune the options each rule, architecture and the optimiser declare tunable (their search spaces), "
            "with the same budget for every pairing: --trials trials of the --profile budget (--epochs-per-trial "
            "epochs), scored by validation accuracy after the trial's last epoch; the test split is not evaluated "
            "during tuning. Hopeless trials are pruned (median of earlier trials at the same epoch). The best "
            "options are then run on --seeds with every measurement, as the leaderboard's tuned track."
        ),
    )
    t.add_argument("--all", action="store_true", help="every supported architecture x rule pairing")
    t.add_argument("--arch", action="append", metavar="NAME", help="architecture (repeatable)")
    t.add_argument("--rule", action="append", metavar="NAME", help="learning rule (repeatable)")
    t.add_argument("--task", action="append", metavar="NAME", help="task (repeatable; default mnist)")
    t.add_argument("--profile", choices=sorted(PROFILES), default="ci", help="budget of every trial (default: ci)")
    t.add_argument("--trials", type=int, default=8, metavar="N", help="trials per pairing (default: 8)")
    t.add_argument("--epochs-per-trial", type=int, metavar="N", help="epochs of every trial (default: the profile's)")
    t.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], metavar="SEED",
                   help="fresh seeds the best options run on (default: 0 1 2 3 4; trials use seed 1000)")
    t.add_argument("--sampler", choices=("qmc", "tpe"), default="qmc",
                   help="qmc: scrambled Sobol points (default; even coverage for small budgets); tpe: Optuna's TPE")
    t.add_argument("--pruner", choices=("median", "none"), default="median", help="stop hopeless trials early")
    t.add_argument("--storage", metavar="URL",
                   help="Optuna storage of the studies (default: sqlite:///OUT/tuning/studies.db); any database URL "
                        "Optuna accepts shares a study between machines; an interrupted study resumes from it")
    t.add_argument("--out", default=DEFAULT_OUT, help=f"results folder: tuned records here, trial records in OUT/tuning/ (default: {DEFAULT_OUT})")
    t.add_argument("--data-dir", default=None, help="data root (default: $BIOBENCH_DATA or the user cache)")
    t.add_argument("--arch-option", action="append", metavar="KEY=VALUE", help="fixed architecture option (JSON value)")
    t.add_argument("--rule-option", action="append", metavar="KEY=VALUE", help="fixed rule option (JSON value)")
    t.add_argument("--task-option", action="append", metavar="KEY=VALUE", help="fixed task option (JSON value)")
    add_accelerator_options(t)
    t.add_argument("--executor", choices=EXECUTORS, default="local", help="local (default) or ray: where trials run")
    t.add_argument("--jobs", type=int, metavar="N", help="trials at a time (local worker processes, or Ray tasks)")
    t.add_argument("--address", metavar="ADDR", help="Ray cluster address (with --executor ray)")
    t.set_defaults(func=cmd_tune, force=False)

    rp = sub.add_parser(
        "reproduce",
        help="run the published setups plugins declare and compare with the published numbers",
        description=(
            "Published setups are declared by the plugins (a paper's exact configuration and numbers, with their "
            "source). --list names them; naming setups (or --all) runs them on their seeds and renders the "
            "reproduction table (published vs measured, agree or differ) from the records."
        ),
    )
    rp.add_argument("setups", nargs="*", metavar="SETUP", help="setup ids to run (see --list)")
    rp.add_argument("--list", action="store_true", help="list every published setup with its source")
    rp.add_argument("--all", action="store_true", help="run every published setup")
    rp.add_argument("--budget", choices=("short", "full"), default="short",
                    help="short: the setup's first epochs, compared with the values published for them (default); "
                         "full: the whole setup")
    rp.add_argument("--seeds", type=int, metavar="N", help="seeds per setup (default: the setup's, at least 3)")
    rp.add_argument("--out", default="leaderboard/reproductions", help="reproduction records (default: leaderboard/reproductions)")
    rp.add_argument("--markdown", default=None,
                    help="where the table is written (default: REPRODUCTIONS.md beside the --out folder)")
    rp.add_argument("--render", action="store_true", help="only render the table from the records in --out")
    rp.add_argument("--compare", metavar="FRESH_DIR",
                    help="fail (exit 1) when a value that agrees in --out no longer agrees in FRESH_DIR's records")
    rp.add_argument("--data-dir", default=None, help="data root (default: $BIOBENCH_DATA or the user cache)")
    rp.add_argument("--force", action="store_true", help="re-run setups whose records exist")
    add_accelerator_options(rp)
    rp.add_argument("--executor", choices=EXECUTORS, default="local", help="local (default) or ray")
    rp.add_argument("--jobs", type=int, metavar="N", help="runs at a time")
    rp.set_defaults(func=cmd_reproduce)

    rep = sub.add_parser("report", help="render figures and an HTML page from result records")
    rep.add_argument("--results", default=DEFAULT_OUT, help=f"folder of records (default: {DEFAULT_OUT})")
    rep.add_argument("--out", default="biobench-report", help="output folder (default: biobench-report)")
    rep.add_argument("--embed-images", action="store_true", help="put the figures inside index.html (base64)")
    rep.set_defaults(func=cmd_report)

    lb = sub.add_parser("leaderboard", help="render the leaderboard tables, README block, report and site")
    lb.add_argument("--results", default="leaderboard/results", help="records folder (default: leaderboard/results)")
    lb.add_argument("--out", default=None, help="output folder (default: the parent of --results)")
    lb.add_argument("--readme", default="README.md", help="README holding the generated block (default: README.md)")
    lb.add_argument("--no-readme", action="store_true", help="leave the README alone")
    lb.add_argument("--no-report", action="store_true", help="do not write the HTML report (report/)")
    lb.add_argument("--no-site", action="store_true", help="do not write the static site (site/)")
    lb.add_argument("--check", action="store_true", help="fail (exit 1) when the committed outputs are stale")
    lb.add_argument("--compare", metavar="FRESH_DIR",
                    help="compare the records in FRESH_DIR with --results within the documented tolerances")
    lb.set_defaults(func=cmd_leaderboard)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``biobench`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console(stderr=False)
    err = Console(stderr=True)
    try:
        return args.func(args, console)
    except (UsageError, registry_mod.UnknownNameError, ValueError, ExecutorError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)  # one line, however many names it lists
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]: finished runs are recorded; run the same command again to resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
