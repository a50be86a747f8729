"""What the dashboard shows, read from the history store: plain dataclasses the pages and the JSON API
share, so both always say the same thing.

The estate views (latest scan per target, trend, groups, heat map, what expires) come from
:class:`EstateSource`; the drill-down (one scan of one target, its findings) and the diff of two runs
come from the history store itself (:meth:`HistoryStore.load`, :mod:`hvguard.history.compare`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from hvguard.findings import SEVERITY_ORDER, Status
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


@dataclass(frozen=True)
class HostRow:
    """One target as of its latest scan: the estate page's row and the API's target summary."""

    target: str
    host_name: str
    platform: str
    groups: tuple[str, ...]
    verdict: str
    """``compliant``, ``not_compliant`` or ``not_assessed``."""
    by_status: dict[str, int]
    """Findings per status."""
    by_measure: dict[str, str]
    """Measure → rolled-up (worst) status."""
    vms: int
    scan_id: int
    scanned_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The target in ``/api/v1/targets``."""
        return {
            "target": self.target,
            "host_name": self.host_name,
            "platform": self.platform,
            "groups": list(self.groups),
            "verdict": self.verdict,
            "by_status": dict(self.by_status),
            "by_measure": dict(self.by_measure),
            "vms": self.vms,
            "scan_id": self.scan_id,
            "scanned_at": iso(self.scanned_at),
        }


@dataclass(frozen=True)
class TrendPoint:
    """Verdict counts of the estate on one day (each target's latest scan as of that day)."""

    day: date
    compliant: int
    not_compliant: int
    not_assessed: int

    def to_json(self) -> dict[str, Any]:
        """The point in ``/api/v1/estate``."""
        return {
            "day": self.day.isoformat(),
            "compliant": self.compliant,
            "not_compliant": self.not_compliant,
            "not_assessed": self.not_assessed,
        }


@dataclass(frozen=True)
class ExpiringEntry:
    """An exception or attestation a stored scan used that expires soon."""

    id: str
    kind: str
    """``exception`` or ``attestation``."""
    measure: str
    until: date
    days_left: int
    scope: dict[str, Any] = field(default_factory=dict)
    targets: tuple[str, ...] = ()
    """The targets of the scans that used it."""

    def to_json(self) -> dict[str, Any]:
        """The entry in ``/api/v1/expiring``."""
        return {
            "id": self.id,
            "kind": self.kind,
            "measure": self.measure,
            "until": self.until.isoformat(),
            "days_left": self.days_left,
            "scope": self.scope,
            "targets": list(self.targets),
        }


class EstateSource(Protocol):
    """The estate read API the dashboard is built on (``hvguard.history.estate``)."""

    def latest(self, *, group: str | None = None) -> list[HostRow]:
        """Each target's latest scan, sorted by target (only targets in ``group`` when given)."""

    def trend(self, *, days: int = 90) -> list[TrendPoint]:
        """Per day over the last ``days`` days with scans: the verdict counts."""

    def expiring(self, *, within_days: int, now: datetime) -> list[ExpiringEntry]:
        """Exceptions and attestations used by the latest scans that expire within ``within_days``."""


def verdict_counts(rows: Sequence[HostRow]) -> dict[str, int]:
    """How many targets have each verdict (every verdict present, 0 when none)."""
    out = dict.fromkeys(VERDICTS, 0)
    for r in rows:
        out[r.verdict] = out.get(r.verdict, 0) + 1
    return out


def group_counts(rows: Sequence[HostRow]) -> dict[str, dict[str, int]]:
    """Per group: its targets and their verdict counts, groups sorted by name."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        for g in r.groups:
            counts = out.setdefault(g, {"targets": 0, **dict.fromkeys(VERDICTS, 0)})
            counts["targets"] += 1
            counts[r.verdict] += 1
    return dict(sorted(out.items()))


def measure_matrix(rows: Sequence[HostRow], measures: Sequence[str]) -> list[tuple[str, list[str]]]:
    """The heat map: per target, the status of each of ``measures`` ("" where it has none)."""
    return [(r.target, [r.by_measure.get(m, "") for m in measures]) for r in rows]


def measure_totals(rows: Sequence[HostRow], measures: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per measure: how many targets have each rolled-up status."""
    out: dict[str, dict[str, int]] = {m: {} for m in measures}
    for r in rows:
        for m, s in r.by_measure.items():
            if m in out:
                out[m][s] = out[m].get(s, 0) + 1
    return out


def is_problem(status: str) -> bool:
    """Whether a status needs someone's attention (fail or error)."""
    return status in (Status.FAIL.value, Status.ERROR.value)
