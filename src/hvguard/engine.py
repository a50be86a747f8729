"""The engine: run every check over every target, apply the profile, and roll up.

Order of work per target: an unreachable target gets an ``error`` per measure; otherwise every
registered check runs (a check that raises becomes an ``error`` finding, never a crash); a measure left
without findings reports ``manual`` with the evidence the catalog names; then modality is applied — a
"should" measure, or one the profile tailors to advisory, reports ``warn`` where it would ``fail``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from hvguard.catalog import Catalog, load_catalog
from hvguard.checks.base import HOST, Check, CheckContext, registered_checks
from hvguard.facts import TargetFacts
from hvguard.findings import Finding, Status, worst
from hvguard.profile import Profile

FAIL_ON_LEVELS: dict[str, frozenset[Status]] = {
    "fail": frozenset({Status.FAIL, Status.ERROR}),
    "warn": frozenset({Status.FAIL, Status.ERROR, Status.WARN}),
    "never": frozenset(),
}


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one evaluation: every finding, and the roll-ups the reports show."""

    catalog: Catalog
    profile: Profile
    targets: tuple[TargetFacts, ...]
    findings: tuple[Finding, ...]
    by_measure: dict[str, Status]
    by_status: dict[str, int]

    def exit_code(self, fail_on: str) -> int:
        """0 when no finding is at or above ``fail_on``; 1 otherwise (the CLI contract)."""
        levels = FAIL_ON_LEVELS[fail_on]
        return 1 if any(f.status in levels for f in self.findings) else 0


def _run_check(chk: Check, ctx: CheckContext) -> list[Finding]:
    try:
        return list(chk.fn(ctx))
    except Exception as exc:  # a defective check must not hide the other 35 measures
        return [
            Finding(
                measure=chk.measure,
                status=Status.ERROR,
                subject=HOST,
                message=f"internal error in check {chk.id}: {type(exc).__name__}: {exc}",
                target=ctx.target.id,
                check=chk.id,
            )
        ]


def _evaluate_target(
    target: TargetFacts, profile: Profile, catalog: Catalog, by_measure: dict[str, list[Check]]
) -> list[Finding]:
    if target.unreachable is not None:
        return [
            Finding(
                measure=m.id,
                status=Status.ERROR,
                subject=HOST,
                message=f"target could not be collected: {target.unreachable}",
                target=target.id,
                check="engine.unreachable",
            )
            for m in catalog.measures
        ]
    out: list[Finding] = []
    for measure in catalog.measures:
        checks = by_measure.get(measure.id, [])
        found: list[Finding] = []
        for chk in checks:
            found.extend(_run_check(chk, CheckContext(target, profile, measure.id, chk.id)))
        if not found:
            lead = (
                "No automated check decides this measure on this platform."
                if not checks
                else "The automated checks found nothing to decide on."
            )
            found.append(
                Finding(
                    measure=measure.id,
                    status=Status.MANUAL,
                    subject=HOST,
                    message=f"{lead} Evidence needed: {measure.manual_evidence}",
                    target=target.id,
                    check="engine.manual",
                    method="attestation",
                )
            )
        advisory = measure.modality == "should" or measure.id in profile.advisory
        if advisory:
            why = (
                "advisory (should)" if measure.modality == "should" else "tailored to advisory by the profile"
            )
            for f in found:
                if f.status is Status.FAIL:
                    f.original_status = Status.FAIL
                    f.status = Status.WARN
                    f.notes = [*f.notes, f"reported as warn: measure {measure.id} is {why}"]
        out.extend(found)
    return out


def evaluate(
    targets: Sequence[TargetFacts],
    profile: Profile,
    *,
    catalog: Catalog | None = None,
    checks: Sequence[Check] | None = None,
) -> Evaluation:
    """Evaluate ``targets`` against every measure of the catalog with the given profile."""
    cat = catalog or load_catalog()
    grouped: dict[str, list[Check]] = defaultdict(list)
    for chk in checks if checks is not None else registered_checks():
        grouped[chk.measure].append(chk)
    findings: list[Finding] = []
    for target in targets:
        findings.extend(_evaluate_target(target, profile, cat, grouped))
    per_measure: dict[str, list[Status]] = {m: [] for m in cat.ids}
    for f in findings:
        per_measure[f.measure].append(f.status)
    counts = Counter(f.status.value for f in findings)
    return Evaluation(
        catalog=cat,
        profile=profile,
        targets=tuple(targets),
        findings=tuple(findings),
        by_measure={m: worst(s) for m, s in per_measure.items()},
        by_status={s.value: counts.get(s.value, 0) for s in Status},
    )
