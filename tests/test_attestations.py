"""Attestations: manual → pass with who and until when; expiry by whole days in the local timezone;
evidence verified by sha256; only manual findings attestable."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from factories import target
from hvguard.checks.base import HOST, Check, CheckContext
from hvguard.engine import Evaluation, evaluate
from hvguard.findings import Finding, Status
from hvguard.profile import default_profile
from hvguard.workflow.attestations import check_attestations, load_attestations
from hvguard.workflow.registerfile import RegisterError

TODAY = date(2026, 6, 1)
DATA = Path(__file__).parent / "data"
NODE = DATA / "testdriver" / "node.xml"
GOOD_ROOT = DATA / "roots" / "kvm-good"


def att(**changes: Any) -> dict[str, Any]:
    """A complete, valid attestation of 11.4.9 for the host; ``changes`` replace fields (None removes)."""
    base: dict[str, Any] = {
        "id": "AT-001",
        "measure": "11.4.9",
        "scope": {"target": "*", "subject": "host"},
        "statement": "The firewall admits only SSH and libvirt TLS from the management network.",
        "attested_by": "R. Patel",
        "attested_on": date(2026, 5, 1),
        "valid_until": date(2026, 11, 1),
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def write(folder: Path, *entries: dict[str, Any]) -> Path:
    """An attestations file holding ``entries``."""
    path = folder / "attestations.yaml"
    path.write_text(yaml.safe_dump({"attestations": list(entries)}, sort_keys=False))
    return path


def evidence_file(folder: Path, name: str = "review.txt", text: str = "ruleset review\n") -> tuple[str, str]:
    """A file under ``folder`` and its sha256."""
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return name, hashlib.sha256(text.encode()).hexdigest()


def fixed(status: Status, measure: str = "11.4.9") -> Check:
    """A check yielding one host finding of ``status``."""

    def fn(ctx: CheckContext) -> Iterable[Finding]:
        if status is Status.MANUAL:
            yield ctx.manual(HOST, "Evidence needed: the ruleset.", {"listeners": ["22/tcp"]})
        elif status is Status.FAIL:
            yield ctx.failed(HOST, "port 23 open", {"port": 23}, "close it")
        elif status is Status.ERROR:
            yield ctx.error(HOST, "the ruleset", "host.cpu")
        else:
            yield ctx.passed(HOST, "good")

    return Check(id="t.fw", measure=measure, reads=(), fn=fn, doc="")


def run(path: Path, status: Status = Status.MANUAL, as_of: date = TODAY) -> Evaluation:
    """Evaluate a factory target whose 11.4.9 check yields ``status``, with the attestations."""
    found = load_attestations(path, today=TODAY)
    return evaluate([target()], default_profile(), checks=[fixed(status)], attestations=found, as_of=as_of)


def the(ev: Evaluation, measure: str = "11.4.9") -> Finding:
    """The one host finding of ``measure``."""
    (f,) = [f for f in ev.findings if f.measure == measure]
    return f


# -- applying -------------------------------------------------------------------------------------------


def test_a_valid_attestation_turns_manual_into_pass_and_says_by_whom_and_until_when(tmp_path: Path) -> None:
    name, digest = evidence_file(tmp_path)
    ev = run(write(tmp_path, att(evidence=[{"path": name, "sha256": digest}], reference="CHG-7")))
    f = the(ev)
    assert f.status is Status.PASS and f.original_status is Status.MANUAL and f.method == "attestation"
    assert (
        "attested by R. Patel on 2026-05-01, valid until 2026-11-01" in f.message and "[AT-001]" in f.message
    )
    assert f.evidence == {"listeners": ["22/tcp"]}
    assert f.attestation is not None
    assert {"id", "statement", "attested_by", "attested_on", "valid_until", "evidence"} <= set(f.attestation)
    assert f.attestation["valid_until"] == "2026-11-01" and f.attestation["reference"] == "CHG-7"
    (item,) = f.attestation["evidence"]
    assert item == {
        "path": name,
        "sha256": digest,
        "description": None,
        "verified": True,
        "result": "sha256 ok",
    }
    assert any("was manual: Evidence needed: the ruleset." in n for n in f.notes)
    assert ev.by_measure["11.4.9"] is Status.PASS


@pytest.mark.parametrize(
    ("until", "attested"),
    [(TODAY + timedelta(days=1), True), (TODAY, True), (TODAY - timedelta(days=1), False)],
    ids=["valid-until-tomorrow", "valid-until-today", "expired-yesterday"],
)
def test_validity_ends_at_the_end_of_valid_until(tmp_path: Path, until: date, attested: bool) -> None:
    ev = run(write(tmp_path, att(attested_on=date(2026, 1, 1), valid_until=until)))
    f = the(ev)
    assert ev.attestations_used is not None
    use = ev.attestations_used.entries[0]
    if attested:
        assert f.status is Status.PASS and use.state == "active"
        if until == TODAY:
            assert "(last day)" in f.message and "AT-001: valid until today" in ev.attestations_used.notes
    else:
        assert f.status is Status.MANUAL and f.attestation is None and f.original_status is None
        assert f"AT-001 expired on {until}: the measure needs a fresh attestation" in f.notes
        assert use.state == "expired" and "1 finding(s) in its scope are manual again" in use.notes[0]


def test_an_attestation_signed_after_the_evaluation_date_is_not_in_effect(tmp_path: Path) -> None:
    # Re-evaluating as of an earlier audit date: the attestation did not exist yet.
    path = write(tmp_path, att(attested_on=TODAY + timedelta(days=1)))
    found = load_attestations(path, today=TODAY + timedelta(days=5))
    ev = evaluate(
        [target()], default_profile(), checks=[fixed(Status.MANUAL)], attestations=found, as_of=TODAY
    )
    f = the(ev)
    assert f.status is Status.MANUAL
    assert any("after the evaluation date 2026-06-01: not in effect" in n for n in f.notes)


def test_evidence_that_changed_since_attestation_is_an_error(tmp_path: Path) -> None:
    name, digest = evidence_file(tmp_path)
    path = write(tmp_path, att(evidence=[{"path": name, "sha256": digest}]))
    (tmp_path / name).write_text("ruleset review — edited afterwards\n")
    f = the(run(path))
    assert f.status is Status.ERROR and f.original_status is Status.MANUAL
    assert f.message.startswith("attestation AT-001 cannot be accepted: evidence review.txt: sha256 mismatch")
    assert f.remediation is not None and "sha256sum review.txt" in f.remediation
    assert f.attestation is not None
    item = f.attestation["evidence"][0]
    assert item["verified"] is False and item["result"] == "sha256 mismatch"
    assert item["actual_sha256"] == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()


def test_missing_evidence_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, att(evidence=[{"path": "gone.pdf", "sha256": "a" * 64}]))
    f = the(run(path))
    assert f.status is Status.ERROR and "gone.pdf: missing" in f.message


def test_evidence_paths_are_relative_to_the_attestations_file_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "audit"
    folder.mkdir()
    name, digest = evidence_file(folder, "evidence/fw.txt")
    path = write(folder, att(evidence=[{"path": name, "sha256": digest}]))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert the(run(Path("../audit/attestations.yaml"))).status is Status.PASS
    assert path.exists()


def test_url_evidence_is_recorded_as_not_verified_and_does_not_block_the_pass(tmp_path: Path) -> None:
    f = the(run(write(tmp_path, att(evidence=[{"url": "https://wiki.example/fw-review"}]))))
    assert f.status is Status.PASS
    assert f.attestation is not None
    item = f.attestation["evidence"][0]
    assert item["url"] == "https://wiki.example/fw-review"
    assert item["verified"] is False and item["result"] == "not verified: url"
    assert any("evidence not verified: url https://wiki.example/fw-review" in n for n in f.notes)
    assert "evidence: 0 of 1 item(s) verified by sha256" in f.notes


def test_no_evidence_list_passes_on_the_statement_and_says_so(tmp_path: Path) -> None:
    f = the(run(write(tmp_path, att())))
    assert f.status is Status.PASS
    assert "no evidence listed: the pass rests on the attester's statement alone" in f.notes


@pytest.mark.parametrize("status", [Status.FAIL, Status.ERROR])
def test_fail_and_error_are_not_attestable(tmp_path: Path, status: Status) -> None:
    ev = run(write(tmp_path, att()), status=status)
    f = the(ev)
    assert f.status is status and f.attestation is None and f.method == "facts"
    needle = "only manual findings can be attested" if status is Status.FAIL else "could not be evaluated"
    assert any(n.startswith("AT-001 not applied") and needle in n for n in f.notes)
    assert ev.attestations_used is not None
    assert "cannot attest" in ev.attestations_used.entries[0].notes[0]


def test_engine_manual_fallback_is_attestable(tmp_path: Path) -> None:
    # No check at all for 11.4.5: the engine's own manual finding takes the attestation.
    path = write(tmp_path, att(measure="11.4.5"))
    found = load_attestations(path, today=TODAY)
    ev = evaluate([target()], default_profile(), checks=[], attestations=found, as_of=TODAY)
    f = the(ev, "11.4.5")
    assert f.status is Status.PASS and f.check == "engine.manual"


def test_an_attestation_matching_nothing_is_noted(tmp_path: Path) -> None:
    ev = run(write(tmp_path, att(scope={"target": "hv-old-*"})))
    assert the(ev).status is Status.MANUAL
    assert ev.attestations_used is not None
    assert "matched no finding in this evaluation" in ev.attestations_used.notes[0]


# -- validation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"valid_until": None}, "valid_until is missing — every attestation must say until when it holds"),
        ({"attested_on": "2026-5-1"}, "'2026-5-1' is not an ISO date"),
        ({"valid_until": date(2026, 4, 1)}, "valid_until 2026-04-01 is before attested_on 2026-05-01"),
        ({"attested_on": date(2026, 6, 2), "valid_until": date(2026, 7, 1)}, "is in the future"),
        ({"statement": None}, "statement is missing"),
        ({"frequency": "1m"}, "durations such as '1m' are ambiguous"),
        ({"expires_on": "2026-10-01"}, "attestations use valid_until"),
        ({"evidence": [{"path": "x.pdf"}]}, "a file needs the sha256 it had when attested"),
        ({"evidence": [{"path": "x.pdf", "sha256": "abc"}]}, "sha256 must be 64 hex digits"),
        ({"evidence": [{"path": "x", "url": "https://y", "sha256": "a" * 64}]}, "exactly one of path or url"),
        ({"evidence": [{"url": "wiki/page"}]}, "has no scheme"),
        ({"evidence": [{"url": "https://y", "size": 3}]}, "unknown key(s) size"),
        ({"evidence": "x.pdf"}, "evidence must be a list"),
        ({"measure": "11.4"}, "unknown measure '11.4'"),
    ],
)
def test_each_bad_attestation_is_named(tmp_path: Path, changes: dict[str, Any], needle: str) -> None:
    path = write(tmp_path, att(id="AT-ok"), att(**{"id": "AT-bad", **changes}))
    _, problems = check_attestations(path, today=TODAY)
    errors = [str(p) for p in problems if p.severity == "error"]
    assert any(e.startswith("AT-bad (line ") and needle in e for e in errors), errors
    with pytest.raises(RegisterError, match="AT-bad"):
        load_attestations(path, today=TODAY)


def test_duplicate_attestation_ids_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, att(), att())
    with pytest.raises(RegisterError, match=r"AT-001 .*duplicate id"):
        load_attestations(path, today=TODAY)


# -- timezones (subprocess with TZ set) -----------------------------------------------------------------

# POSIX TZ strings need no zone database: "<+14>-14" is UTC+14, "<-12>+12" is UTC−12. The two local
# dates are always at least one day apart, so at any moment at least one of them differs from the UTC
# date: an implementation judging expiry on the UTC date (or on midnight UTC) fails one of these.
ZONES = {"<+14>-14": 14, "<-12>+12": -12}


def _local_today(offset_hours: int) -> date:
    return datetime.now(timezone(timedelta(hours=offset_hours))).date()


def _scan_in_zone(tz: str, offset: int, folder: Path) -> tuple[date, dict[str, Any]]:
    """Write files whose boundaries are that zone's today/yesterday, scan in that zone (no --as-of)."""
    for _ in range(2):  # retried once if the zone's midnight passes during the run
        today = _local_today(offset)
        yesterday = today - timedelta(days=1)
        start = today - timedelta(days=30)
        attestations = folder / "attestations.yaml"
        attestations.write_text(
            yaml.safe_dump(
                {
                    "attestations": [
                        att(id="AT-TODAY", measure="11.4.5", attested_on=start, valid_until=today),
                        att(id="AT-YESTERDAY", measure="11.3.6", attested_on=start, valid_until=yesterday),
                    ]
                }
            )
        )
        exceptions = folder / "exceptions.yaml"
        common = {"justification": "j", "risk_owner": "o", "approved_by": "a", "risk_rating": "low"}
        exceptions.write_text(
            yaml.safe_dump(
                {
                    "exceptions": [
                        {"id": "EX-TODAY", "measure": "11.3.10", "scope": {"subject": "vm:qemu-loose"},
                         "approved_on": start, "expires_on": today, **common},
                        {"id": "EX-YESTERDAY", "measure": "11.3.10", "scope": {"subject": "vm:kvm-off"},
                         "approved_on": start, "expires_on": yesterday, **common},
                        {"id": "EX-APPROVED-TODAY", "measure": "11.3.10",
                         "scope": {"subject": "vm:qemu-transient"}, "approved_on": today,
                         "expires_on": today + timedelta(days=90), **common},
                    ]
                }
            )
        )  # fmt: skip
        r = subprocess.run(
            [sys.executable, "-m", "hvguard", "scan", f"test://{NODE}", "--root", str(GOOD_ROOT),
             "--exceptions", str(exceptions), "--attestations", str(attestations), "--format", "json",
             "--no-history"],
            capture_output=True, text=True, env={**os.environ, "TZ": tz}, timeout=120, check=False,
        )  # fmt: skip
        assert r.returncode in (0, 1), r.stderr
        if _local_today(offset) == today:
            return today, json.loads(r.stdout)
    raise AssertionError("the zone's date changed twice during the test")


@pytest.mark.parametrize("tz", list(ZONES))
def test_expiry_follows_the_local_calendar_day_east_and_west_of_utc(tmp_path: Path, tz: str) -> None:
    today, rep = _scan_in_zone(tz, ZONES[tz], tmp_path)
    assert rep["as_of"] == today.isoformat()
    by = {(r["measure"], r["subject"], r["check"]): r for r in rep["results"]}
    # 11.4.5 and 11.3.6 are attestation-only measures: their one host finding is manual until attested.
    (sep,) = [r for (m, s, _), r in by.items() if m == "11.4.5" and s == "host"]
    assert sep["status"] == "pass" and sep["attestation"]["id"] == "AT-TODAY", sep
    (ss025,) = [r for (m, s, _), r in by.items() if m == "11.3.6" and s == "host"]
    assert ss025["status"] == "manual" and any("AT-YESTERDAY expired" in n for n in ss025["notes"]), ss025
    limits = {s: by[("11.3.10", s, "kvm.vm-resource-limits")] for s in ("vm:qemu-loose", "vm:kvm-off")}
    assert limits["vm:qemu-loose"]["status"] == "waived"
    assert limits["vm:kvm-off"]["status"] == "fail"
    assert any("EX-YESTERDAY expired" in n for n in limits["vm:kvm-off"]["notes"])
    # Approved today (local) is neither "in the future" (exit 2) nor pending.
    assert by[("11.3.10", "vm:qemu-transient", "kvm.vm-resource-limits")]["status"] == "waived"
    assert datetime.now(UTC).date() in (today - timedelta(days=1), today, today + timedelta(days=1))
