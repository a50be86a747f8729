"""The SARIF report meets GitHub code scanning's documented ingestion rules.

Each test encodes one rule of GitHub's documentation — "SARIF support for code scanning" (the
supported-properties tables: required properties, lengths, values) and "SARIF results exceed limits" (the
hard limits that make an upload be rejected) — and checks it on every test estate: the hostile estate
with a waiver and an attestation, a fleet with an unreachable target, the test-driver bundle evaluated
through the command line with the fixture exceptions register and attestations, VM names that could
climb a path, and every estate scripts/compare_reports.py scans. The file was not uploaded
to GitHub from here: these are the documented rules, checked offline (the schema validation is in
test_report_sarif.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import msgspec
import pytest

from factories import good_vm, target
from hvguard.engine import evaluate
from hvguard.findings import Status
from hvguard.profile import default_profile
from hvguard.report import sarif
from hvguard.report.sarif import render
from report_estates import scan_all
from test_report_common import AS_OF, WORKFLOW, _rollup, estate, fleet

DATA = Path(__file__).parent / "data"
BUNDLE = DATA / "bundles" / "v2-testdriver-kvm-good.json.gz"
#: GitHub's hard limits ("SARIF results exceed limits": a file over any of them is rejected).
RUNS_PER_FILE = 20
RESULTS_PER_RUN = 25_000
RULES_PER_RUN = 25_000
LOCATIONS_PER_RESULT = 10  # "up to a maximum of 10" (the result-object table; the hard limit is 1,000)
TAGS_PER_RULE = 20
TAGS_SHOWN = 10  # "Only 10 tags will be included"
#: Lengths from the reportingDescriptor table.
NAME_MAX = 255
DESCRIPTION_MAX = 1024


def _cli_log() -> dict[str, Any]:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "hvguard",
            "evaluate",
            str(BUNDLE),
            "--no-history",
            "--format",
            "sarif",
            "--exceptions",
            str(WORKFLOW / "exceptions.yaml"),
            "--attestations",
            str(WORKFLOW / "attestations.yaml"),
            "--as-of",
            AS_OF,
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=180,
        check=False,
    )
    assert r.returncode == 1 and r.stderr == "", r.stderr  # the estate has failures
    data: dict[str, Any] = json.loads(r.stdout)
    return data


def _odd_names() -> dict[str, Any]:
    """VM names that could climb or break a path: ``..``, ``.``, a slash, spaces, percent signs."""
    vms = [good_vm(n) for n in ("..", ".", "a/../../etc", "50% off", "ü name")]
    ev = evaluate([target(vms)], default_profile())
    findings = [msgspec.structs.replace(f) for f in ev.findings]
    for f in findings:  # make every VM finding an alert so each name gets a location
        if f.subject.startswith("vm:") and f.status is Status.PASS:
            f.status = Status.FAIL
    data: dict[str, Any] = json.loads(render(_rollup(ev, findings)))
    return data


@pytest.fixture(scope="module")
def logs() -> dict[str, dict[str, Any]]:
    """The SARIF logs of every test estate, parsed back."""
    return {
        "hostile estate": json.loads(render(estate())),
        "fleet": json.loads(render(fleet())),
        "test-driver bundle": _cli_log(),
        "odd VM names": _odd_names(),
        **{f"scan {name}": log for name, log in scan_all("sarif").items()},
    }


def runs(logs: dict[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(estate name, run) for every run of every log."""
    for name, log in logs.items():
        for run in log["runs"]:
            yield name, run


def results(logs: dict[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(estate name, run, result) for every result."""
    for name, run in runs(logs):
        for res in run["results"]:
            yield name, run, res


def nonempty(value: Any) -> bool:
    """GitHub: "The empty string is not supported for required properties"."""
    return isinstance(value, str) and value.strip() != ""


def test_every_estate_has_alerts_to_check(logs: dict[str, dict[str, Any]]) -> None:
    assert len(logs) >= 24  # the four above and every scanned estate of scripts/compare_reports.py
    for name, run in runs(logs):
        assert run["results"], name


def test_sarif_log_object_required_properties(logs: dict[str, dict[str, Any]]) -> None:
    # sarifLog: $schema (the 2.1.0 schema URI), version 2.1.0, runs[]; at most 20 runs per file
    for name, log in logs.items():
        assert nonempty(log["$schema"]) and urlsplit(log["$schema"]).scheme == "https", name
        assert log["$schema"].endswith("sarif-schema-2.1.0.json")
        assert log["version"] == "2.1.0"
        assert isinstance(log["runs"], list) and 1 <= len(log["runs"]) <= RUNS_PER_FILE


def test_run_and_tool_component_required_properties(logs: dict[str, dict[str, Any]]) -> None:
    # run: tool.driver and results[]; toolComponent: name and rules[]; semanticVersion is SemVer 2.0
    semver = re.compile(
        r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
    )
    for name, run in runs(logs):
        driver = run["tool"]["driver"]
        assert nonempty(driver["name"]), name
        assert semver.match(driver["semanticVersion"]), driver["semanticVersion"]
        assert isinstance(driver["rules"], list) and 0 < len(driver["rules"]) <= RULES_PER_RUN
        assert isinstance(run["results"], list)


def test_reporting_descriptor_required_properties_and_lengths(logs: dict[str, dict[str, Any]]) -> None:
    # id (unique), shortDescription.text and fullDescription.text (≤ 1024), help.text; name ≤ 255;
    # defaultConfiguration.level one of note, warning, error
    for name, run in runs(logs):
        rules = run["tool"]["driver"]["rules"]
        ids = [r["id"] for r in rules]
        assert len(set(ids)) == len(ids) and all(nonempty(i) for i in ids), name
        for r in rules:
            assert nonempty(r["name"]) and len(r["name"]) <= NAME_MAX
            for key in ("shortDescription", "fullDescription"):
                assert nonempty(r[key]["text"]) and len(r[key]["text"]) <= DESCRIPTION_MAX, (r["id"], key)
            assert nonempty(r["help"]["text"])
            assert r["defaultConfiguration"]["level"] in ("note", "warning", "error")


def test_rule_tags_precision_and_problem_severity(logs: dict[str, dict[str, Any]]) -> None:
    # tags: an array of strings, at most 20 (rejected above) and only 10 shown; precision one of very-high,
    # high, medium, low; problem.severity one of error, warning, recommendation
    for _, run in runs(logs):
        for r in run["tool"]["driver"]["rules"]:
            tags = r["properties"]["tags"]
            assert all(nonempty(t) for t in tags) and len(tags) <= TAGS_SHOWN <= TAGS_PER_RULE, r["id"]
            assert len(set(tags)) == len(tags)
            assert r["properties"]["precision"] in ("very-high", "high", "medium", "low")
            assert r["properties"]["problem.severity"] in ("error", "warning", "recommendation")


def test_security_severity_is_a_numeric_string_above_0_up_to_10_on_security_rules(
    logs: dict[str, dict[str, Any]],
) -> None:
    # "A string representing a score ... greater than 0.0 up to 10.0, for security queries (@tags
    # includes security)"; a value outside the range counts as no security severity at all
    for _, run in runs(logs):
        for r in run["tool"]["driver"]["rules"]:
            value = r["properties"]["security-severity"]
            assert isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value), value
            assert 0.0 < float(value) <= 10.0
            assert "security" in r["properties"]["tags"]


def test_security_severity_follows_modality_and_status(logs: dict[str, dict[str, Any]]) -> None:
    run = logs["hostile estate"]["runs"][0]
    by_id = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    score = {rid: float(r["properties"]["security-severity"]) for rid, r in by_id.items()}
    modality = {rid: r["properties"]["effective_modality"] for rid, r in by_id.items()}
    must = {score[i] for i in score if modality[i] == "must"}
    should = {score[i] for i in score if modality[i] == "should"}
    assert must == {8.0} and should == {4.0}  # high and medium in GitHub's bands
    seen = set()
    for res in run["results"]:
        status, rule_score = res["properties"]["status"], score[res["ruleId"]]
        got = float(res["properties"]["security-severity"])
        assert got == (rule_score if status in ("fail", "error", "warn") else rule_score / 2), (status, got)
        seen.add(status)
    assert {"fail", "manual", "waived"} <= seen


def test_results_have_a_message_a_known_rule_and_a_valid_level(logs: dict[str, dict[str, Any]]) -> None:
    # result: message.text required; ruleId / ruleIndex name the rule; level one of none, note, warning, error
    for name, run, res in results(logs):
        rules = run["tool"]["driver"]["rules"]
        assert nonempty(res["message"]["text"]), name
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] in ("none", "note", "warning", "error")


def test_at_most_25000_results_per_run(logs: dict[str, dict[str, Any]]) -> None:
    assert sarif.MAX_RESULTS == RESULTS_PER_RUN
    for name, run in runs(logs):
        assert len(run["results"]) <= RESULTS_PER_RUN, name


def test_every_result_has_a_physical_location_first(logs: dict[str, dict[str, Any]]) -> None:
    # locations[]: required, "at least one location is required ... only the first value is used",
    # at most 10; location.physicalLocation: required
    for name, _, res in results(logs):
        assert 1 <= len(res["locations"]) <= LOCATIONS_PER_RESULT, name
        assert "physicalLocation" in res["locations"][0]


def test_artifact_uris_are_relative_with_a_declared_uri_base_id(logs: dict[str, dict[str, Any]]) -> None:
    # artifactLocation.uri: required, "a relative path from the root of the GitHub repository";
    # a relative reference carries a uriBaseId that run.originalUriBaseIds declares (GitHub's "Relative
    # URI Guidance for SARIF Producers")
    for name, run, res in results(logs):
        locs = [res["locations"][0], *res.get("relatedLocations", [])]
        for loc in locs:
            art = loc["physicalLocation"]["artifactLocation"]
            uri = art["uri"]
            parts = urlsplit(uri)
            assert nonempty(uri) and not parts.scheme and not parts.netloc, (name, uri)
            assert not uri.startswith("/") and "\\" not in uri
            # no segment climbs out of the repository, and none is empty or a dot
            assert all(seg not in ("", ".", "..") for seg in uri.split("/")), uri
            assert all(unquote(seg) not in ("", ".", "..") for seg in uri.split("/")), uri
            assert art["uriBaseId"] in run["originalUriBaseIds"]
            assert uri.startswith("hvguard/")


def test_regions_carry_start_and_end_line_and_column(logs: dict[str, dict[str, Any]]) -> None:
    # region.startLine, startColumn, endLine, endColumn are marked required; lines and columns start at 1
    for name, _, res in results(logs):
        for loc in [res["locations"][0], *res.get("relatedLocations", [])]:
            region = loc["physicalLocation"]["region"]
            assert set(region) >= {"startLine", "startColumn", "endLine", "endColumn"}, name
            assert region["startLine"] >= 1 and region["startColumn"] >= 1
            assert region["endLine"] >= region["startLine"] and region["endColumn"] >= 1


def test_config_file_lines_and_subject_pseudo_paths(logs: dict[str, dict[str, Any]]) -> None:
    run = logs["test-driver bundle"]["runs"][0]
    uris = {
        (r["properties"]["subject"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
         r["locations"][0]["physicalLocation"]["region"]["startLine"])
        for r in run["results"]
    }  # fmt: skip
    (tid,) = [t["id"] for t in run["properties"]["targets"]]  # test:///…/node.xml, as collected
    slug = "-".join(p for p in re.split(r"[^A-Za-z0-9._-]+", tid) if p)
    assert any(u.endswith("/etc/libvirt/qemu.conf") and line > 1 for _, u, line in uris), uris
    assert any(s == "vm:qemu-loose" and u == f"hvguard/{slug}/vm/qemu-loose" for s, u, _ in uris)
    assert any(s == "host" and u == f"hvguard/{slug}/host" and line == 1 for s, u, line in uris)


def test_odd_vm_names_cannot_climb_the_tree(logs: dict[str, dict[str, Any]]) -> None:
    run = logs["odd VM names"]["runs"][0]
    uris = {
        r["properties"]["subject"]: r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in run["results"]
        if r["properties"]["subject"].startswith("vm:") and "/vm/" in r["locations"][0]["physicalLocation"][
            "artifactLocation"]["uri"]
    }  # fmt: skip
    assert uris["vm:.."] == "hvguard/qemu-system/vm/..~"  # %2E%2E would normalise back to ..
    assert uris["vm:."] == "hvguard/qemu-system/vm/.~"
    assert uris["vm:a/../../etc"] == "hvguard/qemu-system/vm/a%2F..%2F..%2Fetc"
    assert uris["vm:50% off"] == "hvguard/qemu-system/vm/50%25%20off"
    assert unquote(uris["vm:ü name"].rsplit("/", 1)[1]) == "ü name"


def test_partial_fingerprints_carry_the_primary_location_line_hash(logs: dict[str, dict[str, Any]]) -> None:
    # partialFingerprints: required; "code scanning only uses the primaryLocationLineHash"
    for name, run in runs(logs):
        hashes = [res["partialFingerprints"]["primaryLocationLineHash"] for res in run["results"]]
        assert all(re.fullmatch(r"[0-9a-f]{16}:[1-9]\d*", h) for h in hashes), name
        assert len(set(hashes)) == len(hashes), name  # two results never share an identity


def test_file_paths_and_fingerprints_are_consistent_across_runs() -> None:
    # "The filepath has to be consistent across the runs"; ruleId the same across analyses
    def keyed(log: dict[str, Any]) -> dict[str, tuple[str, str]]:
        return {
            r["partialFingerprints"]["primaryLocationLineHash"]: (
                r["ruleId"],
                r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            )
            for r in log["runs"][0]["results"]
        }

    first, second = keyed(json.loads(render(estate()))), keyed(json.loads(render(estate(extra_vms=3))))
    assert first and all(second[k] == v for k, v in first.items())


def test_passes_and_not_applicable_are_not_alerts(logs: dict[str, dict[str, Any]]) -> None:
    # GitHub ignores result.kind: a pass would be shown as an open alert, so none is emitted
    for name, _run, res in results(logs):
        assert res["properties"]["status"] not in ("pass", "not_applicable"), name
        assert res["kind"] not in ("pass", "notApplicable", "informational")
    omitted = logs["test-driver bundle"]["runs"][0]["properties"]["omitted"]
    assert omitted["pass"] > 0 and omitted["not_applicable"] > 0


def test_over_the_result_limit_the_least_severe_are_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    full = json.loads(render(estate()))["runs"][0]
    monkeypatch.setattr(sarif, "MAX_RESULTS", 5)
    cut = json.loads(render(estate()))["runs"][0]
    assert len(cut["results"]) == 5
    kept = sorted(float(r["properties"]["security-severity"]) for r in cut["results"])
    dropped = sorted(float(r["properties"]["security-severity"]) for r in full["results"])[:-5]
    assert min(kept) >= max(dropped)
    assert cut["properties"]["omitted"]["over_result_limit"] == len(full["results"]) - 5
    notes = [n["message"]["text"] for n in cut["invocations"][0]["toolExecutionNotifications"]]
    assert any(f"{len(full['results']) - 5} of {len(full['results'])} findings left out" in n for n in notes)
