"""The HTML report's estate verdict follows its targets' verdicts (one rule: engine.target_verdict)."""

from __future__ import annotations

import msgspec

from factories import good_vm, target
from hvguard.engine import evaluate
from hvguard.findings import Verdict
from hvguard.profile import default_profile
from hvguard.report.build import report_view
from hvguard.report.html_parts import estate_verdict
from hvguard.report.model import Report


def _report(*verdicts: Verdict) -> Report:
    targets_in = [target([good_vm()], tid=f"qemu+ssh://h{i}/system") for i in range(len(verdicts))]
    ev = evaluate(targets_in, default_profile())
    rep = report_view(ev).report
    targets = [msgspec.structs.replace(t, verdict=v) for t, v in zip(rep.targets, verdicts, strict=True)]
    return msgspec.structs.replace(rep, targets=targets)


def test_one_non_compliant_target_makes_the_estate_non_compliant() -> None:
    rep = _report(Verdict.COMPLIANT, Verdict.NOT_ASSESSED, Verdict.NOT_COMPLIANT)
    assert estate_verdict(rep) == "not_compliant"


def test_an_unassessed_target_beside_compliant_ones_leaves_the_estate_unassessed() -> None:
    assert estate_verdict(_report(Verdict.COMPLIANT, Verdict.NOT_ASSESSED)) == "not_assessed"


def test_compliant_targets_make_a_compliant_estate_whatever_advisory_measures_say() -> None:
    rep = _report(Verdict.COMPLIANT, Verdict.COMPLIANT)
    assert estate_verdict(rep) == "compliant"
    # the same evaluation's own verdicts agree with the per-target rule
    ev = evaluate([target([good_vm()])], default_profile())
    own = report_view(ev).report
    assert estate_verdict(own) == str(own.targets[0].verdict)
