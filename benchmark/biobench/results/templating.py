"""Jinja2 templates of the HTML pages, with autoescaping: every string from a record is escaped."""

from __future__ import annotations

import functools
from typing import Any

import jinja2


@functools.cache
def environment() -> jinja2.Environment:
    """The template environment of ``biobench/results/templates`` (autoescape on, strict undefined)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("biobench.results", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>`` with ``context``."""
    return environment().get_template(template).render(**context)
