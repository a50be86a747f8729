"""Checks for SS-009 section 11.1: hypervisor platform architectural choices (KVM/libvirt).

11.1.1 Type 1 by default, 11.1.2 hardware-assisted virtualisation (instruction set and MMU), 11.1.3
measured launch (TPM 2.0) with attestation and chain of trust. "Consideration" and verifier enrolment
are records no fact can show; those parts are reported as ``manual`` with the evidence an auditor needs.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import HOST, CheckContext, check, vm_subject
from hvguard.checks.support.subjects import host_area, vms_or_not_applicable
from hvguard.facts import Capabilities, HostFacts
from hvguard.findings import Finding

# --------------------------------------------------------------------------------------------------------
# Shared tables and helpers

#: libvirt domain types (virDomainVirtType) that run guests on a Type 1 or kernel-integrated hypervisor.
#: KVM and bhyve turn the host kernel into the hypervisor (classed Type 1, with the caveat of a
#: general-purpose host OS); Xen and Hyper-V are bare-metal.
TYPE1_DOMAIN_TYPES: dict[str, str] = {
    "kvm": "KVM (kernel-integrated; general-purpose host OS)",
    "xen": "Xen (Type 1)",
    "hyperv": "Hyper-V (Type 1)",
    "bhyve": "bhyve (kernel-integrated)",
}
#: Domain types that emulate the CPU in software: QEMU's TCG is a user-space, Type 2-like hypervisor.
SOFTWARE_DOMAIN_TYPES: dict[str, str] = {
    "qemu": "QEMU TCG software emulation (Type 2-like)",
    "kqemu": "QEMU with the kqemu accelerator (software, Type 2-like)",
}
#: Hosted (Type 2) hypervisors libvirt can drive.
HOSTED_DOMAIN_TYPES: dict[str, str] = {
    "vbox": "VirtualBox (Type 2)",
    "hvf": "QEMU on macOS Hypervisor.framework (hosted, Type 2)",
    "parallels": "Parallels (Type 2)",
}
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


def _caps_offer_kvm(caps: Capabilities | None) -> bool | None:
    """Whether libvirt's capabilities offer domain type 'kvm' for the host architecture (None: unknown)."""
    if caps is None or not caps.guests:
        return None
    arch = caps.host_arch
    return any("kvm" in g.domain_types and (arch is None or g.arch == arch) for g in caps.guests)


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


_NO_KVM_FIX = (
    "Enable Intel VT-x / AMD-V (and VT-d / AMD-Vi) in the firmware setup, then load the KVM vendor module "
    "and make it persistent:\n"
    "  modprobe kvm_intel    # or: modprobe kvm_amd\n"
    "  echo kvm_intel > /etc/modules-load.d/kvm.conf\n"
    "Check with: ls -l /dev/kvm && lsmod | grep kvm"
)


# --------------------------------------------------------------------------------------------------------
# 11.1.1 Type 1 hypervisor by default


@check(
    "11.1.1",
    id="kvm.type1-hypervisor",
    reads=("host.kvm", "hypervisor.capabilities"),
)
def type1_hypervisor(ctx: CheckContext) -> Iterator[Finding]:
    """KVM is the hypervisor in use: the kvm module is loaded and /dev/kvm exists (or, without host
    facts, libvirt's capabilities offer domain type 'kvm'). KVM is kernel-integrated and classed Type 1,
    with the recorded caveat that the host runs a general-purpose OS. Without KVM, libvirt can only run
    guests under QEMU's TCG emulator — a Type 2-like user-space hypervisor — which fails."""
    host = ctx.host
    hv = ctx.hypervisor
    caps_kvm = _caps_offer_kvm(hv.capabilities if hv is not None else None)
    if host is None:
        if caps_kvm:
            yield ctx.passed(
                HOST,
                "KVM (kernel-integrated; general-purpose host OS) is offered by the hypervisor "
                "(capabilities list domain type 'kvm'); host files were not collected",
                {"source": "hypervisor.capabilities", "capabilities_offer_kvm": True},
            )
            return
        yield ctx.error(HOST, "whether KVM is in use", "host", "hypervisor.capabilities")
        return
    kvm = host.kvm
    evidence = {
        "source": "host.kvm",
        "modules": list(kvm.modules),
        "dev_kvm_present": kvm.dev_kvm_present,
        "capabilities_offer_kvm": caps_kvm,
    }
    if kvm.dev_kvm_present is None:
        # /dev/kvm unknown (e.g. an offline root: devtmpfs is empty there): libvirt's capabilities can
        # still show KVM in use; a module list alone cannot (an image's /proc is empty too).
        if caps_kvm:
            yield ctx.passed(
                HOST,
                "KVM (kernel-integrated; general-purpose host OS) is offered by the hypervisor "
                "(capabilities list domain type 'kvm'); /dev/kvm was not read",
                evidence,
            )
            return
        yield ctx.error(HOST, "whether KVM is in use (/dev/kvm)", "host.kvm")
        return
    # A kvm built into the kernel does not show in the module list, so /dev/kvm is the decisive fact;
    # the module list and capabilities are corroboration.
    if kvm.dev_kvm_present and caps_kvm is not False:
        yield ctx.passed(
            HOST,
            "KVM (kernel-integrated; general-purpose host OS) is the hypervisor: /dev/kvm is present"
            + (f" and modules {', '.join(kvm.modules)} are loaded" if kvm.modules else ""),
            evidence,
        )
        return
    why = (
        "libvirt's capabilities offer no 'kvm' domain type"
        if kvm.dev_kvm_present
        else "/dev/kvm is absent" + ("" if kvm.modules else " and no kvm module is loaded")
    )
    yield ctx.failed(
        HOST,
        f"KVM is not available ({why}): guests can only run under QEMU TCG emulation, a Type 2-like "
        "user-space hypervisor",
        evidence,
        _NO_KVM_FIX,
    )


@check("11.1.1", id="kvm.host-not-desktop", reads=("host.default_target",))
def host_not_desktop(ctx: CheckContext) -> Iterator[Finding]:
    """The host boots to a non-graphical systemd target. Type 1 is preferred for the smaller attack
    surface; with KVM the host OS is part of the hypervisor, so a desktop install (default target
    ``graphical.target``) enlarges it and is reported as ``warn``. Source: ``systemctl get-default``."""
    host = ctx.host
    if host is None or host.default_target is None:
        yield ctx.error(HOST, "the host's default boot target", host_area(ctx, "default_target"))
        return
    evidence = {"default_target": host.default_target}
    if host.default_target == "graphical.target":
        yield ctx.warned(
            HOST,
            "the host boots to graphical.target: a desktop install enlarges the attack surface of a "
            "KVM host, whose OS is part of the hypervisor",
            evidence,
            "systemctl set-default multi-user.target\n"
            "and remove the desktop environment packages (display manager, X/Wayland session) from the host",
        )
        return
    yield ctx.passed(HOST, f"the host boots to {host.default_target} (no desktop session)", evidence)


@check("11.1.1", id="kvm.vm-domain-type", reads=("hypervisor.vms[].domain_type",))
def vm_domain_type(ctx: CheckContext) -> Iterator[Finding]:
    """Every VM runs on a Type 1 / kernel-integrated hypervisor: libvirt domain type ``kvm`` (also
    ``xen``, ``hyperv``, ``bhyve``). ``qemu`` is TCG software emulation (Type 2-like) and fails, as do the
    hosted ``vbox``/``hvf``/``parallels``; any other type (``vmware``, which may be ESXi or Workstation,
    ``lxc``, ``test`` …) cannot be classified from the type alone and is ``manual``."""
    for item in vms_or_not_applicable(ctx):
        if isinstance(item, Finding):
            yield item
            continue
        vm = item
        subject = vm_subject(vm)
        dtype = vm.domain_type
        if dtype is None:
            yield ctx.error(subject, "the VM's domain type", subject)
            continue
        evidence = {"domain_type": dtype}
        if dtype in TYPE1_DOMAIN_TYPES:
            yield ctx.passed(subject, f"domain type '{dtype}': {TYPE1_DOMAIN_TYPES[dtype]}", evidence)
        elif dtype in SOFTWARE_DOMAIN_TYPES or dtype in HOSTED_DOMAIN_TYPES:
            label = SOFTWARE_DOMAIN_TYPES.get(dtype) or HOSTED_DOMAIN_TYPES[dtype]
            yield ctx.failed(
                subject,
                f"domain type '{dtype}': {label}; a Type 1 hypervisor must be used unless an exception "
                "records why Type 2 is necessary",
                evidence,
                f"virsh edit {vm.name}    # change the root element to: <domain type='kvm'>\n"
                f"then restart the VM: virsh shutdown {vm.name} && virsh start {vm.name}",
            )
        else:
            yield ctx.manual(
                subject,
                f"domain type '{dtype}' is not a KVM/QEMU type and cannot be classified as Type 1 or "
                "Type 2 from the domain XML alone: record which hypervisor product runs this VM",
                evidence,
            )


@check("11.1.1", id="kvm.hypervisor-type-record", reads=("hypervisor.hypervisor_type",))
def hypervisor_type_record(ctx: CheckContext) -> Iterator[Finding]:
    """Always ``manual``: 11.1.1 requires a *consideration* of the hypervisor type, which is a design
    record, not a fact on the host. The facts above only show what is in use."""
    hv = ctx.hypervisor
    evidence: dict[str, object] = {}
    if hv is not None:
        evidence = {
            "hypervisor_type": hv.hypervisor_type,
            "hypervisor_version": hv.hypervisor_version,
            "driver": hv.driver,
        }
    yield ctx.manual(
        HOST,
        "Provide the design record showing which hypervisor type was considered for the Authority's need "
        "and why (KVM is kernel-integrated and commonly classed Type 1, but its host runs a general-purpose "
        "OS that must be minimised), and an approved risk-register exception for any Type 2 or QEMU TCG "
        "(domain type 'qemu') use.",
        evidence,
    )


# --------------------------------------------------------------------------------------------------------
# 11.1.2 Hardware-assisted virtualisation: instruction set and MMU


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
    caps_kvm = _caps_offer_kvm(caps)
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
            _NO_KVM_FIX,
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
            _NO_KVM_FIX,
        )
        return
    yield ctx.failed(
        HOST,
        "no hardware CPU virtualisation in use: KVM is not available"
        + (" and the CPU shows no vmx/svm flag" if flags else ""),
        evidence,
        _NO_KVM_FIX,
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
    for item in vms_or_not_applicable(ctx):
        if isinstance(item, Finding):
            yield item
            continue
        vm = item
        subject = vm_subject(vm)
        dtype = vm.domain_type
        if dtype is None:
            yield ctx.error(subject, "the VM's domain type", subject)
            continue
        evidence: dict[str, object] = {"domain_type": dtype}
        if dtype in HW_ACCEL_DOMAIN_TYPES or (dtype == "xen" and vm.os.type == "hvm"):
            yield ctx.passed(subject, f"domain type '{dtype}': hardware-assisted", evidence)
        elif dtype in SOFTWARE_DOMAIN_TYPES:
            yield ctx.failed(
                subject,
                f"domain type '{dtype}': the guest CPU and MMU are emulated in software (TCG)",
                evidence,
                f"virsh edit {vm.name}    # change the root element to: <domain type='kvm'>\n"
                f"then restart the VM: virsh shutdown {vm.name} && virsh start {vm.name}",
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


# --------------------------------------------------------------------------------------------------------
# 11.1.3 Measured launch (TPM 2.0), attestation and chain of trust

_TPM_FIX = (
    "Enable the TPM 2.0 (firmware fTPM/PTT or a discrete TPM 2.0) in the firmware setup and boot in UEFI "
    "mode so the firmware measures the boot chain into PCRs 0-7; check:\n"
    "  cat /sys/class/tpm/tpm0/tpm_version_major    # expect 2\n"
    "  ls /sys/kernel/security/tpm0/binary_bios_measurements\n"
    "Optionally measure the running system too: add ima_policy=tcb to GRUB_CMDLINE_LINUX."
)


@check(
    "11.1.3",
    id="kvm.tpm2-measured-boot",
    reads=("host.tpm.present", "host.tpm.version_major", "host.tpm.event_log_present"),
)
def tpm2_measured_boot(ctx: CheckContext) -> Iterator[Finding]:
    """The host has a TPM of major version 2 or later and a measured-boot event log (firmware measured the
    launch into the TPM). Sources: /sys/class/tpm/tpm0/tpm_version_major,
    /sys/kernel/security/tpm0/binary_bios_measurements; the IMA measurement count is recorded as
    evidence of runtime measurement but not required."""
    host = ctx.host
    if host is None:
        yield ctx.error(HOST, "the TPM and measured boot", "host")
        return
    tpm = host.tpm
    evidence = {
        "tpm_present": tpm.present,
        "tpm_version_major": tpm.version_major,
        "event_log_present": tpm.event_log_present,
        "ima_measurements": tpm.ima_measurements,
    }
    if tpm.present is None:
        yield ctx.error(HOST, "whether the host has a TPM", "host.tpm")
        return
    if not tpm.present:
        yield ctx.failed(HOST, "no TPM: the platform cannot provide a measured launch", evidence, _TPM_FIX)
        return
    if tpm.version_major is None:
        yield ctx.error(HOST, "the TPM version", "host.tpm")
        return
    if tpm.version_major < 2:
        yield ctx.failed(
            HOST, f"TPM version {tpm.version_major}.x: TPM 2.0 or later is required", evidence, _TPM_FIX
        )
        return
    if tpm.event_log_present is None:
        yield ctx.error(HOST, "the measured-boot event log", "host.tpm")
        return
    if not tpm.event_log_present:
        yield ctx.failed(
            HOST,
            f"TPM {tpm.version_major}.0 present but no measured-boot event log: the launch was not measured",
            evidence,
            _TPM_FIX,
        )
        return
    yield ctx.passed(
        HOST, f"TPM {tpm.version_major}.0 with a measured-boot event log (measured launch)", evidence
    )


@check(
    "11.1.3",
    id="kvm.secure-boot",
    reads=("host.secure_boot.uefi", "host.secure_boot.enabled", "host.secure_boot.setup_mode"),
)
def secure_boot(ctx: CheckContext) -> Iterator[Finding]:
    """UEFI Secure Boot is enabled and enforcing (not in Setup Mode): the verified chain of trust from
    firmware to the hypervisor kernel that measures.md requires beside the measured launch. Source:
    efivars SecureBoot / SetupMode."""
    host = ctx.host
    if host is None:
        yield ctx.error(HOST, "Secure Boot", "host")
        return
    sb = host.secure_boot
    evidence = {"uefi": sb.uefi, "enabled": sb.enabled, "setup_mode": sb.setup_mode, "source": sb.source}
    fix = (
        "Enable UEFI Secure Boot in the firmware setup (UEFI boot mode, platform keys enrolled, not in "
        "Setup Mode) and boot a signed shim/GRUB/kernel; check: mokutil --sb-state"
    )
    if sb.uefi is False:
        yield ctx.failed(HOST, "legacy BIOS boot: no UEFI Secure Boot chain of trust", evidence, fix)
        return
    if sb.enabled is None:
        yield ctx.error(HOST, "the Secure Boot state", "host.secure_boot")
        return
    if not sb.enabled:
        yield ctx.failed(HOST, "UEFI Secure Boot is disabled", evidence, fix)
        return
    if sb.setup_mode:
        yield ctx.failed(
            HOST, "the firmware is in Setup Mode: no Platform Key, Secure Boot is not enforced", evidence, fix
        )
        return
    yield ctx.passed(HOST, "UEFI Secure Boot is enabled", evidence)


@check("11.1.3", id="kvm.attestation", reads=("host.tpm.attestation_agents",))
def attestation(ctx: CheckContext) -> Iterator[Finding]:
    """Always ``manual``: "the means to provide an attestation process" is shown by the verifier's record
    for this host, which is outside the host's facts. A detected agent (e.g. keylime_agent) narrows the
    evidence asked for; without one the auditor needs the attestation mechanism itself."""
    host = ctx.host
    agents = list(host.tpm.attestation_agents) if host is not None else []
    if agents:
        yield ctx.manual(
            HOST,
            f"Attestation agent(s) detected: {', '.join(agents)}. Provide the verifier's record for this "
            "host: its enrolment (e.g. Keylime registrar entry with the TPM's EK/AK) and the latest "
            "attestation result against the expected boot measurements.",
            {"attestation_agents": agents},
        )
        return
    yield ctx.manual(
        HOST,
        "No remote-attestation agent was detected on the host"
        + ("" if host is not None else " (host facts were not collected)")
        + ". Provide evidence of the attestation process: the verifier this host is enrolled with (e.g. "
        "Keylime, or an Intel TXT/tboot launch report) and its latest attestation result for this host.",
        {"attestation_agents": agents},
    )
