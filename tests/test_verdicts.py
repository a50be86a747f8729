"""Per-target verdicts (compliant | not_compliant | not_assessed) and the roll-up over assessed targets.

The rule under test (engine.target_verdict): a target is not_compliant when a binding measure — must or
conditional, as the profile tailors it — has a fail or error finding after waivers; warn, manual, waived,
pass and not_applicable leave it compliant; a target of which nothing was collected is not_assessed,
its measures are not rolled up, and the run's exit code is 1 unless --fail-on never.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

import msgspec
import pytest
import yaml

from factories import target
from hvguard.catalog import load_catalog
from hvguard.checks.base import HOST, Check, CheckContext
from hvguard.engine import Evaluation, evaluate
from hvguard.facts import TargetFacts
from hvguard.findings import Finding, Status, Verdict
from hvguard.profile import default_profile, load_profile
from hvguard.report import renderer
from hvguard.report.build import report_dict
from hvguard.workflow.exceptions import load_exceptions

TODAY = date(2026, 6, 1)
CATALOG = load_catalog()
MUST = "11.3.3"  # catalog modality must
SHOULD = "11.4.7"  # catalog modality should
assert CATALOG.measure(MUST).modality == "must" and CATALOG.measure(SHOULD).modality == "should"


def fixed(measure: str, status: Status, tid: str | None = None) -> Check:
    """A check that yields one host finding of ``status`` (only on target ``tid`` when given)."""

    def fn(ctx: CheckContext) -> Iterable[Finding]:
        if tid is not None and ctx.target.id != tid:
            yield ctx.passed(HOST, "good")
        elif status is Status.FAIL:
            yield ctx.failed(HOST, "bad", {"fact": 42}, "fix it")
        elif status is Status.WARN:
            yield ctx.warned(HOST, "meh", {"fact": 1}, None)
        elif status is Status.PASS:
            yield ctx.passed(HOST, "good")
        elif status is Status.MANUAL:
            yield ctx.manual(HOST, "Evidence needed: a record.")
        else:
            yield ctx.error(HOST, "a thing", "host.cpu")

    return Check(id=f"t.{measure}", measure=measure, reads=(), fn=fn, doc="")


def unreachable(tid: str = "qemu+tcp://hv9/system") -> TargetFacts:
    """A target of which nothing could be collected."""
    return msgspec.structs.replace(
        target(tid=tid), host=None, hypervisor=None, unreachable="connection refused"
    )


def verdict(ev: Evaluation, tid: str = "qemu:///system") -> Verdict:
    return ev.verdicts[tid].verdict


@pytest.mark.parametrize(
    ("measure", "status", "expected"),
    [
        (MUST, Status.FAIL, Verdict.NOT_COMPLIANT),
        (MUST, Status.ERROR, Verdict.NOT_COMPLIANT),
        (SHOULD, Status.ERROR, Verdict.COMPLIANT),  # an advisory measure never decides compliance
        (SHOULD, Status.FAIL, Verdict.COMPLIANT),  # reported as warn
        (MUST, Status.WARN, Verdict.COMPLIANT),
        (MUST, Status.MANUAL, Verdict.COMPLIANT),
        (MUST, Status.PASS, Verdict.COMPLIANT),
    ],
)
def test_the_verdict_rule_follows_modality(measure: str, status: Status, expected: Verdict) -> None:
    ev = evaluate([target()], default_profile(), checks=[fixed(measure, status)])
    assert verdict(ev) is expected
    blocking = ev.verdicts["qemu:///system"].blocking
    assert blocking == ((measure,) if expected is Verdict.NOT_COMPLIANT else ())


def test_profile_tailoring_moves_a_measure_in_and_out_of_the_verdict(tmp_path: Path) -> None:
    advisory = tmp_path / "advisory.yaml"
    advisory.write_text(f"advisory: ['{MUST}']\n")
    ev = evaluate([target()], load_profile(advisory), checks=[fixed(MUST, Status.FAIL)])
    assert verdict(ev) is Verdict.COMPLIANT  # the fail is a warn under this profile
    must = tmp_path / "must.yaml"
    must.write_text(f"modality: {{'{SHOULD}': must}}\n")
    ev = evaluate([target()], load_profile(must), checks=[fixed(SHOULD, Status.FAIL)])
    assert verdict(ev) is Verdict.NOT_COMPLIANT and ev.verdicts["qemu:///system"].blocking == (SHOULD,)


def test_a_waived_fail_no_longer_counts_but_an_expired_waiver_does(tmp_path: Path) -> None:
    def register(expires: date) -> Path:
        path = tmp_path / f"ex-{expires}.yaml"
        entry = {
            "id": "EX-1",
            "measure": MUST,
            "scope": {"target": "*", "subject": "host"},
            "justification": "Until the upgrade.",
            "risk_owner": "Head of Platform",
            "approved_by": "CISO",
            "approved_on": date(2026, 1, 10),
            "expires_on": expires,
            "risk_rating": "medium",
        }
        path.write_text(yaml.safe_dump({"exceptions": [entry]}, sort_keys=False))
        return path

    cases = ((date(2027, 1, 1), Verdict.COMPLIANT), (date(2026, 5, 1), Verdict.NOT_COMPLIANT))
    for expires, expected in cases:
        reg = load_exceptions(register(expires), today=TODAY)
        ev = evaluate(
            [target()], default_profile(), checks=[fixed(MUST, Status.FAIL)], exceptions=reg, as_of=TODAY
        )
        assert verdict(ev) is expected, expires


def test_an_unreachable_target_is_not_assessed_and_not_rolled_up() -> None:
    checks = [fixed(MUST, Status.PASS), fixed("11.3.1", Status.FAIL)]
    alone = evaluate([target()], default_profile(), checks=checks)
    ev = evaluate([target(), unreachable()], default_profile(), checks=checks)
    assert verdict(ev, "qemu+tcp://hv9/system") is Verdict.NOT_ASSESSED and ev.not_assessed == 1
    # The reachable target's verdict and every measure's roll-up are those of the reachable target alone.
    assert ev.by_measure == alone.by_measure and ev.by_measure[MUST] is Status.PASS
    assert ev.verdicts["qemu:///system"] == alone.verdicts["qemu:///system"]
    # The unreachable target is never silently skipped: one error per measure, kept in the results.
    errors = [f for f in ev.findings if f.target == "qemu+tcp://hv9/system"]
    assert len(errors) == len(CATALOG.ids) and {f.status for f in errors} == {Status.ERROR}
    assert ev.verdicts["qemu+tcp://hv9/system"].by_status["error"] == len(CATALOG.ids)


def test_not_assessed_targets_make_the_exit_code_1_unless_fail_on_never() -> None:
    ev = evaluate([target(), unreachable()], default_profile(), checks=[fixed(MUST, Status.PASS)])
    assert ev.exit_code("fail") == 1 and ev.exit_code("warn") == 1 and ev.exit_code("never") == 0
    ok = evaluate([target()], default_profile(), checks=[fixed(MUST, Status.PASS)])
    assert ok.exit_code("fail") == 0


def test_when_nothing_was_assessed_every_measure_is_an_error_never_a_pass() -> None:
    ev = evaluate([unreachable("a://x"), unreachable("b://y")], default_profile())
    assert set(ev.by_measure.values()) == {Status.ERROR} and list(ev.by_measure) == list(CATALOG.ids)
    assert ev.not_assessed == 2


def test_the_json_report_carries_verdicts_after_the_existing_keys() -> None:
    checks = [fixed(MUST, Status.FAIL, tid="qemu:///system")]
    other = target(tid="qemu+ssh://hv2/system")
    ev = evaluate([target(), other, unreachable()], default_profile(), checks=checks)
    rep = report_dict(ev)
    assert [t["verdict"] for t in rep["targets"]] == ["not_compliant", "compliant", "not_assessed"]
    assert list(rep["targets"][0])[-2:] == ["verdict", "groups"]  # additive: after every existing key
    assert list(rep["summary"]) == ["by_status", "by_measure", "by_target", "not_assessed", "by_group"]
    by_target = rep["summary"]["by_target"]
    assert list(by_target) == ["qemu:///system", "qemu+ssh://hv2/system", "qemu+tcp://hv9/system"]
    first = by_target["qemu:///system"]
    assert first["verdict"] == "not_compliant" and first["blocking_measures"] == [MUST]
    assert list(first["by_status"]) == [s.value for s in Status] and first["by_status"]["fail"] == 1
    assert by_target["qemu+ssh://hv2/system"] == {
        "verdict": "compliant",
        "by_status": ev.verdicts["qemu+ssh://hv2/system"].by_status,
        "blocking_measures": [],
    }
    assert rep["summary"]["not_assessed"] == 1
    assert len(rep["summary"]["by_measure"]) == 36
    assert rep["summary"]["by_measure"][MUST] == "fail"  # not the unreachable target's error


def test_the_terminal_and_markdown_show_a_verdict_line_per_target() -> None:
    checks = [fixed(MUST, Status.FAIL, tid="qemu:///system")]
    ev = evaluate(
        [target(), target(tid="qemu+ssh://hv2/system"), unreachable()], default_profile(), checks=checks
    )
    text = renderer("table")(ev)
    block = text[text.index("\nTargets: ") :]
    assert block.splitlines()[1] == (
        "Targets: 1 not assessed, 1 not compliant, 1 compliant — measures roll up the assessed targets only"
    )
    assert f"NOT COMPLIANT  qemu:///system: 1 binding measure(s) with fail or error: {MUST}" in block
    assert "COMPLIANT      qemu+ssh://hv2/system: no binding measure fails; to review:" in block
    assert "NOT ASSESSED   qemu+tcp://hv9/system: nothing could be collected" in block
    assert "connection refused" in block
    # The measure tables and the attention list roll up the assessed targets only.
    attention = text[text.index("Findings that need attention") : text.index("\nTargets: ")]
    assert "hv9" not in attention
    md = renderer("markdown")(ev)
    assert "- **Target** qemu:///system — **NOT COMPLIANT** (1 binding measure(s)" in md
    assert "- **Target** qemu+tcp://hv9/system — **NOT ASSESSED** (nothing could be collected" in md
    assert "- **Targets** (3): 1 not assessed, 1 not compliant, 1 compliant" in md
    top = md[md.index("## Top failures") :]
    assert "hv9" not in top and MUST in top
