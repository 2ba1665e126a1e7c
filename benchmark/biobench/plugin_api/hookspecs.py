"""pluggy hook specifications of biobench. Every hook is called with keywords only.

Implementations may take fewer arguments than a specification names, so
specifications can grow without breaking plugins.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "biobench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def biobench_register_architectures() -> list[type[Any]]:
    """Return Architecture subclasses this plugin provides."""


@hookspec
def biobench_register_rules() -> list[type[Any]]:
    """Return LearningRule subclasses this plugin provides."""


@hookspec
def biobench_register_tasks() -> list[type[Any]]:
    """Return Task subclasses this plugin provides."""


@hookspec
def biobench_register_capabilities() -> dict[str, str]:
    """Return the capabilities this plugin declares, as {name: what it promises}."""


@hookspec(firstresult=True)
def biobench_pairing_unsupported(
    architecture: Any, rule: type[Any], task: Any, capabilities: dict[str, str]
) -> str | None:
    """Return a reason why this (architecture, rule class, task) pairing cannot run, or None."""
