"""Checks for SS-009 11.2.7.

11.2.7 Per-VM ACL restricting each VM process to its own devices

Checks: ``device_acl_host``, ``vm_confined``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from hvguard.checks.base import HOST, CheckContext, check, vm_subject
from hvguard.checks.s11_2.common import (
    disk_name,
)
from hvguard.checks.support.libvirt_conf import (
    load_conf,
    restart_note,
)
from hvguard.checks.support.qemu import (
    MAC_MODELS,
    acl_extra,
    judge_qemu_conf,
    mac_state,
)
from hvguard.checks.support.shell import shell_word as sh
from hvguard.checks.support.subjects import vms_or_not_applicable
from hvguard.facts import VmFacts
from hvguard.findings import Finding


@check(
    "11.2.7",
    id="kvm.device-acl-host",
    reads=("host.qemu_conf", "hypervisor.capabilities.secmodels"),
)
def device_acl_host(ctx: CheckContext) -> Iterator[Finding]:
    """The host enforces a per-VM device ACL: sVirt MAC labels, cgroup device ACL and a private /dev.

    Pass: a MAC security driver (SELinux/AppArmor) is active (libvirt capabilities), ``security_driver`` is
    not "none", ``security_default_confined`` ≠ 0, ``dynamic_ownership`` ≠ 0, ``namespaces`` includes
    "mount", ``cgroup_device_acl`` adds nothing to libvirt's default list and ``cgroup_controllers`` (when
    set) keeps "devices". DAC alone runs every VM under one account, so one VM's QEMU can open another
    VM's images: that fails. Sources: qemu.conf / qemu.conf.in defaults, capabilities ``<secmodel>``.
    """
    host = ctx.host
    if host is None:
        yield ctx.error(HOST, "the per-VM device ACL settings (qemu.conf)", "host")
        return
    qconf = load_conf(ctx, host, "qemu_conf")
    mac = mac_state(ctx, qconf)
    default_confined = qconf.get("security_default_confined")
    require_confined = qconf.get("security_require_confined")
    dyn = qconf.get("dynamic_ownership")
    namespaces = qconf.get("namespaces")
    acl = qconf.get("cgroup_device_acl")
    controllers = qconf.get("cgroup_controllers")
    extra = acl_extra(acl)
    evidence: dict[str, Any] = {
        "mac_basis": mac.basis,
        **mac.evidence,
        "security_default_confined": default_confined.evidence(),
        "security_require_confined": require_confined.evidence(),
        "dynamic_ownership": dyn.evidence(),
        "namespaces": namespaces.evidence(),
        "cgroup_device_acl": acl.evidence(),
        "cgroup_device_acl_extra": extra,
        "cgroup_controllers": controllers.evidence(),
    }
    fails, fixes = judge_qemu_conf(
        "11.2.7",
        qconf,
        (
            "mac",
            "security_default_confined",
            "dynamic_ownership",
            "namespaces",
            "cgroup_device_acl",
            "cgroup_controllers",
        ),
        mac,
    )
    if fails:
        yield ctx.failed(
            HOST,
            "VM processes are not restricted to their own devices: " + "; ".join(fails) + ".",
            evidence,
            "\n".join([*fixes, restart_note()]),
        )
        return
    if mac.active is None:
        yield ctx.error(
            HOST, "which security drivers confine VMs (libvirt capabilities <secmodel>)", "hypervisor"
        )
        return
    note = (
        ""
        if require_confined.as_int()
        else " security_require_confined = 0 still lets an unconfined VM be defined (see 11.2.1)."
    )
    yield ctx.passed(
        HOST,
        "Each VM process gets its own sVirt label ("
        + "/".join(mac.active)
        + "), a cgroup device ACL limited to "
        "libvirt's default list plus its assigned devices, and a private /dev (mount namespace)." + note,
        evidence,
    )


@check(
    "11.2.7",
    id="kvm.vm-confined",
    reads=("hypervisor.vms[].seclabels", "hypervisor.vms[].disks[].seclabels", "hypervisor.vms[].hostdevs"),
)
def vm_confined(ctx: CheckContext) -> Iterator[Finding]:
    """Each VM's definition keeps it confined to its own devices (per VM, subject ``vm:NAME``).

    Fail: a ``<seclabel type='none'>`` (or model "none"); a dynamic MAC label with ``relabel='no'``; a static
    MAC label shared with another VM; a writable, non-shareable disk whose ``<seclabel relabel='no'>`` keeps
    its image from getting the VM's label. Manual: a unique static MAC label without relabelling (image
    labels must be shown). Passed-through host devices are listed in the evidence. The host-level part
    (MAC driver active, cgroup ACL, namespace) is the ``kvm.device-acl-host`` finding.
    """
    hv = ctx.hypervisor
    static_labels: Counter[tuple[str, str]] = Counter()
    if hv is not None:
        for vm in hv.vms:
            for s in vm.seclabels:
                if s.type == "static" and s.model in MAC_MODELS and s.label:
                    static_labels[(s.model, s.label)] += 1

    def judge(vm: VmFacts) -> Iterator[Finding]:
        subject = vm_subject(vm)
        fails: list[str] = []
        fixes: list[str] = []
        manual: list[str] = []
        for s in vm.seclabels:
            if s.type == "none" or s.model == "none":
                fails.append(
                    f"<seclabel type='{s.type}'{f' model={s.model!r}' if s.model else ''}> disables "
                    "confinement"
                )
                fixes.append(
                    f"virsh edit {sh(vm.name)}: delete the <seclabel type='none'> element (libvirt then "
                    "assigns a dynamic label); set security_require_confined = 1 in /etc/libvirt/qemu.conf"
                )
            elif s.model in MAC_MODELS or s.model is None:
                if s.type == "dynamic" and s.relabel is False:
                    fails.append("dynamic label with relabel='no': images keep a label other VMs can use")
                    fixes.append(f"virsh edit {sh(vm.name)}: set relabel='yes' on the domain <seclabel>")
                elif s.type == "static" and s.label and s.model is not None:
                    if static_labels[(s.model, s.label)] > 1:
                        fails.append(f"static {s.model} label {s.label} is shared with another VM")
                        fixes.append(
                            f"virsh edit {sh(vm.name)}: give the VM a unique label (e.g. a distinct MCS "
                            "category pair) or use <seclabel type='dynamic'/>"
                        )
                    elif s.relabel is False:
                        manual.append(f"static {s.model} label {s.label} without relabelling")
        for d in vm.disks:
            if d.readonly or d.shareable:
                continue
            for s in d.seclabels:
                if s.relabel is False and (s.model is None or s.model in MAC_MODELS):
                    fails.append(
                        f"disk {disk_name(d)} has <seclabel relabel='no'>: its image does not get this "
                        "VM's label"
                    )
                    fixes.append(
                        f"virsh edit {sh(vm.name)}: remove <seclabel relabel='no'/> from disk {disk_name(d)}"
                    )
        evidence: dict[str, Any] = {
            "seclabels": [
                {"type": s.type, "model": s.model, "relabel": s.relabel, "label": s.label}
                for s in vm.seclabels
            ],
            "hostdevs": [f"{h.type or '?'}:{h.source}" for h in vm.hostdevs],
        }
        if fails:
            yield ctx.failed(
                subject,
                "VM is not confined to its own devices: " + "; ".join(fails) + ".",
                evidence,
                "\n".join(dict.fromkeys(fixes)),
            )
        elif manual:
            yield ctx.manual(
                subject,
                "VM uses "
                + "; ".join(manual)
                + ". Evidence needed: `ls -Z` (SELinux) or the AppArmor profile "
                f"libvirt-{vm.uuid or 'UUID'} showing that only this VM's label can open its images and "
                "devices.",
                evidence,
            )
        else:
            mac = [x for x in vm.seclabels if x.model in MAC_MODELS]
            how = (
                ", ".join(f"{x.type or 'dynamic'} {x.model} label" for x in mac)
                if mac
                else "no MAC <seclabel>: the host's default sVirt confinement applies"
            )
            passthrough = (
                f"; passed-through devices: {', '.join(evidence['hostdevs'])}" if vm.hostdevs else ""
            )
            yield ctx.passed(
                subject, f"VM definition does not opt out of confinement ({how}){passthrough}.", evidence
            )

    yield from vms_or_not_applicable(ctx, judge, count_evidence=True)
