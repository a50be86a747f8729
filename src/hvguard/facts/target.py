"""A target (one host and/or hypervisor connection) and the offline bundle that carries targets."""

from __future__ import annotations

from enum import StrEnum

from hvguard.facts.base import Model, Problem
from hvguard.facts.host import HostFacts
from hvguard.facts.hypervisor import HypervisorFacts
from hvguard.facts.library import ImageLibraryFacts
from hvguard.facts.vsphere import VsphereFacts

BUNDLE_SCHEMA = "hvguard.bundle/1"


class Platform(StrEnum):
    """Named values of ``TargetFacts.platform``, so checks compare against constants, not spellings.

    A member equals its string (``Platform.KVM_LIBVIRT == "kvm-libvirt"``), so the serialised field stays
    a plain string. The field is not limited to these: a libvirt driver hvguard does not model is
    recorded as ``libvirt-<driver>``.
    """

    KVM_LIBVIRT = "kvm-libvirt"
    """A libvirt connection with the QEMU/KVM driver (or the test driver standing in for it)."""
    LINUX_HOST = "linux-host"
    """Host files only, no hypervisor connection."""
    VMWARE_ESXI = "vmware-esxi"
    """A standalone ESXi host through the vSphere API (``TargetFacts.vsphere``)."""
    VMWARE_VCENTER = "vmware-vcenter"
    """A vCenter Server through the vSphere API (``TargetFacts.vsphere``)."""


#: Platforms that share one facts section and one set of checks. A Linux host whose hypervisor did not
#: answer (``linux-host``) and a libvirt connection of any driver (``libvirt-<driver>``) are read by the
#: same Linux and libvirt checks (which report ``error`` for facts they lack); vSphere targets are not.
_VMWARE_FAMILY = frozenset({Platform.VMWARE_ESXI, Platform.VMWARE_VCENTER})


def platform_family(platform: str) -> str:
    """``vmware`` for vSphere targets, else ``libvirt`` (Linux hosts and libvirt connections)."""
    return "vmware" if platform in _VMWARE_FAMILY else "libvirt"


class CollectionInfo(Model, frozen=True, kw_only=True):
    """How and when the facts were collected."""

    collected_at: str
    tool_version: str
    collectors: list[str] = []
    duration_s: float = 0.0
    privileged: bool | None = None
    """True when the collection ran as root (effective uid 0 locally; over SSH, the remote script ran as
    root or through sudo); False when it did not; None when not recorded (an older bundle)."""
    unreadable: list[str] = []
    """Host paths that exist but could not be read (permission denied): facts that depend on them are
    incomplete, and the checks that need them report ``error``."""


class TargetFacts(Model, frozen=True, kw_only=True):
    """Everything collected for one target (one host and/or one hypervisor connection).

    ``host`` is None when host files were not collected (e.g. a remote libvirt URI); checks that need
    them report ``error`` with the problem recorded under area ``host``. ``unreachable`` holds the reason
    when the target could not be reached at all.
    ``platform`` is one of the :class:`Platform` values (or ``libvirt-<driver>``).
    ``vsphere`` holds the vSphere API facts of a ``vmware-esxi`` / ``vmware-vcenter`` target (None for
    every other platform, and when the connection gave nothing; the reason is then a problem under area
    ``vsphere``).
    """

    id: str
    platform: str
    collection: CollectionInfo
    host: HostFacts | None = None
    hypervisor: HypervisorFacts | None = None
    vsphere: VsphereFacts | None = None
    problems: list[Problem] = []
    unreachable: str | None = None
    #: The hvguard image library the estate uses (``scan --library URL``), or None when none was given.
    image_library: ImageLibraryFacts | None = None
    #: The target's inventory groups (``--inventory``: Ansible groups, sorted; Ansible's implicit
    #: ``all``/``ungrouped`` are never listed); ``()`` for a target given without an inventory.
    groups: tuple[str, ...] = ()


class Bundle(Model, frozen=True, kw_only=True):
    """An offline evidence bundle: ``hvguard collect`` writes it, ``hvguard evaluate`` reads it."""

    schema: str
    facts_version: int
    tool_version: str
    created_at: str
    targets: list[TargetFacts] = []


BUNDLE_SCHEMA = "hvguard.bundle/1"
