"""Exceptions and attestations end to end through the CLI on the test-driver estate (subprocess)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"
NODE = DATA / "testdriver" / "node.xml"
GOOD_ROOT = DATA / "roots" / "kvm-good"
WORKFLOW = DATA / "workflow"
EXCEPTIONS = WORKFLOW / "exceptions.yaml"
ATTESTATIONS = WORKFLOW / "attestations.yaml"
AS_OF = "2026-06-01"
ESTATE = (f"test://{NODE}", "--root", str(GOOD_ROOT))


def hv(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the hvguard CLI with no stdin and no history recording."""
    return subprocess.run(
        [sys.executable, "-m", "hvguard", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def scan_json(*extra: str) -> tuple[int, dict[str, Any]]:
    """Scan the estate with both files as of AS_OF, JSON report."""
    r = hv(
        "scan", *ESTATE, "--exceptions", str(EXCEPTIONS), "--attestations", str(ATTESTATIONS),
        "--as-of", AS_OF, "--format", "json", "--no-history", *extra,
    )  # fmt: skip
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


def results(rep: dict[str, Any], measure: str, subject: str = "host") -> list[dict[str, Any]]:
    """The results for one measure and subject."""
    return [r for r in rep["results"] if r["measure"] == measure and r["subject"] == subject]


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """One scan of the estate with the fixture register and attestations, as of 2026-06-01."""
    return scan_json()[1]


def test_waivers_on_the_estate(report: dict[str, Any]) -> None:
    (loose,) = results(report, "11.3.10", "vm:qemu-loose")
    assert loose["status"] == "waived" and loose["original_status"] == "fail"
    assert loose["waiver"]["id"] == "EX-001" and loose["waiver"]["reference"] == "RISK-1042"
    assert loose["evidence"] and loose["remediation"]  # the original evidence and fix are kept
    (off,) = results(report, "11.3.10", "vm:kvm-off")
    assert off["status"] == "fail" and off["waiver"] is None  # outside EX-001's vm:qemu-* scope
    assert report["summary"]["by_measure"]["11.3.10"] == "fail"
    # EX-003 names the target by its collected host name and expires on the evaluation date.
    (enc,) = results(report, "11.2.9", "vm:qemu-loose")
    assert enc["status"] == "waived" and enc["waiver"]["days_to_expiry"] == 0


def test_expired_and_not_yet_approved_exceptions_only_leave_notes(report: dict[str, Any]) -> None:
    hw = [r for r in results(report, "11.1.2") if r["status"] == "fail"]
    assert hw and all(
        "EX-002 expired on 2026-05-31: it no longer waives this finding" in r["notes"] for r in hw
    )
    confined = [r for r in results(report, "11.2.7", "vm:qemu-loose")]
    assert confined[0]["status"] == "fail"
    assert any("EX-007 is approved from 2026-06-15" in n for n in confined[0]["notes"])


def test_a_check_scoped_exception_waives_only_that_check(report: dict[str, Any]) -> None:
    by_check = {r["check"]: r for r in results(report, "11.1.1")}
    kvm = by_check["kvm.type1-hypervisor"]
    assert kvm["status"] == "waived" and kvm["waiver"]["id"] == "EX-005"
    others = [r for c, r in by_check.items() if c != "kvm.type1-hypervisor"]
    assert others and all(r["waiver"] is None for r in others)


def test_a_manual_finding_is_not_waived_and_says_why(report: dict[str, Any]) -> None:
    (ids,) = results(report, "11.3.5")
    assert ids["status"] == "manual" and ids["waiver"] is None
    note = "EX-008 not applied: a manual finding needs an attestation (--attestations), not an exception"
    assert note in ids["notes"]


def test_error_findings_are_never_waived(tmp_path: Path) -> None:
    # An unreachable target in a multi-target run: every measure is an error, whatever the register says.
    register = tmp_path / "ex.yaml"
    register.write_text(
        "exceptions:\n  - {id: EX-ALL, measure: '11.3.3', scope: {target: '*', subject: '*'},\n"
        "     justification: j, risk_owner: o, approved_by: a, approved_on: 2026-01-10,\n"
        "     expires_on: 2026-12-31, risk_rating: low}\n"
    )
    r = hv("scan", "qemu+tcp://127.0.0.1:1/system", "qemu+tcp://127.0.0.1:2/system", "--exceptions",
           str(register), "--as-of", AS_OF, "--format", "json", "--no-history")  # fmt: skip
    assert r.returncode == 1, r.stderr
    rep = json.loads(r.stdout)
    found = [x for x in rep["results"] if x["measure"] == "11.3.3"]
    assert len(found) == 2
    for f in found:
        assert f["status"] == "error" and f["waiver"] is None
        never = "EX-ALL covers this measure but an error is never waived"
        assert any(n.startswith(never) for n in f["notes"])
    assert rep["summary"]["by_status"]["waived"] == 0
    assert rep["exceptions"]["notes"] == ["EX-ALL: matched only findings it cannot waive (error or manual)"]


def test_attestations_on_the_estate(report: dict[str, Any]) -> None:
    (sep,) = results(report, "11.4.5")
    assert sep["status"] == "pass" and sep["method"] == "attestation" and sep["original_status"] == "manual"
    assert [e["result"] for e in sep["attestation"]["evidence"]] == ["sha256 ok", "not verified: url"]
    (ss025,) = results(report, "11.3.6")
    assert ss025["status"] == "pass" and "(last day)" in ss025["message"]  # valid_until == as_of
    (ids,) = results(report, "11.3.5")
    assert ids["status"] == "manual" and any("AT-003 expired on 2026-05-31" in n for n in ids["notes"])
    (record,) = [r for r in results(report, "11.1.1") if r["check"] == "kvm.hypervisor-type-record"]
    assert record["status"] == "error" and "sha256 mismatch" in record["message"]
    assert report["summary"]["by_measure"]["11.1.1"] == "error"
    confined = results(report, "11.2.7", "vm:qemu-loose")[0]
    assert any("AT-005 not applied: only manual findings can be attested" in n for n in confined["notes"])


def test_the_report_names_the_files_and_the_register_notes(report: dict[str, Any]) -> None:
    assert report["as_of"] == AS_OF
    ex = report["exceptions"]
    assert ex["path"] == str(EXCEPTIONS) and len(ex["sha256"]) == 64 and ex["entries"] == 8
    assert ex["by_state"] == {"active": 6, "expired": 1, "pending": 1}
    notes = "\n".join(ex["notes"])
    assert "EX-004: matched no finding in this evaluation" in notes
    assert "EX-006: matched only findings that pass" in notes
    assert "EX-003: expires today" in notes
    att = report["attestations"]
    assert att["entries"] == 5 and any(n.startswith("AT-004: evidence does not match") for n in att["notes"])
    assert report["summary"]["by_status"]["waived"] == 4  # EX-001 ×2, EX-003, EX-005


def test_without_files_the_estate_has_no_waivers() -> None:
    r = hv("scan", *ESTATE, "--format", "json", "--no-history")
    rep = json.loads(r.stdout)
    assert rep["exceptions"] is None and rep["attestations"] is None
    assert rep["summary"]["by_status"]["waived"] == 0


def test_table_shows_waived_and_attested_beside_the_original_status() -> None:
    r = hv(
        "scan", *ESTATE, "--exceptions", str(EXCEPTIONS), "--attestations", str(ATTESTATIONS),
        "--as-of", AS_OF, "--no-history",
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    out = r.stdout
    assert f"exceptions: {EXCEPTIONS} (sha256 " in out and "judged as of 2026-06-01" in out
    assert "WAIVED (was FAIL) vm:qemu-loose" in out
    assert "EX-001: medium risk · owner Head of Platform · approved by CISO on 2026-01-10" in out
    assert "PASS (attested, was MANUAL) host: attested by R. Patel" in out
    assert "ERROR (attestation refused, was MANUAL) host" in out
    assert "note: EX-002 expired on 2026-05-31" in out
    assert "Register notes" in out and "exceptions EX-004: matched no finding" in out


def test_an_auditor_re_evaluating_a_bundle_gets_the_same_verdicts(
    tmp_path: Path, report: dict[str, Any]
) -> None:
    bundle = tmp_path / "estate.json.gz"
    assert hv("collect", *ESTATE, "--output", str(bundle)).returncode == 0
    r = hv(
        "evaluate", str(bundle), "--exceptions", str(EXCEPTIONS), "--attestations", str(ATTESTATIONS),
        "--as-of", AS_OF, "--format", "json", "--no-history",
    )  # fmt: skip
    offline = json.loads(r.stdout)
    assert offline["results"] == report["results"] and offline["exceptions"] == report["exceptions"]


def test_a_later_evaluation_date_expires_more(tmp_path: Path) -> None:
    _, later = scan_json("--as-of", "2026-09-01")  # the last --as-of wins
    assert later["as_of"] == "2026-09-01"
    (enc,) = results(later, "11.2.9", "vm:qemu-loose")
    assert enc["status"] == "fail" and any("EX-003 expired on 2026-06-01" in n for n in enc["notes"])
    (sep,) = results(later, "11.4.5")
    assert sep["status"] == "pass"  # AT-001 holds until 2026-11-20
    (ss025,) = results(later, "11.3.6")
    assert ss025["status"] == "manual"  # AT-002 ended on 2026-06-01


# -- bad input: exit 2, one line naming the entry ---------------------------------------------------------


def test_a_bad_register_stops_the_scan_naming_the_entry_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "ex.yaml"
    bad.write_text(EXCEPTIONS.read_text().replace("    expires_on: 2026-12-31\n", "", 1))
    r = hv("scan", *ESTATE, "--exceptions", str(bad), "--no-history")
    assert r.returncode == 2 and r.stdout == ""
    (line,) = r.stderr.splitlines()
    assert line.startswith(f"hvguard: error: exceptions file {bad}: EX-001 (line ")
    assert "expires_on is missing" in line and "Traceback" not in r.stderr


@pytest.mark.parametrize("command", ["scan", "evaluate"])
def test_bad_as_of_is_a_usage_error(command: str) -> None:
    target = [*ESTATE] if command == "scan" else [str(NODE)]
    r = hv(command, *target, "--as-of", "01/06/2026")
    assert r.returncode == 2 and "is not an ISO date" in r.stderr and len(r.stderr.splitlines()) == 1


def test_an_approval_in_the_future_is_refused(tmp_path: Path) -> None:
    soon = date.today() + timedelta(days=10)
    bad = tmp_path / "ex.yaml"
    bad.write_text(EXCEPTIONS.read_text().replace("approved_on: 2026-01-10", f"approved_on: {soon}", 1))
    r = hv("exceptions", "lint", str(bad))
    assert r.returncode == 2 and f"error EX-001: approved_on {soon} is in the future" in r.stdout


def test_lint_lists_every_problem_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "ex.yaml"
    text = EXCEPTIONS.read_text()
    text = text.replace('measure: "11.1.2"', 'measure: "11.1.9"').replace(
        "risk_rating: critical", "risk_rating: 5"
    )
    text = text.replace("id: EX-006", "id: EX-001")
    bad.write_text(text)
    r = hv("exceptions", "lint", str(bad), "--as-of", AS_OF)
    assert r.returncode == 2
    lines = r.stdout.splitlines()
    assert any(
        line.startswith(f"{bad}:") and "error EX-002: unknown measure '11.1.9'" in line for line in lines
    )
    assert any("error EX-007: unknown risk_rating 5" in line for line in lines)
    assert any("error EX-001: duplicate id (first used on line 4)" in line for line in lines)
    assert lines[-1] == f"{bad}: 0 exception(s), 3 error(s), 0 warning(s): fix the errors"


def test_lint_of_the_fixture_files() -> None:
    r = hv("exceptions", "lint", str(EXCEPTIONS), "--as-of", AS_OF)
    assert r.returncode == 0, r.stdout
    assert r.stdout.splitlines()[-1] == f"{EXCEPTIONS}: 8 exception(s), 0 error(s), 1 warning(s): OK"
    r = hv("attestations", "lint", str(ATTESTATIONS), "--as-of", AS_OF)
    assert r.returncode == 2  # AT-004's evidence does not match on purpose
    assert "error AT-004: evidence evidence/ss025-assessment-2026-05.txt: sha256 mismatch" in r.stdout
    assert (
        "warning AT-001: evidence https://wiki.example.org/security/admin-separation-2026-05: not verified"
        in r.stdout
    )


# -- list and export -------------------------------------------------------------------------------------


def test_export_csv_is_the_risk_register_with_days_to_expiry(tmp_path: Path) -> None:
    out = tmp_path / "register.csv"
    r = hv("exceptions", "export", str(EXCEPTIONS), "--format", "csv", "--output", str(out), "--as-of", AS_OF)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [row["id"] for row in rows] == [f"EX-00{i}" for i in range(1, 9)]
    first = rows[0]
    assert first["measure_title"].startswith("Network, disk I/O and CPU limits")
    assert first["days_to_expiry"] == "213" and first["state"] == "active" and first["as_of"] == AS_OF
    assert {row["id"]: row["state"] for row in rows}["EX-002"] == "expired"
    assert {row["id"]: row["days_to_expiry"] for row in rows}["EX-002"] == "-1"
    again = hv("exceptions", "export", str(EXCEPTIONS), "--output", str(out))
    assert again.returncode == 2 and "--force" in again.stderr  # never overwritten unasked


def test_export_csv_defuses_spreadsheet_formulas(tmp_path: Path) -> None:
    path = tmp_path / "ex.yaml"
    path.write_text(
        "exceptions:\n  - {id: EX-1, measure: '11.3.3', scope: {subject: host},\n"
        "     justification: '=HYPERLINK(1)', risk_owner: '@owner', approved_by: a,\n"
        "     approved_on: 2026-01-10, expires_on: 2026-02-10, risk_rating: low}\n"
    )
    r = hv("exceptions", "export", str(path), "--as-of", AS_OF)
    (row,) = list(csv.DictReader(io.StringIO(r.stdout)))
    assert row["justification"] == "'=HYPERLINK(1)" and row["risk_owner"] == "'@owner"
    assert row["days_to_expiry"] == "-111"  # a negative number stays a number


def test_export_json_and_list() -> None:
    r = hv("exceptions", "export", str(EXCEPTIONS), "--format", "json", "--as-of", AS_OF)
    doc = json.loads(r.stdout)
    assert doc["schema"] == "hvguard.exceptions/1" and doc["as_of"] == AS_OF
    assert len(doc["source"]["sha256"]) == 64 and len(doc["exceptions"]) == 8
    r = hv("exceptions", "list", str(EXCEPTIONS), "--as-of", AS_OF, "--expiring-within", "30")
    assert r.returncode == 0 and "EX-003" in r.stdout and "expires today" in r.stdout
    assert "EX-001" not in r.stdout and "EX-002" not in r.stdout
    r = hv("attestations", "list", str(ATTESTATIONS), "--as-of", AS_OF, "--state", "expired")
    assert r.returncode == 0 and "AT-003" in r.stdout and "expired 1 d ago" in r.stdout
    assert "AT-001" not in r.stdout


def test_attestations_export_of_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "at.yaml"
    text = ATTESTATIONS.read_text().split("  - id: AT-004")[0]
    path.write_text(text.replace("path: evidence/", f"path: {WORKFLOW}/evidence/"))
    assert hv("attestations", "lint", str(path), "--as-of", AS_OF).returncode == 0
    r = hv("attestations", "export", str(path), "--format", "csv", "--as-of", AS_OF)
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [(row["id"], row["state"], row["days_to_expiry"]) for row in rows] == [
        ("AT-001", "active", "172"),
        ("AT-002", "active", "0"),
        ("AT-003", "expired", "-1"),
    ]


def test_list_and_export_refuse_an_invalid_register_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "ex.yaml"
    bad.write_text(EXCEPTIONS.read_text().replace('measure: "11.3.3"', 'measure: "11.3.33"'))
    for args in (("list", str(bad)), ("export", str(bad), "--format", "json")):
        r = hv("exceptions", *args)
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr.splitlines() == [
            f"hvguard: error: exceptions file {bad}: EX-006 (line 58): unknown measure '11.3.33' "
            "(SS-009 has 11.1.1 … 11.4.13; did you mean 11.3.3?)"
        ]
