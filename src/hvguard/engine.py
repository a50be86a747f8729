"""The engine: run every check over every target, apply the profile, attestations and exceptions; roll up.

Order of work per target: an unreachable target gets an ``error`` per measure; otherwise every
registered check runs (a check that raises becomes an ``error`` finding, never a crash); a measure left
without findings reports ``manual`` with the evidence the catalog names; a measure whose thresholds
the profile loosened is evaluated again with the default thresholds, and every finding that passes (or
only warns) because of the loosening says so. Modality is applied to both runs — a "should" measure, or
one the profile tailors to advisory, reports ``warn`` where it would ``fail``.

Then, over all findings and as of one calendar date: attestations turn covered ``manual`` findings
into ``pass`` (or ``error`` when their evidence does not match), and active exceptions turn covered
``fail``/``warn`` findings into ``waived``. Attestations go first so an exception can never hide an
attestation's evidence error (errors are not waivable).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING

from hvguard.catalog import Catalog, Measure, load_catalog
from hvguard.checks.base import HOST, Check, CheckContext
from hvguard.checks.registry import registered_checks
from hvguard.facts import TargetFacts
from hvguard.findings import Finding, Status, severity, worst
from hvguard.profile import Profile, default_profile
from hvguard.workflow.attestations import AttestationSet, apply_attestations
from hvguard.workflow.dates import local_today
from hvguard.workflow.exceptions import ExceptionRegister, apply_exceptions
from hvguard.workflow.usage import SourceUse

if TYPE_CHECKING:
    from hvguard.collect.bundle import BundleSource

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
    as_of: date | None = None
    """The calendar date exceptions and attestations were judged on (local today unless given)."""
    exceptions_used: SourceUse | None = None
    """The exceptions register applied, with each entry's state and use; None without one."""
    attestations_used: SourceUse | None = None
    """The attestations file applied, with each entry's state and use; None without one."""
    bundle: BundleSource | None = None
    """The evidence bundle the facts were read from (``hvguard evaluate``); None for a live scan."""

    def exit_code(self, fail_on: str) -> int:
        """0 when no finding is at or above ``fail_on``; 1 otherwise (the CLI contract)."""
        levels = FAIL_ON_LEVELS[fail_on]
        return 1 if any(f.status in levels for f in self.findings) else 0

    @property
    def register_notes(self) -> list[str]:
        """Notes on the register entries (stale, expired, expiring soon …), exceptions first."""
        return [
            f"{use.kind} {note}"
            for use in (self.exceptions_used, self.attestations_used)
            if use is not None
            for note in use.notes
        ]


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


def _run_measure(target: TargetFacts, profile: Profile, measure: str, checks: list[Check]) -> list[Finding]:
    """The findings of ``measure``'s checks that apply to the target's platform. Only when none applies
    does each check say, as a ``not_applicable`` finding, that it is written for another platform (the
    engine then asks for evidence); a measure judged by its platform's own checks does not carry every
    other platform's checks as noise."""
    applicable = [chk for chk in checks if chk.applies_to(target.platform)]
    if not applicable:
        return [_other_platform(target, measure, chk) for chk in checks]
    found: list[Finding] = []
    for chk in applicable:
        found.extend(_run_check(chk, CheckContext(target, profile, measure, chk.id)))
    return found


def _other_platform(target: TargetFacts, measure: str, chk: Check) -> Finding:
    """The ``not_applicable`` finding of a check written for another platform than the target's."""
    return Finding(
        measure=measure,
        status=Status.NOT_APPLICABLE,
        subject=HOST,
        message=f"check {chk.id} applies to {', '.join(chk.platforms)} targets, not to {target.platform}",
        evidence={"platform": target.platform, "check_platforms": list(chk.platforms)},
        target=target.id,
        check=chk.id,
    )


def _keyed(findings: list[Finding]) -> dict[tuple[str, str, int], Finding]:
    """Findings keyed by (check, subject, n-th of that pair), to pair two runs of the same checks."""
    seen: Counter[tuple[str, str]] = Counter()
    out = {}
    for f in findings:
        pair = (f.check, f.subject)
        out[(*pair, seen[pair])] = f
        seen[pair] += 1
    return out


def _note_loosened(found: list[Finding], baseline: list[Finding], profile: Profile, measure: str) -> None:
    """Mark each finding that is better than the default thresholds make it (never a silent pass)."""
    loosened = profile.loosened(measure)
    what = "; ".join(d.text for d in loosened)
    base = _keyed(baseline)
    for key, f in _keyed(found).items():
        b = base.get(key)
        if b is None or b.status not in (Status.FAIL, Status.WARN):
            continue
        if severity(f.status) >= severity(b.status):
            continue
        f.untailored_status = b.status
        f.notes = [
            *f.notes,
            f"{f.status.value} only because the profile ({profile.source}) loosened {what}; with the "
            f"default thresholds this is {b.status.value}: {b.message}",
        ]


def _evaluate_target(
    target: TargetFacts,
    profile: Profile,
    catalog: Catalog,
    by_measure: dict[str, list[Check]],
    baseline: Profile | None,
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
        found = _run_measure(target, profile, measure.id, checks)
        applicable = [c for c in checks if c.applies_to(target.platform)]
        if not applicable or not found:
            # No check of this platform decides the measure: it needs evidence, never a silent N/A.
            found.append(_manual(target, measure, bool(applicable)))
        _apply_modality(found, measure, profile)
        if baseline is not None and checks and profile.loosened(measure.id):
            untailored = _run_measure(target, baseline, measure.id, checks)
            _apply_modality(untailored, measure, profile)
            _note_loosened(found, untailored, profile, measure.id)
        out.extend(found)
    return out


def _manual(target: TargetFacts, measure: Measure, has_checks: bool) -> Finding:
    lead = (
        "The automated checks found nothing to decide on."
        if has_checks
        else "No automated check decides this measure on this platform."
    )
    return Finding(
        measure=measure.id,
        status=Status.MANUAL,
        subject=HOST,
        message=f"{lead} Evidence needed: {measure.manual_evidence}",
        target=target.id,
        check="engine.manual",
        method="attestation",
    )


def _apply_modality(found: list[Finding], measure: Measure, profile: Profile) -> None:
    if not profile.is_advisory(measure.id, measure.modality):
        return
    if measure.id in profile.modality:
        why = "set to should by the profile"
    elif measure.modality == "should":
        why = "advisory (should)"
    else:
        why = "tailored to advisory by the profile"
    for f in found:
        if f.status is Status.FAIL:
            f.original_status = Status.FAIL
            f.status = Status.WARN
            f.notes = [*f.notes, f"reported as warn: measure {measure.id} is {why}"]


def _target_names(targets: Sequence[TargetFacts]) -> dict[str, frozenset[str]]:
    """Other names a register scope may use for each target: the host names collected from it."""
    out: dict[str, frozenset[str]] = {}
    for t in targets:
        names = {t.host.hostname if t.host else None, t.hypervisor.hostname if t.hypervisor else None}
        out[t.id] = frozenset(n for n in names if n)
    return out


def evaluate(
    targets: Sequence[TargetFacts],
    profile: Profile,
    *,
    catalog: Catalog | None = None,
    checks: Sequence[Check] | None = None,
    exceptions: ExceptionRegister | None = None,
    attestations: AttestationSet | None = None,
    as_of: date | None = None,
) -> Evaluation:
    """Evaluate ``targets`` against every measure of the catalog with the given profile, then apply
    ``attestations`` and ``exceptions`` as of ``as_of`` (default: today in local time)."""
    cat = catalog or load_catalog()
    day = as_of or local_today()
    grouped: dict[str, list[Check]] = defaultdict(list)
    for chk in checks if checks is not None else registered_checks():
        grouped[chk.measure].append(chk)
    baseline = None
    if any(d.kind == "threshold" and d.direction != "tightened" for d in profile.deviation_details):
        baseline = replace(profile, thresholds=default_profile().thresholds)
    findings: list[Finding] = []
    for target in targets:
        findings.extend(_evaluate_target(target, profile, cat, grouped, baseline))
    names = _target_names(targets)
    attestations_used = apply_attestations(findings, attestations, day, names) if attestations else None
    exceptions_used = apply_exceptions(findings, exceptions, day, names) if exceptions else None
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
        as_of=day,
        exceptions_used=exceptions_used,
        attestations_used=attestations_used,
    )
