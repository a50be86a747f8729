"""The history tables (SQLAlchemy Core) and the schema version they make up.

A database records its schema version in ``hvguard_schema_version`` (one row per version applied), so
a later hvguard can migrate an older database and an older hvguard refuses a newer one instead of
misreading it. Bump :data:`SCHEMA_VERSION` and add a migration in ``migrate`` when a table changes.

Version 2 (the estate store) adds two tables written with every scan so the estate views (dashboard,
``/metrics``) read one small row per target instead of re-aggregating every finding:
``hvguard_target_summaries`` (per scan and target: verdict, counts, roll-ups) and
``hvguard_register_entries`` (the exceptions and attestations a scan applied, for the "expiring" view).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

#: The schema this hvguard writes and reads.
SCHEMA_VERSION = 2

metadata = MetaData()

schema_version = Table(
    "hvguard_schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
    Column("tool_version", String(64), nullable=False),
)

scans = Table(
    "hvguard_scans",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("tool_version", String(64), nullable=False),
    Column("command", String(32), nullable=False),
    # The TARGET arguments (scan) or the bundle path (evaluate), as given.
    Column("inputs", JSON, nullable=False),
    Column("targets", JSON, nullable=False),
    Column("catalog_version", String(32), nullable=False),
    Column("profile_name", Text, nullable=False),
    Column("profile_source", Text, nullable=False),
    Column("profile_tailored", Boolean, nullable=False),
    Column("profile_deviations", JSON, nullable=False),
    Column("by_status", JSON, nullable=False),
    Column("by_measure", JSON, nullable=False),
)

scan_targets = Table(
    "hvguard_scan_targets",
    metadata,
    Column("scan_id", Integer, ForeignKey("hvguard_scans.id", ondelete="CASCADE"), primary_key=True),
    Column("target", Text, primary_key=True),
    Column("platform", Text, nullable=False),
    Column("unreachable", Text),
    Column("facts_version", Integer, nullable=False),
    # The TargetFacts as JSON; "json+zlib" when compressed (large estates).
    Column("facts_encoding", String(16), nullable=False),
    Column("facts", LargeBinary, nullable=False),
    Column("facts_sha256", String(64), nullable=False),
    Index("ix_hvguard_scan_targets_target", "target"),
)

findings = Table(
    "hvguard_findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scan_id", Integer, ForeignKey("hvguard_scans.id", ondelete="CASCADE"), nullable=False),
    Column("target", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("measure", String(16), nullable=False),
    Column("check_id", Text, nullable=False),
    Column("method", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("original_status", String(16)),
    Column("message", Text, nullable=False),
    Column("remediation", Text),
    Column("waiver_id", Text),
    Column("attestation_id", Text),
    Column("evidence", JSON, nullable=False),
    Index("ix_hvguard_findings_scan_target", "scan_id", "target"),
)

#: Per scan and target, written at save time (schema 2): what the estate views show of a target without
#: reading its findings. ``created_at`` repeats the scan's time so "latest per target" and the trend need
#: no join.
target_summaries = Table(
    "hvguard_target_summaries",
    metadata,
    Column("scan_id", Integer, ForeignKey("hvguard_scans.id", ondelete="CASCADE"), primary_key=True),
    Column("target", Text, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # The host name collected from the target (None when nothing could be collected).
    Column("host_name", Text),
    Column("platform", Text, nullable=False),
    # Sorted list of the target's inventory groups ([] when ungrouped).
    Column("groups", JSON, nullable=False),
    # compliant | not_compliant | not_assessed (hvguard.engine.target_verdict).
    Column("verdict", String(16), nullable=False),
    # Binding measures with a fail/error finding (why it is not compliant), catalog order.
    Column("blocking", JSON, nullable=False),
    # {status: n} over every status.
    Column("by_status", JSON, nullable=False),
    # {measure: worst status} for this target.
    Column("by_measure", JSON, nullable=False),
    # {measure: {status: n}}: finding counts without a per-VM split (the metrics' hvguard_findings).
    Column("finding_counts", JSON, nullable=False),
    Column("vm_count", Integer, nullable=False),
    Index("ix_hvguard_target_summaries_target_scan", "target", "scan_id"),
    Index("ix_hvguard_target_summaries_created_at", "created_at"),
)

#: The exceptions and attestations each scan applied (schema 2), one row per register entry.
register_entries = Table(
    "hvguard_register_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scan_id", Integer, ForeignKey("hvguard_scans.id", ondelete="CASCADE"), nullable=False),
    # exceptions | attestations
    Column("kind", String(16), nullable=False),
    Column("entry_id", Text, nullable=False),
    Column("measure", String(16), nullable=False),
    # active | expired | pending, on the scan's evaluation date.
    Column("state", String(16), nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_until", Date, nullable=False),
    # The entry's scope as written in the register ({} when not known).
    Column("scope", JSON, nullable=False),
    # The register file the entry came from.
    Column("source", Text, nullable=False),
    Index("ix_hvguard_register_entries_scan", "scan_id"),
    Index("ix_hvguard_register_entries_until", "valid_until"),
)

#: The tables schema 2 added, in creation order (the migration from 1 creates exactly these).
V2_TABLES = (target_summaries, register_entries)
