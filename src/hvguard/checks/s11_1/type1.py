"""Checks for SS-009 11.1.1.

11.1.1 Type 1 hypervisor by default

Checks: ``type1_hypervisor``, ``host_not_desktop``, ``vm_domain_type``, ``hypervisor_type_record``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import HOST, CheckContext, check, vm_subject
from hvguard.checks.s11_1.common import NO_KVM_FIX, SOFTWARE_DOMAIN_TYPES, caps_offer_kvm
from hvguard.checks.support.shell import shell_word as sh
from hvguard.checks.support.subjects import host_area, vms_or_not_applicable
from hvguard.facts import VmFacts
from hvguard.findings import Finding

#: libvirt domain types (virDomainVirtType) that run guests on a Type 1 or kernel-integrated hypervisor.
#: KVM and bhyve turn the host kernel into the hypervisor (classed Type 1, with the caveat of a
#: general-purpose host OS); Xen and Hyper-V are bare-metal.
TYPE1_DOMAIN_TYPES: dict[str, str] = {
    "kvm": "KVM (kernel-integrated; general-purpose host OS)",
    "xen": "Xen (Type 1)",
    "hyperv": "Hyper-V (Type 1)",
    "bhyve": "bhyve (kernel-integrated)",
}


#: Hosted (Type 2) hypervisors libvirt can drive.
HOSTED_DOMAIN_TYPES: dict[str, str] = {
    "vbox": "VirtualBox (Type 2)",
    "hvf": "QEMU on macOS Hypervisor.framework (hosted, Type 2)",
    "parallels": "Parallels (Type 2)",
}


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
    caps_kvm = caps_offer_kvm(hv.capabilities if hv is not None else None)
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
        NO_KVM_FIX,
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

    def judge(vm: VmFacts) -> Iterator[Finding]:
        subject = vm_subject(vm)
        dtype = vm.domain_type
        if dtype is None:
            yield ctx.error(subject, "the VM's domain type", subject)
            return
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
                f"virsh edit {sh(vm.name)}    # change the root element to: <domain type='kvm'>\n"
                f"then restart the VM: virsh shutdown {sh(vm.name)} && virsh start {sh(vm.name)}",
            )
        else:
            yield ctx.manual(
                subject,
                f"domain type '{dtype}' is not a KVM/QEMU type and cannot be classified as Type 1 or "
                "Type 2 from the domain XML alone: record which hypervisor product runs this VM",
                evidence,
            )

    yield from vms_or_not_applicable(ctx, judge)


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
