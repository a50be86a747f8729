"""The JUnit report: parses back (defusedxml), one test case per measure × subject, counts that add up."""

from __future__ import annotations

from collections import Counter
from typing import Any

import defusedxml.ElementTree as DET
import pytest

from hvguard.catalog import load_catalog
from hvguard.report.common import cases
from hvguard.report.json_report import report_dict
from hvguard.report.junit import render
from test_report_common import HOSTILE_VM, WAIVER, estate, fleet


@pytest.fixture(scope="module")
def parsed() -> tuple[Any, dict[str, Any]]:
    """The parsed JUnit XML of the hostile estate, and the JSON report of the same evaluation."""
    ev = estate()
    return DET.fromstring(render(ev).encode()), report_dict(ev)


def outcome(tc: Any) -> str:
    """failure, error, skipped or passed."""
    return next((c.tag for c in tc if c.tag in ("failure", "error", "skipped")), "passed")


def test_it_parses_with_a_safe_parser_and_has_a_suite_per_section(parsed: tuple[Any, dict[str, Any]]) -> None:
    root, _ = parsed
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name").split()[1] for s in suites] == list(load_catalog().sections)


def test_one_test_case_per_measure_and_subject(parsed: tuple[Any, dict[str, Any]]) -> None:
    root, rep = parsed
    names = Counter((tc.get("classname"), tc.get("name")) for tc in root.iter("testcase"))
    assert all(n == 1 for n in names.values())
    want = {
        (f"SS009.s{c.measure.rsplit('.', 1)[0].replace('.', '_')}", f"{c.measure} {c.subject}")
        for c in cases(rep["results"])
    }
    assert set(names) == want  # one target: names without it
    assert ("SS009.s11_3", f"11.3.3 vm:{HOSTILE_VM}") in names


def test_jenkins_splits_the_classname_into_standard_and_section(parsed: tuple[Any, dict[str, Any]]) -> None:
    # Jenkins' JUnit plugin: package = classname up to the last dot, class = the rest
    root, _ = parsed
    sections = {f"s{s.replace('.', '_')}" for s in load_catalog().sections}
    for tc in root.iter("testcase"):
        package, _, cls = tc.get("classname").rpartition(".")
        assert package == "SS009" and cls in sections, tc.get("classname")
        measure = tc.get("name").split(" ", 1)[0]
        assert cls == f"s{measure.rsplit('.', 1)[0].replace('.', '_')}"


def test_several_targets_put_the_target_in_the_name() -> None:
    root = DET.fromstring(render(fleet()).encode())
    names = [tc.get("name") for tc in root.iter("testcase")]
    assert len(names) == len(set(names))
    assert "11.3.10 vm:web1 [qemu+ssh://hv1/system]" in names
    assert all(n.endswith("]") for n in names)


def test_the_counts_agree_with_the_elements(parsed: tuple[Any, dict[str, Any]]) -> None:
    root, _ = parsed
    totals = Counter()
    for suite in root.findall("testsuite"):
        tcs = suite.findall("testcase")
        got = Counter(outcome(tc) for tc in tcs)
        assert int(suite.get("tests")) == len(tcs)
        assert int(suite.get("failures")) == got["failure"]
        assert int(suite.get("errors")) == got["error"]
        assert int(suite.get("skipped")) == got["skipped"]
        for k in ("tests", "failures", "errors", "skipped"):
            totals[k] += int(suite.get(k))
    for k in ("tests", "failures", "errors", "skipped"):
        assert int(root.get(k)) == totals[k]
    assert totals["failures"] > 0 and totals["skipped"] > 0


def test_statuses_map_to_failure_error_and_skipped_with_reasons(parsed: tuple[Any, dict[str, Any]]) -> None:
    root, rep = parsed
    worst = {(c.measure, c.subject): c.status for c in cases(rep["results"])}
    expect = {"fail": "failure", "error": "error", "pass": "passed", "warn": "passed"}
    expect |= {"manual": "skipped", "not_applicable": "skipped", "waived": "skipped"}
    for tc in root.iter("testcase"):
        measure, subject = tc.get("name").split(" ", 1)
        status = worst[(measure, subject)]
        assert outcome(tc) == expect[status], (measure, subject, status)
        child = tc.find(expect[status]) if expect[status] != "passed" else None
        if child is not None:
            assert child.get("message", "").startswith(f"{status}: ")
    failure = root.find(".//testcase[@classname='SS009.s11_3'][@name='11.3.3 vm:web1']")
    assert failure is not None and outcome(failure) == "passed"
    waived = root.find(".//testcase[@classname='SS009.s11_3'][@name='11.3.3 vm:db1']")
    skipped = waived.find("skipped")
    assert skipped is not None and WAIVER["id"] in skipped.get("message")
    assert WAIVER["expires_on"] in skipped.get("message") and WAIVER["approved_by"] in skipped.get("message")
    failed = [tc for tc in root.iter("testcase") if outcome(tc) == "failure"]
    assert any("remediation:" in tc.find("failure").text for tc in failed)


def test_hostile_evidence_cannot_break_the_xml(parsed: tuple[Any, dict[str, Any]]) -> None:
    root, _ = parsed
    hostile = [tc for tc in root.iter("testcase") if tc.get("name").endswith(f" vm:{HOSTILE_VM}")]
    assert hostile
    text = "".join(t for tc in hostile for t in tc.itertext())
    assert "<b>red</b>" in text and "\ufffd" in text and "\x00" not in text
