"""Words and JSON for what the dashboard shows: the estate read API's records
(:mod:`hvguard.history.estate`) as the JSON API gives them, the labels the pages use (never colour
alone), and the small roll-ups both share, so pages and API always say the same thing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hvguard.findings import SEVERITY_ORDER
from hvguard.history.estate import GroupCounts, RegisterEntry, TargetSummary, TrendPoint
from hvguard.history.records import iso

#: The verdicts in the order pages list them, worst first.
VERDICTS: tuple[str, ...] = ("not_assessed", "not_compliant", "compliant")
#: Verdict labels in words (never colour alone).
VERDICT_TEXT = {"compliant": "Compliant", "not_compliant": "Not compliant", "not_assessed": "Not assessed"}
#: Status labels in words for the heat map and the findings tables.
STATUS_TEXT = {
    "pass": "pass",
    "fail": "FAIL",
    "warn": "warn",
    "manual": "manual",
    "not_applicable": "n/a",
    "error": "ERROR",
    "waived": "waived",
}
_RANK = {s.value: i for i, s in enumerate(SEVERITY_ORDER)}


def worst_status(statuses: Sequence[str]) -> str | None:
    """The worst of ``statuses`` (SS-009 roll-up order); None for none."""
    known = [s for s in statuses if s in _RANK]
    return min(known, key=_RANK.__getitem__) if known else None


def target_json(s: TargetSummary) -> dict[str, Any]:
    """A target's latest summary in the API."""
    return {
        "target": s.target,
        "host_name": s.host_name,
        "platform": s.platform,
        "groups": list(s.groups),
        "verdict": s.verdict,
        "blocking": list(s.blocking),
        "by_status": dict(s.by_status),
        "by_measure": dict(s.by_measure),
        "vms": s.vm_count,
        "scan_id": s.scan_id,
        "scanned_at": iso(s.created_at),
    }


def trend_json(p: TrendPoint) -> dict[str, Any]:
    """One day of the trend in the API."""
    return {
        "day": p.day.isoformat(),
        "compliant": p.compliant,
        "not_compliant": p.not_compliant,
        "not_assessed": p.not_assessed,
    }


def group_json(g: GroupCounts) -> dict[str, Any]:
    """One group's verdict counts in the API."""
    return {
        "targets": g.targets,
        "compliant": g.compliant,
        "not_compliant": g.not_compliant,
        "not_assessed": g.not_assessed,
        "by_measure": dict(g.by_measure),
    }


def register_json(e: RegisterEntry) -> dict[str, Any]:
    """An expiring exception or attestation in the API."""
    return {
        "kind": e.kind,
        "id": e.id,
        "measure": e.measure,
        "valid_from": e.valid_from.isoformat(),
        "valid_until": e.valid_until.isoformat(),
        "days_left": e.days_left,
        "scope": e.scope,
        "source": e.source,
        "scan_id": e.scan_id,
    }


def verdict_counts(rows: Sequence[TargetSummary]) -> dict[str, int]:
    """How many targets have each verdict (every verdict present, 0 when none)."""
    out = dict.fromkeys(VERDICTS, 0)
    for r in rows:
        out[r.verdict] = out.get(r.verdict, 0) + 1
    return out


def measure_totals(rows: Sequence[TargetSummary], measures: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per measure: how many targets have each rolled-up status."""
    out: dict[str, dict[str, int]] = {m: {} for m in measures}
    for r in rows:
        for m, s in r.by_measure.items():
            if m in out:
                out[m][s] = out[m].get(s, 0) + 1
    return out
