"""The JSON report (``--format json``): the report model encoded as is — the contract ``hvguard.report/1``.

The document's fields, their order and meaning are :mod:`hvguard.report.model`; this module only encodes
it (indented, UTF-8, newline-terminated).
"""

from __future__ import annotations

import msgspec

from hvguard.engine import Evaluation
from hvguard.report.build import build_report, report_dict
from hvguard.report.model import SCHEMA, Report

__all__ = ["SCHEMA", "encode", "render", "report_dict"]


def encode(report: Report) -> str:
    """``report`` as indented JSON text, newline-terminated (every field, ``null`` when unset)."""
    return msgspec.json.format(msgspec.json.encode(report), indent=2).decode() + "\n"


def render(ev: Evaluation) -> str:
    """Render the JSON report of ``ev``."""
    return encode(build_report(ev))
