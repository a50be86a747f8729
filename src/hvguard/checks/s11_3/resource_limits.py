"""Checks for SS-009 11.3.10.

11.3.10 Network, disk I/O and CPU limits per VM against denial of service

Checks: ``vm_resource_limits``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import CheckContext, check, vm_subject
from hvguard.checks.s11_3.common import DEFAULT_CPU_PERIOD_US
from hvguard.checks.support.shell import shell_word as sh
from hvguard.checks.support.subjects import vms_or_not_applicable
from hvguard.facts import Disk, VmFacts
from hvguard.findings import Finding

# Example values in remediations; units are libvirt's (KiB/s and KiB for <bandwidth>, bytes/s for iotune).
_NIC_LIMIT = "125000,250000,256"  # average 125000 KiB/s (≈1 Gbit/s), peak 250000 KiB/s, burst 256 KiB


_DISK_LIMIT = "--total-bytes-sec 104857600 --total-iops-sec 1000"  # 100 MiB/s, 1000 IOPS


_LIMITS_NOTE = (
    "\n# Example values: size each to the VM's workload. Bandwidth in KiB/s (125000 ≈ 1 Gbit/s), burst in"
    " KiB; disk in bytes/s and IOPS; vcpu_quota in µs per vcpu_period."
)


_CPU_LIMIT = f"vcpu_period={DEFAULT_CPU_PERIOD_US} vcpu_quota=80000"  # 80 % of a host core per vCPU


_READ_KEYS = ("total_bytes_sec", "total_iops_sec", "read_bytes_sec", "read_iops_sec")


_WRITE_KEYS = ("total_bytes_sec", "total_iops_sec", "write_bytes_sec", "write_iops_sec")


def _disk_limited(vm: VmFacts, disk: Disk) -> tuple[bool, bool]:
    """(reads limited, writes limited) by ``<iotune>`` or a ``<blkiotune>`` device throttle on its source."""
    io = disk.iotune
    reads = any(io.get(k, 0) > 0 for k in _READ_KEYS)
    writes = any(io.get(k, 0) > 0 for k in _WRITE_KEYS)
    if not (reads and writes) and disk.source_path:
        for dev in vm.blkiotune.devices:
            if dev.path == disk.source_path:
                reads = reads or bool(dev.read_bytes_sec) or bool(dev.read_iops_sec)
                writes = writes or bool(dev.write_bytes_sec) or bool(dev.write_iops_sec)
    return reads, writes


@check(
    "11.3.10",
    id="kvm.vm-resource-limits",
    reads=(
        "hypervisor.vms[].interfaces[].inbound",
        "hypervisor.vms[].interfaces[].outbound",
        "hypervisor.vms[].disks[].iotune",
        "hypervisor.vms[].blkiotune",
        "hypervisor.vms[].cputune",
    ),
)
def vm_resource_limits(ctx: CheckContext) -> Iterator[Finding]:
    """Each VM has every limit that bounds a DoS: every interface an inbound *and* outbound
    ``<bandwidth>`` with ``average`` set (a direction left out gets no QoS); every disk of device 'disk'
    (cdrom/floppy are read-only media) a read and a write limit (``<iotune>`` total_* or read_*+write_*,
    bytes or IOPS, or a matching ``<blkiotune>`` device throttle); and a CPU quota — a vCPU quota below
    its period (a quota ≥ period can never throttle a single vCPU thread) or a global quota. A VM without
    NICs or disks is judged on the CPU part alone. One finding per VM lists every unmet part."""

    def judge(vm: VmFacts) -> Iterator[Finding]:
        name = vm.name
        unmet: list[str] = []
        fixes: list[str] = []
        nic_ev: list[dict[str, object]] = []
        for i, nic in enumerate(vm.interfaces):
            inbound = nic.inbound.average if nic.inbound is not None else None
            outbound = nic.outbound.average if nic.outbound is not None else None
            ident = nic.mac or nic.target_dev
            label = ident or f"#{i + 1}"
            nic_ev.append({"interface": label, "inbound_average": inbound, "outbound_average": outbound})
            missing = [d for d, avg in (("inbound", inbound), ("outbound", outbound)) if not avg or avg <= 0]
            if missing:
                unmet.append(f"interface {label} has no {' or '.join(missing)} bandwidth limit")
                opts = " ".join(f"--{d} {_NIC_LIMIT}" for d in missing)
                fixes.append(f"virsh domiftune {sh(name)} {sh(ident) if ident else '<MAC>'} {opts} --config")
        disk_ev: list[dict[str, object]] = []
        for disk in vm.disks:
            if disk.device != "disk":
                continue
            reads, writes = _disk_limited(vm, disk)
            dev = disk.target or disk.source_path or "<target>"
            disk_ev.append({"disk": dev, "iotune": disk.iotune})
            if not (reads and writes):
                gap = "I/O" if not (reads or writes) else ("read" if not reads else "write")
                unmet.append(f"disk {dev} has no {gap} limit")
                word = sh(dev) if disk.target or disk.source_path else dev  # "<target>": a placeholder
                fixes.append(f"virsh blkdeviotune {sh(name)} {word} {_DISK_LIMIT} --config")
        ct = vm.cputune
        period = ct.period or DEFAULT_CPU_PERIOD_US
        vcpu_limited = ct.quota is not None and 0 < ct.quota < period
        global_limited = ct.global_quota is not None and ct.global_quota > 0
        cpu_ev = {
            "period": ct.period,
            "quota": ct.quota,
            "global_period": ct.global_period,
            "global_quota": ct.global_quota,
        }
        if not (vcpu_limited or global_limited):
            if ct.quota is not None and ct.quota >= period:
                unmet.append(f"vCPU quota {ct.quota} ≥ period {period} µs never throttles a vCPU")
            else:
                unmet.append("no CPU quota")
            fixes.append(f"virsh schedinfo {sh(name)} --config {_CPU_LIMIT}")
        evidence = {"interfaces": nic_ev, "disks": disk_ev, "cpu": cpu_ev}
        subject = vm_subject(vm)
        if unmet:
            yield ctx.failed(
                subject,
                "missing resource limits: " + "; ".join(unmet),
                evidence,
                "\n".join(fixes) + _LIMITS_NOTE,
            )
            return
        yield ctx.passed(
            subject,
            f"limits set on {len(nic_ev)} interface(s) (in+out), {len(disk_ev)} disk(s) and CPU "
            + (
                f"(vCPU quota {ct.quota}/{period} µs)"
                if vcpu_limited
                else f"(global quota {ct.global_quota})"
            ),
            evidence,
        )

    yield from vms_or_not_applicable(ctx, judge)
