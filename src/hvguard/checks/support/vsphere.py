"""Shared support of the vSphere checks: subjects, host and VM iteration, advanced options, PowerCLI
quoting, and the DISA STIG ids the findings cite.

Subjects (architecture.md, "Subjects and platforms"): ``host`` for the one host of an ESXi target; for a
vCenter ``vcenter`` (vCenter-level findings), ``host:NAME`` per ESXi host, ``vm:NAME`` — or
``vm:DATACENTER/FOLDER/NAME`` where two VMs share a name. The target's platform field says which.

STIG ids are those of the VMware vSphere 8.0 STIG (v2r3) as published in
``vmware/dod-compliance-and-automation`` (``vsphere/8.0/v2r3-stig/…/{esxi,vcenter,vm}/controls``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from hvguard.checks.base import HOST, CannotEvaluate, CheckContext
from hvguard.facts import (
    AdvancedOptions,
    OptionValue,
    Platform,
    VsphereFacts,
    VsphereHost,
    VsphereVm,
    host_area,
    vm_area,
)
from hvguard.findings import Finding

VCENTER = "vcenter"

_T = TypeVar("_T")


def ps(value: str) -> str:
    """``value`` as a PowerShell single-quoted string (a quote is doubled; nothing inside expands), so a
    hostile host or VM name cannot run code when the fix is pasted."""
    return (
        "'"
        + value.replace("'", "''").replace("\u2018", "\u2018\u2018").replace("\u2019", "\u2019\u2019")
        + "'"
    )


def facts(ctx: CheckContext) -> VsphereFacts:
    """The target's vSphere facts; :class:`CannotEvaluate` (→ ``error``) when there are none."""
    vs = ctx.target.vsphere
    if vs is None:
        raise CannotEvaluate(top_subject(ctx), "the vSphere facts", "vsphere")
    return vs


def is_esxi(ctx: CheckContext) -> bool:
    """True for a standalone ESXi target (one host, subject ``host``)."""
    return ctx.target.platform == Platform.VMWARE_ESXI


def top_subject(ctx: CheckContext) -> str:
    """``host`` for an ESXi target, ``vcenter`` for a vCenter."""
    return HOST if is_esxi(ctx) else VCENTER


def host_subject(ctx: CheckContext, host: VsphereHost) -> str:
    """``host`` on an ESXi target, ``host:NAME`` on a vCenter."""
    return HOST if is_esxi(ctx) else f"host:{host.name}"


def vm_subjects(vs: VsphereFacts) -> dict[str, str]:
    """Each VM's subject by moref: ``vm:NAME``, or ``vm:DC/FOLDER/NAME`` when the name is not unique."""
    names = Counter(vm.name for vm in vs.vms)
    out = {}
    for vm in vs.vms:
        if names[vm.name] > 1:
            path = "/".join(p for p in (vm.datacenter or "", vm.folder or "", vm.name) if p)
            out[vm.moref] = f"vm:{path}"
        else:
            out[vm.moref] = f"vm:{vm.name}"
    return out


def host_cli(ctx: CheckContext, host: VsphereHost) -> str:
    """``Get-VMHost -Name 'NAME'`` — the PowerCLI pipeline start for ``host``."""
    return f"Get-VMHost -Name {ps(host.name)}"


def each_host(ctx: CheckContext, judge: Callable[[VsphereHost, str], Iterable[Finding]]) -> Iterator[Finding]:
    """``judge(host, subject)``'s findings for every ESXi host; ``error`` when the host list is empty
    (a vSphere target always has at least one host: none means it was not read)."""
    vs = facts(ctx)
    if not vs.hosts:
        yield ctx.error(top_subject(ctx), "the ESXi hosts", "vsphere")
        return
    for host in vs.hosts:
        subject = host_subject(ctx, host)
        try:
            yield from judge(host, subject)
        except CannotEvaluate as signal:
            yield ctx.error_for(signal)


def each_vm(
    ctx: CheckContext, judge: Callable[[VsphereVm, str], Iterable[Finding]], *, templates: bool = True
) -> Iterator[Finding]:
    """``judge(vm, subject)``'s findings for every VM (templates only when ``templates``); an ``error``
    for a VM whose properties could not be read, and one ``not_applicable`` when the target has none
    (the VM list itself failing is ``error``)."""
    vs = facts(ctx)
    top = top_subject(ctx)
    if ctx.problems("vsphere.vms") and not vs.vms:
        yield ctx.error(top, "the VM list", "vsphere.vms")
        return
    subjects = vm_subjects(vs)
    vms = [vm for vm in vs.vms if templates or not vm.template]
    if not vms:
        yield ctx.not_applicable(top, f"no VMs on {vs.endpoint}", {"vm_count": 0})
        return
    for vm in vms:
        subject = subjects[vm.moref]
        if vm.error is not None:
            yield ctx.error(subject, f"this VM: {vm.error}", vm_area(vm.moref))
            continue
        try:
            yield from judge(vm, subject)
        except CannotEvaluate as signal:
            yield ctx.error_for(signal)


def need(value: _T | None, subject: str, what: str, area: str) -> _T:
    """``value``, or :class:`CannotEvaluate` naming ``what`` and the problem ``area`` when it is None."""
    if value is None:
        raise CannotEvaluate(subject, what, area)
    return value


def host_options(host: VsphereHost, subject: str) -> AdvancedOptions:
    """The host's advanced options, or ``error`` when ``QueryOptions`` failed."""
    return need(host.options, subject, "the host's advanced options", host_area(host.moref, "options"))


def option(host: VsphereHost, subject: str, key: str) -> OptionValue:
    """One advanced option's value; ``error`` (with the fault, e.g. ``InvalidName``) when the host did
    not answer it — an unset key is never taken as its default."""
    opts = host_options(host, subject)
    if key in opts.values:
        return opts.values[key]
    fault = opts.unreadable.get(key, "not returned by QueryOptions")
    raise CannotEvaluate(
        subject,
        f"advanced option {key} ({fault})",
        host_area(host.moref, "options"),
        evidence={"option": key, "fault": fault},
    )


def truthy(value: OptionValue) -> bool:
    """An option value as a boolean: bools as they are; ``1``/``"true"`` (any case) true."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return value.strip().lower() in {"true", "1", "yes", "on"}


def as_int(value: OptionValue) -> int | None:
    """An option value as an integer, None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def set_option_fix(ctx: CheckContext, host: VsphereHost, key: str, value: OptionValue) -> str:
    """The PowerCLI command that sets advanced option ``key`` on ``host``."""
    if isinstance(value, bool):
        shown = "$true" if value else "$false"
    elif isinstance(value, int | float):
        shown = str(value)
    else:
        shown = ps(value)
    return (
        f"{host_cli(ctx, host)} | Get-AdvancedSetting -Name {ps(key)} | "
        f"Set-AdvancedSetting -Value {shown} -Confirm:$false"
    )


@dataclass(frozen=True)
class OptionRule:
    """An advanced option hvguard judges: what a compliant value is, and its STIG id."""

    key: str
    ok: Callable[[OptionValue], bool]
    wanted: str
    """The compliant value in words (``600 or less, not 0``)."""
    fix_value: OptionValue
    """The value the fix sets."""
    stig: str | None = None


def judge_options(
    ctx: CheckContext, host: VsphereHost, subject: str, rules: Iterable[OptionRule]
) -> tuple[dict[str, Any], list[str], list[str], list[str]]:
    """Evaluate ``rules`` on ``host``: (evidence key → value, failed descriptions, fixes, unreadable keys)."""
    evidence: dict[str, Any] = {}
    failed: list[str] = []
    fixes: list[str] = []
    unreadable: list[str] = []
    opts = host_options(host, subject)
    for rule in rules:
        if rule.key not in opts.values:
            unreadable.append(f"{rule.key} ({opts.unreadable.get(rule.key, 'not returned by QueryOptions')})")
            continue
        value = opts.values[rule.key]
        evidence[rule.key] = value
        if not rule.ok(value):
            stig = f" [{rule.stig}]" if rule.stig else ""
            failed.append(f"{rule.key} = {value!r}, wanted {rule.wanted}{stig}")
            fixes.append(set_option_fix(ctx, host, rule.key, rule.fix_value))
    return evidence, failed, fixes, unreadable


def rules_finding(
    ctx: CheckContext,
    host: VsphereHost,
    subject: str,
    rules: Iterable[OptionRule],
    what: str,
    *,
    extra_failed: list[str] | None = None,
    extra_fixes: list[str] | None = None,
    extra_evidence: dict[str, Any] | None = None,
) -> Finding:
    """One finding for ``host`` on a set of option rules (plus failures found elsewhere): ``fail`` with
    every fix when any rule fails, ``error`` when none fails but a key could not be read, else ``pass``."""
    rules = list(rules)
    evidence, failed, fixes, unreadable = judge_options(ctx, host, subject, rules)
    failed = [*(extra_failed or []), *failed]
    fixes = [*(extra_fixes or []), *fixes]
    evidence.update(extra_evidence or {})
    stigs = sorted({r.stig for r in rules if r.stig})
    if stigs:
        evidence["stig"] = stigs
    if unreadable:
        evidence["unreadable"] = unreadable
    if failed:
        return ctx.failed(subject, f"{what}: " + "; ".join(failed), evidence, "\n".join(fixes))
    if unreadable:
        return ctx.error(
            subject,
            f"{what}: advanced option(s) {', '.join(unreadable)}",
            host_area(host.moref, "options"),
            evidence=evidence,
        )
    return ctx.passed(subject, f"{what}: as required", evidence)


def service(host: VsphereHost, subject: str, key: str) -> tuple[bool | None, str | None] | None:
    """(running, policy) of service ``key`` on ``host``; None when the host has no such service;
    ``error`` when the service list was not read."""
    services = need(host.services, subject, "the host's services", host_area(host.moref, "services"))
    for svc in services:
        if svc.key == key:
            return svc.running, svc.policy
    return None


def stop_service_fix(ctx: CheckContext, host: VsphereHost, key: str) -> str:
    """PowerCLI: stop service ``key`` and set its policy to off."""
    return (
        f"{host_cli(ctx, host)} | Get-VMHostService | Where-Object {{$_.Key -eq {ps(key)}}} | "
        "Set-VMHostService -Policy Off -Confirm:$false | Stop-VMHostService -Confirm:$false"
    )
