"""The engine: run every check over every target, apply the profile, attestations and exceptions; roll up.

Order of work per target: an unreachable target (nothing of it could be collected) gets an ``error``
per measure (check ``engine.unreachable``: never silently skipped) and is *not assessed*; otherwise
every registered check runs (a check that
raises becomes an ``error`` finding, never a crash); a measure left without findings reports ``manual``
with the evidence the catalog names; a measure whose thresholds the profile loosened is evaluated again
with the default thresholds, and every finding that passes (or only warns) because of the loosening
says so. Modality is applied to both runs — a "should" measure, or one the profile tailors to advisory,
reports ``warn`` where it would ``fail``.

Then, over all findings and as of one calendar date: attestations turn covered ``manual`` findings
into ``pass`` (or ``error`` when their evidence does not match), and active exceptions turn covered
``fail``/``warn`` findings into ``waived``. Attestations go first so an exception can never hide an
attestation's evidence error (errors are not waivable).

Roll-ups: each measure takes the worst status of its findings on the assessed targets, so one
unreachable host does not turn every measure of an estate into ``error`` (when no target could be
assessed at all, the unreachable targets' errors are the roll-up: nothing was evaluated, which is never
a pass or N/A). Each target gets a verdict (:func:`target_verdict`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

import msgspec

from hvguard.catalog import Catalog, Measure, load_catalog
from hvguard.checks.base import HOST, Check, CheckContext
from hvguard.checks.registry import registered_checks
from hvguard.facts import TargetFacts
from hvguard.findings import Finding, Status, Verdict, severity, worst
from hvguard.profile import Profile, default_profile
from hvguard.workflow.dates import local_today

if TYPE_CHECKING:
    from hvguard.collect.bundle import BundleSource
    from hvguard.workflow.attestations import AttestationSet
    from hvguard.workflow.exceptions import ExceptionRegister
    from hvguard.workflow.usage import SourceUse

#: The check id of the ``error`` findings of a target of which nothing could be collected.
UNREACHABLE_CHECK = "engine.unreachable"
#: The statuses that make a target ``not_compliant`` when a binding measure has them (after waivers).
NOT_COMPLIANT_STATUSES = frozenset({Status.FAIL, Status.ERROR})

FAIL_ON_LEVELS: dict[str, frozenset[Status]] = {
    "fail": frozenset({Status.FAIL, Status.ERROR}),
    "warn": frozenset({Status.FAIL, Status.ERROR, Status.WARN}),
    "never": frozenset(),
}


class TargetVerdict(msgspec.Struct, frozen=True):
    """One target's verdict and the counts behind it."""

    verdict: Verdict
    """``compliant``, ``not_compliant`` or ``not_assessed`` (:func:`target_verdict`)."""
    by_status: dict[str, int]
    """The target's findings per status, every status in roll-up order (a target that was not assessed
    has one ``error`` per measure)."""
    blocking: tuple[str, ...]
    """The binding measures (catalog order) with a ``fail`` or ``error`` finding: why it is not compliant."""


class GroupRollup(msgspec.Struct, frozen=True):
    """One inventory group's roll-up: its targets' verdicts and each measure's worst status on them."""

    targets: int
    compliant: int
    not_compliant: int
    not_assessed: int
    by_measure: dict[str, Status]
    """Every catalog measure → the worst status of its findings on the group's assessed targets (on all
    of them when none was assessed), the rule of the estate-wide roll-up."""


class Evaluation(msgspec.Struct, frozen=True):
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
    """The evidence bundle the facts were read from when exactly one was (``hvguard evaluate``); None for
    a live scan and for an estate of several bundles (see ``bundles``)."""
    bundles: tuple[BundleSource, ...] = ()
    """Every evidence bundle the facts were read from, in order (``hvguard evaluate``); empty for a scan."""
    verdicts: dict[str, TargetVerdict] = msgspec.field(default_factory=dict)
    """Each target's verdict, by target id, in target order."""

    @property
    def not_assessed(self) -> int:
        """How many targets could not be assessed (nothing of them could be collected)."""
        return sum(v.verdict is Verdict.NOT_ASSESSED for v in self.verdicts.values())

    def exit_code(self, fail_on: str) -> int:
        """0 when no finding is at or above ``fail_on``; 1 otherwise (the CLI contract). A target that
        could not be assessed is 1 too, unless ``fail_on`` is ``never``: an estate of which part was
        not looked at never passes silently."""
        levels = FAIL_ON_LEVELS[fail_on]
        if levels and self.not_assessed:
            return 1
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


def run_check(chk: Check, target: TargetFacts, profile: Profile) -> list[Finding]:
    """The findings one check gives for ``target`` under ``profile``, exactly as :func:`evaluate` runs
    it (a check that raises gives an internal-error finding)."""
    return _run_check(chk, CheckContext(target, profile, chk.measure, chk.id))


def baseline_profile(profile: Profile) -> Profile | None:
    """The profile with the packaged default thresholds that :func:`evaluate` also runs the checks of a
    loosened measure with (to note what the loosening changed); None when nothing is loosened."""
    if any(d.kind == "threshold" and d.direction != "tightened" for d in profile.deviation_details):
        return msgspec.structs.replace(profile, thresholds=default_profile().thresholds)
    return None


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
                check=UNREACHABLE_CHECK,
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


def binding_measures(catalog: Catalog, profile: Profile) -> frozenset[str]:
    """The measures a target must meet to be compliant: SS-009's "must" and "conditional" measures,
    less those the profile tailors to advisory (and plus those it sets to "must") — exactly the measures
    whose ``fail`` the engine does not turn into ``warn``."""
    return frozenset(m.id for m in catalog.measures if not profile.is_advisory(m.id, m.modality))


def target_verdict(
    target: TargetFacts, findings: Sequence[Finding], binding: frozenset[str], order: Sequence[str]
) -> TargetVerdict:
    """The verdict of one target from its own findings (after attestations and waivers).

    ``not_assessed`` when nothing of it could be collected; ``not_compliant`` when a binding measure
    (:func:`binding_measures`) has a ``fail`` or ``error`` finding — a waived finding no longer counts,
    an error does (compliance was not shown); otherwise ``compliant``. ``warn`` (an advisory measure
    not met), ``manual`` (evidence still to be attested), ``waived``, ``pass`` and ``not_applicable``
    leave a target compliant; its counts say how many of each it has.
    """
    counts = Counter(f.status for f in findings)
    by_status = {s.value: counts.get(s, 0) for s in Status}
    if target.unreachable is not None:
        return TargetVerdict(Verdict.NOT_ASSESSED, by_status, ())
    hit = {f.measure for f in findings if f.measure in binding and f.status in NOT_COMPLIANT_STATUSES}
    blocking = tuple(m for m in order if m in hit)
    return TargetVerdict(Verdict.NOT_COMPLIANT if blocking else Verdict.COMPLIANT, by_status, blocking)


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
    baseline = baseline_profile(profile)
    findings: list[Finding] = []
    for target in targets:
        findings.extend(_evaluate_target(target, profile, cat, grouped, baseline))
    names = _target_names(targets)
    groups = {t.id: t.groups for t in targets if t.groups}
    attestations_used = exceptions_used = None
    # The registers' modules (and their YAML reader) load only when a register is given: the guard hook
    # without one never imports them.
    if attestations:
        from hvguard.workflow.attestations import apply_attestations

        attestations_used = apply_attestations(findings, attestations, day, names, groups)
    if exceptions:
        from hvguard.workflow.exceptions import apply_exceptions

        exceptions_used = apply_exceptions(findings, exceptions, day, names, groups)
    assessed = {t.id for t in targets if t.unreachable is None}
    per_measure: dict[str, list[Status]] = {m: [] for m in cat.ids}
    per_target: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        per_target[f.target].append(f)
        if f.target in assessed or not assessed:
            per_measure[f.measure].append(f.status)
    binding = binding_measures(cat, profile)
    verdicts = {t.id: target_verdict(t, per_target[t.id], binding, cat.ids) for t in targets}
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
        verdicts=verdicts,
    )


def group_rollups(ev: Evaluation) -> dict[str, GroupRollup]:
    """Each inventory group of ``ev``'s targets (sorted by name) → its :class:`GroupRollup`; ``{}`` when
    no target has a group."""
    members: dict[str, list[TargetFacts]] = defaultdict(list)
    for t in ev.targets:
        for g in t.groups:
            members[g].append(t)
    if not members:
        return {}
    grouped_ids = {t.id for ts in members.values() for t in ts}
    # Each grouped target's worst status per measure, once: groups then combine targets, not findings.
    per_target: dict[str, dict[str, Status]] = {tid: {} for tid in grouped_ids}
    for f in ev.findings:
        seen = per_target.get(f.target)
        if seen is None:
            continue
        old = seen.get(f.measure)
        if old is None or severity(f.status) > severity(old):
            seen[f.measure] = f.status
    out: dict[str, GroupRollup] = {}
    for group in sorted(members):
        targets = members[group]
        verdicts = Counter(ev.verdicts[t.id].verdict for t in targets)
        assessed = [t for t in targets if t.unreachable is None] or targets
        by_measure = {
            m: worst([per_target[t.id][m] for t in assessed if m in per_target[t.id]]) for m in ev.catalog.ids
        }
        out[group] = GroupRollup(
            targets=len(targets),
            compliant=verdicts[Verdict.COMPLIANT],
            not_compliant=verdicts[Verdict.NOT_COMPLIANT],
            not_assessed=verdicts[Verdict.NOT_ASSESSED],
            by_measure=by_measure,
        )
    return out
