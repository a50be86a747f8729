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


class Verdict(StrEnum):
    """A target's verdict against the standard (see :func:`hvguard.engine.target_verdict` for the rule)."""

    COMPLIANT = "compliant"
    NOT_COMPLIANT = "not_compliant"
    NOT_ASSESSED = "not_assessed"


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
    """The status the checks gave, when the engine changed it (advisory fail → warn, waiver,
    attestation); None when ``status`` is the checks' own verdict."""
    waiver: dict[str, Any] | None = None
    """The active exception that turned a fail/warn into ``waived`` (id, risk_owner, approved_by,
    approved_on, expires_on, risk_rating, justification, compensating_controls; also measure,
    scope {target, subject, check}, title, reference, days_to_expiry). Dates are ISO strings."""
    attestation: dict[str, Any] | None = None
    """The valid attestation that turned ``manual`` into ``pass`` — or into ``error`` when its evidence
    does not match (id, statement, attested_by, attested_on, valid_until, evidence; also measure, scope,
    reference, days_to_expiry). ``evidence`` is a list of {path | url, sha256, description, verified,
    result, actual_sha256 (only on a mismatch)}. Dates are ISO strings."""
    untailored_status: Status | None = None
    """Set when the finding passes (or only warns) because the profile loosened a threshold: the status
    the packaged default thresholds give. A note names the deviation."""
    notes: list[str] = []
