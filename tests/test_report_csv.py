"""The CSV risk register: one row per finding, parses back, and cannot smuggle formulas into a spreadsheet."""

from __future__ import annotations

import csv
import io
import json

from hvguard.report.common import visible
from hvguard.report.csv_report import COLUMNS, neutralise, render
from hvguard.report.json_report import report_dict
from test_report_common import ATTESTATION, FORMULA_VM, HOSTILE_EVIDENCE, WAIVER, estate


def rows(text: str) -> list[dict[str, str]]:
    """Parse the report as a spreadsheet importer would (BOM stripped)."""
    assert text.startswith("\ufeff"), "UTF-8 BOM so Excel decodes non-ASCII text"
    return list(csv.DictReader(io.StringIO(text[1:], newline="")))


def test_one_row_per_finding_in_report_order() -> None:
    ev = estate()
    text = render(ev)
    got = rows(text)
    rep = report_dict(ev)
    assert len(got) == len(rep["results"])
    assert list(got[0]) == list(COLUMNS)
    for row, r in zip(got, rep["results"], strict=True):
        assert (row["measure"], row["status"], row["message"].lstrip("'")) == (
            r["measure"],
            r["status"],
            visible(r["message"]),  # control characters as visible escapes: one line per finding
        )
        assert row["title"] == r["title"]
        evidence = json.loads(row["evidence"].removeprefix("'"))
        assert evidence == json.loads(json.dumps(r["evidence"]))
    assert "\r\n" in text  # RFC 4180 line ends


def test_waiver_and_attestation_columns() -> None:
    got = rows(render(estate()))
    waived = [r for r in got if r["status"] == "waived"]
    assert [
        (r["waiver_id"], r["waiver_approved_by"], r["waiver_expires_on"], r["original_status"])
        for r in waived
    ] == [(WAIVER["id"], WAIVER["approved_by"], WAIVER["expires_on"], "fail")]
    attested = [r for r in got if r["attestation_id"]]
    assert [(r["attested_by"], r["attestation_valid_until"], r["status"]) for r in attested] == [
        (ATTESTATION["attested_by"], ATTESTATION["valid_until"], "pass")
    ]
    assert any(r["remediation"].startswith("virsh setvcpus db1") for r in got)


def test_formula_injection_is_neutralised() -> None:
    got = rows(render(estate()))
    # "vm:=HYPERLINK(…)" starts with "v", which no spreadsheet reads as a formula: it stays as it is
    formula_rows = [r for r in got if "HYPERLINK" in r["subject"]]
    assert formula_rows and all(r["subject"] == f"vm:{FORMULA_VM}" for r in formula_rows)
    # no cell at all starts with a formula trigger
    for row in got:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value
    for raw, want in (
        ("=1+1", "'=1+1"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2", "'-2"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("vm:web1", "vm:web1"),
    ):
        assert neutralise(raw) == want


def test_a_vm_named_like_a_formula_is_quoted_in_every_cell() -> None:
    ev = estate()
    for f in ev.findings:
        if f.subject == f"vm:{FORMULA_VM}":
            f.message = FORMULA_VM  # a message that starts with the name itself
    got = rows(render(ev))
    hit = [r for r in got if r["message"].endswith(FORMULA_VM)]
    assert hit and all(r["message"] == "'" + FORMULA_VM for r in hit)


def test_hostile_evidence_survives_as_data() -> None:
    got = rows(render(estate()))
    banners = [json.loads(r["evidence"]).get("banner") for r in got if "banner" in r["evidence"]]
    assert banners and all(b == HOSTILE_EVIDENCE for b in banners)
