"""Checks for SS-009 11.3.2.

11.3.2 Guaranteed RAM, limit and priority per VM

Checks: ``memory_guarantee_capability``, ``vm_guaranteed_ram``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import HOST, CheckContext, check, vm_subject
from hvguard.checks.support.platform import offer_finding, offers_memory_controls
from hvguard.checks.support.shell import shell_word as sh
from hvguard.facts import VmFacts
from hvguard.findings import Finding

# Tag (libvirt <metadata>, collected into VmFacts.metadata_tags) marking a VM that requires guaranteed RAM.
GUARANTEED_RAM_TAG = "hvguard.guaranteed_ram"


_TRUE_WORDS = frozenset({"yes", "true", "1", "on"})


@check("11.3.2", id="kvm.memory-guarantee-capability", reads=("hypervisor.controls_offered",))
def memory_guarantee_capability(ctx: CheckContext) -> Iterator[Finding]:
    """Capability: libvirt's QEMU driver offers a limit (``<memtune><hard_limit>``), a guarantee
    (``<memoryBacking><locked/>`` or ``<hugepages/>``: the VM's RAM is pinned or pre-reserved and never
    swapped or reclaimed) and contention behaviour (``<memtune><soft_limit>``) — the closest thing to a
    priority, as KVM has no memory priority score. ``<min_guarantee>`` is VMware-only and refused by QEMU,
    so it is not counted. Passes for a QEMU/KVM connection; other drivers are ``manual``."""
    hv = ctx.hypervisor
    if hv is None:
        yield ctx.error(HOST, "the hypervisor's memory tuning options", "hypervisor")
        return
    evidence: dict[str, object] = {
        "driver": hv.driver,
        "uri": hv.uri,
        "limit": "memtune/hard_limit",
        "guarantee": ["memoryBacking/locked", "memoryBacking/hugepages"],
        "priority": "memtune/soft_limit (approximation)",
    }
    yield offer_finding(
        ctx,
        offers_memory_controls(hv),
        evidence,
        "QEMU/KVM offers a RAM limit (memtune hard_limit), a guarantee (memoryBacking locked or "
        "hugepages) and contention behaviour (memtune soft_limit; a priority is approximated by "
        "soft_limit, as KVM has no memory priority score)",
        f"the memory guarantee, limit and priority options of libvirt driver '{hv.driver}' are not assessed "
        "by hvguard: show the options this hypervisor offers",
    )


@check(
    "11.3.2",
    id="kvm.vm-guaranteed-ram",
    reads=("hypervisor.vms[].metadata_tags", "hypervisor.vms[].memtune", "hypervisor.vms[].memory_backing"),
)
def vm_guaranteed_ram(ctx: CheckContext) -> Iterator[Finding]:
    """A VM that requires guaranteed RAM (tagged ``hvguard.guaranteed_ram`` = yes/true in its libvirt
    metadata) has a limit (``memtune hard_limit``) and a guarantee (``memoryBacking locked`` or
    ``hugepages``; ``locked`` requires ``hard_limit`` anyway). Untagged VMs yield nothing: the measure
    asks for the option "for every VM (that requires it)", and a finding per untagged VM would be noise
    — the capability finding covers them."""

    def judge(vm: VmFacts) -> Iterator[Finding]:
        tag = vm.metadata_tags.get(GUARANTEED_RAM_TAG)
        if tag is None or tag.strip().lower() not in _TRUE_WORDS:
            return
        subject = vm_subject(vm)
        mt = vm.memtune
        mb = vm.memory_backing
        evidence: dict[str, object] = {
            "tag": tag,
            "hard_limit_kib": mt.hard_limit_kib,
            "soft_limit_kib": mt.soft_limit_kib,
            "locked": mb.locked,
            "hugepages": mb.hugepages,
        }
        if mt.min_guarantee_kib is not None:
            evidence["min_guarantee_kib_ignored"] = mt.min_guarantee_kib
        missing: list[str] = []
        fixes: list[str] = []
        if mt.hard_limit_kib is None:
            missing.append("no limit (memtune hard_limit)")
            mem = max(vm.memory_kib or 0, vm.max_memory_kib or 0)
            # hard_limit must cover the guest RAM plus QEMU's own overhead (+1 GiB here); soft_limit = RAM.
            hard = f"{mem + 1048576}" if mem else "<guest RAM KiB + QEMU overhead>"
            soft = f"{mem}" if mem else "<guest RAM KiB>"
            fixes.append(f"virsh memtune {sh(vm.name)} --hard-limit {hard} --soft-limit {soft} --config")
        if not (mb.locked or mb.hugepages):
            missing.append("no guarantee (memoryBacking locked or hugepages)")
            fixes.append(
                f"virsh edit {sh(vm.name)}    # add inside <domain>:\n"
                "  <memoryBacking>\n    <locked/>\n  </memoryBacking>"
            )
        if missing:
            yield ctx.failed(
                subject,
                "VM requires guaranteed RAM but has " + " and ".join(missing),
                evidence,
                "\n".join(fixes),
            )
            return
        how = "locked" if mb.locked else "hugepages"
        yield ctx.passed(
            subject, f"guaranteed RAM ({how}) with a limit of {mt.hard_limit_kib} KiB (hard_limit)", evidence
        )

    yield from ctx.each_vm(judge)
