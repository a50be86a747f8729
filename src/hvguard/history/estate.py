"""The estate as the history store knows it: the latest verdict of every target, the trend of verdicts
over time, the per-measure matrix, the groups and the register entries about to expire.

Every view reads ``hvguard_target_summaries`` / ``hvguard_register_entries`` (schema 2), one small row
per scan and target written at save time, never the findings: the dashboard of a 1,000-host estate
must not re-aggregate hundreds of thousands of findings per page. Results are plain frozen dataclasses
(no database types) so the dashboard and the metrics renderer never touch SQLAlchemy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from hvguard.findings import Verdict
from hvguard.history.records import as_utc, iso
from hvguard.history.schema import register_entries, target_summaries

if TYPE_CHECKING:
    from hvguard.history.store import HistoryStore

#: The verdicts in the order the views count them.
VERDICTS: tuple[str, ...] = tuple(v.value for v in Verdict)


@dataclass(frozen=True)
class TargetSummary:
    """One target as one scan left it: its verdict and the counts behind it (no findings)."""

    scan_id: int
    created_at: datetime
    """When the scan was stored (aware, UTC)."""
    target: str
    """The target id (its URI), as in ``targets[].id`` of the report."""
    host_name: str | None
    """The host name collected from the target; None when nothing could be collected."""
    platform: str
    groups: tuple[str, ...]
    """The target's inventory groups, sorted; () when ungrouped."""
    verdict: str
    """``compliant``, ``not_compliant`` or ``not_assessed``."""
    blocking: tuple[str, ...]
    """The binding measures with a ``fail``/``error`` finding (why it is not compliant)."""
    by_status: dict[str, int]
    """The target's findings per status (every status)."""
    by_measure: dict[str, str]
    """Measure → the worst status of the target's findings on it."""
    finding_counts: dict[str, dict[str, int]]
    """Measure → status → number of findings (host and VMs together; statuses with 0 left out)."""
    vm_count: int

    def to_json(self) -> dict[str, Any]:
        """The summary as plain data (JSON API), every field, times as ``…Z``."""
        return {
            "scan_id": self.scan_id,
            "created_at": iso(self.created_at),
            "target": self.target,
            "host_name": self.host_name,
            "platform": self.platform,
            "groups": list(self.groups),
            "verdict": self.verdict,
            "blocking": list(self.blocking),
            "by_status": dict(self.by_status),
            "by_measure": dict(self.by_measure),
            "finding_counts": {m: dict(c) for m, c in self.finding_counts.items()},
            "vm_count": self.vm_count,
        }


@dataclass(frozen=True)
class TrendPoint:
    """One day of the estate trend: the verdicts of every target's latest scan as of the end of that
    day (UTC); targets first scanned later are not counted yet."""

    day: date
    compliant: int
    not_compliant: int
    not_assessed: int

    @property
    def targets(self) -> int:
        """Targets counted on that day."""
        return self.compliant + self.not_compliant + self.not_assessed

    def to_json(self) -> dict[str, Any]:
        """The point as plain data (JSON API)."""
        return {
            "day": self.day.isoformat(),
            "compliant": self.compliant,
            "not_compliant": self.not_compliant,
            "not_assessed": self.not_assessed,
        }


@dataclass(frozen=True)
class GroupCounts:
    """The verdicts of one group's targets."""

    targets: int = 0
    compliant: int = 0
    not_compliant: int = 0
    not_assessed: int = 0
    by_measure: dict[str, str] = field(default_factory=dict)
    """Measure → the worst status over the group's targets."""

    def to_json(self) -> dict[str, Any]:
        """The counts as plain data (the shape of the report's ``summary.by_group`` entries)."""
        return {
            "targets": self.targets,
            "compliant": self.compliant,
            "not_compliant": self.not_compliant,
            "not_assessed": self.not_assessed,
            "by_measure": dict(self.by_measure),
        }


@dataclass(frozen=True)
class RegisterEntry:
    """An exception or attestation as the latest scan that applied it recorded it."""

    kind: str
    """``exceptions`` or ``attestations``."""
    id: str
    measure: str
    valid_from: date
    valid_until: date
    days_left: int
    """Days from ``now`` to the last valid day (0 = expires today)."""
    scope: dict[str, Any]
    """The entry's scope as written in its register ({} when it was not recorded)."""
    source: str
    """The register file."""
    scan_id: int
    """The newest scan that applied the entry."""

    def to_json(self) -> dict[str, Any]:
        """The entry as plain data (JSON API)."""
        return {
            "kind": self.kind,
            "id": self.id,
            "measure": self.measure,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat(),
            "days_left": self.days_left,
            "scope": dict(self.scope),
            "source": self.source,
            "scan_id": self.scan_id,
        }


def estate_latest(store: HistoryStore, *, group: str | None = None) -> list[TargetSummary]:
    """The latest stored summary of every target (of ``group`` only, when given), sorted by target."""
    ts = target_summaries
    newest = select(ts.c.target, func.max(ts.c.scan_id).label("scan_id")).group_by(ts.c.target).subquery()
    query = (
        select(ts)
        .join(newest, (ts.c.target == newest.c.target) & (ts.c.scan_id == newest.c.scan_id))
        .order_by(ts.c.target)
    )
    with store.reading("read the estate") as conn:
        if conn is None:
            return []
        rows = conn.execute(query).mappings().all()
    out = [_summary(r) for r in rows]
    if group is not None:
        out = [s for s in out if group in s.groups]
    return out


def estate_state(store: HistoryStore) -> tuple[int, int]:
    """A token that changes whenever a summary is stored or pruned (newest scan id, number of summaries):
    what a cache of rendered views (``/metrics``) is keyed on. ``(0, 0)`` for an empty store."""
    ts = target_summaries
    with store.reading("read the estate state") as conn:
        if conn is None:
            return (0, 0)
        newest, count = conn.execute(select(func.max(ts.c.scan_id), func.count())).one()
    return (int(newest or 0), int(count or 0))


def estate_trend(store: HistoryStore, *, days: int = 90, now: datetime | None = None) -> list[TrendPoint]:
    """One point per UTC day of the last ``days`` days (today included, oldest first): the verdict
    counts of each target's latest scan as of the end of that day.

    Reads three small columns per stored summary since the window's start, plus each target's last
    summary before it (so a target scanned weekly still counts on the days between its scans).
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    ts = target_summaries
    before = (
        select(ts.c.target, func.max(ts.c.scan_id).label("scan_id"))
        .where(ts.c.created_at < start)
        .group_by(ts.c.target)
        .subquery()
    )
    with store.reading("read the estate trend") as conn:
        if conn is None:
            return [TrendPoint(first + timedelta(days=i), 0, 0, 0) for i in range(days)]
        carried = conn.execute(
            select(ts.c.target, ts.c.verdict).join(
                before, (ts.c.target == before.c.target) & (ts.c.scan_id == before.c.scan_id)
            )
        ).all()
        inside = conn.execute(
            select(ts.c.target, ts.c.created_at, ts.c.verdict)
            .where(ts.c.created_at >= start)
            .order_by(ts.c.scan_id)
        ).all()
    current: dict[str, str] = {target: verdict for target, verdict in carried}
    by_day: dict[date, list[tuple[str, str]]] = {}
    for target, created, verdict in inside:
        by_day.setdefault(as_utc(created).date(), []).append((target, verdict))
    points = []
    for i in range(days):
        day = first + timedelta(days=i)
        for target, verdict in by_day.get(day, ()):
            current[target] = verdict  # in scan order: the day's last scan wins
        counts = Counter(current.values())
        points.append(TrendPoint(day, *(counts.get(v, 0) for v in VERDICTS)))
    return points


def measure_matrix(rows: Iterable[TargetSummary]) -> dict[str, dict[str, str]]:
    """Target → measure → status (the heat map), in the order of ``rows``."""
    return {r.target: dict(r.by_measure) for r in rows}


def groups(rows: Iterable[TargetSummary]) -> dict[str, GroupCounts]:
    """Group → the verdicts of its targets (a target counts in each of its groups), sorted by group.
    Ungrouped targets are in no group."""
    from hvguard.findings import Status, worst

    members: dict[str, list[TargetSummary]] = {}
    for r in rows:
        for g in r.groups:
            members.setdefault(g, []).append(r)
    out = {}
    for g in sorted(members):
        targets = members[g]
        counts = Counter(t.verdict for t in targets)
        statuses: dict[str, list[Status]] = {}
        for t in targets:
            for m, s in t.by_measure.items():
                statuses.setdefault(m, []).append(Status(s))
        out[g] = GroupCounts(
            targets=len(targets),
            compliant=counts.get(Verdict.COMPLIANT.value, 0),
            not_compliant=counts.get(Verdict.NOT_COMPLIANT.value, 0),
            not_assessed=counts.get(Verdict.NOT_ASSESSED.value, 0),
            by_measure={m: worst(s).value for m, s in statuses.items()},
        )
    return out


def expiring(store: HistoryStore, *, within_days: int = 30, now: datetime) -> list[RegisterEntry]:
    """The exceptions and attestations, applied by the latest scan of some target, whose last valid day
    is within ``within_days`` days from ``now`` (today included; already expired ones are not listed),
    soonest first. An entry applied by several such scans is listed once, as the newest recorded it."""
    today = now.astimezone(UTC).date() if now.tzinfo else now.date()
    horizon = today + timedelta(days=within_days)
    ts, re_ = target_summaries, register_entries
    latest_scans = select(func.max(ts.c.scan_id)).group_by(ts.c.target)
    query = (
        select(re_)
        .where(
            re_.c.scan_id.in_(latest_scans),
            re_.c.valid_until >= today,
            re_.c.valid_until <= horizon,
        )
        .order_by(re_.c.scan_id.desc(), re_.c.id)
    )
    with store.reading("read the register entries") as conn:
        if conn is None:
            return []
        rows = conn.execute(query).mappings().all()
    seen: dict[tuple[str, str], RegisterEntry] = {}
    for r in rows:
        key = (r["kind"], r["entry_id"])
        if key in seen:
            continue
        until = _date(r["valid_until"])
        seen[key] = RegisterEntry(
            kind=r["kind"],
            id=r["entry_id"],
            measure=r["measure"],
            valid_from=_date(r["valid_from"]),
            valid_until=until,
            days_left=(until - today).days,
            scope=dict(r["scope"] or {}),
            source=r["source"],
            scan_id=int(r["scan_id"]),
        )
    return sorted(seen.values(), key=lambda e: (e.valid_until, e.kind, e.id))


def _date(value: Any) -> date:
    """A DATE column's value (SQLite may hand back a datetime or text)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _summary(r: Any) -> TargetSummary:
    return TargetSummary(
        scan_id=int(r["scan_id"]),
        created_at=as_utc(r["created_at"]),
        target=r["target"],
        host_name=r["host_name"],
        platform=r["platform"],
        groups=tuple(r["groups"]),
        verdict=r["verdict"],
        blocking=tuple(r["blocking"]),
        by_status=dict(r["by_status"]),
        by_measure=dict(r["by_measure"]),
        finding_counts={m: dict(c) for m, c in r["finding_counts"].items()},
        vm_count=int(r["vm_count"]),
    )
