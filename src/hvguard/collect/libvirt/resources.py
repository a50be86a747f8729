"""KVM/libvirt → platform-neutral resource facts: pure functions of already-parsed libvirt facts.

Used where libvirt facts are assembled (local, ``test:///`` and remote connections, stored definitions,
SSH targets, the watcher) and when an older bundle or stored scan is migrated, so a fresh scan and a
migrated one carry the same neutral facts. Units and the meaning of unset/unsupported are in
:mod:`hvguard.facts.resources`.

How libvirt's settings map, and why:

- CPU limit: ``<cputune>`` ``quota``/``period`` per vCPU thread and ``global_quota``/``global_period``
  for the whole VM, as host CPUs' worth of time. A negative or zero quota means "no limit" in libvirt,
  so it is unset. Never MHz: CFS bandwidth is time, not clock cycles.
- CPU reservation: **unsupported** (CFS has no reservation; dedicated ``<vcpupin>`` pinning is the only
  lower bound and stays in ``VmFacts.cputune``).
- CPU priority: ``<cputune><shares>`` as ``custom`` shares.
- Memory limit: ``<memtune><hard_limit>``. Memory reservation: the whole RAM when the pages are
  ``<memoryBacking><locked/>`` or backed by ``<hugepages/>`` (pinned or pre-reserved, never swapped or
  reclaimed); ``<min_guarantee>`` is not counted (libvirt: VMware ESX only, refused by QEMU).
- Memory priority: **unsupported**; KVM has no memory priority score (``<memtune><soft_limit>``, the
  contention behaviour that approximates one, stays in ``VmFacts.memtune``).
- Disk limits: ``<iotune>`` (bytes/s and IOPS, ``0`` = no limit), else a ``<blkiotune><device>`` throttle
  on the disk's source path; when both set a direction, the tighter one binds. Disk priority: the
  ``<blkiotune><device>`` weight for that source; VM-wide priority: ``<blkiotune><weight>``.
- NIC limits: ``<bandwidth>`` ``average`` in KiB/s × 1024 per direction (libvirt's ``inbound`` is
  traffic *to* the VM). A per-adapter limit without a direction is **unsupported**: libvirt always
  names the direction.
- Whole-VM encryption: **unsupported** (libvirt encrypts per disk image).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from hvguard.facts import (
    BlkioDevice,
    Confinement,
    Control,
    ControlsOffered,
    CpuLimit,
    CpuTune,
    Disk,
    DiskResources,
    HypervisorFacts,
    Interface,
    NicResources,
    OsFacts,
    Shares,
    VmFacts,
    VmResources,
)

#: libvirt's CFS period when ``<period>`` is absent (the kernel default, 100 ms).
DEFAULT_CPU_PERIOD_US = 100_000
#: What libvirt reports for an unlimited ``<memtune>`` value (VIR_DOMAIN_MEMORY_PARAM_UNLIMITED, KiB).
MEMTUNE_UNLIMITED_KIB = 9_007_199_254_740_991
#: Controls a libvirt domain has no setting for.
LIBVIRT_UNSUPPORTED: tuple[Control, ...] = (
    "cpu_reservation",
    "memory_shares",
    "nic_adapter_limit",
    "vm_encryption",
)
#: Firmware images whose loader path says UEFI when ``<os firmware=>`` is absent.
_UEFI_LOADER_HINTS = ("ovmf", "edk2", "aavmf", "qemu_efi")


def resources_from_libvirt(vm: VmFacts) -> VmResources:
    """The neutral resource controls of one libvirt domain (default, empty, for an unreadable one)."""
    if vm.error is not None:
        return VmResources()
    memory = vm.memory_kib * 1024 if vm.memory_kib is not None else None
    backing = vm.memory_backing
    return VmResources(
        vcpus=vm.vcpu.maximum,
        memory_bytes=memory,
        cpu_limit=_cpu_limit(vm.cputune),
        cpu_shares=Shares(level="custom", value=vm.cputune.shares) if vm.cputune.shares is not None else None,
        memory_reservation_bytes=memory if backing.locked or backing.hugepages else None,
        memory_limit_bytes=_kib(vm.memtune.hard_limit_kib),
        io_shares=_weight(vm.blkiotune.weight),
        disks=[_disk(vm, d) for d in vm.disks],
        nics=[_nic(i, n) for n, i in enumerate(vm.interfaces)],
        confinement=Confinement(
            opted_out=any(s.type == "none" or s.model == "none" for s in vm.seclabels),
            models=sorted({s.model for s in vm.seclabels if s.model and s.model != "none"}),
        ),
        passthrough=[h.source or h.type or "?" for h in vm.hostdevs],
        firmware=_firmware(vm.os),
        secure_boot=vm.os.secure_boot,
        vtpm=bool(vm.tpms),
        hardware_virtualisation=_hw_virt(vm.domain_type),
        unsupported=list(LIBVIRT_UNSUPPORTED),
    )


def controls_offered_by_libvirt(driver: str | None, uri: str) -> ControlsOffered | None:
    """What a libvirt connection's driver offers: QEMU/KVM all six controls (a memory priority and a CPU
    guarantee only approximately); another known driver is not assessed (every field ``None``); an
    unknown driver gives ``None``. A ``qemu*`` URI counts as the QEMU driver when the driver name is
    missing."""
    if (driver or "").upper() == "QEMU" or uri.startswith("qemu"):
        return ControlsOffered(
            memory_limit=True,
            memory_guarantee=True,
            memory_priority=True,
            cpu_limit=True,
            cpu_guarantee=True,
            cpu_priority=True,
            approximate=["memory_priority", "cpu_guarantee"],
        )
    if driver is None:
        return None
    return ControlsOffered()


def with_neutral_facts(hv: HypervisorFacts | None) -> HypervisorFacts | None:
    """``hv`` with every VM's ``resources`` and the connection's ``controls_offered`` filled in."""
    if hv is None:
        return None
    return msgspec.structs.replace(
        hv,
        vms=[msgspec.structs.replace(vm, resources=resources_from_libvirt(vm)) for vm in hv.vms],
        controls_offered=controls_offered_by_libvirt(hv.driver, hv.uri),
    )


def _kib(value: int | None) -> int | None:
    if value is None or value <= 0 or value >= MEMTUNE_UNLIMITED_KIB:
        return None
    return value * 1024


def _positive(value: int | None) -> int | None:
    return value if value is not None and value > 0 else None


def _weight(value: int | None) -> Shares | None:
    return Shares(level="custom", value=value) if value is not None else None


def _fraction(quota: int | None, period: int | None) -> float | None:
    if quota is None or quota <= 0:
        return None
    return quota / (period or DEFAULT_CPU_PERIOD_US)


def _cpu_limit(ct: CpuTune) -> CpuLimit | None:
    per_vcpu = _fraction(ct.quota, ct.period)
    whole = _fraction(ct.global_quota, ct.global_period)
    if per_vcpu is None and whole is None:
        return None
    return CpuLimit(cpus=whole, cpus_per_vcpu=per_vcpu)


def _tighter(a: int | None, b: int | None) -> int | None:
    a, b = _positive(a), _positive(b)
    if a is None or b is None:
        return a if b is None else b
    return min(a, b)


def _disk(vm: VmFacts, disk: Disk) -> DiskResources:
    io = disk.iotune
    source = disk.source_path
    dev = next((d for d in vm.blkiotune.devices if source and d.path == source), BlkioDevice(path=""))
    return DiskResources(
        name=disk.target or disk.source_path or "?",
        device=disk.device,
        total_bytes_sec=_positive(io.get("total_bytes_sec")),
        read_bytes_sec=_tighter(io.get("read_bytes_sec"), dev.read_bytes_sec),
        write_bytes_sec=_tighter(io.get("write_bytes_sec"), dev.write_bytes_sec),
        total_iops_sec=_positive(io.get("total_iops_sec")),
        read_iops_sec=_tighter(io.get("read_iops_sec"), dev.read_iops_sec),
        write_iops_sec=_tighter(io.get("write_iops_sec"), dev.write_iops_sec),
        shares=_weight(dev.weight),
        encryption=disk.encryption.format if disk.encryption is not None else None,
    )


def _nic(nic: Interface, index: int) -> NicResources:
    def rate(kib_s: int | None) -> int | None:
        return kib_s * 1024 if kib_s is not None and kib_s > 0 else None

    return NicResources(
        name=nic.mac or nic.target_dev or f"#{index + 1}",
        inbound_bytes_sec=rate(nic.inbound.average if nic.inbound is not None else None),
        outbound_bytes_sec=rate(nic.outbound.average if nic.outbound is not None else None),
    )


def _firmware(os: OsFacts) -> Literal["bios", "efi"] | None:
    if os.firmware == "bios":
        return "bios"
    if os.firmware == "efi":
        return "efi"
    if os.firmware is not None:
        return None
    if os.loader is None and os.loader_secure is None:
        return "bios"  # neither attribute nor <loader>: libvirt's legacy BIOS default
    path = (os.loader or "").lower()
    return "efi" if any(h in path for h in _UEFI_LOADER_HINTS) else None


def _hw_virt(domain_type: str | None) -> Literal["on", "off"] | None:
    if domain_type == "kvm":
        return "on"
    if domain_type == "qemu":
        return "off"  # TCG: the CPU is emulated in software
    return None
