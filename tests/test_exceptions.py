"""The exceptions register: validation (every problem named), waiver boundaries, scopes and notes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from factories import good_vm, target
from hvguard.checks.base import HOST, Check, CheckContext, vm_subject
from hvguard.engine import Evaluation, evaluate
from hvguard.findings import Finding, Status
from hvguard.profile import default_profile
from hvguard.workflow.exceptions import check_exceptions, load_exceptions
from hvguard.workflow.registerfile import RegisterError

TODAY = date(2026, 6, 1)
DOCUMENTED_WAIVER_KEYS = {
    "id",
    "risk_owner",
    "approved_by",
    "approved_on",
    "expires_on",
    "risk_rating",
    "justification",
    "compensating_controls",
}


def entry(**changes: Any) -> dict[str, Any]:
    """A complete, valid exception; ``changes`` replace fields (None removes one)."""
    base: dict[str, Any] = {
        "id": "EX-001",
        "measure": "11.3.3",
        "scope": {"target": "*", "subject": "vm:db-*"},
        "justification": "Database VMs need all cores until the upgrade.",
        "risk_owner": "Head of Platform",
        "approved_by": "CISO",
        "approved_on": date(2026, 1, 10),
        "expires_on": date(2027, 1, 10),
        "risk_rating": "medium",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def write(tmp_path: Path, *entries: dict[str, Any], name: str = "exceptions.yaml") -> Path:
    """A register file holding ``entries``."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"exceptions": list(entries)}, sort_keys=False))
    return path


def problems_of(path: Path, today: date = TODAY) -> list[str]:
    """Every error problem of the register, as text."""
    _, problems = check_exceptions(path, today=today)
    return [str(p) for p in problems if p.severity == "error"]


def fixed(measure: str, subject: str, status: Status, cid: str = "t.check") -> Check:
    """A check that yields one finding of ``status`` for ``subject``."""

    def fn(ctx: CheckContext) -> Iterable[Finding]:
        if status is Status.FAIL:
            yield ctx.failed(subject, "bad", {"fact": 42}, "fix it")
        elif status is Status.WARN:
            yield ctx.warned(subject, "meh", {"fact": 1}, None)
        elif status is Status.PASS:
            yield ctx.passed(subject, "good")
        elif status is Status.MANUAL:
            yield ctx.manual(subject, "Evidence needed: a record.")
        else:
            yield ctx.error(subject, "a thing", "host.cpu")

    return Check(id=cid, measure=measure, reads=(), fn=fn, doc="")


def run(path: Path, checks: list[Check], as_of: date = TODAY, **target_kw: Any) -> Evaluation:
    """Evaluate one factory target with ``checks`` and the register at ``path``."""
    register = load_exceptions(path, today=TODAY)
    return evaluate([target(**target_kw)], default_profile(), checks=checks, exceptions=register, as_of=as_of)


def finding(ev: Evaluation, measure: str, subject: str = HOST) -> Finding:
    """The one finding for ``measure`` and ``subject``."""
    found = [f for f in ev.findings if f.measure == measure and f.subject == subject]
    assert len(found) == 1, found
    return found[0]


# -- validation ----------------------------------------------------------------------------------------


def test_a_valid_register_loads_with_dates_in_both_yaml_forms(tmp_path: Path) -> None:
    path = tmp_path / "ex.yaml"
    path.write_text(
        "exceptions:\n"
        "  - {id: EX-1, measure: '11.3.3', scope: {subject: host}, justification: j, risk_owner: o,\n"
        "     approved_by: a, approved_on: 2026-01-10, expires_on: '2026-12-31', risk_rating: HIGH}\n"
    )
    reg = load_exceptions(path, today=TODAY)
    (ex,) = reg.entries
    assert ex.approved_on == date(2026, 1, 10) and ex.expires_on == date(2026, 12, 31)
    assert ex.risk_rating == "high" and ex.scope.target == "*" and ex.scope.subject == "host"
    assert len(reg.sha256) == 64


@pytest.mark.parametrize(
    ("changes", "needle", "field"),
    [
        ({"measure": "11.9.9"}, "unknown measure '11.9.9'", "measure"),
        ({"measure": 11.3}, "quote it", "measure"),
        ({"expires_on": None}, "expires_on is missing — every exception must have an expiry date", None),
        ({"approved_on": None}, "approved_on is missing", None),
        ({"expires_on": "2027-1-10"}, "'2027-1-10' is not an ISO date YYYY-MM-DD", "expires_on"),
        ({"expires_on": "10/01/2027"}, "is not an ISO date", "expires_on"),
        ({"expires_on": "2027-02-30"}, "is not a real date", "expires_on"),
        ({"expires_on": 20270110}, "is not a date", "expires_on"),
        ({"approved_on": date(2027, 2, 1)}, "approved after it expired", "expires_on"),
        (
            {"approved_on": date(2026, 6, 2)},
            "approved_on 2026-06-02 is in the future (today is 2026-06-01)",
            None,
        ),
        ({"risk_rating": "severe"}, "unknown risk_rating 'severe'", "risk_rating"),
        ({"risk_rating": None}, "risk_rating is missing", None),
        ({"expiry": "2027-01-10"}, "unknown key 'expiry' (did you mean expires_on?)", "expiry"),
        ({"frequency": "1m"}, "durations such as '1m' are ambiguous", "frequency"),
        ({"scope": None}, "scope is missing", None),
        ({"scope": {"subject": "db-*"}}, "must be 'host', 'vm:NAME'", "scope"),
        ({"scope": {"vm": "x"}}, "scope: unknown key(s) vm", "scope"),
        ({"justification": ""}, "justification must be non-empty text", "justification"),
        ({"risk_owner": None}, "risk_owner is missing", None),
        ({"id": 7}, "id must be text (quote it", "id"),
    ],
)
def test_each_bad_entry_is_named_with_its_line(
    tmp_path: Path, changes: dict[str, Any], needle: str, field: str | None
) -> None:
    path = write(tmp_path, entry(id="EX-000"), entry(**{"id": "EX-042", **changes}))
    problems = problems_of(path)
    assert len(problems) >= 1
    hit = [p for p in problems if needle in p]
    assert hit, problems
    label = "entry #2" if changes.get("id") == 7 else "EX-042"
    assert hit[0].startswith(f"{label} (line "), hit[0]
    line = int(hit[0].split("(line ")[1].split(")")[0])
    lines = path.read_text().splitlines()
    if field is not None:
        assert lines[line - 1].lstrip(" -").startswith(f"{field}:"), (line, lines[line - 1])
    with pytest.raises(RegisterError, match=label):
        load_exceptions(path, today=TODAY)


def test_an_unquoted_timestamp_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, entry())
    path.write_text(path.read_text().replace("expires_on: 2027-01-10", "expires_on: 2027-01-10T12:00:00"))
    assert any("not an ISO date" in p for p in problems_of(path))


def test_duplicate_ids_name_both_lines(tmp_path: Path) -> None:
    path = write(tmp_path, entry(id="EX-7"), entry(id="EX-8"), entry(id="EX-7"))
    (dup,) = [p for p in problems_of(path) if "duplicate id" in p]
    first = next(i for i, line in enumerate(path.read_text().splitlines(), 1) if "id: EX-7" in line)
    assert dup.startswith("EX-7 (line ") and f"first used on line {first}" in dup


def test_a_key_given_twice_in_one_entry_is_an_error_not_a_guess(tmp_path: Path) -> None:
    path = write(tmp_path, entry())
    path.write_text(path.read_text() + "  expires_on: 2028-01-10\n")
    (p,) = problems_of(path)
    assert "EX-001" in p and "'expires_on' appears twice" in p


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    path = write(tmp_path, entry(id="A", measure="9"), entry(id="B", expires_on=None), entry(id="C"))
    problems = problems_of(path)
    assert any(p.startswith("A ") for p in problems) and any(p.startswith("B ") for p in problems)
    with pytest.raises(RegisterError, match=r"\+1 more; `hvguard exceptions lint"):
        load_exceptions(path, today=TODAY)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("exceptions: [\n", "invalid YAML"),
        ("- id: EX-1\n", "must be a mapping"),
        ("items: []\n", "no 'exceptions:' list"),
        ("exceptions: {id: 1}\n", "'exceptions' must be a list"),
        ("exceptions: []\nowner: x\n", "unknown top-level key(s) owner"),
        ("exceptions:\n  - just text\n", "entry #1 (line 2): an entry must be a mapping"),
    ],
)
def test_bad_files_are_refused_with_a_reason(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "ex.yaml"
    path.write_text(text)
    with pytest.raises(RegisterError) as info:
        load_exceptions(path, today=TODAY)
    assert needle in str(info.value)


def test_unreadable_and_binary_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RegisterError, match="cannot read"):
        load_exceptions(tmp_path / "absent.yaml")
    bad = tmp_path / "bin.yaml"
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(RegisterError, match="not UTF-8"):
        load_exceptions(bad)


def test_an_empty_register_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "ex.yaml"
    path.write_text("exceptions:\n")
    assert load_exceptions(path).entries == ()


def test_lint_warns_about_long_validity_and_expired_entries(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        entry(id="LONG", approved_on=date(2025, 1, 1), expires_on=date(2027, 1, 1)),
        entry(id="OLD", approved_on=date(2025, 1, 1), expires_on=date(2025, 6, 1)),
    )
    reg, problems = check_exceptions(path, today=TODAY)
    assert reg is not None and len(reg.entries) == 2
    warnings = [str(p) for p in problems if p.severity == "warning"]
    assert any(w.startswith("LONG") and "longer than a year" in w for w in warnings)
    assert any(w.startswith("OLD") and "expired on 2025-06-01" in w for w in warnings)


# -- applying: statuses ----------------------------------------------------------------------------------


def test_an_active_exception_waives_a_fail_and_keeps_status_and_evidence(tmp_path: Path) -> None:
    path = write(tmp_path, entry(compensating_controls="CPU cap on the slice", reference="RISK-9"))
    ev = run(path, [fixed("11.3.3", "vm:db-1", Status.FAIL)])
    f = finding(ev, "11.3.3", "vm:db-1")
    assert f.status is Status.WAIVED and f.original_status is Status.FAIL
    assert f.message == "bad" and f.evidence == {"fact": 42} and f.remediation == "fix it"
    assert f.waiver is not None and set(f.waiver) >= DOCUMENTED_WAIVER_KEYS
    assert f.waiver["id"] == "EX-001" and f.waiver["expires_on"] == "2027-01-10"
    assert f.waiver["compensating_controls"] == "CPU cap on the slice" and f.waiver["reference"] == "RISK-9"
    assert f.waiver["days_to_expiry"] == (date(2027, 1, 10) - TODAY).days
    assert any(n.startswith("waived by EX-001") and "status before the waiver: fail" in n for n in f.notes)
    assert ev.by_measure["11.3.3"] is Status.WAIVED
    assert ev.by_status["waived"] == 1 and ev.exit_code("fail") == 0


def test_a_warn_is_waived_too_and_the_checks_verdict_is_kept(tmp_path: Path) -> None:
    # 11.4.7 is a "should": the engine reports its fail as warn before the register applies.
    path = write(tmp_path, entry(measure="11.4.7", scope={"subject": "host"}))
    ev = run(path, [fixed("11.4.7", HOST, Status.FAIL)])
    f = finding(ev, "11.4.7")
    assert f.status is Status.WAIVED and f.original_status is Status.FAIL
    assert any("status before the waiver: warn" in n for n in f.notes)


@pytest.mark.parametrize(
    ("status", "needle"),
    [
        (Status.ERROR, "an error is never waived: the measure was not evaluated"),
        (Status.MANUAL, "a manual finding needs an attestation"),
    ],
)
def test_error_and_manual_are_never_waived(tmp_path: Path, status: Status, needle: str) -> None:
    path = write(tmp_path, entry(scope={"subject": "host"}))
    ev = run(path, [fixed("11.3.3", HOST, status)])
    f = finding(ev, "11.3.3")
    assert f.status is status and f.waiver is None
    assert any(n.startswith("EX-001") and needle in n for n in f.notes)
    assert ev.exceptions_used is not None
    assert ev.exceptions_used.entries[0].notes == ("matched only findings it cannot waive (error or manual)",)


def test_pass_and_not_applicable_are_left_alone(tmp_path: Path) -> None:
    path = write(tmp_path, entry(scope={"subject": "host"}))
    ev = run(path, [fixed("11.3.3", HOST, Status.PASS)])
    f = finding(ev, "11.3.3")
    assert f.status is Status.PASS and f.waiver is None and f.notes == []
    assert ev.exceptions_used is not None
    (note,) = ev.exceptions_used.entries[0].notes
    assert "matched only findings that pass" in note and "can be closed" in note


# -- applying: dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expires", "waived"),
    [(TODAY + timedelta(days=1), True), (TODAY, True), (TODAY - timedelta(days=1), False)],
    ids=["expires-tomorrow", "expires-today", "expired-yesterday"],
)
def test_expiry_is_the_end_of_the_expiry_day(tmp_path: Path, expires: date, waived: bool) -> None:
    path = write(tmp_path, entry(expires_on=expires))
    ev = run(path, [fixed("11.3.3", "vm:db-1", Status.FAIL)], as_of=TODAY)
    f = finding(ev, "11.3.3", "vm:db-1")
    assert ev.exceptions_used is not None
    use = ev.exceptions_used.entries[0]
    if waived:
        assert f.status is Status.WAIVED and use.state == "active" and use.applied == 1
        assert use.days_left == (expires - TODAY).days
        notice = "expires today" if expires == TODAY else "expires in 1 day(s)"
        assert any(n.startswith(notice) for n in use.notes)
    else:
        assert f.status is Status.FAIL and f.waiver is None and f.original_status is None
        assert f"EX-001 expired on {expires}: it no longer waives this finding" in f.notes
        assert use.state == "expired" and "1 finding(s) in its scope are no longer waived" in use.notes[0]


@pytest.mark.parametrize(
    ("approved", "waived"),
    [(TODAY, True), (TODAY + timedelta(days=1), False)],
    ids=["approved-today", "approved-after-as-of"],
)
def test_an_exception_starts_on_its_approval_day(tmp_path: Path, approved: date, waived: bool) -> None:
    # Re-evaluating as of an earlier audit date: an exception approved later was not in effect then.
    path = write(tmp_path, entry(approved_on=approved))
    register = load_exceptions(path, today=TODAY + timedelta(days=5))
    ev = evaluate(
        [target(vms=[good_vm("db-1")])],
        default_profile(),
        checks=[fixed("11.3.3", "vm:db-1", Status.FAIL)],
        exceptions=register,
        as_of=TODAY,
    )
    f = finding(ev, "11.3.3", "vm:db-1")
    assert (f.status is Status.WAIVED) is waived
    if not waived:
        assert (
            f"EX-001 is approved from {approved}, after the evaluation date {TODAY}: not in effect" in f.notes
        )


def test_an_expiring_exception_is_noted_in_the_register_use(tmp_path: Path) -> None:
    path = write(tmp_path, entry(expires_on=TODAY + timedelta(days=30)), entry(id="EX-2", measure="11.3.1"))
    ev = run(path, [fixed("11.3.3", "vm:db-1", Status.FAIL), fixed("11.3.1", HOST, Status.FAIL, "t.2")])
    assert ev.exceptions_used is not None
    assert "EX-001: expires in 30 day(s), on 2026-07-01" in ev.exceptions_used.notes
    assert not any(n.startswith("EX-2: expires") for n in ev.exceptions_used.notes)


# -- applying: scope ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "subject", "waived"),
    [
        ({"target": "*", "subject": "vm:db-*"}, "vm:db-1", True),
        ({"target": "*", "subject": "vm:db-*"}, "vm:web-1", False),
        ({"target": "*", "subject": "vm:db-?"}, "vm:db-10", False),
        ({"target": "*", "subject": "vm:db-[0-9]*"}, "vm:db-10", True),
        ({"subject": "host"}, "host", True),
        ({"subject": "host"}, "vm:db-1", False),
        ({"subject": "*"}, "host", True),
        ({"target": "qemu:///*"}, "vm:db-1", True),
        ({"target": "qemu+ssh://*"}, "vm:db-1", False),
        ({"target": "HV1"}, "vm:db-1", True),  # the collected host name, case-insensitively
        ({"target": "hv1.example.org"}, "vm:db-1", False),
        ({"subject": "vm:DB-1"}, "vm:db-1", False),  # VM names are case-sensitive
        ({"subject": "vm:*", "check": "t.check"}, "vm:db-1", True),
        ({"subject": "vm:*", "check": "kvm.*"}, "vm:db-1", False),
    ],
)
def test_scope_globs(tmp_path: Path, scope: dict[str, str], subject: str, waived: bool) -> None:
    path = write(tmp_path, entry(scope=scope))
    ev = run(path, [fixed("11.3.3", subject, Status.FAIL)])
    f = finding(ev, "11.3.3", subject)
    assert (f.status is Status.WAIVED) is waived
    assert ev.exceptions_used is not None
    assert ev.exceptions_used.entries[0].matched == (1 if waived else 0)


def test_the_measure_must_match_too(tmp_path: Path) -> None:
    path = write(tmp_path, entry(measure="11.3.1", scope={"subject": "*"}))
    ev = run(path, [fixed("11.3.3", "vm:db-1", Status.FAIL)])
    assert finding(ev, "11.3.3", "vm:db-1").status is Status.FAIL


def test_an_entry_matching_nothing_is_a_stale_register_note(tmp_path: Path) -> None:
    path = write(tmp_path, entry(scope={"target": "hv-old-*", "subject": "host"}))
    ev = run(path, [fixed("11.3.3", HOST, Status.FAIL)])
    assert finding(ev, "11.3.3").status is Status.FAIL
    assert ev.exceptions_used is not None
    (note,) = ev.exceptions_used.notes
    assert note.startswith("EX-001: matched no finding in this evaluation") and "stale" in note
    assert ev.register_notes == [f"exceptions {note}"]


def test_with_two_active_entries_the_first_is_recorded_and_the_other_named(tmp_path: Path) -> None:
    path = write(tmp_path, entry(id="EX-A"), entry(id="EX-B"))
    ev = run(path, [fixed("11.3.3", "vm:db-1", Status.FAIL)])
    f = finding(ev, "11.3.3", "vm:db-1")
    assert f.waiver is not None and f.waiver["id"] == "EX-A"
    assert "also covered by EX-B" in f.notes


def test_a_per_vm_waiver_leaves_the_other_vms_failing(tmp_path: Path) -> None:
    vms = [good_vm("db-1", vcpu=good_vm().vcpu), good_vm("web-1")]

    def fn(ctx: CheckContext) -> Iterable[Finding]:
        return ctx.each_vm(
            lambda vm: [ctx.failed(vm_subject(vm), "too many vCPUs", {"vcpu": 8}, "virsh setvcpus")]
        )

    path = write(tmp_path, entry())
    ev = run(path, [Check("t.vms", "11.3.3", (), fn, "")], vms=vms)
    assert finding(ev, "11.3.3", "vm:db-1").status is Status.WAIVED
    assert finding(ev, "11.3.3", "vm:web-1").status is Status.FAIL
    assert ev.by_measure["11.3.3"] is Status.FAIL  # roll-up: fail outranks waived
