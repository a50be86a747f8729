"""The admission decision: one domain's XML judged with ``scan``'s checks against a host snapshot.

The facts judged are the snapshot's host and hypervisor facts with the domain added to the connection's
VMs (parsed by the collector's own libvirt XML reader, marked running: it is about to start, so its
memory counts in 11.3.1's ratio; a VM of the same name or uuid in the snapshot is replaced by it). The
engine runs exactly as for ``scan`` (profile, attestations, exceptions, as of today); then only the
findings whose subject is this VM (``vm:NAME``) decide:

- a binding measure (must / conditional after tailoring, :func:`hvguard.engine.binding_measures`) whose
  VM finding is ``fail`` or ``error`` is a violation — refused (``would-refuse`` in audit mode);
- a VM finding an active exception waived is listed in ``covered`` with the exception's id; when such a
  finding is what would otherwise have refused the VM, the reason is ``covered-by-exception``;
- host findings are reported (``host_findings``), never blocking.
"""

from __future__ import annotations

import os
from datetime import date
from typing import Any

import msgspec

from hvguard import __version__
from hvguard.checks.base import HOST
from hvguard.engine import Evaluation, binding_measures, evaluate
from hvguard.facts import TargetFacts, VmFacts
from hvguard.findings import Finding, Status
from hvguard.guard.domain import (
    DomainXmlError,
    no_host_facts,
    parse_domain,
    with_vm,
)
from hvguard.guard.lookup import BREAK_GLASS_FILE, BREAK_GLASS_SCHEMA, breakglass_active, utc_now
from hvguard.guard.policy import Policy
from hvguard.guard.record import Covered, GuardDecision, HostFinding, Mode, Operation, PolicyPins, Violation

__all__ = [
    "BREAK_GLASS_FILE",
    "BREAK_GLASS_SCHEMA",
    "DomainXmlError",
    "breakglass_active",
    "decide",
    "evaluate_vm",
    "host_dependent",
    "judge",
    "no_host_facts",
    "parse_domain",
    "utc_now",
    "vm_findings",
    "with_vm",
]

#: At most this many host findings ride along in a record (the journal stays readable).
MAX_HOST_FINDINGS = 50
_BLOCKING = (Status.FAIL, Status.ERROR)


def evaluate_vm(facts: TargetFacts, policy: Policy, as_of: date | None = None) -> Evaluation:
    """The engine's evaluation of ``facts`` under ``policy`` — exactly what ``scan``/``evaluate`` run."""
    return evaluate(
        [facts],
        policy.profile,
        catalog=policy.catalog,
        checks=list(policy.checks),
        exceptions=policy.exceptions,
        attestations=policy.attestations,
        as_of=as_of,
    )


def vm_findings(ev: Evaluation, vm_name: str) -> list[Finding]:
    """The findings whose subject is the VM ``vm_name`` (the only ones that decide)."""
    subject = f"vm:{vm_name}"
    return [f for f in ev.findings if f.subject == subject]


class Judgement(msgspec.Struct, frozen=True, kw_only=True):
    """What the findings say about one VM, before the mode turns it into an outcome."""

    violations: list[Violation]
    covered: list[Covered]
    host_findings: list[HostFinding]
    would_block: bool
    """A violation remains (no exception covers it)."""
    covered_block: bool
    """An exception waived a finding of a binding measure that would otherwise refuse the VM."""


def _per_vm_checks(ev: Evaluation) -> frozenset[str]:
    """The checks that judge each VM's settings, by their own declaration (they read
    ``hypervisor.vms[]…``)."""
    from hvguard.checks.registry import registered_checks

    return frozenset(
        c.id for c in registered_checks() if any(r.startswith("hypervisor.vms[]") for r in c.reads)
    )


def host_dependent(ev: Evaluation, vm_name: str, checks: frozenset[str] | None = None) -> list[Finding]:
    """The ``error`` findings that keep a VM's decision open when no host facts are given: a binding
    measure the VM has no finding of its own for, whose per-VM check (one that reads
    ``hypervisor.vms[]``) stopped at the host with ``error`` (e.g. 11.3.3 without the host's cores)."""
    binding = binding_measures(ev.catalog, ev.profile)
    per_vm = checks if checks is not None else _per_vm_checks(ev)
    judged = {f.measure for f in vm_findings(ev, vm_name)}
    return [
        f
        for f in ev.findings
        if f.subject == HOST
        and f.status is Status.ERROR
        and f.check in per_vm
        and f.measure in binding
        and f.measure not in judged
    ]


def judge(ev: Evaluation, vm_name: str, *, no_host: bool = False) -> Judgement:
    """Split the evaluation into violations, covered findings and host findings for ``vm_name``. With
    ``no_host`` (``guard check --no-host``) the :func:`host_dependent` errors are violations too."""
    binding = binding_measures(ev.catalog, ev.profile)
    mine = vm_findings(ev, vm_name)
    if no_host:
        mine = [*mine, *host_dependent(ev, vm_name)]
    violations = [
        Violation(
            measure=f.measure,
            check=f.check,
            status="fail" if f.status is Status.FAIL else "error",
            message=f.message,
            fix=f.remediation,
        )
        for f in mine
        if f.measure in binding and f.status in _BLOCKING
    ]
    covered = [
        Covered(
            measure=f.measure,
            check=f.check,
            status=(f.original_status or Status.FAIL).value,
            exception=str((f.waiver or {}).get("id", "?")),
            expires_on=(f.waiver or {}).get("expires_on"),
        )
        for f in mine
        if f.status is Status.WAIVED
    ]
    covered_block = any(
        f.status is Status.WAIVED and f.measure in binding and f.original_status in _BLOCKING for f in mine
    )
    hosts = [
        HostFinding(measure=f.measure, check=f.check, status=f.status.value, message=f.message)
        for f in ev.findings
        if f.subject == HOST and f.status in _BLOCKING and f not in mine
    ][:MAX_HOST_FINDINGS]
    return Judgement(
        violations=violations,
        covered=covered,
        host_findings=hosts,
        would_block=bool(violations),
        covered_block=covered_block,
    )


def decide(
    facts: TargetFacts,
    vm: VmFacts,
    policy: Policy,
    *,
    mode: Mode,
    operation: Operation,
    pins: PolicyPins,
    source: str | None,
    as_of: date | None = None,
    break_glass: dict[str, Any] | None = None,
    no_host: bool = False,
) -> GuardDecision:
    """Decide whether ``vm`` may start on the host ``facts`` describe (``facts`` without the VM: it is
    added here), as a ``hvguard.guard-decision/1`` record. ``mode`` ``enforce``/``check`` refuses,
    ``audit`` records a would-be refusal; an unexpired ``break_glass`` entry allows regardless.
    ``no_host``: ``facts`` hold no host (:func:`no_host_facts`); measures that need it are violations
    with status ``error``."""
    ev = evaluate_vm(with_vm(facts, vm), policy, as_of)
    j = judge(ev, vm.name, no_host=no_host)
    if break_glass is not None:
        outcome, reason = "allowed", "break-glass"
    elif j.would_block:
        outcome, reason = ("would-refuse" if mode == "audit" else "refused"), "violations"
    elif j.covered_block:
        outcome, reason = "allowed", "covered-by-exception"
    else:
        outcome, reason = "allowed", "compliant"
    return GuardDecision(
        at=utc_now(),
        host=os.uname().nodename,
        domain=vm.name,
        uuid=vm.uuid,
        operation=operation,
        mode=mode,
        outcome=outcome,  # type: ignore[arg-type]
        reason=reason,  # type: ignore[arg-type]
        violations=j.violations,
        covered=j.covered,
        host_findings=j.host_findings,
        policy=pins,
        break_glass=break_glass,
        source=source,
        tool_version=__version__,
    )
