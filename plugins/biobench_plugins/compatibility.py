"""Generic compatibility check: a rule's required capabilities must be provided by the architecture."""

from __future__ import annotations

from typing import Any

from biobench import hookimpl


@hookimpl(trylast=True)
def biobench_pairing_unsupported(
    architecture: Any, rule: type[Any], task: Any, capabilities: dict[str, str]
) -> str | None:
    """Unsupported when the rule requires capabilities the architecture does not provide,
    or the task's input comes in time bins that the architecture cannot read (``timed_input``)."""
    steps = getattr(task, "input_steps", 1)
    if steps > 1 and "timed_input" not in architecture.capabilities:
        return (
            f"task {task.name!r} gives {steps} time bins of input per example; architecture "
            f"{architecture.name!r} does not read input bin by bin (timed_input: "
            f"{capabilities.get('timed_input', 'undeclared')})"
        )
    missing = sorted(set(getattr(rule, "requires", ())) - set(architecture.capabilities))
    if not missing:
        return None
    described = "; ".join(f"{m} ({capabilities.get(m, 'undeclared')})" for m in missing)
    return f"rule {rule.name!r} needs what architecture {architecture.name!r} does not provide: {described}"
