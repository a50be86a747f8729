"""The SARIF report: valid against the official SARIF 2.1.0 JSON schema, and faithful to the findings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from hvguard.catalog import load_catalog
from hvguard.report.json_report import report_dict
from hvguard.report.sarif import KIND_LEVEL, OMITTED, render, rule_name
from test_report_common import HOSTILE_VM, WAIVER, estate

SCHEMA_FILE = Path(__file__).parent / "data" / "schemas" / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    """The official SARIF 2.1.0 schema shipped as test data."""
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return data


def validate(log: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Schema violations (with format checks: uri, uri-reference, date-time), as readable lines."""
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(log)]


@pytest.fixture(scope="module")
def log() -> dict[str, Any]:
    """The SARIF log of the hostile estate with a waiver and an attestation, parsed back."""
    data: dict[str, Any] = json.loads(render(estate()))
    return data


def test_the_shipped_schema_is_the_real_sarif_2_1_0_schema(schema: dict[str, Any]) -> None:
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$id"].endswith("/sarif-schema-2.1.0.json")
    assert schema["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    assert schema["properties"]["version"]["enum"] == ["2.1.0"]
    assert len(schema["definitions"]) == 52
    kinds = schema["definitions"]["result"]["properties"]["kind"]["enum"]
    assert set(kinds) == {"notApplicable", "pass", "fail", "review", "open", "informational"}


def test_the_log_is_valid_sarif(log: dict[str, Any], schema: dict[str, Any]) -> None:
    assert validate(log, schema) == []
    assert log["version"] == "2.1.0" and len(log["runs"]) == 1


def test_the_validator_does_reject_a_broken_log(log: dict[str, Any], schema: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(log))
    broken["runs"][0]["results"][0]["kind"] = "waived"
    broken["runs"][0]["results"][1]["locations"][0]["physicalLocation"] = {"region": {"startLine": 0}}
    assert len(validate(broken, schema)) >= 2


def test_rules_are_the_36_measures(log: dict[str, Any]) -> None:
    cat = load_catalog()
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(cat.ids)
    first = rules[0]
    m = cat.measures[0]
    assert first["name"] == rule_name(m.title) and " " not in first["name"]
    assert first["shortDescription"]["text"] == m.title and first["fullDescription"]["text"] == m.text
    assert first["properties"]["nist"] == list(m.nist) and first["properties"]["modality"] == m.modality
    assert first["properties"]["section"] == m.section


def test_every_finding_but_passes_is_a_result_with_the_documented_kind_and_level(log: dict[str, Any]) -> None:
    ev = estate()
    rep = report_dict(ev)
    results = log["runs"][0]["results"]
    shown = [r for r in rep["results"] if r["status"] not in OMITTED]
    assert len(results) == len(shown) < len(rep["results"])
    omitted = log["runs"][0]["properties"]["omitted"]
    for status in OMITTED:  # counted, not lost
        assert omitted[status] == sum(1 for r in rep["results"] if r["status"] == status)
    assert omitted["pass"] > 0 and omitted["over_result_limit"] == 0
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    for res, r in zip(results, shown, strict=True):
        assert res["ruleId"] == r["measure"] and rules[res["ruleIndex"]]["id"] == r["measure"]
        kind, level = KIND_LEVEL[r["status"]]
        assert res["kind"] == kind
        if kind != "fail":
            assert res["level"] == "none"  # SARIF: a level other than none needs kind fail
        elif r["status"] != "waived":
            assert res["level"] == level
        assert res["properties"]["status"] == r["status"]
        assert res["properties"]["evidence"] == r["evidence"]
        if r["status"] in ("fail", "warn") and r["remediation"]:
            assert r["remediation"].strip() in res["message"]["text"]


def test_a_waived_finding_is_an_accepted_external_suppression(log: dict[str, Any]) -> None:
    waived = [r for r in log["runs"][0]["results"] if r["properties"]["status"] == "waived"]
    assert len(waived) == 1
    res = waived[0]
    assert res["kind"] == "fail" and res["level"] == "error"  # it was a fail of a "must" measure
    (sup,) = res["suppressions"]
    assert sup["kind"] == "external" and sup["state"] == "accepted"
    assert sup["justification"] == WAIVER["justification"]
    assert sup["properties"]["id"] == "EX-900" and sup["properties"]["expires_on"] == WAIVER["expires_on"]
    # nothing else is suppressed
    others = [r for r in log["runs"][0]["results"] if r is not res]
    assert not any(r.get("suppressions") for r in others)


def test_an_attested_pass_is_left_out_and_manual_findings_are_for_review(log: dict[str, Any]) -> None:
    results = log["runs"][0]["results"]
    assert not [r for r in results if r["properties"]["attestation"]]  # the attested pass is a pass
    manual = [r for r in results if r["properties"]["status"] == "manual"]
    assert manual and all(r["kind"] == "review" for r in manual)


def test_locations_name_subject_target_and_file_line(log: dict[str, Any]) -> None:
    run = log["runs"][0]
    logical = run["logicalLocations"]
    for res in run["results"]:
        ref = res["locations"][0]["logicalLocations"][0]
        cached = logical[ref["index"]]
        assert cached["name"] == res["properties"]["subject"] == ref["name"]
        assert logical[cached["parentIndex"]]["name"] == res["properties"]["target"]
    assert any(loc["name"] == f"vm:{HOSTILE_VM}" for loc in logical)  # carried as data, not markup
    (with_file,) = [r for r in run["results"] if r["ruleId"] == "11.2.7"]
    phys = with_file["locations"][0]["physicalLocation"]
    assert phys == {  # the qemu.conf security_driver line of the target
        "artifactLocation": {
            "uri": "hvguard/qemu-system/fs/etc/libvirt/qemu.conf",
            "uriBaseId": "ESTATEROOT",
        },
        "region": {"startLine": 3, "startColumn": 1, "endLine": 3, "endColumn": 1},
    }


def test_fingerprints_are_stable_and_distinct(log: dict[str, Any]) -> None:
    again = json.loads(render(estate()))
    fps = [r["partialFingerprints"]["hvguardFinding/v1"] for r in log["runs"][0]["results"]]
    assert fps == [r["partialFingerprints"]["hvguardFinding/v1"] for r in again["runs"][0]["results"]]
    key = "primaryLocationLineHash"
    hashes = [r["partialFingerprints"][key] for r in log["runs"][0]["results"]]
    assert hashes == [r["partialFingerprints"][key] for r in again["runs"][0]["results"]]
    assert len(set(hashes)) == len(hashes)
    keys = {
        (r["properties"]["target"], r["properties"]["subject"], r["ruleId"], r["properties"]["check"])
        for r in log["runs"][0]["results"]
    }
    assert len(set(fps)) == len(keys)
