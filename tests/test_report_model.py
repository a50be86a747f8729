"""The typed report model: the JSON report is the model encoded, and the model can describe itself."""

from __future__ import annotations

import json

import msgspec

from hvguard.report.build import build_report
from hvguard.report.json_report import render
from hvguard.report.model import SCHEMA, Report
from test_report_common import estate


def test_the_model_yields_a_json_schema_of_the_document() -> None:
    schema = msgspec.json.schema(Report)
    top = schema["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    assert {"schema", "results", "summary"} <= set(top["required"])
    assert list(top["properties"]) == list(Report.__struct_fields__)


def test_the_json_report_decodes_back_into_the_model() -> None:
    ev = estate()
    text = render(ev)
    decoded = msgspec.json.decode(text, type=Report)
    assert decoded.schema == SCHEMA and len(decoded.results) == len(ev.findings)
    again = build_report(ev)
    same = msgspec.structs.replace(decoded, generated_at=again.generated_at)
    assert msgspec.json.encode(same) == msgspec.json.encode(again)
    assert list(json.loads(text)) == list(Report.__struct_fields__)  # key order is declaration order
