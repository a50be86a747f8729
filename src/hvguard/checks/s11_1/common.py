"""What several 11.1 measure modules share."""

from __future__ import annotations

from hvguard.catalog.checks import static_remediation
from hvguard.facts import Capabilities

#: Domain types that emulate the CPU in software: QEMU's TCG is a user-space, Type 2-like hypervisor.
SOFTWARE_DOMAIN_TYPES: dict[str, str] = {
    "qemu": "QEMU TCG software emulation (Type 2-like)",
    "kqemu": "QEMU with the kqemu accelerator (software, Type 2-like)",
}


def caps_offer_kvm(caps: Capabilities | None) -> bool | None:
    """Whether libvirt's capabilities offer domain type 'kvm' for the host architecture (None: unknown)."""
    if caps is None or not caps.guests:
        return None
    arch = caps.host_arch
    return any("kvm" in g.domain_types and (arch is None or g.arch == arch) for g in caps.guests)


NO_KVM_FIX = static_remediation("kvm.type1-hypervisor")  # text in hvguard/catalog/checks.yaml
