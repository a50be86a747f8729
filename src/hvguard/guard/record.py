"""The ``hvguard.guard-decision/1`` record: one per admission decision (hook or ``guard check``).

Written one per line to ``decisions.jsonl`` and by ``hvguard guard check --format json``. Its JSON Schema
is generated from :class:`GuardDecision` (``hvguard schema guard-decision``). Key order is the field
order below; every field is present (null when unset). Changes under ``/1`` are additive only.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

SCHEMA = "hvguard.guard-decision/1"

Operation = Literal["prepare", "migrate", "restore", "check"]
Mode = Literal["audit", "enforce", "check"]
Outcome = Literal["allowed", "refused", "would-refuse"]
Reason = Literal["compliant", "covered-by-exception", "break-glass", "violations", "hvguard-error"]


class Violation(msgspec.Struct, kw_only=True, gc=False):
    """A binding measure's ``fail`` or ``error`` finding on the VM that no active exception covers."""

    measure: str
    check: str
    status: Literal["fail", "error"]
    message: str
    fix: str | None = None
    """The finding's remediation (config lines, XML or virsh commands); None for an ``error``."""


class Covered(msgspec.Struct, kw_only=True, gc=False):
    """A VM finding an active exception waived: the decision let it pass because of that exception."""

    measure: str
    check: str
    status: str
    """The status the checks gave before the waiver (``fail`` or ``warn``)."""
    exception: str
    """The exception's id in the register."""
    expires_on: str | None = None


class HostFinding(msgspec.Struct, kw_only=True, gc=False):
    """A host (not VM) finding at ``fail`` or ``error``: reported with the decision, never blocking."""

    measure: str
    check: str
    status: str
    message: str


class PolicyPins(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The sha256 of each policy file the decision used (null: built-in default or none given)."""

    profile_sha256: str | None = None
    exceptions_sha256: str | None = None
    attestations_sha256: str | None = None
    host_facts_sha256: str | None = None
    profile: str | None = None
    """The profile's name or source as the profile states it."""


class GuardDecision(msgspec.Struct, kw_only=True, gc=False):
    """One admission decision on one libvirt domain (``hvguard.guard-decision/1``).

    ``outcome`` is ``allowed``, ``refused`` (enforce mode or ``guard check``) or ``would-refuse`` (audit
    mode: the VM starts, the record says it would have been refused). ``reason`` says why: ``compliant``,
    ``covered-by-exception`` (violations remain only where an active exception covers them; ``covered``
    names each), ``break-glass`` (an unexpired break-glass entry, named in ``break_glass``),
    ``violations`` (listed in ``violations``), ``hvguard-error`` (hvguard itself failed: ``error`` says
    how; the ``on_error`` policy decided the outcome).
    """

    schema: str = SCHEMA
    at: str
    """When the decision was made (UTC, ISO 8601)."""
    host: str
    """The host name of the machine that decided."""
    domain: str
    uuid: str | None = None
    operation: Operation
    mode: Mode
    outcome: Outcome
    reason: Reason
    violations: list[Violation] = []
    covered: list[Covered] = []
    host_findings: list[HostFinding] = []
    policy: PolicyPins = PolicyPins()
    break_glass: dict[str, Any] | None = None
    """The break-glass entry that allowed the VM (``hvguard.guard-break-glass/1``), else null."""
    source: str | None = None
    """Where the domain XML came from: the file (``guard check``) or ``stdin`` (the hook)."""
    error: str | None = None
    """What failed inside hvguard (reason ``hvguard-error``; for a break-glass decision, too, when the
    evaluation failed), else null."""
    tool_version: str


def encode(record: GuardDecision) -> bytes:
    """The record as compact JSON (no newline)."""
    return msgspec.json.encode(record)


def to_builtins(record: GuardDecision) -> dict[str, Any]:
    """The record as plain JSON-ready data, keys in schema order."""
    data: dict[str, Any] = msgspec.to_builtins(record)
    return data
