"""Per-target verdicts in words, shared by the human formats (terminal table, Markdown).

A target's verdict (``targets[].verdict``, ``summary.by_target``) is decided by the engine
(:func:`hvguard.engine.target_verdict`); this module only says it: an upper-case label (never colour
alone) and one line of why — the blocking measures of a non-compliant target, the cause of a target that
could not be assessed, what a compliant target still leaves to review.
"""

from __future__ import annotations

from collections import Counter

from hvguard.findings import Status, Verdict
from hvguard.report.model import GroupSummary, Report, Result, Target, TargetSummary

__all__ = [
    "BLOCKING_SHOWN",
    "VERDICT_LABEL",
    "assessed_results",
    "group_counts",
    "verdict_counts",
    "verdict_detail",
]

#: Upper-case label per verdict.
VERDICT_LABEL: dict[Verdict, str] = {
    Verdict.COMPLIANT: "COMPLIANT",
    Verdict.NOT_COMPLIANT: "NOT COMPLIANT",
    Verdict.NOT_ASSESSED: "NOT ASSESSED",
}
#: Blocking measures named in a target's line before "+N more".
BLOCKING_SHOWN = 8
#: Statuses a compliant target can still have that someone should look at.
_TO_REVIEW = (Status.WARN, Status.MANUAL)


def assessed_results(report: Report) -> list[Result]:
    """The findings the per-measure views show: those of the assessed targets, as ``summary.by_measure``
    rolls them up. A target that was not assessed has one ``error`` per measure saying only that it could
    not be collected; its verdict line says that once (all findings when no target was assessed)."""
    skipped = {t.id for t in report.targets if t.verdict is Verdict.NOT_ASSESSED}
    if not skipped or len(skipped) == len(report.targets):
        return report.results
    return [r for r in report.results if r.target not in skipped]


def verdict_counts(report: Report) -> str:
    """``"1 compliant, 1 not compliant, 1 not assessed"`` (verdicts that occur, worst first)."""
    seen = Counter(t.verdict for t in report.targets)
    order = (Verdict.NOT_ASSESSED, Verdict.NOT_COMPLIANT, Verdict.COMPLIANT)
    return ", ".join(f"{seen[v]} {VERDICT_LABEL[v].lower()}" for v in order if seen[v])


def group_counts(group: GroupSummary) -> str:
    """``"3 target(s): 1 not assessed, 1 not compliant, 1 compliant"`` for one inventory group."""
    seen = (
        (group.not_assessed, Verdict.NOT_ASSESSED),
        (group.not_compliant, Verdict.NOT_COMPLIANT),
        (group.compliant, Verdict.COMPLIANT),
    )
    counts = ", ".join(f"{n} {VERDICT_LABEL[v].lower()}" for n, v in seen if n)
    return f"{group.targets} target(s): {counts}"


def verdict_detail(target: Target, summary: TargetSummary) -> str:
    """Why ``target`` got its verdict, in one line."""
    if target.verdict is Verdict.NOT_ASSESSED:
        return f"nothing could be collected (every measure error, not rolled up): {target.unreachable}"
    if target.verdict is Verdict.NOT_COMPLIANT:
        blocking = summary.blocking_measures
        named = ", ".join(blocking[:BLOCKING_SHOWN])
        more = f" (+{len(blocking) - BLOCKING_SHOWN} more)" if len(blocking) > BLOCKING_SHOWN else ""
        return f"{len(blocking)} binding measure(s) with fail or error: {named}{more}"
    review = ", ".join(f"{summary.by_status[s]} {s.value}" for s in _TO_REVIEW if summary.by_status.get(s))
    return "no binding measure fails" + (f"; to review: {review}" if review else "")
