"""A device-discipline audit: runs a pairing on the CPU as if the CPU were an accelerator, and reports
what would break or stall on a real one.

There is no GPU here, so the audit simulates one. Every tensor the harness moves to the
run's device (``.to(device)`` with a ``torch.device`` or a non-``"cpu"`` name, or a factory
called with ``device=``) is *tagged* as living on the device; every result of an operation
on a tagged tensor is tagged too; everything else lives on the host. A
:class:`torch.overrides.TorchFunctionMode` watches every torch call of the run and records:

* **mismatches** (would raise on a GPU): an operation mixing a tagged tensor with an untagged
  one that is not a 0-dim scalar (which CUDA kernels accept), a ``.grad`` or ``.data`` set
  across devices, a random draw whose generator is on the other device (a generator is on
  the device when created with an explicit ``device=``), and indexing a host tensor with a
  device index;
* **syncs** (stall a GPU): reading a tagged value on the host (``item``, ``float``, ``int``,
  ``bool``, ``tolist``, ``numpy``, ``cpu``, ``.to("cpu")``), operations whose output shape
  depends on the data (``nonzero``, masked selection, ``unique``), host tensors copied to the
  device (a host index, ``copy_``, ``__setitem__``, ``.to(device)`` of a non-scalar host tensor).

A tensor created without ``device=`` (on the host) is only a problem when it meets device
tensors; the audit finds exactly those meetings, wherever the tensor came from.

Regions say where a call happens (the innermost wins): ``rule`` (a rule's ``compute_update``
and ``after_step``), ``metric`` (the harness's measurements), ``step`` (the training step
around the rule) and ``eval`` (per-epoch evaluation). :func:`audit_pairing` runs a pairing
through the real runner with :func:`biobench.plugin_api.accelerators.simulated_accelerator`
active, so the accelerator code paths run (the training step's deferred loss checks, the
spiking network's device-side encoding).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from torch.autograd import _make_grads, _tensor_or_tensors_to_tuple
from torch.autograd.graph import _engine_run_backward
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakTensorKeyDictionary

from biobench.metrics.measurement import Measurement
from biobench.plugin_api.accelerators import simulated_accelerator
from biobench.training import pairing, runner

READS = {"item", "__float__", "__int__", "__bool__", "__index__", "__complex__"}
COPIES = {"cpu", "numpy", "tolist", "__array__", "__repr__", "__format__", "__str__"}
DATA_DEPENDENT = {"nonzero", "argwhere", "masked_select", "unique", "unique_consecutive", "nonzero_static"}
INDEXING = {"__getitem__", "__setitem__", "index_put_", "index_put"}


@dataclass
class Event:
    """One finding: its kind (``mismatch`` or ``sync``), the region, the call and where it came from."""

    kind: str
    region: str
    call: str
    detail: str
    where: str

    def __str__(self) -> str:
        return f"{self.kind} in {self.region}: {self.call} ({self.detail}) at {self.where}"


def _caller() -> str:
    """The innermost frame of the code under audit (outside torch and this file)."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        name = frame.filename
        if "/torch/" in name or name.endswith("device_audit.py"):
            continue
        return f"{name.split('/site-packages/')[-1].split('/work/')[-1]}:{frame.lineno} ({frame.name})"
    return "?"


def _is_device_spec(value: Any) -> bool | None:
    """True for a device the run may use (a torch.device, or a name other than ``"cpu"``); False for ``"cpu"``."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.split(":")[0] != "cpu"
    if isinstance(value, torch.device | int):
        return True
    return None


class AuditedGenerator(torch.Generator):
    """``torch.Generator`` that remembers whether it was created for the device (an explicit ``device=``)."""

    def __new__(cls, device: Any = None) -> AuditedGenerator:
        generator = super().__new__(cls, "cpu" if device is None else device)
        generator.on_device = bool(_is_device_spec(device))
        return generator


def _tensors(values: Any) -> Iterator[torch.Tensor]:
    for value in values:
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, list | tuple):
            for item in value:
                if isinstance(item, torch.Tensor):
                    yield item


def _backward(tensors: Any, grad_tensors: Any = None, retain_graph: Any = None, create_graph: bool = False,
              inputs: Any = None) -> None:
    """``torch.autograd.backward`` without its torch-function dispatch (so the audit can watch the engine)."""
    tensors = (tensors,) if isinstance(tensors, torch.Tensor) else tuple(tensors)
    inputs = () if inputs is None else ((inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs))
    grads = _make_grads(tensors, _tensor_or_tensors_to_tuple(grad_tensors, len(tensors)), is_grads_batched=False)
    retain = create_graph if retain_graph is None else retain_graph
    _engine_run_backward(tensors, grads, retain, create_graph, inputs, allow_unreachable=True, accumulate_grad=True)


def _grad(outputs: Any, inputs: Any, grad_outputs: Any = None, retain_graph: Any = None, create_graph: bool = False,
          only_inputs: bool = True, allow_unused: Any = None, is_grads_batched: bool = False,
          materialize_grads: bool = False) -> tuple:
    """``torch.autograd.grad`` (not batched) without its torch-function dispatch."""
    outputs = (outputs,) if isinstance(outputs, torch.Tensor) else tuple(outputs)
    inputs = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    grads = _make_grads(outputs, _tensor_or_tensors_to_tuple(grad_outputs, len(outputs)), is_grads_batched=False)
    retain = create_graph if retain_graph is None else retain_graph
    unused = materialize_grads if allow_unused is None else allow_unused
    result = _engine_run_backward(outputs, grads, retain, create_graph, inputs, unused, accumulate_grad=False)
    if materialize_grads:
        result = tuple(torch.zeros_like(i) if r is None else r for r, i in zip(result, inputs, strict=True))
    return result


METADATA = {
    "_has_compatible_shallow_copy_type", "is_floating_point", "is_complex", "dim", "size", "numel", "stride",
    "is_contiguous", "__len__", "register_hook", "requires_grad_", "retain_grad", "data_ptr", "untyped_storage",
    "_is_view", "is_inference", "get_device", "element_size", "__hash__",
}


class DeviceAudit(TorchFunctionMode):
    """Tags tensors as device or host, propagates the tags through every torch call, records :class:`Event` objects.

    A tensor the audit has not seen created (made by autograd's engine, or before the
    audit) is *unknown*: it never counts as a mismatch by itself and takes the tag of what
    it is combined with; inside a backward pass it counts as a device tensor (autograd
    makes gradients where their forward tensors live).
    """

    def __init__(self) -> None:
        super().__init__()
        self.tags = WeakTensorKeyDictionary()
        self.events: list[Event] = []
        self.regions: list[str] = ["setup"]
        self.counts: Counter[str] = Counter()

    # -- regions -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def region(self, name: str) -> Iterator[None]:
        """Calls inside belong to region ``name`` (inside a measurement everything stays ``metric``)."""
        self.regions.append("metric" if self.regions[-1] == "metric" else name)
        try:
            yield
        finally:
            self.regions.pop()

    def status(self, tensor: torch.Tensor) -> bool | None:
        """True: on the device; False: on the host; None: unknown (see the class docstring)."""
        tag = self.tags.get(tensor)
        if tag is None and torch._C._current_graph_task_id() != -1:
            return True
        return tag

    def on_device(self, tensor: torch.Tensor) -> bool:
        """Whether ``tensor`` is tagged as living on the device."""
        return self.status(tensor) is True

    def _event(self, kind: str, call: str, detail: str) -> None:
        region = self.regions[-1]
        self.counts[f"{kind}:{region}"] += 1
        if kind == "sync" and region in ("setup", "eval"):
            return  # once per run or per epoch: not worth a finding
        self.events.append(Event(kind, region, call, detail, _caller()))

    def _retag(self, result: Any, tag: bool | None) -> None:
        if tag is None:
            return
        for t in _tensors(result if isinstance(result, list | tuple) else [result]):
            self.tags[t] = tag

    # -- the mode ----------------------------------------------------------------------------
    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        if name in METADATA or name == "__get__" and getattr(getattr(func, "__self__", None), "__name__", "") != "grad":
            return func(*args, **kwargs)
        if func is torch.Tensor.backward or func is torch.autograd.backward:
            bound = inspect.signature(func).bind(*args, **kwargs)
            values = dict(bound.arguments)
            if func is torch.Tensor.backward:
                values = {"tensors": values.pop("self"), "grad_tensors": values.pop("gradient", None), **values}
            with self:  # watch the engine: feedback functions and custom backward passes run inside it
                return _backward(**values)
        if func is torch.autograd.grad and not kwargs.get("is_grads_batched"):
            inputs = list(_tensors(args)) + list(_tensors(kwargs.values()))
            with self:
                result = _grad(*args, **kwargs)
            self._retag(result, True if any(self.on_device(t) for t in inputs) else None)
            return result

        inputs = list(_tensors(args)) + list(_tensors(kwargs.values()))
        statuses = [self.status(t) for t in inputs]
        on_device = any(s is True for s in statuses)
        on_host = [t for t, s in zip(inputs, statuses, strict=True) if s is False]
        host_arrays = [t for t in on_host if t.dim() > 0]
        self_tensor = args[0] if args and isinstance(args[0], torch.Tensor) else None
        self_status = self.status(self_tensor) if self_tensor is not None else None

        if name == "__get__":  # .grad: autograd's gradient lives with its parameter
            result = func(*args, **kwargs)
            if isinstance(result, torch.Tensor) and self.tags.get(result) is None and self_status is not None:
                self.tags[result] = self_status
            return result
        if name == "__set__":
            attribute = getattr(getattr(func, "__self__", None), "__name__", "")
            value = args[1] if len(args) == 2 and isinstance(args[1], torch.Tensor) else None
            if value is not None and self_tensor is not None:
                value_status = self.status(value)
                if attribute == "data":  # the tensor now holds the value's data, where it lives
                    self._retag(self_tensor, value_status)
                elif None not in (self_status, value_status) and self_status != value_status:
                    self._event("mismatch", f".{attribute} =", "an attribute set to a tensor on the other device")
            return func(*args, **kwargs)

        if name in ("to", "cuda") and self_tensor is not None:
            target: bool | None = None
            device = kwargs.get("device")
            if device is None and len(args) > 1:
                if isinstance(args[1], torch.Tensor):
                    target = self.status(args[1])
                else:
                    device = args[1]
            spec = True if name == "cuda" else _is_device_spec(device)
            if spec is not None:
                target = spec
            if target is None:
                target = self_status
            if self_status is True and target is False:
                self._event("sync", name, f"device -> host copy of {self_tensor.numel()} values")
            elif target is True and self_status is False and self_tensor.dim() > 0 and self.regions[-1] == "rule":
                self._event("sync", name, f"host -> device copy of {self_tensor.numel()} values")
            result = func(*args, **kwargs)
            if result is self_tensor and target is not None and target != self_status:
                result = result.view_as(result)  # a move makes a new tensor; the source stays where it was
            self._retag(result, target)
            return result

        if self_status is True and (name in READS or name in COPIES):
            what = "read" if name in READS or self_tensor.numel() == 1 else f"copy of {self_tensor.numel()} values"
            self._event("sync", name, f"device -> host {what}")
            return func(*args, **kwargs)
        if name in DATA_DEPENDENT and on_device:
            self._event("sync", name, "output shape depends on device data")

        if name in INDEXING and self_tensor is not None:
            others = inputs[1:]
            if self_status is True:
                if any(self.status(t) is False and (t.dim() > 0 or t.dtype == torch.bool) for t in others):
                    self._event("sync", name, "a host index or value copied to the device")
                if any(t.dtype == torch.bool and t.dim() > 0 for t in others):
                    self._event("sync", name, "boolean-mask indexing (output shape depends on device data)")
            elif self_status is False and any(self.status(t) is True for t in others):
                self._event("mismatch", name, "a host tensor indexed with (or set from) a device tensor")
            result = func(*args, **kwargs)
            if isinstance(result, torch.Tensor) and result is not self_tensor:
                self._retag(result, self_status if self_status is not None else (True if on_device else None))
            return result

        if name == "copy_" and self_tensor is not None and len(inputs) > 1:
            source = self.status(inputs[1])
            if None not in (source, self_status) and source != self_status and inputs[1].dim() > 0:
                direction = "device -> host" if source else "host -> device"
                self._event("sync", name, f"{direction} copy of {inputs[1].numel()} values")
            return func(*args, **kwargs)

        out_tag: bool | None = None
        device_kw = _is_device_spec(kwargs.get("device"))
        if device_kw is not None:
            out_tag = device_kw
        elif self_tensor is not None and name.endswith("_") and not name.startswith("__"):
            out_tag = self_status  # in place: the result is where self is
        elif on_device:
            out_tag = True
        elif on_host or not inputs:
            out_tag = False  # computed from host tensors, or a factory without device=
        generator = kwargs.get("generator")
        if generator is None:
            generator = next((a for a in args if isinstance(a, torch.Generator)), None)
        if generator is not None and out_tag is not None:
            has = bool(getattr(generator, "on_device", False))
            if has != out_tag:
                where = "device" if has else "host (CPU)"
                self._event("mismatch", name, f"a {where} generator draws a {'device' if out_tag else 'host'} tensor")
        if on_device and host_arrays:
            shapes = ", ".join(str(tuple(t.shape)) for t in host_arrays[:3])
            self._event("mismatch", name, f"device tensor(s) with host tensor(s) of shape {shapes}")
        result = func(*args, **kwargs)
        if result is not self_tensor or out_tag is not None and self_status is None:
            self._retag(result, out_tag)
        return result


# -- running a pairing under the audit -----------------------------------------------------------


class _RegionMeasurement(Measurement):
    """A measurement whose hooks run in the audit's ``metric`` region."""

    def __init__(self, inner: Measurement, audit: DeviceAudit) -> None:
        self.inner, self.audit = inner, audit

    def at_start(self, step: int) -> None:
        with self.audit.region("metric"):
            self.inner.at_start(step)

    def after_epoch(self, epoch: int, step: int) -> None:
        with self.audit.region("metric"):
            self.inner.after_epoch(epoch, step)

    def at_end(self, epochs: int, step: int) -> None:
        with self.audit.region("metric"):
            self.inner.at_end(epochs, step)

    def contribute(self, metrics: dict[str, Any], reasons: dict[str, str], finished: bool) -> None:
        self.inner.contribute(metrics, reasons, finished)


def _in_region(audit: DeviceAudit, name: str, method: Callable) -> Callable:
    @functools.wraps(method)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with audit.region(name):
            return method(*args, **kwargs)

    return wrapped


#: Host copies a measurement may make, by file, and why (everything else must stay on the device).
ALLOWED_HOST_COPIES = {
    "biobench/metrics/representations.py": (
        "rsatoolbox computes the RDM in NumPy: the probe labels and the probe images' activity patterns "
        "(100 examples x units) are copied to the host once per run"
    ),
}


@dataclass
class AuditResult:
    """The record of an audited run and the audit's findings."""

    record: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    step_calls: int = 0

    def problems(self) -> list[str]:
        """What would break or stall the run on a GPU (empty for a disciplined pairing).

        Mismatches anywhere; any sync inside a rule's update; copies to the host (more
        than one value, or a data-dependent shape) inside a measurement, except
        :data:`ALLOWED_HOST_COPIES`; more than two reads per training step (the block's
        losses and its correct count). Single values a measurement reads (its results)
        are allowed.
        """
        found = []
        for event in self.events:
            if event.kind == "mismatch" or event.region == "rule":
                found.append(str(event))
            elif event.region == "metric" and not event.detail.endswith("read"):
                if not any(path in event.where for path in ALLOWED_HOST_COPIES):
                    found.append(str(event))
        if self.counts["sync:step"] > 2 * self.step_calls:
            found.append(f"{self.counts['sync:step']} reads in {self.step_calls} training steps (at most 2 each)")
        return found


def audit_pairing(
    spec: runner.RunSpec,
    ctx: runner.RunContext,
    factories: list[Callable[..., Any]],
) -> AuditResult:
    """Run ``spec`` through :func:`biobench.training.runner.execute` under a :class:`DeviceAudit`.

    ``factories`` are the measurement factories to run (in the ``metric`` region). The
    accelerator code paths are taken (:func:`biobench.plugin_api.accelerators.simulated_accelerator`).
    """
    audit = DeviceAudit()
    patches = pytest.MonkeyPatch()
    rule_cls = ctx.registry.get("rule", spec.rule).cls
    for method in ("compute_update", "after_step"):
        patches.setattr(rule_cls, method, _in_region(audit, "rule", getattr(rule_cls, method)))
    steps = {"calls": 0}
    training_step = pairing.PairingModule.training_step

    def counted_step(self: Any, block: Any, block_idx: int) -> None:
        steps["calls"] += 1
        with audit.region("step"):
            training_step(self, block, block_idx)

    patches.setattr(pairing.PairingModule, "training_step", counted_step)
    patches.setattr(pairing.PairingModule, "evaluate", _in_region(audit, "eval", pairing.PairingModule.evaluate))
    patches.setattr(torch, "Generator", AuditedGenerator)
    patches.setattr(ctx, "measurement_factories", [functools.partial(_wrapped_factory, f, audit) for f in factories])
    try:
        with simulated_accelerator(), audit:
            record = runner.execute(spec, ctx)
    finally:
        patches.undo()
    return AuditResult(record, audit.events, audit.counts, steps["calls"])


def _wrapped_factory(factory: Callable[..., Any], audit: DeviceAudit, run: Any) -> Measurement | None:
    made = factory(run)
    return None if made is None else _RegionMeasurement(made, audit)
