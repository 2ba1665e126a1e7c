"""Plugin discovery: entry points of group ``biobench`` -> pluggy -> a validated registry.

Built-in plugins and third-party ones go through the same path. A plugin that
fails to import, raises in a hook, returns the wrong type, names a capability
nobody declared or reuses a name is reported (with its distribution) in
``Registry.errors``; the others still load.

Name conflicts. A built-in name (entry point, architecture, rule or task) cannot
be taken over: the built-in stays active and the other plugin's entry is refused,
with both named. When two plugins from other distributions claim the same name,
*neither* is active under it: both are named in the error until the user disables
one (``--disable-plugins NAME`` or ``DISTRIBUTION:NAME``).
"""

from __future__ import annotations

import difflib
import os
import re
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from biobench.plugin_api import hookspecs
from biobench.plugin_api.capabilities import Capabilities, CapabilityError
from biobench.plugin_api.interfaces import Architecture, LearningRule, Task

GROUP = "biobench"
DISABLE_ENV = "BIOBENCH_DISABLE_PLUGINS"
ONLY_ENV = "BIOBENCH_ONLY_PLUGINS"
BUILTIN_DISTRIBUTION = "biobench"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

KINDS: dict[str, tuple[str, type]] = {
    "architecture": ("biobench_register_architectures", Architecture),
    "rule": ("biobench_register_rules", LearningRule),
    "task": ("biobench_register_tasks", Task),
}


class UnknownNameError(LookupError):
    """An architecture, rule or task name that no loaded plugin provides."""

    def __init__(self, kind: str, name: str, known: Iterable[str], contested: str | None = None) -> None:
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        if contested:
            message = f"{kind} {name!r} is not available: {contested}"
        else:
            message = f"unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(known) or '(none)'}"
        super().__init__(message)
        self.kind, self.name, self.known, self.suggestion = kind, name, known, close[0] if close else None


@dataclass(frozen=True)
class PluginSource:
    """Where a plugin came from: entry-point name, module and distribution."""

    entry_point: str
    module: str
    distribution: str
    version: str

    @property
    def label(self) -> str:
        """``'entry_point' (distribution version)``, for messages."""
        return f"{self.entry_point!r} ({self.distribution} {self.version})"

    @property
    def builtin(self) -> bool:
        """Whether biobench itself ships this plugin."""
        return self.distribution == BUILTIN_DISTRIBUTION


@dataclass(frozen=True)
class Registered:
    """One architecture, rule or task class, with the plugin that provided it."""

    kind: str
    name: str
    cls: type
    source: PluginSource

    @property
    def description(self) -> str:
        """The class's one-line description."""
        text = str(getattr(self.cls, "description", "")).strip()
        return text.splitlines()[0] if text else ""


@dataclass(frozen=True)
class PluginError:
    """A plugin problem, reported instead of crashing the whole registry."""

    entry_point: str
    distribution: str
    error: str


@dataclass
class Registry:
    """All loaded plugins, by kind and name, plus the errors met while loading."""

    manager: pluggy.PluginManager
    sources: dict[str, PluginSource] = field(default_factory=dict)
    entries: dict[str, dict[str, Registered]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS}
    )
    errors: list[PluginError] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    capabilities: Capabilities = field(default_factory=Capabilities)
    #: Names claimed by several non-built-in plugins, by kind: name -> why none is active.
    contested: dict[str, dict[str, str]] = field(default_factory=lambda: {kind: {} for kind in KINDS})

    @property
    def architectures(self) -> dict[str, Registered]:
        """Architectures by name."""
        return self.entries["architecture"]

    @property
    def rules(self) -> dict[str, Registered]:
        """Learning rules by name."""
        return self.entries["rule"]

    @property
    def tasks(self) -> dict[str, Registered]:
        """Tasks by name."""
        return self.entries["task"]

    def get(self, kind: str, name: str) -> Registered:
        """Return the entry of ``kind`` called ``name`` or raise UnknownNameError."""
        try:
            return self.entries[kind][name]
        except KeyError:
            raise UnknownNameError(kind, name, self.entries[kind], self.contested[kind].get(name)) from None

    def unsupported_reason(self, architecture: Architecture, rule: type, task: Task) -> str | None:
        """Ask the ``biobench_pairing_unsupported`` hook; a raising hook makes the pairing unsupported."""
        try:
            return self.manager.hook.biobench_pairing_unsupported(
                architecture=architecture, rule=rule, task=task,
                capabilities=self.capabilities.descriptions(),
            )
        except Exception as exc:  # a broken compatibility hook must not crash a grid
            return f"compatibility hook raised {type(exc).__name__}: {exc}"


def get_plugin_manager() -> pluggy.PluginManager:
    """A fresh plugin manager with biobench's hook specifications and nothing registered."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def names_from_env(var: str) -> list[str]:
    """The comma-separated names in environment variable ``var``."""
    return [n.strip() for n in os.environ.get(var, "").split(",") if n.strip()]


def _source(ep: metadata.EntryPoint) -> PluginSource:
    dist = getattr(ep, "dist", None)
    return PluginSource(
        entry_point=ep.name,
        module=ep.value,
        distribution=dist.name if dist is not None else "unknown",
        version=dist.version if dist is not None else "unknown",
    )


def _matches(source: PluginSource, names: set[str]) -> bool:
    """Whether ``names`` holds the entry point's name or ``distribution:entry_point``."""
    return source.entry_point in names or f"{source.distribution}:{source.entry_point}" in names


def _validate(kind: str, base: type, obj: Any, capabilities: Capabilities) -> str | None:
    """Return why ``obj`` is not a valid ``kind`` class, or None."""
    if not (isinstance(obj, type) and issubclass(obj, base)):
        return f"returned {obj!r}, which is not a subclass of {base.__name__}"
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not _NAME_RE.match(name):
        return f"{obj.__name__} has an invalid name {name!r} (lower-case letters, digits, '_.-')"
    if not isinstance(getattr(obj, "description", None), str) or not obj.description.strip():
        return f"{obj.__name__} has no description"
    if kind == "rule":
        for flag in ("weight_transport", "global_error"):
            if not isinstance(getattr(obj, flag, None), bool):
                return f"{obj.__name__} does not declare {flag} (True or False)"
        if not isinstance(obj.family, str) or not obj.family.strip():
            return f"{obj.__name__} has no family"
    if kind == "task":
        for attr in ("num_classes", "input_size"):
            if not isinstance(getattr(obj, attr, None), int):
                return f"{obj.__name__} does not declare {attr}"
        steps = getattr(obj, "input_steps", 1)
        if not isinstance(steps, int) or steps < 1 or obj.input_size % steps:
            return f"{obj.__name__}.input_steps={steps!r} is not a positive divisor of input_size {obj.input_size}"
    declared = {"architecture": "capabilities", "rule": "requires"}.get(kind)
    if declared:
        unknown = capabilities.unknown(getattr(obj, declared))
        if unknown:
            return (
                f"{kind} {name!r} names capabilit{'y' if len(unknown) == 1 else 'ies'} {unknown} in "
                f"`{declared}` that no loaded plugin declares; known: {', '.join(sorted(capabilities))}"
            )
    for attr in ("run_overrides", "resources", "defaults"):
        if not isinstance(getattr(obj, attr, {}), dict):
            return f"{obj.__name__}.{attr} is not a dict"
    for setup in getattr(obj, "published_setups", ()):
        problems = setup.problems() if hasattr(setup, "problems") else [f"{setup!r} is not a PaperSetup"]
        if problems:
            return f"{obj.__name__}.published_setups: {'; '.join(problems)}"
    return None


def _select_entry_points(
    registry: Registry, disabled: set[str], allowed: set[str]
) -> list[tuple[PluginSource, metadata.EntryPoint]]:
    """Entry points to load: one per name, built-ins first; contested names load none."""
    by_name: dict[str, list[tuple[PluginSource, metadata.EntryPoint]]] = {}
    for ep in metadata.entry_points(group=GROUP):
        source = _source(ep)
        if _matches(source, disabled) or (allowed and not _matches(source, allowed)):
            registry.disabled.append(source.entry_point if source.builtin else f"{source.distribution}:{source.entry_point}")
            continue
        by_name.setdefault(ep.name, []).append((source, ep))
    chosen = []
    for name in sorted(by_name, key=lambda n: (not any(s.builtin for s, _ in by_name[n]), n)):
        claims = sorted(by_name[name], key=lambda item: (not item[0].builtin, item[0].distribution))
        if len({(s.distribution, s.module) for s, _ in claims}) == 1:
            chosen.append(claims[0])
            continue
        builtin = [c for c in claims if c[0].builtin]
        others = [c for c in claims if not c[0].builtin]
        if builtin:
            chosen.append(builtin[0])
            for source, _ in others:
                registry.errors.append(PluginError(
                    source.entry_point, source.distribution,
                    f"entry point name {name!r} is the built-in plugin {builtin[0][0].label}'s; "
                    f"the built-in one is active and {source.label} is not loaded",
                ))
            continue
        labels = " and ".join(s.label for s, _ in others)
        for source, _ in others:
            registry.errors.append(PluginError(
                source.entry_point, source.distribution,
                f"entry point name {name!r} is claimed by {labels}; neither is loaded until you "
                f"disable one (--disable-plugins DISTRIBUTION:{name})",
            ))
    return chosen


def load_registry(
    disable: Iterable[str] | None = None,
    only: Iterable[str] | None = None,
    extra_plugins: Iterable[tuple[PluginSource, Any]] = (),
) -> Registry:
    """Discover plugins from entry points and return a validated registry.

    ``disable`` (default: ``$BIOBENCH_DISABLE_PLUGINS``, comma-separated) names
    entry points not to load (``NAME`` or ``DISTRIBUTION:NAME``); ``only``
    (default ``$BIOBENCH_ONLY_PLUGINS``), when non-empty, is an allow-list.
    ``extra_plugins`` registers already-imported plugin objects (tests, notebooks).
    """
    disabled = set(names_from_env(DISABLE_ENV) if disable is None else disable)
    allowed = set(names_from_env(ONLY_ENV) if only is None else only)
    registry = Registry(manager=get_plugin_manager())
    pm = registry.manager

    candidates: list[tuple[PluginSource, Any]] = []
    for source, ep in _select_entry_points(registry, disabled, allowed):
        try:
            plugin = ep.load()
        except Exception as exc:
            registry.errors.append(
                PluginError(ep.name, source.distribution, f"import failed: {_describe(exc)}")
            )
            continue
        candidates.append((source, plugin))
    candidates.extend(extra_plugins)

    for source, plugin in candidates:
        if source.entry_point in registry.sources:
            registry.errors.append(PluginError(
                source.entry_point, source.distribution,
                f"entry point name {source.entry_point!r} is already loaded from "
                f"{registry.sources[source.entry_point].label}; {source.label} is not loaded",
            ))
            continue
        try:
            pm.register(plugin, name=source.entry_point)
            pm.check_pending()
        except Exception as exc:
            if pm.is_registered(plugin):
                pm.unregister(plugin)
            registry.errors.append(
                PluginError(source.entry_point, source.distribution, f"invalid hooks: {_describe(exc)}")
            )
            continue
        registry.sources[source.entry_point] = source

    ordered = sorted(registry.sources.values(), key=lambda s: (not s.builtin, s.entry_point))
    for source in ordered:
        _collect_capabilities(registry, source)
    for kind, (hook_name, base) in KINDS.items():
        claims: dict[str, list[Registered]] = {}
        for source in ordered:
            for entry in _collect(registry, kind, hook_name, base, source):
                claims.setdefault(entry.name, []).append(entry)
        for name, entries in claims.items():
            _settle(registry, kind, name, entries)
    return registry


def _only_this_plugin(registry: Registry, source: PluginSource, hook_name: str) -> Any:
    pm = registry.manager
    plugin = pm.get_plugin(source.entry_point)
    others = [p for p in pm.get_plugins() if p is not plugin]
    return pm.subset_hook_caller(hook_name, remove_plugins=others)


def _collect_capabilities(registry: Registry, source: PluginSource) -> None:
    caller = _only_this_plugin(registry, source, "biobench_register_capabilities")
    try:
        results = caller()
    except Exception as exc:
        registry.errors.append(PluginError(
            source.entry_point, source.distribution, f"biobench_register_capabilities raised {_describe(exc)}"
        ))
        return
    for result in results:
        if not isinstance(result, dict):
            registry.errors.append(PluginError(
                source.entry_point, source.distribution,
                f"biobench_register_capabilities returned {result!r}, not a dict of name -> description",
            ))
            continue
        for name, description in result.items():
            try:
                registry.capabilities.declare(name, description, source.label)
            except CapabilityError as exc:
                registry.errors.append(PluginError(source.entry_point, source.distribution, str(exc)))


def _collect(registry: Registry, kind: str, hook_name: str, base: type, source: PluginSource) -> list[Registered]:
    caller = _only_this_plugin(registry, source, hook_name)
    try:
        results = caller()
    except Exception as exc:
        registry.errors.append(
            PluginError(source.entry_point, source.distribution, f"{hook_name} raised {_describe(exc)}")
        )
        return []
    found = []
    for result in results:
        if not isinstance(result, list | tuple):
            registry.errors.append(
                PluginError(source.entry_point, source.distribution, f"{hook_name} returned {result!r}, not a list")
            )
            continue
        for obj in result:
            problem = _validate(kind, base, obj, registry.capabilities)
            if problem:
                registry.errors.append(
                    PluginError(source.entry_point, source.distribution, f"{hook_name}: {problem}")
                )
                continue
            found.append(Registered(kind, obj.name, obj, source))
    return found


def _settle(registry: Registry, kind: str, name: str, claims: list[Registered]) -> None:
    """Register ``name`` when one plugin claims it; otherwise apply the conflict rules."""
    if len(claims) == 1:
        registry.entries[kind][name] = claims[0]
        return
    builtin = [c for c in claims if c.source.builtin]
    if builtin:
        active = builtin[0]
        registry.entries[kind][name] = active
        for other in claims:
            if other is not active:
                registry.errors.append(PluginError(
                    other.source.entry_point, other.source.distribution,
                    f"{kind} name {name!r} belongs to the built-in plugin {active.source.label}; "
                    f"the built-in {kind} is active and the one from {other.source.label} is not loaded",
                ))
        return
    labels = " and ".join(c.source.label for c in claims)
    why = (
        f"{kind} name {name!r} is claimed by plugins {labels}; neither is active under this name "
        "until you disable one (--disable-plugins NAME)"
    )
    registry.contested[kind][name] = why
    for claim in claims:
        registry.errors.append(PluginError(claim.source.entry_point, claim.source.distribution, why))


def _describe(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"
