"""Checks for SS-009 11.1.2.

11.1.2 Hardware-assisted virtualisation (instruction set and MMU)

Checks: ``hw_virt_cpu``, ``hw_virt_mmu``, ``vm_hw_accel``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import HOST, CheckContext, check, vm_subject
from hvguard.checks.s11_1.common import NO_KVM_FIX, SOFTWARE_DOMAIN_TYPES, caps_offer_kvm
from hvguard.checks.support.shell import shell_word as sh
from hvguard.checks.support.subjects import host_area, vms_or_not_applicable
from hvguard.facts import Capabilities, HostFacts, VmFacts
from hvguard.findings import Finding

#: Domain types whose guests execute with hardware CPU virtualisation (VT-x/AMD-V/Arm EL2).
HW_ACCEL_DOMAIN_TYPES = frozenset({"kvm", "hvf", "hyperv"})


#: KVM vendor modules that drive the CPU's virtualisation extensions.
HW_KVM_MODULES: dict[str, str] = {"kvm_intel": "Intel VT-x", "kvm_amd": "AMD-V", "kvm_hv": "POWER HV mode"}


#: KVM back-ends that work *without* CPU virtualisation extensions. PVM ("Pagetable-based Virtual
#: Machine", out-of-tree, used for KVM inside cloud VMs) runs guests de-privileged with shadow paging and
#: needs no vmx/svm flag — it is why /dev/kvm works on hosts whose /proc/cpuinfo has no vmx/svm. PR KVM
#: on POWER runs guests in problem state, also software-assisted.
SOFTWARE_KVM_MODULES: dict[str, str] = {
    "kvm_pvm": "PVM (pagetable-based, no VT-x/AMD-V; shadow paging)",
    "kvm_pr": "PR KVM (POWER problem state, software-assisted)",
}


X86_VENDORS = frozenset({"GenuineIntel", "AuthenticAMD", "HygonGenuine"})


X86_ARCHES = frozenset({"x86_64", "i686", "i386"})


def _kvm_modules(host: HostFacts) -> tuple[str | None, str | None]:
    """(hardware vendor module, software back-end module) among the loaded modules."""
    mods = host.kvm.modules
    hw = next((m for m in mods if m in HW_KVM_MODULES), None)
    sw = next((m for m in mods if m in SOFTWARE_KVM_MODULES), None)
    return hw, sw


def _is_x86(host: HostFacts | None, caps: Capabilities | None) -> bool | None:
    if host is not None and host.cpu.vendor is not None:
        return host.cpu.vendor in X86_VENDORS
    if caps is not None and caps.host_arch is not None:
        return caps.host_arch in X86_ARCHES
    if host is not None and host.cpu.flags:
        return "vmx" in host.cpu.flags or "svm" in host.cpu.flags or "sse2" in host.cpu.flags
    return None


def _cpu_flags(host: HostFacts | None, caps: Capabilities | None) -> set[str]:
    flags: set[str] = set(host.cpu.flags) if host is not None else set()
    if caps is not None:
        flags.update(caps.cpu_features)
    return flags


@check(
    "11.1.2",
    id="kvm.hw-virt-cpu",
    reads=("host.kvm", "host.cpu.flags", "hypervisor.capabilities"),
)
def hw_virt_cpu(ctx: CheckContext) -> Iterator[Finding]:
    """Instruction-set virtualisation is hardware-assisted: a KVM vendor module that drives VT-x/AMD-V
    (``kvm_intel``/``kvm_amd``) is loaded, or the CPU flags show ``vmx``/``svm`` with /dev/kvm present; on
    non-x86 hosts KVM itself requires the architecture's virtualisation extensions (e.g. Arm EL2).

    KVM working is *not* enough on its own: a PVM back-end (``kvm_pvm``) offers /dev/kvm and libvirt
    domain type 'kvm' on CPUs without vmx/svm, running guests de-privileged with shadow paging — software-
    assisted virtualisation, which fails. Sources: /proc/cpuinfo flags (and capabilities CPU features),
    /proc/modules, /dev/kvm, libvirt capabilities."""
    host = ctx.host
    hv = ctx.hypervisor
    caps = hv.capabilities if hv is not None else None
    caps_kvm = caps_offer_kvm(caps)
    flags = _cpu_flags(host, caps)
    cpu_flag = "vmx" if "vmx" in flags else "svm" if "svm" in flags else None
    evidence: dict[str, object] = {"cpu_virt_flag": cpu_flag, "capabilities_offer_kvm": caps_kvm}
    if host is None:
        # Without the host's module list a PVM back-end cannot be told apart from VT-x/AMD-V; only a
        # vmx/svm feature in the capabilities' host CPU is positive evidence.
        if cpu_flag and caps_kvm:
            evidence["source"] = "hypervisor.capabilities"
            yield ctx.passed(
                HOST,
                f"the host CPU offers {cpu_flag} and libvirt offers domain type 'kvm' (hardware-assisted)",
                evidence,
            )
        else:
            yield ctx.error(HOST, "hardware CPU virtualisation", "host", "hypervisor.capabilities")
        return
    hw_mod, sw_mod = _kvm_modules(host)
    dev_kvm = host.kvm.dev_kvm_present
    evidence.update(
        {
            "source": "host",
            "modules": list(host.kvm.modules),
            "dev_kvm_present": dev_kvm,
            "cpu_vendor": host.cpu.vendor,
        }
    )
    if sw_mod is not None and hw_mod is None:
        yield ctx.failed(
            HOST,
            f"KVM runs on {SOFTWARE_KVM_MODULES[sw_mod]} ({sw_mod}): guests are virtualised in software, "
            "without CPU virtualisation extensions"
            + ("" if cpu_flag else "; the CPU exposes no vmx/svm flag"),
            evidence,
            "Run the hypervisor on hardware (bare metal, or a VM with nested VT-x/AMD-V exposed) whose CPU "
            "offers Intel VT-x or AMD-V, enable it in the firmware and use kvm_intel / kvm_amd:\n"
            f"  modprobe -r {sw_mod} && modprobe kvm_intel    # or kvm_amd\n"
            "or record an approved exception for the software-assisted approach.",
        )
        return
    if hw_mod is not None and dev_kvm is not False and caps_kvm is not False:
        yield ctx.passed(
            HOST, f"KVM uses {HW_KVM_MODULES[hw_mod]} through {hw_mod} (hardware-assisted)", evidence
        )
        return
    x86 = _is_x86(host, caps)
    if dev_kvm and caps_kvm is not False:
        if cpu_flag is not None or x86 is False:
            # kvm_intel/kvm_amd may be built into the kernel (absent from /proc/modules); /dev/kvm with a
            # vmx/svm CPU means KVM drives the extensions. Non-x86 KVM always needs them (Arm EL2, s390 SIE).
            what = (
                f"the CPU offers {cpu_flag}" if cpu_flag else "the architecture's virtualisation extensions"
            )
            yield ctx.passed(HOST, f"KVM is available (/dev/kvm) and {what} (hardware-assisted)", evidence)
            return
        if not flags:
            # An empty flag list means /proc/cpuinfo was not read: VT-x and a software back-end look alike.
            yield ctx.error(
                HOST, "hardware CPU virtualisation (CPU flags)", host_area(ctx, "cpu"), "host.kvm"
            )
            return
        # x86 KVM without vmx/svm can only be a software back-end (kvm_intel/kvm_amd refuse to load).
        yield ctx.failed(
            HOST,
            "KVM is available but the CPU exposes no vmx/svm flag: guests are virtualised without hardware "
            "CPU virtualisation (a software back-end such as PVM)",
            evidence,
            NO_KVM_FIX,
        )
        return
    if dev_kvm is None:
        if cpu_flag is not None and caps_kvm:
            # The vendor module may be built in; libvirt offering 'kvm' on a vmx/svm CPU means KVM drives it.
            yield ctx.passed(
                HOST,
                f"the CPU offers {cpu_flag} and libvirt offers domain type 'kvm' (hardware-assisted)",
                evidence,
            )
            return
        yield ctx.error(HOST, "hardware CPU virtualisation (/dev/kvm)", "host.kvm", host_area(ctx, "cpu"))
        return
    if cpu_flag is not None:
        yield ctx.failed(
            HOST,
            f"the CPU offers {cpu_flag} but KVM is not usable ("
            + ("libvirt offers no 'kvm' domain type" if dev_kvm else "/dev/kvm is absent")
            + "): guests fall back to software emulation",
            evidence,
            NO_KVM_FIX,
        )
        return
    yield ctx.failed(
        HOST,
        "no hardware CPU virtualisation in use: KVM is not available"
        + (" and the CPU shows no vmx/svm flag" if flags else ""),
        evidence,
        NO_KVM_FIX,
    )


@check(
    "11.1.2",
    id="kvm.hw-virt-mmu",
    reads=("host.kvm.ept", "host.kvm.npt", "host.kvm.modules", "host.cpu.flags"),
)
def hw_virt_mmu(ctx: CheckContext) -> Iterator[Finding]:
    """Memory-management virtualisation is hardware-assisted (second-level address translation): the
    KVM module parameter ``kvm_intel ept=Y`` / ``kvm_amd npt=1``, or — when the parameter cannot be read —
    the CPU flag ``ept``/``npt`` (KVM enables it by default when the CPU has it). An explicit ``ept=N`` /
    ``npt=0`` fails, as does a PVM back-end (shadow paging by design).

    When neither the parameter nor the flag can be read but KVM is hardware-backed, SLAT is not proven
    either way: that is ``manual`` (an auditor reads the module parameter), not ``warn`` — nothing shows
    the advisory outcome is missed — and not ``pass``. If the collector recorded a problem reading these
    facts it is an ``error`` with that reason instead."""
    host = ctx.host
    if host is None:
        yield ctx.error(HOST, "hardware MMU virtualisation (EPT/NPT)", "host")
        return
    hw_mod, sw_mod = _kvm_modules(host)
    kvm = host.kvm
    flags = set(host.cpu.flags)
    evidence: dict[str, object] = {
        "kvm_intel_ept": kvm.ept,
        "kvm_amd_npt": kvm.npt,
        "cpu_flags": sorted(flags & {"ept", "npt", "vmx", "svm"}),
        "modules": list(kvm.modules),
    }
    if sw_mod is not None and hw_mod is None:
        yield ctx.failed(
            HOST,
            f"KVM runs on {sw_mod}, which translates guest memory with software shadow page tables: no "
            "hardware MMU virtualisation (EPT/NPT)",
            evidence,
            "Run the hypervisor on a CPU with EPT (Intel) or NPT/RVI (AMD) and use kvm_intel / kvm_amd "
            "with ept=1 / npt=1 (the default), or record an approved exception.",
        )
        return
    amd = hw_mod == "kvm_amd" or (hw_mod is None and host.cpu.vendor in ("AuthenticAMD", "HygonGenuine"))
    param_name, param, flag = ("npt", kvm.npt, "npt") if amd else ("ept", kvm.ept, "ept")
    module = "kvm_amd" if amd else "kvm_intel"
    if param is False:
        yield ctx.failed(
            HOST,
            f"{module} runs with {param_name} disabled: guest memory uses software shadow paging",
            evidence,
            f"Remove '{param_name}=0' / '{param_name}=N' from /etc/modprobe.d/*.conf and the kernel command "
            f"line, then reload the module (all VMs stopped):\n  modprobe -r {module} && modprobe {module}\n"
            f"Check: cat /sys/module/{module}/parameters/{param_name}",
        )
        return
    if param is True:
        yield ctx.passed(HOST, f"{module} {param_name} is on: hardware MMU virtualisation in use", evidence)
        return
    if flag in flags:
        yield ctx.passed(
            HOST,
            f"the CPU offers {flag} (second-level address translation), which KVM uses by default; the "
            f"{module} '{param_name}' parameter was not read",
            evidence,
        )
        return
    x86 = _is_x86(host, ctx.hypervisor.capabilities if ctx.hypervisor else None)
    if x86 is False and kvm.dev_kvm_present:
        # KVM on Arm/s390/POWER-HV always uses the architecture's stage-2 / host-managed translation.
        yield ctx.passed(HOST, "non-x86 KVM uses the architecture's stage-2 address translation", evidence)
        return
    if x86 and flags and hw_mod is None and not flags & {"vmx", "svm"}:
        # EPT and NPT are extensions of VT-x and AMD-V: a CPU (flags read) without either has neither.
        yield ctx.failed(
            HOST,
            "the CPU exposes neither vmx/svm nor ept/npt: no hardware MMU virtualisation",
            evidence,
            "Run the hypervisor on a CPU with Intel VT-x + EPT or AMD-V + NPT/RVI enabled in the firmware "
            "(for a nested host: expose them to the VM), or record an approved exception.",
        )
        return
    if ctx.problems(host_area(ctx, "kvm"), host_area(ctx, "cpu")):
        yield ctx.error(HOST, "hardware MMU virtualisation (EPT/NPT)", "host.kvm", "host.cpu")
        return
    yield ctx.manual(
        HOST,
        "Second-level address translation could not be confirmed: neither the CPU flags nor the KVM module "
        f"parameter show {flag}. Provide the output of 'cat /sys/module/{module}/parameters/{param_name}' "
        f"(expect Y/1) and 'grep -wo {flag} /proc/cpuinfo | head -1' from this host.",
        evidence,
    )


@check("11.1.2", id="kvm.vm-hw-accel", reads=("hypervisor.vms[].domain_type", "hypervisor.vms[].os.type"))
def vm_hw_accel(ctx: CheckContext) -> Iterator[Finding]:
    """Every VM runs hardware-accelerated: domain type ``kvm`` (also ``hvf``, ``hyperv``; ``xen`` with an
    HVM guest). ``qemu`` is TCG — pure software virtualisation — and fails; a Xen PV guest uses no
    VT-x/AMD-V and fails; any other type is ``manual``."""

    def judge(vm: VmFacts) -> Iterator[Finding]:
        subject = vm_subject(vm)
        dtype = vm.domain_type
        if dtype is None:
            yield ctx.error(subject, "the VM's domain type", subject)
            return
        evidence: dict[str, object] = {"domain_type": dtype}
        if dtype in HW_ACCEL_DOMAIN_TYPES or (dtype == "xen" and vm.os.type == "hvm"):
            yield ctx.passed(subject, f"domain type '{dtype}': hardware-assisted", evidence)
        elif dtype in SOFTWARE_DOMAIN_TYPES:
            yield ctx.failed(
                subject,
                f"domain type '{dtype}': the guest CPU and MMU are emulated in software (TCG)",
                evidence,
                f"virsh edit {sh(vm.name)}    # change the root element to: <domain type='kvm'>\n"
                f"then restart the VM: virsh shutdown {sh(vm.name)} && virsh start {sh(vm.name)}",
            )
        elif dtype == "xen":
            evidence["os_type"] = vm.os.type
            yield ctx.failed(
                subject,
                f"Xen guest of OS type '{vm.os.type}' is paravirtualised (PV): no hardware CPU/MMU assist",
                evidence,
                f"Convert {vm.name} to an HVM or PVH guest (<os><type>hvm</type></os>).",
            )
        else:
            yield ctx.manual(
                subject,
                f"domain type '{dtype}': whether this VM uses hardware-assisted virtualisation cannot be "
                "decided from the domain XML; record the hypervisor's execution mode for it",
                evidence,
            )

    yield from vms_or_not_applicable(ctx, judge)
