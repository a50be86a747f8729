"""What a stored scan looks like once read back: plain frozen dataclasses, no database types, so the
comparison and the renderers never import SQLAlchemy."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def iso(ts: datetime) -> str:
    """A UTC timestamp as ``2025-01-31T12:00:00Z``."""
    return ts.isoformat(timespec="seconds").replace("+00:00", "Z")


def as_utc(ts: datetime) -> datetime:
    """A stored timestamp, aware and in UTC (SQLite hands back naive datetimes: they were written as UTC)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


@dataclass(frozen=True)
class ScanSummary:
    """One row of ``hvguard history``: when, with what, over which targets, and how it came out."""

    id: int
    created_at: datetime
    """Aware, UTC."""
    tool_version: str
    command: str
    """``scan`` or ``evaluate``."""
    inputs: tuple[str, ...]
    """The TARGET arguments of ``scan`` or the bundle path of ``evaluate``, as given."""
    targets: tuple[str, ...]
    """The target ids evaluated, in report order."""
    profile_name: str
    profile_tailored: bool
    profile_deviations: tuple[str, ...]
    by_status: dict[str, int]
    """Findings per status: every target, or only the ``--target`` one when listing with it."""

    def to_json(self) -> dict[str, Any]:
        """The scan as it appears in ``hvguard history --format json`` and in diffs."""
        return {
            "id": self.id,
            "created_at": iso(self.created_at),
            "tool_version": self.tool_version,
            "command": self.command,
            "inputs": list(self.inputs),
            "targets": list(self.targets),
            "profile": {
                "name": self.profile_name,
                "tailored": self.profile_tailored,
                "deviations": list(self.profile_deviations),
            },
            "by_status": self.by_status,
        }


@dataclass(frozen=True)
class StoredFinding:
    """A finding as stored: enough to tell which status changed for which subject and why."""

    target: str
    subject: str
    measure: str
    check: str
    status: str
    original_status: str | None
    message: str
    remediation: str | None
    waiver_id: str | None
    evidence: dict[str, Any]


@dataclass(frozen=True)
class StoredTarget:
    """One target's stored facts, decoded to plain data (dicts, lists, scalars)."""

    target: str
    platform: str
    facts_version: int
    facts: dict[str, Any]


@dataclass(frozen=True)
class StoredScan:
    """A scan read back for comparison: its summary, the facts and findings of the chosen targets."""

    summary: ScanSummary
    targets: dict[str, StoredTarget] = field(default_factory=dict)
    findings: tuple[StoredFinding, ...] = ()
