"""Tasks on a Ray cluster (``biobench run --executor ray [--address ADDR]``).

Each pairing is a Ray task asking for its CPUs (and GPUs): one CPU unless the
architecture or rule class declares a ``resources`` mapping such as
``{"num_cpus": 2, "num_gpus": 1}`` (the larger request of the two wins), and one
GPU for a run with ``--accelerator gpu``. A task trains on the GPU Ray gave it
(``ray.get_gpu_ids()``) when its accelerator is ``auto`` or ``gpu``, and never on a
GPU Ray did not give it. A grid that asks for more GPUs per task than the cluster
has is an error before any task starts (Ray would wait for them forever). A
task trains in a scratch folder of its node and returns the record; the driver
validates it and writes it to ``--out`` as soon as the task finishes, so no
shared file system is needed and an interrupted sweep resumes. Without an
address a local Ray instance is started with ``--jobs`` CPUs (default: all
cores). The Lightning CSV logs of Ray tasks are not collected; the record's
``metrics.history`` holds the per-epoch numbers.
"""

from __future__ import annotations

import tempfile
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Any

from biobench.execution.workers import (
    ExecutorError,
    WorkerSettings,
    cpu_count,
    set_threads,
    spec_from_dict,
    spec_to_dict,
    split_finished,
)
from biobench.plugin_api.registry import Registry
from biobench.results import records
from biobench.training import runner


def resource_request(spec: runner.RunSpec, registry: Registry) -> dict[str, float]:
    """The Ray resources of a pairing: ``{"num_cpus": 1, "num_gpus": 0}`` raised by what its classes declare.

    A run with ``--accelerator gpu`` asks for one GPU.
    """
    request = {"num_cpus": 1.0, "num_gpus": 0.0}
    if dict(spec.run_options).get("accelerator") == "gpu":
        request["num_gpus"] = 1.0
    for kind, name in (("architecture", spec.architecture), ("rule", spec.rule)):
        cls = registry.get(kind, name).cls
        declared = cls.resources or {}
        for key in request:
            value = declared.get(key, 0)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ExecutorError(f"{kind} {name!r} declares resources[{key!r}] = {value!r}; need a number >= 0")
            request[key] = max(request[key], float(value))
    return request


_TASK_REGISTRIES: dict[str, Registry] = {}


def ray_pairing_task(spec_data: dict[str, Any], settings_json: str) -> dict[str, Any]:
    """Body of a Ray task: train one pairing in a scratch folder and return its record."""
    settings = WorkerSettings.from_json(settings_json)
    set_threads(settings.threads)
    registry = _TASK_REGISTRIES.get(settings_json)  # Ray reuses worker processes: load once each
    if registry is None:
        registry = _TASK_REGISTRIES[settings_json] = settings.load_registry()
    spec = spec_from_dict(spec_data)
    with tempfile.TemporaryDirectory(prefix="biobench-") as scratch:
        ctx = settings.context(registry, out_dir=Path(scratch), force=True)
        ctx.gpu_available = task_has_gpu()
        record = runner.execute(spec, ctx)
    record.pop("skipped", None)
    return record


def task_has_gpu() -> bool:
    """Whether Ray gave the running task a GPU (torch then sees it as ``cuda:0``)."""
    import ray

    return bool(ray.get_gpu_ids())


def check_gpus(requests: dict[int, dict[str, float]], cluster: dict[str, float]) -> None:
    """Raise :class:`ExecutorError` when a task asks for more GPUs than the cluster has in all."""
    wanted = max((r["num_gpus"] for r in requests.values()), default=0.0)
    available = float(cluster.get("GPU", 0.0))
    if wanted > available:
        raise ExecutorError(
            f"a task asks for {wanted:g} GPU(s) (--accelerator gpu, or a plugin's resources) but the Ray "
            f"cluster has {available:g}; start Ray on GPU nodes, or use --accelerator auto or cpu"
        )


def run_ray(
    specs: list[runner.RunSpec],
    ctx: runner.RunContext,
    address: str | None = None,
    jobs: int | None = None,
) -> list[dict[str, Any]]:
    """Run ``specs`` as Ray tasks; the driver writes each record as its task finishes."""
    try:
        import ray
    except ImportError:
        raise ExecutorError("the ray executor needs Ray: pip install 'biobench[ray]'") from None
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    results, todo = split_finished(specs, ctx)
    for index in sorted(results):
        ctx.progress.finish(specs[index], results[index])
    if not todo:
        return [results[i] for i in range(len(specs))]
    requests = {index: resource_request(spec, ctx.registry) for index, spec in todo}
    settings = WorkerSettings.from_context(ctx, threads=1)
    if settings.extra_modules:
        raise ExecutorError(
            f"in-process plugins {[m[0] for m in settings.extra_modules]} cannot reach Ray workers; "
            "install them as entry points"
        )
    started_here = not ray.is_initialized()
    if started_here:
        _init_ray(ray, address, jobs)
    try:
        check_gpus(requests, ray.cluster_resources())
    except ExecutorError:
        if started_here:
            ray.shutdown()
        raise
    task = ray.remote(ray_pairing_task)
    queue = deque(todo)
    in_flight: dict[Any, tuple[int, runner.RunSpec]] = {}
    limit = jobs or len(todo)
    try:
        while queue or in_flight:
            while queue and len(in_flight) < limit:
                index, spec = queue.popleft()
                request = requests[index]
                task_settings = WorkerSettings(**{**asdict(settings), "threads": max(1, int(request["num_cpus"]))})
                ref = task.options(
                    num_cpus=request["num_cpus"], num_gpus=request["num_gpus"], max_retries=1, name=spec.label
                ).remote(spec_to_dict(spec), task_settings.to_json())
                in_flight[ref] = (index, spec)
            done, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                index, spec = in_flight.pop(ref)
                record = _collect_ray_result(ray, ref, spec, ctx)
                ctx.store.write(record)
                results[index] = record
                ctx.progress.finish(spec, record)
    except BaseException:
        for ref in in_flight:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()
    return [results[i] for i in range(len(specs))]


def _init_ray(ray: Any, address: str | None, jobs: int | None) -> None:
    options: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=jobs or cpu_count(), include_dashboard=False, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
        raise ExecutorError(f"cannot connect to {where}: {exc}") from None


def _collect_ray_result(ray: Any, ref: Any, spec: runner.RunSpec, ctx: runner.RunContext) -> dict[str, Any]:
    """The validated record a task returned, or a ``failed`` record saying why there is none."""
    try:
        record = ray.get(ref)
    except ray.exceptions.RayError as exc:
        return runner.failed_record(spec, ctx.registry, f"RayTaskFailed: {type(exc).__name__}: {exc}")
    try:
        records.validate_record(record)
    except records.RecordError as exc:
        return runner.failed_record(spec, ctx.registry, f"InvalidRecord: the Ray task returned a record that {exc}")
    if record.get("run_id") != runner.resolve(spec, ctx.registry).run_id:
        return runner.failed_record(spec, ctx.registry, f"InvalidRecord: the Ray task returned run {record.get('run_id')!r}")
    return record
