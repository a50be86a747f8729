"""The estate views computed from the history tables every hvguard writes (findings and targets).

This is the :class:`~hvguard.services.dashboard.data.EstateSource` for a history database without
per-target summaries: each view aggregates the stored findings of the latest scans in SQL (one grouped
query, not one per target). Verdicts follow the engine's rule with the default profile's binding
measures; exceptions and attestations are not stored with their dates, so nothing is listed as
expiring.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select

from hvguard.catalog import load_catalog
from hvguard.engine import binding_measures
from hvguard.history.schema import findings, scan_targets, scans
from hvguard.history.store import HistoryStore
from hvguard.profile import default_profile
from hvguard.services.dashboard.data import ExpiringEntry, HostRow, TrendPoint, worst_status

_PROBLEMS = ("fail", "error")


class FindingsSource:
    """Estate views aggregated from the stored findings of ``store``."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store
        self._binding = sorted(binding_measures(load_catalog(), default_profile()))

    def _engine(self) -> Any:
        return getattr(self.store, "_engine", None)

    def latest(self, *, group: str | None = None) -> list[HostRow]:
        """Each target's latest scan (targets carry no groups here: a group selects none)."""
        engine = self._engine()
        if engine is None or group is not None:
            return []
        last = (
            select(scan_targets.c.target, func.max(scan_targets.c.scan_id).label("scan_id"))
            .group_by(scan_targets.c.target)
            .subquery()
        )
        on_last = and_(findings.c.scan_id == last.c.scan_id, findings.c.target == last.c.target)
        with engine.connect() as conn:
            heads = conn.execute(
                select(
                    scan_targets.c.target,
                    scan_targets.c.platform,
                    scan_targets.c.unreachable,
                    scan_targets.c.scan_id,
                    scans.c.created_at,
                )
                .join(
                    last,
                    and_(scan_targets.c.scan_id == last.c.scan_id, scan_targets.c.target == last.c.target),
                )
                .join(scans, scans.c.id == scan_targets.c.scan_id)
                .order_by(scan_targets.c.target)
            ).all()
            counted = conn.execute(
                select(findings.c.target, findings.c.measure, findings.c.status, func.count())
                .join(last, on_last)
                .group_by(findings.c.target, findings.c.measure, findings.c.status)
            ).all()
            vm_counts = dict(
                conn.execute(
                    select(findings.c.target, func.count(func.distinct(findings.c.subject)))
                    .join(last, on_last)
                    .where(findings.c.subject.like("vm:%"))
                    .group_by(findings.c.target)
                ).all()
            )
        statuses: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        by_status: dict[str, dict[str, int]] = defaultdict(dict)
        for target, measure, status, n in counted:
            statuses[target][measure].append(status)
            by_status[target][status] = by_status[target].get(status, 0) + int(n)
        out = []
        for target, platform, unreachable, scan_id, created_at in heads:
            by_measure = {m: worst_status(s) or "" for m, s in sorted(statuses[target].items())}
            out.append(
                HostRow(
                    target=target,
                    host_name="",
                    platform=platform,
                    groups=(),
                    verdict=self._verdict(unreachable, by_measure),
                    by_status=dict(sorted(by_status[target].items())),
                    by_measure=by_measure,
                    vms=int(vm_counts.get(target, 0)),
                    scan_id=int(scan_id),
                    scanned_at=_utc(created_at),
                )
            )
        return out

    def _verdict(self, unreachable: str | None, by_measure: dict[str, str]) -> str:
        if unreachable is not None:
            return "not_assessed"
        if any(by_measure.get(m) in _PROBLEMS for m in self._binding):
            return "not_compliant"
        return "compliant"

    def trend(self, *, days: int = 90) -> list[TrendPoint]:
        """Per day with scans in the last ``days`` days: verdicts of each target's latest scan that day."""
        engine = self._engine()
        if engine is None:
            return []
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    scan_targets.c.scan_id,
                    scan_targets.c.target,
                    scan_targets.c.unreachable,
                    scans.c.created_at,
                )
                .join(scans, scans.c.id == scan_targets.c.scan_id)
                .order_by(scan_targets.c.scan_id)
            ).all()
            bad = set(
                conn.execute(
                    select(findings.c.scan_id, findings.c.target)
                    .where(findings.c.status.in_(_PROBLEMS), findings.c.measure.in_(self._binding))
                    .group_by(findings.c.scan_id, findings.c.target)
                ).all()
            )
        start = (datetime.now(UTC) - timedelta(days=days)).date()
        verdict: dict[str, str] = {}
        by_day: dict[Any, dict[str, str]] = {}
        for scan_id, target, unreachable, created_at in rows:
            if unreachable is not None:
                verdict[target] = "not_assessed"
            else:
                verdict[target] = "not_compliant" if (scan_id, target) in bad else "compliant"
            day = _utc(created_at).date()
            if day >= start:
                by_day[day] = dict(verdict)
        return [
            TrendPoint(
                day=day,
                compliant=sum(v == "compliant" for v in seen.values()),
                not_compliant=sum(v == "not_compliant" for v in seen.values()),
                not_assessed=sum(v == "not_assessed" for v in seen.values()),
            )
            for day, seen in sorted(by_day.items())
        ]

    def expiring(self, *, within_days: int, now: datetime) -> list[ExpiringEntry]:
        """Nothing: these tables do not keep the dates of the exceptions and attestations used."""
        return []


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
