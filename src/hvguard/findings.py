"""Statuses and findings: the one vocabulary every check, the engine and every report share."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec


class Status(StrEnum):
    """A finding's verdict. See the architecture contract for each meaning."""

    PASS = "pass"  # noqa: S105 (a status, not a secret)
    FAIL = "fail"
    WARN = "warn"
    MANUAL = "manual"
    NOT_APPLICABLE = "not_applicable"
    ERROR = "error"
    WAIVED = "waived"


#: Roll-up order, worst first: a measure takes the worst status of its findings.
SEVERITY_ORDER: tuple[Status, ...] = (
    Status.ERROR,
    Status.FAIL,
    Status.WARN,
    Status.MANUAL,
    Status.WAIVED,
    Status.PASS,
    Status.NOT_APPLICABLE,
)
_RANK = {status: len(SEVERITY_ORDER) - i for i, status in enumerate(SEVERITY_ORDER)}


def severity(status: Status) -> int:
    """A number that grows with how bad ``status`` is (error highest)."""
    return _RANK[status]


def worst(statuses: list[Status]) -> Status:
    """The roll-up of several statuses; ``not_applicable`` when there are none."""
    if not statuses:
        return Status.NOT_APPLICABLE
    return max(statuses, key=severity)


class Finding(msgspec.Struct, kw_only=True):
    """One verdict on one measure for one subject (``host`` or ``vm:NAME``) of one target.

    ``evidence`` holds the fact values the verdict was based on; ``remediation`` the exact fix (config
    lines, libvirt XML or virsh commands) for a failure. ``method`` says how the verdict was reached
    (``facts``, ``attestation``, ``probe`` …) so an auditor can weigh it.
    """

    measure: str
    status: Status
    subject: str
    message: str
    evidence: dict[str, Any] = {}
    remediation: str | None = None
    target: str = ""
    check: str = ""
    method: str = "facts"
    original_status: Status | None = None
    waiver: dict[str, Any] | None = None
    """The active exception that turned a fail/warn into ``waived`` (id, risk_owner, approved_by,
    approved_on, expires_on, risk_rating, justification, compensating_controls)."""
    attestation: dict[str, Any] | None = None
    """The valid attestation that turned ``manual`` into ``pass`` (id, statement, attested_by,
    attested_on, valid_until, evidence)."""
    notes: list[str] = []
