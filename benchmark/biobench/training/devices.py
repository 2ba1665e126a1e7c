"""Where a run trains: the ``--accelerator`` / ``--devices`` options and the device they resolve to.

``auto`` (the default) trains on the first CUDA GPU when torch sees one and on the
CPU otherwise; ``cpu`` and ``gpu`` insist. One device per run: a grid uses several
devices by running several pairings at once (``--jobs``, or Ray tasks that each get
a GPU), never by splitting one run.

**Configuration, not identity.** The accelerator travels in a run's
``run_options`` (so ``record["overrides"]["run"]`` shows an explicit request) and
the device the run used is stored in ``record["environment"]`` (:func:`describe`).
It is not part of ``record["config"]``: the same run on a GPU and on a CPU is the
same experiment (same data, same initial weights, same seeds), so it has the same
``run_id``, the same ``config_hash`` and the same leaderboard row, a record made on
one device satisfies a resume on the other, and ``biobench leaderboard --compare``
compares them within the metrics' tolerances (floating-point sums differ between
devices, so records agree to those tolerances, not bit for bit).

**Random numbers.** Initial weights, feedback matrices and the shuffles of the
training data are drawn on the CPU from the run's seed and then moved, so a seed
gives the same initial network and the same mini-batches on every device. Noise a
rule draws at every step (perturbations, stochastic encodings) comes from a
generator on the parameters' device, seeded by one draw from the CPU generator
(:func:`biobench.rulekit.derived_generator`): reproducible per device, different
between devices.

**Precision.** Every run computes in float32; on CUDA, TF32 matrix products and
convolutions are switched off for the run (:func:`device_settings`), so ``float32``
means float32 and not TF32, and torch's deterministic algorithms are asked for
(``warn_only``: an operation without a deterministic CUDA kernel warns and runs).
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from biobench.plugin_api.accelerators import on_accelerator

#: The accepted values of ``--accelerator``.
ACCELERATORS = ("auto", "cpu", "gpu")
#: The run options that say where a run executes (kept out of the run's budget and identity).
EXECUTION_KEYS = ("accelerator", "devices")
#: The floating-point precision every run computes in.
PRECISION = "float32"
#: cuBLAS's workspace setting under which its matrix products are deterministic.
CUBLAS_WORKSPACE = ":4096:8"


class AcceleratorError(ValueError):
    """An accelerator request that cannot be met (unknown name, several devices, no GPU)."""


def check_request(accelerator: Any, devices: Any) -> None:
    """Raise :class:`AcceleratorError` unless ``accelerator`` is known and ``devices`` is 1."""
    if accelerator not in ACCELERATORS:
        raise AcceleratorError(f"unknown accelerator {accelerator!r}; known: {', '.join(ACCELERATORS)}")
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise AcceleratorError(f"devices must be a whole number >= 1, got {devices!r}")
    if devices != 1:
        raise AcceleratorError(
            f"--devices {devices}: a run trains on one device; to use {devices} devices, run "
            f"{devices} pairings at once (--jobs {devices}, or the ray executor with one GPU per task)"
        )


def cuda_available() -> bool:
    """Whether torch can use a CUDA GPU in this process."""
    return torch.cuda.is_available()


def resolve_device(accelerator: str, gpu_available: bool | None = None) -> torch.device:
    """The device a run with ``accelerator`` trains on.

    ``gpu_available`` overrides torch's answer (a Ray task passes whether Ray gave
    it a GPU). ``gpu`` without one is an :class:`AcceleratorError` naming the fix.
    """
    check_request(accelerator, 1)
    available = cuda_available() if gpu_available is None else gpu_available
    if accelerator == "cpu" or (accelerator == "auto" and not available):
        return torch.device("cpu")
    if not available:
        raise AcceleratorError(
            "--accelerator gpu: torch sees no CUDA GPU here (torch.cuda.is_available() is False; torch "
            f"{torch.__version__}, CUDA build: {torch.version.cuda or 'none'}); install a CUDA build of torch "
            "on a machine with an NVIDIA GPU, or use --accelerator auto or cpu"
        )
    return torch.device("cuda", 0)


def preflight(accelerator: str, devices: int, executor: str = "local") -> None:
    """Check a grid's request before anything runs: known names, one device, a GPU where ``gpu`` needs one.

    With the ray executor the GPUs are the cluster's: :func:`biobench.execution.ray_cluster.run_ray`
    checks them once it is connected.
    """
    check_request(accelerator, devices)
    if accelerator == "gpu" and executor != "ray":
        resolve_device(accelerator)


def describe(device: torch.device) -> dict[str, str]:
    """The record's ``environment`` entries of a device: ``device``, ``device_name``, ``precision``."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {"device": str(device), "device_name": name, "precision": PRECISION}


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


@contextlib.contextmanager
def device_settings(device: torch.device) -> Iterator[None]:
    """Run on ``device`` in float32: on CUDA without TF32 and with deterministic algorithms (restored after).

    Nothing changes for the CPU.
    """
    if device.type != "cuda":
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)  # before the first cuBLAS call
    saved = (
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
        torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with torch.cuda.device(device):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[0], saved[1]
        torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])


def defer_syncs(device: torch.device) -> bool:
    """Whether the training step reads its losses once per block instead of once per mini-batch.

    On an accelerator every read of a tensor's value waits for the device, so the
    step keeps the losses and counts there and reads them once per block of
    :data:`biobench.training.pairing.MINIBATCHES_PER_STEP`. On the CPU a read is
    free, and the loss is checked before every optimiser step, as it always was.
    """
    return on_accelerator(device)


def lightning_accelerator(device: torch.device) -> tuple[str, list[int] | int]:
    """Lightning's ``accelerator`` and ``devices`` arguments for ``device``."""
    if device.type == "cuda":
        return "gpu", [device.index or 0]
    return "cpu", 1
