"""Which platform's controls a target offers — the one place checks decide this.

Checks never read a URI or a driver name themselves; they ask :func:`offers_libvirt_qemu_controls`.
"""

from __future__ import annotations

from hvguard.facts import HypervisorFacts


def offers_libvirt_qemu_controls(hv: HypervisorFacts) -> bool | None:
    """True when the connection is libvirt's QEMU/KVM driver (its domain XML offers memtune, cputune …),
    False for another libvirt driver, None when the driver is unknown."""
    # platform: replaced by facts — decided from the target's platform-neutral fact once it exists.
    if (hv.driver or "").upper() == "QEMU" or hv.uri.startswith("qemu"):
        return True
    if hv.driver is None:
        return None
    return False
