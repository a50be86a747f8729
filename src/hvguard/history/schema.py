"""The history tables (SQLAlchemy Core) and the schema version they make up.

A database records its schema version in ``hvguard_schema_version`` (one row per version applied), so
a later hvguard can migrate an older database and an older hvguard refuses a newer one instead of
misreading it. Bump :data:`SCHEMA_VERSION` and add a migration in ``store`` when a table changes.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
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
SCHEMA_VERSION = 1

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
