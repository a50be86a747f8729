"""Builders for hand-made facts in unit tests: a compliant baseline that each test bends one way."""

from __future__ import annotations

from typing import Any

import msgspec

from hvguard.facts import (
    Bandwidth,
    CollectionInfo,
    ConfFile,
    ConfValue,
    CpuFacts,
    CpuTune,
    Disk,
    HostFacts,
    HypervisorFacts,
    Interface,
    KernelFacts,
    KvmFacts,
    MemoryFacts,
    NodeInfo,
    Problem,
    SecureBootFacts,
    TargetFacts,
    TpmFacts,
    VcpuFacts,
    VmFacts,
)
from hvguard.findings import Finding
from hvguard.profile import Profile, default_profile


def conf(path: str, **values: Any) -> ConfFile:
    """A parsed libvirt-style config file holding ``values`` (line numbers 1, 2, …)."""
    return ConfFile(
        path=path,
        present=True,
        values={k: ConfValue(value=v, line=i + 1) for i, (k, v) in enumerate(values.items())},
    )


def good_vm(name: str = "web1", **changes: Any) -> VmFacts:
    """A VM that meets every per-VM measure on an 8-core host; ``changes`` replace fields."""
    vm = VmFacts(
        name=name,
        uuid="00000000-0000-0000-0000-000000000001",
        domain_type="kvm",
        active=True,
        persistent=True,
        vcpu=VcpuFacts(maximum=2),
        memory_kib=2 * 1024 * 1024,
        cputune=CpuTune(shares=1024, period=100000, quota=50000),
        disks=[
            Disk(
                device="disk",
                type="file",
                target="vda",
                source_path=f"/var/lib/libvirt/images/{name}.qcow2",
                iotune={"total_bytes_sec": 50_000_000, "total_iops_sec": 500},
            )
        ],
        interfaces=[
            Interface(
                type="network",
                source="default",
                inbound=Bandwidth(average=10000, peak=20000, burst=1024),
                outbound=Bandwidth(average=10000, peak=20000, burst=1024),
            )
        ],
    )
    return msgspec.structs.replace(vm, **changes)


def good_host(**changes: Any) -> HostFacts:
    """Host facts of an 8-core, 64 GiB Intel KVM host with TPM 2.0 and Secure Boot; ``changes`` replace
    fields."""
    host = HostFacts(
        hostname="hv1",
        default_target="multi-user.target",
        kvm=KvmFacts(modules=["kvm", "kvm_intel"], dev_kvm_present=True, dev_kvm_mode="0660", ept=True),
        tpm=TpmFacts(present=True, version_major=2, event_log_present=True),
        secure_boot=SecureBootFacts(uefi=True, enabled=True, setup_mode=False),
        kernel=KernelFacts(release="6.1.0", lockdown="integrity", sig_enforce=True, tainted=0),
        cpu=CpuFacts(
            vendor="GenuineIntel",
            flags=["vmx", "ept", "vpid"],
            sockets=1,
            physical_cores=8,
            logical_cpus=16,
            source="/proc/cpuinfo",
        ),
        memory=MemoryFacts(total_kib=64 * 1024 * 1024, source="/proc/meminfo"),
    )
    return msgspec.structs.replace(host, **changes)


def target(
    vms: list[VmFacts] | None = None,
    *,
    host: HostFacts | None = None,
    node: NodeInfo | None = None,
    problems: list[Problem] | None = None,
    with_hypervisor: bool = True,
    tid: str = "qemu:///system",
) -> TargetFacts:
    """A target with a libvirt connection (8 cores, 64 GiB unless ``node`` says otherwise)."""
    hv = None
    if with_hypervisor:
        hv = HypervisorFacts(
            uri=tid,
            driver="QEMU",
            hypervisor_type="QEMU",
            node=node
            or NodeInfo(model="x86_64", memory_kib=64 * 1024 * 1024, cpus=16, sockets=1, cores=8, threads=2),
            vms=vms if vms is not None else [good_vm()],
        )
    return TargetFacts(
        id=tid,
        platform="kvm-libvirt",
        collection=CollectionInfo(collected_at="2026-01-01T00:00:00Z", tool_version="test"),
        host=host if host is not None else good_host(),
        hypervisor=hv,
        problems=problems or [],
    )


def run(check_fn: Any, tgt: TargetFacts, measure: str, profile: Profile | None = None) -> list[Finding]:
    """Run one check function directly and return its findings."""
    from hvguard.checks.base import CheckContext

    return list(check_fn(CheckContext(tgt, profile or default_profile(), measure, "test")))
