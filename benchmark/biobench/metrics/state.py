"""Save and restore everything a measurement may disturb, so training never depends on it.

Measurements call ``rule.compute_update`` and run the network on probe data in
the middle of training. :class:`TrainingState` snapshots, and restores exactly:

* the ``.grad`` and the values of every parameter of the network and the rule;
* the buffers of every sub-module of the network and the rule (buffers created
  during the measurement are removed);
* tensor and number attributes of those modules (e.g. traces, membrane states,
  step counters; ones created during the measurement are removed);
* each plastic layer's ``feedback`` and ``drive_noise`` hooks and every module's
  train/eval mode;
* random number generators: torch's global generator (and CUDA's, once CUDA is
  in use), NumPy's and Python's global state, and every ``torch.Generator`` / ``numpy.random.Generator`` held
  as an attribute (directly or in a list, tuple or dict) of the rule, the
  architecture, or their modules.

What is not covered, and must not be mutated by ``compute_update`` for training
to be independent of the measurements: Python objects other than tensors,
numbers, strings and generators held by the rule (e.g. lists of tensors that
are appended to), and the optimiser (which ``compute_update`` never touches).
"""

from __future__ import annotations

import functools
import random
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from biobench.plugin_api.interfaces import LearningRule, Network

_SCALARS = (bool, int, float, str, type(None))
_SKIPPED_ATTRS = frozenset({"training", "feedback", "drive_noise"})


@functools.cache
def _module_internals() -> frozenset[str]:
    """Attribute names ``nn.Module`` itself keeps in an instance's ``__dict__``."""
    return frozenset(vars(nn.Module())) | {"_compiled_call_impl", "_is_full_backward_hook"}


def _is_state_attr(name: str, value: Any) -> bool:
    """Whether a module attribute is rule or network state that the snapshot covers."""
    if name in _SKIPPED_ATTRS or name in _module_internals() or isinstance(value, nn.Parameter):
        return False
    return isinstance(value, (Tensor, *_SCALARS))


def _modules(network: Network, rule: LearningRule) -> list[nn.Module]:
    seen: dict[int, nn.Module] = {}
    for root in (network.module, rule, *network.layers):
        for module in root.modules():
            seen.setdefault(id(module), module)
    return list(seen.values())


def _version(t: Tensor | None) -> int | None:
    """The in-place version counter of ``t`` (``None`` for inference tensors, which have none)."""
    if t is None or t.is_inference():
        return None
    return t._version


def _changed(t: Tensor, version: int | None) -> bool:
    """Whether ``t`` was modified in place since its version was ``version``."""
    return version is not None and t._version != version


def _generators_in(value: Any, found: dict[int, Any], depth: int = 0) -> None:
    if isinstance(value, (torch.Generator, np.random.Generator)):
        found.setdefault(id(value), value)
    elif depth == 0 and isinstance(value, (list, tuple)):
        for item in value:
            _generators_in(item, found, depth + 1)
    elif depth == 0 and isinstance(value, dict):
        for item in value.values():
            _generators_in(item, found, depth + 1)


def _generator_state(gen: Any) -> Any:
    if isinstance(gen, torch.Generator):
        return gen.get_state()
    return gen.bit_generator.state


def _set_generator_state(gen: Any, state: Any) -> None:
    if isinstance(gen, torch.Generator):
        gen.set_state(state)
    else:
        gen.bit_generator.state = state


class TrainingState:
    """A snapshot of the training state of ``network`` and ``rule`` (see the module docstring)."""

    def __init__(self, network: Network, rule: LearningRule) -> None:
        self.network = network
        modules = _modules(network, rule)
        params: dict[int, nn.Parameter] = {}
        for module in modules:
            for p in module.parameters(recurse=False):
                params.setdefault(id(p), p)
        # ``.grad`` tensors are kept, not copied: measurements only ever replace ``.grad``
        # (``rule_update`` clears it before ``compute_update`` accumulates into it).
        self._params = [(p, _version(p), p.detach().clone(), p.grad) for p in params.values()]
        self._buffers: list[tuple[nn.Module, dict[str, Any]]] = []
        self._attrs: list[tuple[nn.Module, dict[str, Any]]] = []
        generators: dict[int, Any] = {}
        for module in modules:
            buffers = {
                name: (buf, _version(buf), None if buf is None else buf.detach().clone())
                for name, buf in module._buffers.items()
            }
            self._buffers.append((module, buffers))
            attrs = {}
            for name, value in vars(module).items():
                _generators_in(value, generators)
                if not _is_state_attr(name, value):
                    continue
                if isinstance(value, Tensor):
                    attrs[name] = (value, _version(value), value.detach().clone())
                else:
                    attrs[name] = (value, None, None)
            self._attrs.append((module, attrs))
        for obj in (network.architecture, network):
            for value in vars(obj).values():
                _generators_in(value, generators)
        self._generators = [(g, _generator_state(g)) for g in generators.values()]
        self._hooks = [(layer, layer.feedback, layer.drive_noise) for layer in network.layers]
        self._modes = [(module, module.training) for module in modules]
        self._torch_rng = torch.get_rng_state()
        # measurements re-seed torch (torch.manual_seed seeds the CUDA generators too)
        self._cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        self._numpy_rng = np.random.get_state()
        self._python_rng = random.getstate()

    def restore(self, random_state: bool = True, modes: bool = True) -> None:
        """Put everything back as it was.

        With ``random_state=False`` the generators keep running; with ``modes=False``
        the modules keep the train/eval mode a measurement set.
        """
        with torch.no_grad():
            for p, version, value, grad in self._params:
                if _changed(p, version):
                    p.copy_(value)
                p.grad = grad
            for module, buffers in self._buffers:
                for name in [n for n in module._buffers if n not in buffers]:
                    del module._buffers[name]
                for name, (buf, version, value) in buffers.items():
                    if buf is not None and _changed(buf, version):
                        buf.copy_(value)
                    module._buffers[name] = buf
            for module, attrs in self._attrs:
                for name in [n for n, v in vars(module).items() if n not in attrs and _is_state_attr(n, v)]:
                    del module.__dict__[name]
                for name, (value, version, copy) in attrs.items():
                    if isinstance(value, Tensor) and _changed(value, version):
                        value.copy_(copy)
                    module.__dict__[name] = value
        for layer, feedback, noise in self._hooks:
            layer.feedback, layer.drive_noise = feedback, noise
        if modes:
            for module, mode in self._modes:
                module.training = mode
        if random_state:
            for gen, state in self._generators:
                _set_generator_state(gen, state)
            torch.set_rng_state(self._torch_rng)
            if self._cuda_rng is not None:
                torch.cuda.set_rng_state_all(self._cuda_rng)
            np.random.set_state(self._numpy_rng)
            random.setstate(self._python_rng)
