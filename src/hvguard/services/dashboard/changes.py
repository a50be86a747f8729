"""What changed per target between two runs, read from the per-target summaries stored with each scan
(schema 2) — no facts, no findings — so comparing two runs of a 1,000-host estate takes a moment, not
the minute a full ``hvguard diff`` of every fact takes. The dashboard shows this for estate-wide
comparisons and links each changed target to its full diff."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from hvguard.history.schema import target_summaries
from hvguard.history.store import HistoryStore


@dataclass(frozen=True)
class TargetChange:
    """One target whose verdict or measure statuses differ between the two runs."""

    target: str
    old_verdict: str | None
    """None: the target is not in the older run."""
    new_verdict: str | None
    """None: the target is not in the newer run."""
    measures: tuple[tuple[str, str | None, str | None], ...]
    """(measure, old status, new status) of each measure whose worst status changed."""

    def to_json(self) -> dict[str, Any]:
        """The change in ``/api/v1/diff/targets``."""
        return {
            "target": self.target,
            "old_verdict": self.old_verdict,
            "new_verdict": self.new_verdict,
            "measures": [{"measure": m, "old": o, "new": n} for m, o, n in self.measures],
        }


def target_changes(store: HistoryStore, old_id: int, new_id: int) -> tuple[list[TargetChange], int]:
    """The targets that changed between scans ``old_id`` and ``new_id`` (sorted by target) and how many
    targets of both runs did not change."""
    ts = target_summaries
    with store.reading("compare two runs") as conn:
        if conn is None:
            return [], 0
        rows = conn.execute(
            select(ts.c.scan_id, ts.c.target, ts.c.verdict, ts.c.by_measure).where(
                ts.c.scan_id.in_([old_id, new_id])
            )
        ).all()
    old: dict[str, tuple[str, dict[str, str]]] = {}
    new: dict[str, tuple[str, dict[str, str]]] = {}
    for scan_id, target, verdict, by_measure in rows:
        # One scan may be compared with itself: it is then both sides.
        if scan_id == old_id:
            old[target] = (verdict, dict(by_measure))
        if scan_id == new_id:
            new[target] = (verdict, dict(by_measure))
    changes = []
    same = 0
    for target in sorted(old.keys() | new.keys()):
        before, after = old.get(target), new.get(target)
        b_measures, a_measures = (before or ("", {}))[1], (after or ("", {}))[1]
        moved = tuple(
            (m, b_measures.get(m), a_measures.get(m))
            for m in sorted(b_measures.keys() | a_measures.keys(), key=_measure_order)
            if b_measures.get(m) != a_measures.get(m)
        )
        if before is not None and after is not None and before[0] == after[0] and not moved:
            same += 1
            continue
        changes.append(
            TargetChange(target, before[0] if before else None, after[0] if after else None, moved)
        )
    return changes, same


def _measure_order(measure: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in measure.split("."))
