"""The dashboard's views as plain data: one function per page, shared by the HTML pages and the JSON
API. Unknown targets, VMs, groups and scans raise :class:`NotFound`; a malformed query raises
:class:`BadRequest`. No I/O beyond the history store; no HTML here."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hvguard.catalog import Catalog
from hvguard.history import estate as est
from hvguard.history.compare import ScanDiff, diff_scans
from hvguard.history.estate import RegisterEntry, TargetSummary
from hvguard.history.records import StoredFinding, StoredScan
from hvguard.history.store import HistoryError, HistoryStore
from hvguard.services.dashboard.changes import target_changes
from hvguard.services.dashboard.data import measure_totals, verdict_counts, worst_status

#: How many scans of a target its page lists.
TARGET_SCANS = 50
#: The window of the estate trend chart (days).
TREND_DAYS = 90
#: Up to how many targets an estate-wide comparison page also shows every status and fact change (the
#: per-target overview is always shown; one target's full diff is a link away).
FULL_DIFF_UP_TO = 20
#: The default and largest window of the expiring view (days).
EXPIRING_DAYS = 30
MAX_EXPIRING_DAYS = 3660


class NotFound(Exception):
    """Nothing by that name (a 404)."""


class BadRequest(Exception):
    """A query parameter that cannot be used (a 400)."""


@dataclass(frozen=True)
class Dashboard:
    """The store and the catalog the pages name measures from."""

    store: HistoryStore
    catalog: Catalog

    # --- estate -----------------------------------------------------------------------------------
    def estate(self) -> dict[str, Any]:
        """Verdict counts, the trend, the groups and every target's latest verdict."""
        rows = est.estate_latest(self.store)
        return {
            "counts": verdict_counts(rows),
            "trend": est.estate_trend(self.store, days=TREND_DAYS),
            "groups": est.groups(rows),
            "hosts": rows,
        }

    def group(self, name: str) -> dict[str, Any]:
        """The targets of one group (404 when no target is in it)."""
        rows = est.estate_latest(self.store, group=name)
        if not rows:
            raise NotFound(f"no target in group {name!r}")
        return {"group": name, "counts": verdict_counts(rows), "hosts": rows}

    def host(self, target: str) -> TargetSummary:
        """One target's latest summary (404 when the store has no scan of it)."""
        for row in est.estate_latest(self.store):
            if row.target == target:
                return row
        raise NotFound(f"no target {target!r} in the history")

    def target(self, target: str) -> dict[str, Any]:
        """A target's latest verdict, its measures (worst status and how many findings) and its scans."""
        row = self.host(target)
        scan = self._load(row.scan_id, target)
        per_measure: dict[str, list[StoredFinding]] = defaultdict(list)
        vms: dict[str, list[str]] = defaultdict(list)
        for f in scan.findings:
            per_measure[f.measure].append(f)
            if f.subject.startswith("vm:"):
                vms[f.subject[3:]].append(f.status)
        measures = [
            {
                "measure": m.id,
                "title": m.title,
                "status": worst_status([f.status for f in per_measure.get(m.id, [])]) or "",
                "findings": len(per_measure.get(m.id, [])),
            }
            for m in self.catalog.measures
        ]
        return {
            "host": row,
            "measures": measures,
            "vms": [{"name": n, "status": worst_status(s) or ""} for n, s in sorted(vms.items())],
            "host_findings": [f for f in scan.findings if not f.subject.startswith("vm:")],
            "scans": [s.to_json() for s in self.store.list_scans(target=target, limit=TARGET_SCANS)],
        }

    def vm(self, target: str, vm: str) -> dict[str, Any]:
        """One VM of a target's latest scan: every finding with its evidence and fix."""
        row = self.host(target)
        scan = self._load(row.scan_id, target)
        found = [f for f in scan.findings if f.subject == f"vm:{vm}"]
        if not found:
            raise NotFound(f"no VM {vm!r} in the latest scan of {target!r}")
        order = {m: i for i, m in enumerate(self.catalog.ids)}
        found.sort(key=lambda f: (order.get(f.measure, len(order)), f.check))
        return {
            "host": row,
            "vm": vm,
            "status": worst_status([f.status for f in found]) or "",
            "findings": found,
        }

    def _load(self, scan_id: int, target: str) -> StoredScan:
        try:
            return self.store.load(scan_id, targets=[target])
        except HistoryError as exc:
            raise NotFound(str(exc)) from None

    # --- measures, expiring, scans, diff ------------------------------------------------------------
    def measures(self) -> dict[str, Any]:
        """The heat map: every target × every measure, with per-measure totals."""
        rows = est.estate_latest(self.store)
        ids = list(self.catalog.ids)
        return {
            "measures": [{"measure": m.id, "title": m.title} for m in self.catalog.measures],
            "rows": [(r, [r.by_measure.get(m, "") for m in ids]) for r in rows],
            "totals": measure_totals(rows, ids),
        }

    def expiring(self, now: datetime, days: int = EXPIRING_DAYS) -> dict[str, Any]:
        """Exceptions and attestations the latest scans used that expire within ``days`` days of ``now``."""
        if not 0 <= days <= MAX_EXPIRING_DAYS:
            raise BadRequest(f"days must be between 0 and {MAX_EXPIRING_DAYS}")
        entries: list[RegisterEntry] = est.expiring(self.store, within_days=days, now=now)
        return {"days": days, "until": (now + timedelta(days=days)).date(), "entries": entries}

    def scans(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` scans."""
        if not 1 <= limit <= 1000:
            raise BadRequest("limit must be between 1 and 1000")
        return [s.to_json() for s in self.store.list_scans(limit=limit)]

    def diff_targets(self, old_ref: str, new_ref: str) -> dict[str, Any]:
        """Per target, what changed between two runs (verdict, measure statuses), from the stored
        summaries alone: fast for a whole estate."""
        old_id, new_id = self._resolve(old_ref), self._resolve(new_ref)
        changed, same = target_changes(self.store, old_id, new_id)
        return {
            "from": self._load_scan(old_id, []).summary,
            "to": self._load_scan(new_id, []).summary,
            "changed": changed,
            "unchanged": same,
        }

    def _resolve(self, ref: str) -> int:
        try:
            return self.store.resolve(ref)
        except HistoryError as exc:
            raise NotFound(str(exc)) from None

    def diff(self, old_ref: str, new_ref: str, target: str | None = None) -> ScanDiff:
        """What changed between two runs over the targets both cover (or ``target``)."""
        old_id, new_id = self._resolve(old_ref), self._resolve(new_ref)
        only = [target] if target else None
        before, after = self._load_scan(old_id, only), self._load_scan(new_id, only)
        if target:
            if target not in before.summary.targets or target not in after.summary.targets:
                raise NotFound(f"scans {old_id} and {new_id} do not both cover target {target!r}")
            common = [target]
        else:
            theirs = set(before.summary.targets)
            common = [t for t in dict.fromkeys(after.summary.targets) if t in theirs]
        return diff_scans(before, after, common)

    def _load_scan(self, scan_id: int, only: list[str] | None) -> StoredScan:
        try:
            return self.store.load(scan_id, targets=only)
        except HistoryError as exc:
            raise NotFound(str(exc)) from None


def finding_json(f: StoredFinding) -> dict[str, Any]:
    """A stored finding in the API (evidence and fix included)."""
    return {
        "measure": f.measure,
        "check": f.check,
        "subject": f.subject,
        "status": f.status,
        "original_status": f.original_status,
        "message": f.message,
        "remediation": f.remediation,
        "waiver_id": f.waiver_id,
        "evidence": f.evidence,
    }
