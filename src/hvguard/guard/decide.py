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
from hvguard.collect.libvirt.domain_xml import parse_domain_xml
from hvguard.collect.libvirt.resources import controls_offered_by_libvirt, resources_from_libvirt
from hvguard.engine import Evaluation, binding_measures, evaluate
from hvguard.facts import CollectionInfo, HypervisorFacts, Platform, Problem, TargetFacts, VmFacts
from hvguard.findings import Finding, Status
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

#: The largest domain XML accepted (libvirt's own RPC limit for a document is 32 MiB).
MAX_XML_BYTES = 32 * 1024 * 1024
#: At most this many host findings ride along in a record (the journal stays readable).
MAX_HOST_FINDINGS = 50
_BLOCKING = (Status.FAIL, Status.ERROR)
#: The URI of the no-host stand-in connection (``guard check --no-host``).
NO_HOST_URI = "qemu:///system"


class DomainXmlError(ValueError):
    """The domain XML cannot be judged (malformed, hostile, not a ``<domain>``); one-line message."""


def parse_domain(xml: bytes | str, source: str) -> VmFacts:
    """The domain in ``xml`` (from ``source``: a file name or ``stdin``); :class:`DomainXmlError` when
    it cannot be judged. DTDs and entities are refused by the parser, so nothing is expanded or fetched."""
    if len(xml) > MAX_XML_BYTES:
        raise DomainXmlError(f"{source}: domain XML larger than {MAX_XML_BYTES} bytes")
    if isinstance(xml, bytes):
        try:
            xml = xml.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DomainXmlError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    vm = parse_domain_xml(xml)
    if vm.error is not None:
        raise DomainXmlError(f"{source}: {vm.error}")
    if vm.name == "?":
        raise DomainXmlError(f"{source}: the domain has no <name>")
    return vm


def _stand_in_hypervisor(target_id: str) -> tuple[HypervisorFacts, Problem]:
    hv = HypervisorFacts(
        uri=NO_HOST_URI, driver="QEMU", controls_offered=controls_offered_by_libvirt("QEMU", NO_HOST_URI)
    )
    why = Problem(
        area="hypervisor.node",
        source=target_id,
        message="no hypervisor facts in the host facts (node, capabilities): host-dependent measures "
        "cannot be judged",
    )
    return hv, why


def no_host_facts() -> TargetFacts:
    """Facts without any host: ``guard check --no-host``. Measures that need the host (its cores, its
    hardware assist, its RAM) report ``error``."""
    hv, why = _stand_in_hypervisor("--no-host")
    return TargetFacts(
        id="no-host",
        platform=Platform.KVM_LIBVIRT,
        collection=CollectionInfo(collected_at=utc_now(), tool_version=__version__, collectors=[]),
        host=None,
        hypervisor=hv,
        problems=[
            Problem(area="host", source="--no-host", message="host facts not used (--no-host)"),
            why,
            Problem(area="hypervisor.capabilities", source="--no-host", message="host facts not used"),
        ],
    )


def with_vm(snapshot: TargetFacts, vm: VmFacts) -> TargetFacts:
    """The snapshot with ``vm`` (marked running, neutral resource facts derived) among its VMs, in place
    of any VM of the same name or uuid."""
    starting = msgspec.structs.replace(vm, active=True, resources=resources_from_libvirt(vm))
    hv, problems = snapshot.hypervisor, list(snapshot.problems)
    if hv is None:
        hv, why = _stand_in_hypervisor(snapshot.id)
        problems.append(why)
    others = [v for v in hv.vms if v.name != vm.name and (vm.uuid is None or v.uuid != vm.uuid)]
    vms = sorted([*others, starting], key=lambda v: v.name)
    return msgspec.structs.replace(
        snapshot, hypervisor=msgspec.structs.replace(hv, vms=vms), problems=problems
    )


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
