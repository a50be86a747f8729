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
"""

from __future__ import annotations

from hvguard.facts import access, operations
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
from hvguard.facts.operations import *  # noqa: F403  (every name in operations.__all__)
from hvguard.facts.target import BUNDLE_SCHEMA, Bundle, CollectionInfo, TargetFacts

#: Bump when a field's meaning or type changes, or fields are added that old bundles lack.
FACTS_VERSION = 2  # 2: access-control and operations facts (HostFacts.access, .operations)

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
    "BUNDLE_SCHEMA",
    "CollectionInfo",
    "TargetFacts",
    "Bundle",
    "FACTS_VERSION",
    *access.__all__,
    *operations.__all__,
]
