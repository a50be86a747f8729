"""Checks for SS-009 11.1 (hypervisor type, hardware assist, measured launch) on hand-made facts."""

from __future__ import annotations

from typing import Any

import pytest
from msgspec.structs import replace

from factories import good_host, good_vm, run, target
from hvguard.checks.s11_1 import hw_virt, measured_boot, type1
from hvguard.facts import (
    Capabilities,
    CpuFacts,
    GuestCaps,
    HostFacts,
    KvmFacts,
    OsFacts,
    Problem,
    SecureBootFacts,
    TargetFacts,
    TpmFacts,
    VmFacts,
)
from hvguard.findings import Finding, Status

INTEL_KVM = KvmFacts(modules=["kvm", "kvm_intel"], dev_kvm_present=True, ept=True)
# What this very sandbox looks like: /dev/kvm works through PVM on a CPU without vmx/svm.
PVM_KVM = KvmFacts(modules=["kvm", "kvm_pvm"], dev_kvm_present=True)
NO_VMX_CPU = CpuFacts(
    vendor="GenuineIntel",
    flags=["fpu", "sse2", "hypervisor"],
    sockets=1,
    physical_cores=2,
    source="/proc/cpuinfo",
)
KVM_CAPS = Capabilities(
    host_arch="x86_64", guests=[GuestCaps(os_type="hvm", arch="x86_64", domain_types=["qemu", "kvm"])]
)


def kvm_host(**changes: Any) -> HostFacts:
    """An Intel KVM host that meets every 11.1 host condition."""
    base = good_host(
        default_target="multi-user.target",
        kvm=INTEL_KVM,
        tpm=TpmFacts(present=True, version_major=2, event_log_present=True, ima_measurements=120),
        secure_boot=SecureBootFacts(uefi=True, enabled=True, setup_mode=False, source="efivars"),
    )
    return replace(base, **changes)


def with_caps(tgt: TargetFacts, caps: Capabilities | None) -> TargetFacts:
    assert tgt.hypervisor is not None
    return replace(tgt, hypervisor=replace(tgt.hypervisor, capabilities=caps))


def one(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


def statuses(findings: list[Finding]) -> dict[str, Status]:
    return {f.subject: f.status for f in findings}


# ---------------------------------------------------------------------------------------------------------
# 11.1.1


def test_type1_kvm_in_use_passes_with_caveat() -> None:
    f = one(run(type1.type1_hypervisor, target(host=kvm_host()), "11.1.1"))
    assert f.status is Status.PASS
    assert "KVM (kernel-integrated; general-purpose host OS)" in f.message
    assert f.evidence["dev_kvm_present"] is True
    assert f.evidence["modules"] == ["kvm", "kvm_intel"]


def test_type1_without_kvm_fails() -> None:
    host = kvm_host(kvm=KvmFacts(modules=[], dev_kvm_present=False))
    f = one(run(type1.type1_hypervisor, target(host=host), "11.1.1"))
    assert f.status is Status.FAIL
    assert "TCG" in f.message
    assert f.remediation is not None and "modprobe kvm_intel" in f.remediation


def test_type1_caps_without_kvm_domain_type_fails() -> None:
    tgt = with_caps(
        target(host=kvm_host()),
        replace(KVM_CAPS, guests=[GuestCaps(os_type="hvm", arch="x86_64", domain_types=["qemu"])]),
    )
    f = one(run(type1.type1_hypervisor, tgt, "11.1.1"))
    assert f.status is Status.FAIL
    assert "no 'kvm' domain type" in f.message


def test_type1_unknown_kvm_facts_is_error_with_reason() -> None:
    problem = Problem(area="host.kvm", source="/proc/modules", message="permission denied")
    host = kvm_host(kvm=KvmFacts())
    f = one(run(type1.type1_hypervisor, target(host=host, problems=[problem]), "11.1.1"))
    assert f.status is Status.ERROR
    assert "permission denied" in f.message
    assert f.evidence["problems"] == ["host.kvm"]


def test_type1_without_host_facts_uses_capabilities() -> None:
    tgt = with_caps(target(), KVM_CAPS)
    tgt = replace(tgt, host=None)
    f = one(run(type1.type1_hypervisor, tgt, "11.1.1"))
    assert f.status is Status.PASS
    assert f.evidence["source"] == "hypervisor.capabilities"
    f = one(run(type1.type1_hypervisor, replace(target(), host=None), "11.1.1"))
    assert f.status is Status.ERROR
    assert "host facts were not collected" in f.message


def test_desktop_host_warns_and_server_host_passes() -> None:
    f = one(run(type1.host_not_desktop, target(host=kvm_host(default_target="graphical.target")), "11.1.1"))
    assert f.status is Status.WARN
    assert f.remediation is not None and "systemctl set-default multi-user.target" in f.remediation
    f = one(run(type1.host_not_desktop, target(host=kvm_host()), "11.1.1"))
    assert f.status is Status.PASS
    assert f.evidence == {"default_target": "multi-user.target"}


def test_default_target_unknown_is_error_with_reason() -> None:
    problem = Problem(
        area="host.default_target", source="etc/systemd/system/default.target", message="no default.target"
    )
    f = one(
        run(type1.host_not_desktop, target(host=kvm_host(default_target=None), problems=[problem]), "11.1.1")
    )
    assert f.status is Status.ERROR
    assert "no default.target" in f.message


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("kvm", Status.PASS),
        ("xen", Status.PASS),
        ("qemu", Status.FAIL),
        ("vbox", Status.FAIL),
        ("hvf", Status.FAIL),
        ("test", Status.MANUAL),
        ("vmware", Status.MANUAL),
    ],
)
def test_vm_domain_type_classification(dtype: str, expected: Status) -> None:
    f = one(run(type1.vm_domain_type, target([good_vm(domain_type=dtype)]), "11.1.1"))
    assert f.status is expected
    assert f.subject == "vm:web1"
    assert f.evidence == {"domain_type": dtype}


def test_qemu_domain_fails_11_1_1_with_exact_fix() -> None:
    vms = [good_vm("web1"), good_vm("tcg1", domain_type="qemu")]
    found = run(type1.vm_domain_type, target(vms), "11.1.1")
    assert statuses(found) == {"vm:web1": Status.PASS, "vm:tcg1": Status.FAIL}
    bad = next(f for f in found if f.status is Status.FAIL)
    assert bad.remediation is not None
    assert "virsh edit tcg1" in bad.remediation
    assert "<domain type='kvm'>" in bad.remediation


def test_per_vm_zero_vms_is_not_applicable_with_uri() -> None:
    for fn, measure in ((type1.vm_domain_type, "11.1.1"), (hw_virt.vm_hw_accel, "11.1.2")):
        f = one(run(fn, target([]), measure))
        assert f.status is Status.NOT_APPLICABLE
        assert f.message == "no VMs defined on qemu:///system"


def test_per_vm_unparsable_vm_and_missing_connection_are_errors() -> None:
    vms = [good_vm("web1"), VmFacts(name="broken", error="XML parse error at line 3")]
    found = run(type1.vm_domain_type, target(vms), "11.1.1")
    assert statuses(found) == {"vm:web1": Status.PASS, "vm:broken": Status.ERROR}
    assert "XML parse error" in next(f for f in found if f.subject == "vm:broken").message
    f = one(run(type1.vm_domain_type, target(with_hypervisor=False), "11.1.1"))
    assert f.status is Status.ERROR and f.subject == "host"
    f = one(run(type1.vm_domain_type, target([good_vm(domain_type=None)]), "11.1.1"))
    assert f.status is Status.ERROR


def test_type_consideration_record_is_always_manual() -> None:
    f = one(run(type1.hypervisor_type_record, target(host=kvm_host()), "11.1.1"))
    assert f.status is Status.MANUAL
    assert f.method == "attestation"
    assert "design record" in f.message


# ---------------------------------------------------------------------------------------------------------
# 11.1.2


def test_hw_cpu_intel_vendor_module_passes() -> None:
    f = one(run(hw_virt.hw_virt_cpu, target(host=kvm_host()), "11.1.2"))
    assert f.status is Status.PASS
    assert "Intel VT-x" in f.message


def test_hw_cpu_pvm_trap_fails_although_kvm_works() -> None:
    """/dev/kvm and domain type 'kvm' work here through PVM, on a CPU without vmx/svm: software-assisted."""
    host = kvm_host(kvm=PVM_KVM, cpu=NO_VMX_CPU)
    tgt = with_caps(target(host=host), KVM_CAPS)
    f = one(run(hw_virt.hw_virt_cpu, tgt, "11.1.2"))
    assert f.status is Status.FAIL
    assert "kvm_pvm" in f.message and "no vmx/svm" in f.message
    mmu = one(run(hw_virt.hw_virt_mmu, tgt, "11.1.2"))
    assert mmu.status is Status.FAIL
    assert "shadow" in mmu.message
    # 11.1.1 is still KVM (kernel-integrated): the type is right, the assist is not.
    assert one(run(type1.type1_hypervisor, tgt, "11.1.1")).status is Status.PASS


def test_hw_cpu_builtin_kvm_with_vmx_flag_passes() -> None:
    host = kvm_host(kvm=KvmFacts(modules=["kvm"], dev_kvm_present=True))
    assert one(run(hw_virt.hw_virt_cpu, target(host=host), "11.1.2")).status is Status.PASS


def test_hw_cpu_kvm_without_vmx_and_unknown_backend_fails() -> None:
    host = kvm_host(kvm=KvmFacts(modules=["kvm"], dev_kvm_present=True), cpu=NO_VMX_CPU)
    f = one(run(hw_virt.hw_virt_cpu, target(host=host), "11.1.2"))
    assert f.status is Status.FAIL
    assert "no vmx/svm" in f.message


def test_hw_cpu_vmx_without_dev_kvm_fails() -> None:
    host = kvm_host(kvm=KvmFacts(modules=[], dev_kvm_present=False))
    f = one(run(hw_virt.hw_virt_cpu, target(host=host), "11.1.2"))
    assert f.status is Status.FAIL
    assert "vmx" in f.message and "/dev/kvm is absent" in f.message


def test_hw_cpu_unread_flags_is_error_not_pass() -> None:
    host = kvm_host(kvm=KvmFacts(modules=["kvm"], dev_kvm_present=True), cpu=CpuFacts())
    problem = Problem(area="host.cpu", source="proc/cpuinfo", message="file not found")
    f = one(run(hw_virt.hw_virt_cpu, target(host=host, problems=[problem]), "11.1.2"))
    assert f.status is Status.ERROR
    assert "file not found" in f.message


def test_hw_cpu_arm64_kvm_passes() -> None:
    cpu = CpuFacts(flags=["fp", "asimd"], physical_cores=8)
    host = kvm_host(kvm=KvmFacts(modules=["kvm"], dev_kvm_present=True), cpu=cpu)
    caps = Capabilities(
        host_arch="aarch64", guests=[GuestCaps(os_type="hvm", arch="aarch64", domain_types=["kvm"])]
    )
    assert one(run(hw_virt.hw_virt_cpu, with_caps(target(host=host), caps), "11.1.2")).status is Status.PASS
    assert one(run(hw_virt.hw_virt_mmu, with_caps(target(host=host), caps), "11.1.2")).status is Status.PASS


def test_hw_cpu_without_host_facts() -> None:
    caps = replace(KVM_CAPS, cpu_features=["vmx", "x2apic"])
    tgt = replace(with_caps(target(), caps), host=None)
    assert one(run(hw_virt.hw_virt_cpu, tgt, "11.1.2")).status is Status.PASS
    # Without vmx/svm evidence, KVM on the remote host could be PVM: cannot decide.
    tgt = replace(with_caps(target(), KVM_CAPS), host=None)
    assert one(run(hw_virt.hw_virt_cpu, tgt, "11.1.2")).status is Status.ERROR


def test_mmu_ept_param() -> None:
    assert one(run(hw_virt.hw_virt_mmu, target(host=kvm_host()), "11.1.2")).status is Status.PASS
    off = kvm_host(kvm=replace(INTEL_KVM, ept=False))
    f = one(run(hw_virt.hw_virt_mmu, target(host=off), "11.1.2"))
    assert f.status is Status.FAIL
    assert f.remediation is not None and "modprobe -r kvm_intel && modprobe kvm_intel" in f.remediation


def test_mmu_amd_npt() -> None:
    cpu = CpuFacts(vendor="AuthenticAMD", flags=["svm", "npt"], physical_cores=8)
    host = kvm_host(kvm=KvmFacts(modules=["kvm", "kvm_amd"], dev_kvm_present=True, npt=True), cpu=cpu)
    f = one(run(hw_virt.hw_virt_mmu, target(host=host), "11.1.2"))
    assert f.status is Status.PASS and "npt" in f.message
    host = replace(host, kvm=replace(host.kvm, npt=False))
    assert one(run(hw_virt.hw_virt_mmu, target(host=host), "11.1.2")).status is Status.FAIL


def test_mmu_param_unread_falls_back_to_cpu_flag() -> None:
    host = kvm_host(kvm=replace(INTEL_KVM, ept=None))
    f = one(run(hw_virt.hw_virt_mmu, target(host=host), "11.1.2"))
    assert f.status is Status.PASS
    assert "was not read" in f.message


def test_mmu_unconfirmable_is_manual_or_error() -> None:
    cpu = CpuFacts(vendor="GenuineIntel", flags=["vmx", "sse2"], physical_cores=8)
    host = kvm_host(kvm=replace(INTEL_KVM, ept=None), cpu=cpu)
    f = one(run(hw_virt.hw_virt_mmu, target(host=host), "11.1.2"))
    assert f.status is Status.MANUAL
    assert "/sys/module/kvm_intel/parameters/ept" in f.message
    problem = Problem(
        area="host.kvm", source="sys/module/kvm_intel/parameters/ept", message="permission denied"
    )
    f = one(run(hw_virt.hw_virt_mmu, target(host=host, problems=[problem]), "11.1.2"))
    assert f.status is Status.ERROR
    assert "permission denied" in f.message


def test_mmu_cpu_without_virtualisation_fails() -> None:
    host = kvm_host(kvm=KvmFacts(modules=[], dev_kvm_present=False), cpu=NO_VMX_CPU)
    assert one(run(hw_virt.hw_virt_mmu, target(host=host), "11.1.2")).status is Status.FAIL


def test_vm_hw_accel_qemu_fails_kvm_passes() -> None:
    vms = [
        good_vm("web1"),
        good_vm("tcg1", domain_type="qemu"),
        good_vm("pv1", domain_type="xen", os=OsFacts(type="linux")),
        good_vm("hvm1", domain_type="xen", os=OsFacts(type="hvm")),
    ]
    found = run(hw_virt.vm_hw_accel, target(vms), "11.1.2")
    assert statuses(found) == {
        "vm:web1": Status.PASS,
        "vm:tcg1": Status.FAIL,
        "vm:pv1": Status.FAIL,
        "vm:hvm1": Status.PASS,
    }
    tcg = next(f for f in found if f.subject == "vm:tcg1")
    assert tcg.remediation is not None and "<domain type='kvm'>" in tcg.remediation


# ---------------------------------------------------------------------------------------------------------
# 11.1.3


def test_tpm2_with_event_log_passes() -> None:
    f = one(run(measured_boot.tpm2_measured_boot, target(host=kvm_host()), "11.1.3"))
    assert f.status is Status.PASS
    assert f.evidence["tpm_version_major"] == 2
    assert f.evidence["ima_measurements"] == 120


@pytest.mark.parametrize(
    "tpm",
    [
        TpmFacts(present=False),
        TpmFacts(present=True, version_major=1, event_log_present=True),
        TpmFacts(present=True, version_major=2, event_log_present=False),
    ],
)
def test_tpm_missing_old_or_unmeasured_fails(tpm: TpmFacts) -> None:
    f = one(run(measured_boot.tpm2_measured_boot, target(host=kvm_host(tpm=tpm)), "11.1.3"))
    assert f.status is Status.FAIL
    assert f.remediation is not None and "tpm_version_major" in f.remediation


def test_tpm_unknown_is_error_with_reason() -> None:
    problem = Problem(area="host.tpm", source="sys", message="sys is not mounted in the offline root")
    f = one(
        run(
            measured_boot.tpm2_measured_boot,
            target(host=kvm_host(tpm=TpmFacts()), problems=[problem]),
            "11.1.3",
        )
    )
    assert f.status is Status.ERROR
    assert "sys is not mounted" in f.message
    tpm = TpmFacts(present=True, version_major=2)  # securityfs unreadable: event log unknown
    assert (
        one(run(measured_boot.tpm2_measured_boot, target(host=kvm_host(tpm=tpm)), "11.1.3")).status
        is Status.ERROR
    )
    f = one(run(measured_boot.tpm2_measured_boot, replace(target(), host=None), "11.1.3"))
    assert f.status is Status.ERROR


@pytest.mark.parametrize(
    ("sb", "expected"),
    [
        (SecureBootFacts(uefi=True, enabled=True, setup_mode=False), Status.PASS),
        (SecureBootFacts(uefi=True, enabled=False, setup_mode=False), Status.FAIL),
        (SecureBootFacts(uefi=False, enabled=False), Status.FAIL),
        (SecureBootFacts(uefi=True, enabled=True, setup_mode=True), Status.FAIL),
        (SecureBootFacts(uefi=True), Status.ERROR),
    ],
)
def test_secure_boot(sb: SecureBootFacts, expected: Status) -> None:
    f = one(run(measured_boot.secure_boot, target(host=kvm_host(secure_boot=sb)), "11.1.3"))
    assert f.status is expected
    if expected is Status.FAIL:
        assert f.remediation is not None and "mokutil --sb-state" in f.remediation


def test_attestation_manual_names_agent_or_asks_for_mechanism() -> None:
    host = kvm_host(
        tpm=TpmFacts(present=True, version_major=2, event_log_present=True, attestation_agents=["keylime"])
    )
    f = one(run(measured_boot.attestation, target(host=host), "11.1.3"))
    assert f.status is Status.MANUAL
    assert "keylime" in f.message and "verifier" in f.message
    f = one(run(measured_boot.attestation, target(host=kvm_host()), "11.1.3"))
    assert f.status is Status.MANUAL
    assert "No remote-attestation agent" in f.message


def test_dev_kvm_unknown_is_never_reported_absent() -> None:
    """An offline root cannot show /dev/kvm: without capabilities that is an error, with them a pass."""
    host = kvm_host(kvm=KvmFacts(modules=["kvm", "kvm_intel"], dev_kvm_present=None))
    problem = Problem(area="host.kvm", source="dev", message="dev is not populated in an offline root")
    tgt = target(host=host, problems=[problem])
    f = one(run(type1.type1_hypervisor, tgt, "11.1.1"))
    assert f.status is Status.ERROR and "offline root" in f.message
    assert one(run(type1.type1_hypervisor, with_caps(tgt, KVM_CAPS), "11.1.1")).status is Status.PASS
    # The vendor module itself is evidence of VT-x for 11.1.2 even with /dev/kvm unknown.
    assert one(run(hw_virt.hw_virt_cpu, tgt, "11.1.2")).status is Status.PASS
    bare = kvm_host(kvm=KvmFacts(dev_kvm_present=None))
    f = one(run(hw_virt.hw_virt_cpu, target(host=bare, problems=[problem]), "11.1.2"))
    assert f.status is Status.ERROR and "offline root" in f.message
    assert (
        one(run(hw_virt.hw_virt_cpu, with_caps(target(host=bare), KVM_CAPS), "11.1.2")).status is Status.PASS
    )
