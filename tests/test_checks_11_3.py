"""Checks for SS-009 11.3 (VM management) on hand-made facts, plus one engine run over 11.1 and 11.3."""

from __future__ import annotations

from typing import Any

import pytest
from msgspec.structs import replace

from factories import good_host, good_vm, run, target
from hvguard.checks.base import CheckContext
from hvguard.checks.registry import registered_checks
from hvguard.checks.s11_1 import hw_virt
from hvguard.checks.s11_3 import change_notify, cpu_scheduling, monitoring, overcommit, resource_limits
from hvguard.checks.s11_3 import images as s11_3_images
from hvguard.checks.s11_3 import memory as s11_3_memory
from hvguard.checks.s11_3 import vcpus as s11_3_vcpus
from hvguard.collect.libvirt.resources import with_neutral_facts
from hvguard.engine import evaluate
from hvguard.facts import (
    Bandwidth,
    BlkioDevice,
    BlkioTune,
    CpuFacts,
    CpuTune,
    Disk,
    HostFacts,
    Interface,
    KvmFacts,
    MemoryBacking,
    MemoryFacts,
    MemTune,
    NodeInfo,
    Problem,
    SecureBootFacts,
    TargetFacts,
    TpmFacts,
    VcpuFacts,
    VmFacts,
)
from hvguard.findings import Finding, Status
from hvguard.profile import Profile, Thresholds, default_profile

GIB = 1024 * 1024  # KiB
HOST_RAM = 64 * GIB  # the factory node's memory


def one(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


def by_subject(findings: list[Finding]) -> dict[str, Finding]:
    return {f.subject: f for f in findings}


def profile(**thresholds: Any) -> Profile:
    base = default_profile()
    return replace(base, thresholds=replace(base.thresholds, **thresholds))


def without_node(tgt: TargetFacts) -> TargetFacts:
    assert tgt.hypervisor is not None
    return replace(tgt, hypervisor=replace(tgt.hypervisor, node=None))


# ---------------------------------------------------------------------------------------------------------
# 11.3.1


@pytest.mark.parametrize(
    ("total_kib", "expected"),
    [
        (HOST_RAM, Status.PASS),  # exactly 1.0
        (HOST_RAM + 1, Status.WARN),
        (HOST_RAM * 3 // 2, Status.WARN),  # exactly 1.5
        (HOST_RAM * 3 // 2 + 6711, Status.FAIL),  # 1.5001
    ],
)
def test_overcommit_boundaries(total_kib: int, expected: Status) -> None:
    vms = [good_vm("big", memory_kib=total_kib - 2 * GIB), good_vm("small")]
    f = one(run(overcommit.memory_overcommit, target(vms), "11.3.1"))
    assert f.status is expected
    assert f.subject == "host"
    assert f.evidence["total_kib"] == total_kib
    assert f.evidence["host_ram_kib"] == HOST_RAM
    assert f.evidence["ram_source"] == "hypervisor.node"
    assert f.evidence["largest_vms"][0] == {"name": "big", "kib": total_kib - 2 * GIB}
    if expected is not Status.PASS:
        assert f.remediation is not None and "virsh setmaxmem big" in f.remediation


def test_overcommit_scope_running_counts_active_vms_only() -> None:
    vms = [good_vm("on", memory_kib=40 * GIB), good_vm("off", memory_kib=40 * GIB, active=False)]
    tgt = target(vms)
    assert one(run(overcommit.memory_overcommit, tgt, "11.3.1")).status is Status.WARN  # 80/64 defined
    f = one(run(overcommit.memory_overcommit, tgt, "11.3.1", profile(memory_overcommit_scope="running")))
    assert f.status is Status.PASS
    assert f.evidence["scope"] == "running"
    assert f.evidence["total_kib"] == 40 * GIB


def test_overcommit_uses_larger_hotplug_maximum_and_says_so() -> None:
    vms = [good_vm("hp", memory_kib=32 * GIB, max_memory_kib=80 * GIB)]
    f = one(run(overcommit.memory_overcommit, target(vms), "11.3.1"))
    assert f.status is Status.WARN
    assert f.evidence["total_kib"] == 80 * GIB
    assert f.evidence["hotplug_max_used"] == ["hp"]
    assert "hot-plug" in f.message


def test_overcommit_falls_back_to_host_memory_without_node() -> None:
    host = good_host(memory=MemoryFacts(total_kib=4 * GIB, source="/proc/meminfo"))
    f = one(run(overcommit.memory_overcommit, without_node(target(host=host)), "11.3.1"))
    assert f.evidence["ram_source"] == "host.memory"
    assert f.evidence["ratio"] == 0.5
    assert f.status is Status.PASS


def test_overcommit_missing_ram_is_error_with_reason() -> None:
    host = good_host(memory=MemoryFacts())
    problem = Problem(area="host.memory", source="proc/meminfo", message="no 'MemTotal: N kB' line")
    f = one(run(overcommit.memory_overcommit, without_node(target(host=host, problems=[problem])), "11.3.1"))
    assert f.status is Status.ERROR
    assert "MemTotal" in f.message


def test_overcommit_zero_vms_and_no_connection() -> None:
    f = one(run(overcommit.memory_overcommit, target([]), "11.3.1"))
    assert f.status is Status.NOT_APPLICABLE
    assert f.message == "no VMs defined on qemu:///system"
    f = one(run(overcommit.memory_overcommit, target(with_hypervisor=False), "11.3.1"))
    assert f.status is Status.ERROR


def test_overcommit_unparsable_vm_prevents_a_pass_but_not_a_fail() -> None:
    broken = VmFacts(name="broken", error="not well-formed")
    found = by_subject(run(overcommit.memory_overcommit, target([good_vm(), broken]), "11.3.1"))
    assert found["vm:broken"].status is Status.ERROR
    assert found["host"].status is Status.ERROR  # 2/64 known, but a pass cannot be shown
    assert found["host"].evidence["unknown_vms"] == ["broken"]
    huge = good_vm("huge", memory_kib=100 * GIB)
    found = by_subject(run(overcommit.memory_overcommit, target([huge, broken]), "11.3.1"))
    assert found["host"].status is Status.FAIL  # the lower bound alone is over 1.5
    assert "at least" in found["host"].message


def test_overcommit_evidence_is_capped() -> None:
    vms = [good_vm(f"vm{i}", memory_kib=GIB + i) for i in range(30)]
    f = one(run(overcommit.memory_overcommit, target(vms), "11.3.1"))
    assert len(f.evidence["largest_vms"]) == 20
    assert f.evidence["vms_not_listed"] == 10
    assert f.evidence["largest_vms"][0]["name"] == "vm29"


# ---------------------------------------------------------------------------------------------------------
# 11.3.2


def test_memory_capability_passes_for_qemu_and_notes_priority() -> None:
    f = one(run(s11_3_memory.memory_guarantee_capability, target(), "11.3.2"))
    assert f.status is Status.PASS
    assert "soft_limit" in f.message and "priority" in f.message
    assert (
        one(run(s11_3_memory.memory_guarantee_capability, target(with_hypervisor=False), "11.3.2")).status
        is Status.ERROR
    )


def test_memory_capability_other_driver_is_manual() -> None:
    tgt = target(tid="test:///default")
    assert tgt.hypervisor is not None
    # as the collector records it: the driver and what it offers
    tgt = replace(tgt, hypervisor=with_neutral_facts(replace(tgt.hypervisor, driver="Test")))
    assert one(run(s11_3_memory.memory_guarantee_capability, tgt, "11.3.2")).status is Status.MANUAL


def test_guaranteed_ram_only_for_tagged_vms() -> None:
    tagged = good_vm(
        "db1", metadata_tags={"hvguard.guaranteed_ram": "Yes"}, memtune=MemTune(min_guarantee_kib=GIB)
    )
    vms = [good_vm("web1"), good_vm("web2", metadata_tags={"hvguard.guaranteed_ram": "no"}), tagged]
    f = one(run(s11_3_memory.vm_guaranteed_ram, target(vms), "11.3.2"))
    assert f.subject == "vm:db1"
    assert f.status is Status.FAIL
    assert f.remediation is not None
    assert f"virsh memtune db1 --hard-limit {3 * GIB} --soft-limit {2 * GIB} --config" in f.remediation
    assert "<locked/>" in f.remediation
    assert "min_guarantee" not in f.remediation
    assert f.evidence["min_guarantee_kib_ignored"] == GIB


def test_guaranteed_ram_needs_limit_and_guarantee() -> None:
    tags = {"hvguard.guaranteed_ram": "true"}
    ok = good_vm(
        "a",
        metadata_tags=tags,
        memtune=MemTune(hard_limit_kib=3 * GIB),
        memory_backing=MemoryBacking(locked=True),
    )
    huge = good_vm(
        "b",
        metadata_tags=tags,
        memtune=MemTune(hard_limit_kib=3 * GIB),
        memory_backing=MemoryBacking(hugepages=True),
    )
    no_limit = good_vm("c", metadata_tags=tags, memory_backing=MemoryBacking(locked=True))
    no_guarantee = good_vm("d", metadata_tags=tags, memtune=MemTune(hard_limit_kib=3 * GIB))
    found = by_subject(
        run(s11_3_memory.vm_guaranteed_ram, target([ok, huge, no_limit, no_guarantee]), "11.3.2")
    )
    assert {s: f.status for s, f in found.items()} == {
        "vm:a": Status.PASS,
        "vm:b": Status.PASS,
        "vm:c": Status.FAIL,
        "vm:d": Status.FAIL,
    }
    assert "<locked/>" not in (found["vm:c"].remediation or "")
    assert "memtune" not in (found["vm:d"].remediation or "")


# ---------------------------------------------------------------------------------------------------------
# 11.3.3


@pytest.mark.parametrize(("vcpus", "expected"), [(7, Status.PASS), (8, Status.FAIL), (16, Status.FAIL)])
def test_vcpus_strictly_below_cores(vcpus: int, expected: Status) -> None:
    f = one(
        run(
            s11_3_vcpus.vcpu_below_cores,
            target([good_vm(vcpu=VcpuFacts(maximum=vcpus, current=2))]),
            "11.3.3",
        )
    )
    assert f.status is expected
    assert f.evidence == {
        "vcpu_max": vcpus,
        "vcpu_current": 2,
        "host_cores": 8,
        "reserved_cores": 0,
        "source": "hypervisor.node",
    }
    if expected is Status.FAIL:
        assert f.remediation is not None
        assert "virsh setvcpus web1 7 --maximum --config" in f.remediation
        assert "virsh setvcpus web1 7 --config\n" not in f.remediation  # current 2 already fits


def test_vcpus_fix_lowers_current_first_when_needed() -> None:
    f = one(run(s11_3_vcpus.vcpu_below_cores, target([good_vm(vcpu=VcpuFacts(maximum=8))]), "11.3.3"))
    assert f.remediation is not None
    assert f.remediation.startswith(
        "virsh setvcpus web1 7 --config\nvirsh setvcpus web1 7 --maximum --config"
    )


def test_vcpus_reserved_cores_from_profile() -> None:
    p = profile(vcpu_extra_reserved_cores=1)
    assert (
        one(
            run(s11_3_vcpus.vcpu_below_cores, target([good_vm(vcpu=VcpuFacts(maximum=7))]), "11.3.3", p)
        ).status
        is Status.FAIL
    )
    assert (
        one(
            run(s11_3_vcpus.vcpu_below_cores, target([good_vm(vcpu=VcpuFacts(maximum=6))]), "11.3.3", p)
        ).status
        is Status.PASS
    )


def test_vcpus_numa_node_cores_multiply() -> None:
    node = NodeInfo(memory_kib=HOST_RAM, cpus=16, numa_nodes=2, sockets=1, cores=4, threads=2)
    f = one(
        run(s11_3_vcpus.vcpu_below_cores, target([good_vm(vcpu=VcpuFacts(maximum=7))], node=node), "11.3.3")
    )
    assert f.status is Status.PASS
    assert f.evidence["host_cores"] == 8


def test_vcpus_falls_back_to_host_cpu_without_node() -> None:
    host = good_host(cpu=CpuFacts(physical_cores=4, source="/proc/cpuinfo"))
    f = one(
        run(
            s11_3_vcpus.vcpu_below_cores,
            without_node(target([good_vm(vcpu=VcpuFacts(maximum=4))], host=host)),
            "11.3.3",
        )
    )
    assert f.status is Status.FAIL
    assert f.evidence["source"] == "host.cpu"
    assert f.evidence["host_cores"] == 4


def test_vcpus_node_counting_threads_is_corrected_by_host_cpu() -> None:
    # libvirt's fallback for unusual topologies: cores = every logical CPU, sockets = threads = 1.
    node = NodeInfo(memory_kib=HOST_RAM, cpus=16, numa_nodes=1, sockets=1, cores=16, threads=1)
    f = one(
        run(s11_3_vcpus.vcpu_below_cores, target([good_vm(vcpu=VcpuFacts(maximum=8))], node=node), "11.3.3")
    )
    assert f.status is Status.FAIL
    assert f.evidence["source"] == "host.cpu"


def test_vcpus_missing_cores_is_error_with_reason() -> None:
    problem = Problem(area="host.cpu", source="proc/cpuinfo", message="no core topology")
    tgt = without_node(target(host=good_host(cpu=CpuFacts()), problems=[problem]))
    f = one(run(s11_3_vcpus.vcpu_below_cores, tgt, "11.3.3"))
    assert f.status is Status.ERROR
    assert "no core topology" in f.message


def test_vcpus_zero_vms_error_vm_and_no_connection() -> None:
    assert one(run(s11_3_vcpus.vcpu_below_cores, target([]), "11.3.3")).status is Status.NOT_APPLICABLE
    found = by_subject(
        run(s11_3_vcpus.vcpu_below_cores, target([good_vm(), VmFacts(name="x", error="gone")]), "11.3.3")
    )
    assert found["vm:x"].status is Status.ERROR and found["vm:web1"].status is Status.PASS
    f = one(run(s11_3_vcpus.vcpu_below_cores, target(with_hypervisor=False), "11.3.3"))
    assert f.status is Status.ERROR and "no hypervisor connection" in f.message


# ---------------------------------------------------------------------------------------------------------
# 11.3.4


def test_cpu_capability_passes_with_pinning_caveat() -> None:
    f = one(run(cpu_scheduling.cpu_scheduling_capability, target(), "11.3.4"))
    assert f.status is Status.PASS
    assert "pinning" in f.message


def test_cpu_scheduling_per_vm_is_informative_and_no_na_for_zero_vms() -> None:
    vm = good_vm(cputune=CpuTune())
    f = one(run(cpu_scheduling.vm_cpu_scheduling, target([vm]), "11.3.4"))
    assert f.status is Status.PASS
    assert "no quota (see 11.3.10)" in f.message
    assert f.evidence["quota"] is None
    f = one(run(cpu_scheduling.vm_cpu_scheduling, target([good_vm()]), "11.3.4"))
    assert "vCPU quota 50000/100000" in f.message and "shares 1024" in f.message
    assert run(cpu_scheduling.vm_cpu_scheduling, target([]), "11.3.4") == []


# ---------------------------------------------------------------------------------------------------------
# 11.3.5 – 11.3.9


@pytest.mark.parametrize(
    ("fn", "measure", "needle"),
    [
        (monitoring.introspection_monitoring, "11.3.5", "signature-update"),
        (monitoring.monitoring_ss025, "11.3.6", "SS-025"),
        (change_notify.config_change_notify, "11.3.7", "hvguard watch"),
        (s11_3_images.image_ss025, "11.3.8", "SS-025"),
        (s11_3_images.image_signatures, "11.3.9", "SS-002"),
    ],
)
def test_evidence_measures_are_manual(fn: object, measure: str, needle: str) -> None:
    f = one(run(fn, target(), measure))
    assert f.status is Status.MANUAL
    assert needle in f.message


def test_introspection_counts_nwfilters() -> None:
    nic = Interface(type="network", mac="52:54:00:00:00:01", filterref="clean-traffic")
    f = one(
        run(
            monitoring.introspection_monitoring, target([good_vm(), good_vm("b", interfaces=[nic])]), "11.3.5"
        )
    )
    assert f.evidence == {"vm_interfaces": 2, "with_nwfilter": 1, "nwfilters": ["clean-traffic"]}


# ---------------------------------------------------------------------------------------------------------
# 11.3.10

LIMIT = Bandwidth(average=10000, peak=20000, burst=1024)


def test_limits_good_vm_passes() -> None:
    f = one(run(resource_limits.vm_resource_limits, target([good_vm()]), "11.3.10"))
    assert f.status is Status.PASS
    assert f.evidence["cpu"]["quota"] == 50000


def test_limits_nic_without_outbound_fails_with_only_outbound_fix() -> None:
    nic = Interface(type="network", mac="52:54:00:aa:bb:cc", inbound=LIMIT)
    f = one(run(resource_limits.vm_resource_limits, target([good_vm(interfaces=[nic])]), "11.3.10"))
    assert f.status is Status.FAIL
    assert "interface 52:54:00:aa:bb:cc has no outbound bandwidth limit" in f.message
    assert f.remediation is not None
    assert "virsh domiftune web1 52:54:00:aa:bb:cc --outbound 125000,250000,256 --config" in f.remediation
    assert "--inbound" not in f.remediation


def test_limits_nic_average_zero_is_no_limit() -> None:
    nic = Interface(mac="52:54:00:00:00:09", inbound=Bandwidth(average=0), outbound=LIMIT)
    f = one(run(resource_limits.vm_resource_limits, target([good_vm(interfaces=[nic])]), "11.3.10"))
    assert f.status is Status.FAIL and "no inbound" in f.message


def test_limits_cdrom_without_iotune_is_fine_disk_is_not() -> None:
    cdrom = Disk(device="cdrom", target="sda")
    vm = good_vm(disks=[*good_vm().disks, cdrom])
    assert one(run(resource_limits.vm_resource_limits, target([vm]), "11.3.10")).status is Status.PASS
    bare = Disk(device="disk", target="vdb", source_path="/var/lib/libvirt/images/b.qcow2")
    f = one(run(resource_limits.vm_resource_limits, target([good_vm(disks=[bare])]), "11.3.10"))
    assert f.status is Status.FAIL
    assert f.remediation is not None
    assert (
        "virsh blkdeviotune web1 vdb --total-bytes-sec 104857600 --total-iops-sec 1000 --config"
        in f.remediation
    )


@pytest.mark.parametrize(
    ("iotune", "expected"),
    [
        ({"total_iops_sec": 100}, Status.PASS),
        ({"read_bytes_sec": 1, "write_iops_sec": 1}, Status.PASS),
        ({"read_bytes_sec": 1000}, Status.FAIL),  # writes unbounded
        ({"total_bytes_sec_max": 1000}, Status.FAIL),  # a burst ceiling alone is no limit
        ({"total_bytes_sec": 0}, Status.FAIL),
    ],
)
def test_limits_disk_iotune_variants(iotune: dict[str, int], expected: Status) -> None:
    disk = Disk(device="disk", target="vda", iotune=iotune)
    assert (
        one(run(resource_limits.vm_resource_limits, target([good_vm(disks=[disk])]), "11.3.10")).status
        is expected
    )


def test_limits_blkiotune_device_throttle_counts() -> None:
    disk = Disk(device="disk", type="block", target="vda", source_path="/dev/sdb")
    blkio = BlkioTune(devices=[BlkioDevice(path="/dev/sdb", read_bytes_sec=10**7, write_bytes_sec=10**7)])
    assert (
        one(
            run(
                resource_limits.vm_resource_limits,
                target([good_vm(disks=[disk], blkiotune=blkio)]),
                "11.3.10",
            )
        ).status
        is Status.PASS
    )


@pytest.mark.parametrize(
    ("cputune", "expected"),
    [
        (CpuTune(period=100000, quota=50000), Status.PASS),
        (CpuTune(quota=99999), Status.PASS),  # default period 100000
        (CpuTune(global_period=100000, global_quota=150000), Status.PASS),
        (CpuTune(shares=1024), Status.FAIL),
        (CpuTune(period=100000, quota=100000), Status.FAIL),  # never throttles one vCPU thread
        (CpuTune(quota=-1), Status.FAIL),  # unlimited
    ],
)
def test_limits_cpu_quota(cputune: CpuTune, expected: Status) -> None:
    f = one(run(resource_limits.vm_resource_limits, target([good_vm(cputune=cputune)]), "11.3.10"))
    assert f.status is expected
    if expected is Status.FAIL:
        assert f.remediation is not None
        assert "virsh schedinfo web1 --config vcpu_period=100000 vcpu_quota=80000" in f.remediation


def test_limits_vm_without_nics_or_disks_is_judged_on_cpu() -> None:
    assert (
        one(
            run(resource_limits.vm_resource_limits, target([good_vm(interfaces=[], disks=[])]), "11.3.10")
        ).status
        is Status.PASS
    )
    f = one(
        run(
            resource_limits.vm_resource_limits,
            target([good_vm(interfaces=[], disks=[], cputune=CpuTune())]),
            "11.3.10",
        )
    )
    assert f.status is Status.FAIL
    assert f.message == "missing resource limits: no CPU quota"


def test_limits_lists_every_unmet_part() -> None:
    vm = good_vm(
        interfaces=[Interface(mac="52:54:00:00:00:01"), Interface(target_dev="vnet3", outbound=LIMIT)],
        disks=[Disk(device="disk", target="vda"), Disk(device="floppy", target="fda")],
        cputune=CpuTune(),
    )
    f = one(run(resource_limits.vm_resource_limits, target([vm]), "11.3.10"))
    assert f.status is Status.FAIL
    for part in (
        "interface 52:54:00:00:00:01 has no inbound or outbound",
        "interface vnet3 has no inbound",
        "disk vda has no I/O limit",
        "no CPU quota",
    ):
        assert part in f.message
    assert f.remediation is not None
    assert f.remediation.count("virsh ") == 4
    assert "virsh domiftune web1 vnet3 --inbound" in f.remediation


def test_limits_zero_vms_and_error_vm() -> None:
    assert one(run(resource_limits.vm_resource_limits, target([]), "11.3.10")).status is Status.NOT_APPLICABLE
    found = by_subject(
        run(resource_limits.vm_resource_limits, target([VmFacts(name="bad", error="boom")]), "11.3.10")
    )
    assert found["vm:bad"].status is Status.ERROR


# ---------------------------------------------------------------------------------------------------------
# Cross-cutting: remediations, engine roll-up, speed

MINE = ("11.1.1", "11.1.2", "11.1.3", *(f"11.3.{i}" for i in range(1, 11)))


def good_kvm_host() -> HostFacts:
    return good_host(
        default_target="multi-user.target",
        kvm=KvmFacts(modules=["kvm", "kvm_intel"], dev_kvm_present=True, ept=True),
        tpm=TpmFacts(present=True, version_major=2, event_log_present=True),
        secure_boot=SecureBootFacts(uefi=True, enabled=True, setup_mode=False),
    )


def bad_vms() -> list[VmFacts]:
    tags = {"hvguard.guaranteed_ram": "yes"}
    return [
        good_vm(
            "tcg", domain_type="qemu", vcpu=VcpuFacts(maximum=64), memory_kib=200 * GIB, cputune=CpuTune()
        ),
        good_vm("tagged", metadata_tags=tags, memtune=MemTune(min_guarantee_kib=GIB, soft_limit_kib=GIB)),
        good_vm("nolimits", interfaces=[Interface(mac="52:54:00:00:00:02")], disks=[Disk(target="vdz")]),
    ]


def test_no_remediation_recommends_min_guarantee() -> None:
    checks = [c for c in registered_checks() if c.measure in MINE]
    tgt = target(bad_vms(), host=good_host())
    failures = 0
    for chk in checks:
        for f in chk.fn(CheckContext(tgt, default_profile(), chk.measure, chk.id)):
            assert "min_guarantee" not in (f.remediation or "")
            if f.status is Status.FAIL:
                failures += 1
                assert f.remediation, f
    assert failures >= 6


def test_engine_rolls_up_my_measures() -> None:
    good = evaluate([target([good_vm(), good_vm("db")], host=good_kvm_host())], default_profile())
    expected = {
        "11.1.1": Status.MANUAL,  # the consideration record
        "11.1.2": Status.PASS,
        "11.1.3": Status.MANUAL,  # verifier evidence
        "11.3.1": Status.PASS,
        "11.3.2": Status.PASS,
        "11.3.3": Status.PASS,
        "11.3.4": Status.PASS,
        "11.3.5": Status.MANUAL,
        "11.3.6": Status.MANUAL,
        "11.3.7": Status.MANUAL,
        "11.3.8": Status.MANUAL,
        "11.3.9": Status.MANUAL,
        "11.3.10": Status.PASS,
    }
    assert {m: good.by_measure[m] for m in MINE} == expected
    bad = evaluate([target(bad_vms(), host=good_kvm_host())], default_profile())
    for m in ("11.1.1", "11.1.2", "11.3.1", "11.3.2", "11.3.3", "11.3.10"):
        assert bad.by_measure[m] is Status.FAIL, m
    # Advisory tailoring is the engine's job: the same facts under an advisory profile warn instead.
    advisory = replace(default_profile(), advisory=frozenset({"11.3.3"}))
    tailored = evaluate([target(bad_vms(), host=good_kvm_host())], advisory)
    assert tailored.by_measure["11.3.3"] is Status.WARN


def test_profile_threshold_fields_exist() -> None:
    # The checks read these names; a rename in Thresholds must break this test, not a scan.
    names = set(Thresholds.__struct_fields__)
    assert {"memory_overcommit_pass_max", "memory_overcommit_warn_max", "memory_overcommit_scope"} <= names
    assert "vcpu_extra_reserved_cores" in names
    assert hw_virt.HW_KVM_MODULES["kvm_intel"] == "Intel VT-x"
