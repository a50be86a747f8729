"""The facts model: everything hvguard knows about a target, collected once and evaluated many times.

Collectors (``hvguard.collect``) fill it; checks (``hvguard.checks``) read it and never do I/O. The model
is versioned (``FACTS_VERSION``) and serialised as-is into offline evidence bundles, so a change to a
field's meaning or type must bump the version.

Conventions:
- ``None`` means "not known": the collector could not read it. Every such gap has a matching
  :class:`Problem` in ``TargetFacts.problems`` whose ``area`` names the fact group, so a check can say
  *why* it cannot decide (status ``error``) instead of guessing.
- Sizes are KiB (as libvirt reports them), times are microseconds, rates are KiB/s (libvirt's unit for
  ``<bandwidth>``) and bytes/s or IOPS for ``<iotune>``.
- The platform-neutral parts (:mod:`hvguard.facts.resources`: ``VmFacts.resources``,
  ``HypervisorFacts.controls_offered``) use bytes, bytes/s, IOPS and MHz instead; their module defines
  them, and "unsupported by this platform" apart from "unset".
"""

from __future__ import annotations

from hvguard.facts import access, library, operations, vsphere
from hvguard.facts.access import *  # noqa: F403  (every name in access.__all__)
from hvguard.facts.base import ConfFile, ConfValue, Model, Problem
from hvguard.facts.host import (
    CpuFacts,
    HostFacts,
    IommuFacts,
    KernelFacts,
    KvmFacts,
    MemoryFacts,
    QemuProcess,
    SecureBootFacts,
    TpmFacts,
)
from hvguard.facts.hypervisor import (
    Bandwidth,
    BlkioDevice,
    BlkioTune,
    Capabilities,
    CpuTune,
    Disk,
    DiskEncryption,
    EmulatedDevices,
    Graphics,
    GuestCaps,
    Hostdev,
    HypervisorFacts,
    Interface,
    MemoryBacking,
    MemTune,
    NodeInfo,
    OsFacts,
    SecLabel,
    SecModel,
    Tpm,
    VcpuFacts,
    VcpuPin,
    VmFacts,
)
from hvguard.facts.library import *  # noqa: F403  (every name in library.__all__)
from hvguard.facts.operations import *  # noqa: F403  (every name in operations.__all__)
from hvguard.facts.resources import (
    Confinement,
    Control,
    ControlsOffered,
    CpuLimit,
    DiskResources,
    NicResources,
    OfferedControl,
    Shares,
    SharesLevel,
    VmResources,
)
from hvguard.facts.target import BUNDLE_SCHEMA, Bundle, CollectionInfo, Platform, TargetFacts, platform_family
from hvguard.facts.vsphere import *  # noqa: F403  (every name in vsphere.__all__)

#: Bump when a field's meaning or type changes, or fields are added that old bundles lack.
#: 2: access-control and operations facts (HostFacts.access, .operations).
#: 3: platform-neutral VM resource controls (VmFacts.resources) and the driver's offer of them
#:    (HypervisorFacts.controls_offered). Both are derived from version-2 fields, so a version-2 bundle
#:    or stored scan is migrated on read (``hvguard.collect.migrate``); nothing else changed.
#: 4: vSphere API facts (TargetFacts.vsphere). Only added, and None for every target an older hvguard
#:    wrote (all Linux/libvirt), so a version-3 document decodes as-is; the bump makes an older hvguard
#:    refuse a bundle holding vSphere facts with its "facts model version" message.
#: 5: inventory groups (TargetFacts.groups). Only added, and () for every target an older hvguard wrote,
#:    so a version-4 document decodes as-is; the bump makes an older hvguard refuse a bundle with groups
#:    with its "facts model version" message rather than an unknown-field error.
FACTS_VERSION = 5

#: The oldest facts version this hvguard still reads (by migrating it to ``FACTS_VERSION``).
OLDEST_READABLE_FACTS_VERSION = 2

__all__ = [
    "Model",
    "Problem",
    "ConfValue",
    "ConfFile",
    "CpuFacts",
    "MemoryFacts",
    "KvmFacts",
    "IommuFacts",
    "TpmFacts",
    "SecureBootFacts",
    "KernelFacts",
    "QemuProcess",
    "HostFacts",
    "NodeInfo",
    "SecModel",
    "GuestCaps",
    "Capabilities",
    "OsFacts",
    "VcpuFacts",
    "VcpuPin",
    "CpuTune",
    "MemTune",
    "MemoryBacking",
    "BlkioDevice",
    "BlkioTune",
    "DiskEncryption",
    "SecLabel",
    "Disk",
    "Bandwidth",
    "Interface",
    "Hostdev",
    "Graphics",
    "Tpm",
    "EmulatedDevices",
    "VmFacts",
    "HypervisorFacts",
    "SharesLevel",
    "Control",
    "OfferedControl",
    "Shares",
    "CpuLimit",
    "DiskResources",
    "NicResources",
    "Confinement",
    "VmResources",
    "ControlsOffered",
    "Platform",
    "platform_family",
    "BUNDLE_SCHEMA",
    "CollectionInfo",
    "TargetFacts",
    "Bundle",
    "FACTS_VERSION",
    "OLDEST_READABLE_FACTS_VERSION",
    *access.__all__,
    *operations.__all__,
    *vsphere.__all__,
    *library.__all__,
]
