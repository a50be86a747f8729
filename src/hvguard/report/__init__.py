"""Reports: one module per output format, each exposing ``render(evaluation) -> str``.

Every format renders the typed report model (:mod:`hvguard.report.model`, built by
:func:`hvguard.report.build.build_report`); ``--format json`` is that model encoded as is.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from hvguard.engine import Evaluation

#: format name → module under ``hvguard.report``: one module and one line here per format.
FORMATS: dict[str, str] = {
    "table": "table",
    "json": "json_report",
    "html": "html",
    "sarif": "sarif",
    "junit": "junit",
    "csv": "csv_report",
    "markdown": "markdown",
    "oscal": "oscal",
    "hdf": "hdf",
}


class Renderer(Protocol):
    """What a report module provides."""

    def __call__(self, evaluation: Evaluation) -> str: ...


def renderer(fmt: str) -> Renderer:
    """The render function of format ``fmt`` (KeyError for an unknown format)."""
    module = import_module(f"hvguard.report.{FORMATS[fmt]}")
    return cast(Renderer, module.render)
