"""SS-009 11.4.7 decided from a gold configuration: ``hvguard scan --baseline FILE``.

Without a baseline 11.4.7 stays ``manual`` (the check in :mod:`hvguard.checks.s11_4.gold_config`). With
one, the drift of each target is computed once from the collected facts (pure, no I/O) and a check bound to
those reports replaces the manual one: ``pass`` when the target matches, ``fail`` per drifted subject
(the engine reports it as ``warn``: 11.4.7 is a "should"), ``error`` when a governed subject could not
be read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from hvguard.baseline.drift import HOST, DriftReport, target_drift
from hvguard.baseline.schema import LoadedBaseline
from hvguard.baseline.vsphere import top_subject
from hvguard.checks.base import Check, CheckContext
from hvguard.checks.registry import registered_checks
from hvguard.facts import TargetFacts
from hvguard.findings import Finding

MANUAL_CHECK_ID = "host.gold-configuration"
CHECK_ID = "host.gold-configuration-drift"
_EVIDENCE_ITEMS = 50


def _findings(ctx: CheckContext, report: DriftReport, loaded: LoadedBaseline) -> Iterator[Finding]:
    source = loaded.source
    for e in report.errors:
        f = ctx.error(e.subject, f"the gold configuration {source} ({e.message})")
        f.evidence = {"baseline": source, "reason": e.message}
        yield f
    by_subject: dict[str, list[dict[str, Any]]] = {}
    for item in report.items:
        by_subject.setdefault(item.subject, []).append(item.to_json())
    for subject, items in by_subject.items():
        paths = ", ".join(i["path"] for i in items[:5]) + (" …" if len(items) > 5 else "")
        target = ctx.target.id
        if ctx.target.vsphere is not None:  # no API remediation yet: the plan and a PowerCLI script
            fix = (
                f"hvguard remediate {target} --baseline {source}    # review the plan\n"
                f"hvguard remediate {target} --baseline {source} --emit-powercli fix.ps1"
            )
        else:
            fix = (
                f"hvguard remediate {target} --baseline {source}    # review the plan\n"
                f"hvguard remediate {target} --baseline {source} --apply"
                + (
                    f"\nhvguard remediate {target} --baseline {source} --emit-ansible host.yml"
                    if subject == HOST
                    else ""
                )
            )
        yield ctx.failed(
            subject,
            f"{len(items)} setting(s) drifted from the gold configuration {source}: {paths}",
            {"baseline": source, "drift": items[:_EVIDENCE_ITEMS], "drift_count": len(items)},
            fix,
        )
    if report.items or report.errors:
        return
    top = top_subject(ctx.target) if ctx.target.vsphere is not None else HOST
    if not report.governed and not report.host_checked:
        yield ctx.manual(
            top,
            f"the gold configuration {source} governs nothing on this target (no VM class matches and no "
            "host settings): show the baseline that applies to it",
            {"baseline": source, "ungoverned_vms": report.ungoverned[:_EVIDENCE_ITEMS]},
        )
        return
    yield ctx.passed(
        top,
        f"matches the gold configuration {source}: {len(report.governed)} VM(s) governed"
        + (", host settings checked" if report.host_checked else ""),
        {
            "baseline": source,
            "governed": dict(sorted(report.governed.items())),
            "ungoverned_vms": report.ungoverned[:_EVIDENCE_ITEMS],
            "warnings": report.warnings,
        },
    )


def checks_with_baseline(loaded: LoadedBaseline, targets: Sequence[TargetFacts]) -> list[Check]:
    """Every registered check, with 11.4.7's manual check replaced by one bound to ``loaded``'s drift."""
    reports = {t.id: target_drift(loaded.baseline, t, loaded.source) for t in targets}

    def gold_configuration_drift(ctx: CheckContext) -> Iterator[Finding]:
        """The target matches its gold configuration (hvguard baseline) — advisory measure."""
        report = reports.get(ctx.target.id)
        if report is None:  # pragma: no cover - every evaluated target was given here
            report = target_drift(loaded.baseline, ctx.target, loaded.source)
        yield from _findings(ctx, report, loaded)

    bound = Check(
        id=CHECK_ID,
        measure="11.4.7",
        reads=(
            "host.qemu_conf",
            "host.libvirtd_conf",
            "hypervisor.vms[]",
            "vsphere.hosts[]",
            "vsphere.vms[]",
        ),
        fn=gold_configuration_drift,
        doc=(gold_configuration_drift.__doc__ or "").strip(),
    )
    return [bound if c.id == MANUAL_CHECK_ID else c for c in registered_checks()]
