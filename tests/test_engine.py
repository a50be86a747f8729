"""The engine: statuses, roll-up order, modality, the manual fallback and defective checks."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import msgspec

from factories import target
from hvguard.catalog import load_catalog
from hvguard.checks.base import HOST, Check, CheckContext
from hvguard.engine import evaluate
from hvguard.findings import Finding, Status, worst
from hvguard.profile import default_profile, load_profile


def _check(measure: str, status: Status, cid: str = "t") -> Check:
    def fn(ctx: CheckContext) -> Iterable[Finding]:
        if status is Status.FAIL:
            yield ctx.failed(HOST, "bad", {"x": 1}, "fix it")
        elif status is Status.PASS:
            yield ctx.passed(HOST, "good")
        elif status is Status.WARN:
            yield ctx.warned(HOST, "meh", None, None)
        else:
            yield ctx.error(HOST, "thing", "host.cpu")

    return Check(id=cid, measure=measure, reads=(), fn=fn, doc="")


def test_roll_up_is_worst_first() -> None:
    order = [Status.ERROR, Status.FAIL, Status.WARN, Status.MANUAL, Status.WAIVED, Status.PASS]
    for i, s in enumerate(order):
        assert worst([*order[i:], Status.NOT_APPLICABLE]) is s
    assert worst([]) is Status.NOT_APPLICABLE


def test_every_measure_appears_and_unchecked_ones_are_manual_with_evidence() -> None:
    ev = evaluate([target()], default_profile(), checks=[_check("11.3.3", Status.PASS)])
    assert list(ev.by_measure) == list(load_catalog().ids)
    assert ev.by_measure["11.3.3"] is Status.PASS
    manual = [f for f in ev.findings if f.measure == "11.4.5"]
    assert len(manual) == 1 and manual[0].status is Status.MANUAL
    assert "Evidence needed:" in manual[0].message and "directory" in manual[0].message
    assert ev.exit_code("fail") == 0 and ev.exit_code("warn") == 0


def test_fail_and_error_drive_exit_codes() -> None:
    ev = evaluate([target()], default_profile(), checks=[_check("11.3.3", Status.FAIL)])
    assert ev.by_measure["11.3.3"] is Status.FAIL
    assert ev.exit_code("fail") == 1 and ev.exit_code("never") == 0
    ev = evaluate([target()], default_profile(), checks=[_check("11.3.3", Status.ERROR)])
    assert ev.exit_code("fail") == 1
    ev = evaluate([target()], default_profile(), checks=[_check("11.3.3", Status.WARN)])
    assert ev.exit_code("fail") == 0 and ev.exit_code("warn") == 1


def test_should_measure_fails_as_warn_and_keeps_the_original() -> None:
    ev = evaluate([target()], default_profile(), checks=[_check("11.4.7", Status.FAIL)])
    f = next(f for f in ev.findings if f.measure == "11.4.7")
    assert f.status is Status.WARN and f.original_status is Status.FAIL
    assert any("should" in n for n in f.notes)


def test_profile_advisory_tailoring_turns_fail_into_warn_and_is_listed(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("advisory: ['11.3.3']\n")
    prof = load_profile(p)
    assert prof.tailored and any("11.3.3" in d for d in prof.deviations)
    ev = evaluate([target()], prof, checks=[_check("11.3.3", Status.FAIL)])
    assert ev.by_measure["11.3.3"] is Status.WARN


def test_a_check_that_raises_becomes_an_error_finding() -> None:
    def boom(ctx: CheckContext) -> Iterable[Finding]:
        raise ZeroDivisionError("x")

    ev = evaluate([target()], default_profile(), checks=[Check("boom", "11.1.1", (), boom, "")])
    f = next(f for f in ev.findings if f.measure == "11.1.1")
    assert f.status is Status.ERROR and "ZeroDivisionError" in f.message


def test_unreachable_target_is_an_error_on_every_measure() -> None:
    t = msgspec.structs.replace(target(with_hypervisor=False), unreachable="connection refused")
    ev = evaluate([t], default_profile(), checks=[_check("11.3.3", Status.PASS)])
    assert set(ev.by_measure.values()) == {Status.ERROR}
    assert all("connection refused" in f.message for f in ev.findings)


def test_error_finding_carries_the_collection_problem() -> None:
    from hvguard.facts import Problem

    t = target(problems=[Problem(area="host.cpu", source="/proc/cpuinfo", message="unreadable")])
    ev = evaluate([t], default_profile(), checks=[_check("11.3.3", Status.ERROR)])
    f = next(f for f in ev.findings if f.measure == "11.3.3")
    assert "/proc/cpuinfo: unreadable" in f.message


def test_checks_of_another_platform_are_not_applicable_and_the_measure_needs_evidence() -> None:
    """A vSphere target is not judged by the KVM/libvirt checks: each says so (not_applicable, naming
    both platforms). Its own (vSphere) checks judge every measure; without vSphere facts each of them is
    an error, never a silent N/A, pass or manual."""
    esxi = msgspec.structs.replace(target(), id="vsphere://esx1", platform="vmware-esxi")
    ev = evaluate([esxi], default_profile())
    assert set(ev.by_measure.values()) == {Status.ERROR}
    skipped = [f for f in ev.findings if f.status is Status.NOT_APPLICABLE]
    assert skipped, "the libvirt checks should report that they do not apply"
    for f in skipped:
        assert f.message.endswith("targets, not to vmware-esxi")
        assert f.evidence["platform"] == "vmware-esxi" and "kvm-libvirt" in f.evidence["check_platforms"]
    assert not [f for f in ev.findings if f.check == "engine.manual"]
    errors = [f for f in ev.findings if f.status is Status.ERROR]
    assert {f.measure for f in errors} == set(ev.by_measure) and all(f.check.startswith("vsphere.") for f in errors)


def test_a_linux_host_target_is_judged_by_the_libvirt_checks() -> None:
    """``linux-host`` (no hypervisor answer) stays in the libvirt family: its VM measures are errors."""
    host_only = msgspec.structs.replace(target(with_hypervisor=False), platform="linux-host")
    ev = evaluate([host_only], default_profile())
    gated = [f for f in ev.findings if f.status is Status.NOT_APPLICABLE and "targets, not to" in f.message]
    assert gated and all(f.check.startswith("vsphere.") for f in gated)
    assert ev.by_measure["11.3.3"] is Status.ERROR
