"""Retention: ``hvguard history prune --keep-days N`` removes scans older than N days so the history
does not grow for ever — but never the latest scan of a target (the estate views would lose that target)
unless asked to (``--include-latest``).

Scans go a batch per transaction (each scan whole or not at all), child tables first (SQLite enforces
no foreign keys unless asked, so the ``ON DELETE CASCADE`` of the schema is not relied on). On SQLite
the freed pages are reused by later scans; the file itself shrinks only by ``VACUUM``, which rewrites
the whole database (time grows with its size, it needs as much free disk again and blocks writers
meanwhile), so it runs only when the free pages make up at least :data:`VACUUM_SHARE` of the file.
PostgreSQL's autovacuum reclaims the space by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select

from hvguard.history.records import as_utc, iso
from hvguard.history.schema import findings, register_entries, scan_targets, scans, target_summaries

if TYPE_CHECKING:
    from hvguard.history.store import HistoryStore

#: Run VACUUM after a prune when free pages are at least this share of a SQLite file.
VACUUM_SHARE = 0.25
#: Scan ids per DELETE statement (well under every driver's parameter limit).
CHUNK = 500
#: Targets' rows (facts, findings, summary) removed per transaction: one 1,000-host scan, or many small.
TARGETS_PER_TRANSACTION = 500


@dataclass(frozen=True)
class PrunedScan:
    """A scan that a prune removes."""

    id: int
    created_at: datetime
    targets: tuple[str, ...]

    def line(self, verb: str) -> str:
        """``removed scan 12 (2025-01-31T12:00:00Z, 3 targets)``."""
        n = len(self.targets)
        return f"{verb} scan {self.id} ({iso(self.created_at)}, {n} target{'s' if n != 1 else ''})"


@dataclass(frozen=True)
class PrunePlan:
    """What a prune removes and what it keeps because it is some target's latest scan."""

    cutoff: datetime
    remove: tuple[PrunedScan, ...]
    kept_latest: tuple[int, ...]
    """Scans older than the cutoff kept because they are a target's latest (without --include-latest)."""


def plan_prune(store: HistoryStore, *, keep_days: int, now: datetime, include_latest: bool) -> PrunePlan:
    """The scans older than ``keep_days`` days before ``now`` that a prune removes."""
    cutoff = now - timedelta(days=keep_days)
    latest_query = select(func.max(scan_targets.c.scan_id)).group_by(scan_targets.c.target)
    with store.reading("plan the prune") as conn:
        if conn is None:
            return PrunePlan(cutoff, (), ())
        old = conn.execute(
            select(scans.c.id, scans.c.created_at, scans.c.targets)
            .where(scans.c.created_at < cutoff)
            .order_by(scans.c.id)
        ).all()
        latest = {int(i) for (i,) in conn.execute(latest_query)} if old else set()
    remove, kept = [], []
    for scan_id, created, targets in old:
        if scan_id in latest and not include_latest:
            kept.append(int(scan_id))
        else:
            remove.append(PrunedScan(int(scan_id), as_utc(created), tuple(targets)))
    return PrunePlan(cutoff, tuple(remove), tuple(kept))


def execute_prune(store: HistoryStore, plan: PrunePlan) -> None:
    """Delete the planned scans and everything stored with them, oldest first, a batch of scans per
    transaction (about :data:`TARGETS_PER_TRANSACTION` targets' rows each): a scan is removed whole or
    not at all, and a scan being stored meanwhile waits for one batch, not for the whole prune (SQLite
    writers queue on a 5 s busy timeout)."""
    batch: list[int] = []
    weight = 0
    for scan in plan.remove:
        batch.append(scan.id)
        weight += max(1, len(scan.targets))
        if weight >= TARGETS_PER_TRANSACTION or len(batch) >= CHUNK:
            _delete(store, batch)
            batch, weight = [], 0
    if batch:
        _delete(store, batch)


def _delete(store: HistoryStore, ids: list[int]) -> None:
    with store.writing("prune the history") as conn:
        for table in (findings, scan_targets, target_summaries, register_entries):
            conn.execute(delete(table).where(table.c.scan_id.in_(ids)))
        conn.execute(delete(scans).where(scans.c.id.in_(ids)))


def reclaim_space(store: HistoryStore) -> tuple[int, int] | None:
    """On SQLite, ``VACUUM`` when the free pages are at least :data:`VACUUM_SHARE` of the file: the file
    size before and after; None when not run (PostgreSQL, or too little to reclaim)."""
    return store.vacuum_sqlite(min_free_share=VACUUM_SHARE)
