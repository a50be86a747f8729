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

import msgspec

FACTS_VERSION = 1


class Model(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every facts struct: immutable, keyword-only, strict when decoded from a bundle."""


# --------------------------------------------------------------------------------------------------------
# Collection bookkeeping


class Problem(Model, frozen=True, kw_only=True):
    """A fact that could not be collected or parsed.

    ``area`` is a dotted fact-group name (``host.cpu``, ``host.qemu_conf``, ``hypervisor``, ``vm:NAME``),
    ``source`` the file, command or API call involved, ``message`` a one-line reason.
    """

    area: str
    source: str
    message: str


class ConfValue(Model, frozen=True, kw_only=True):
    """One setting from a libvirt-style config file: its parsed value and where it was written."""

    value: str | int | bool | list[str]
    line: int


class ConfFile(Model, frozen=True, kw_only=True):
    """A parsed configuration file (qemu.conf, libvirtd.conf).

    ``present`` is False when the file does not exist (built-in defaults then apply); ``error`` holds the
    parse error (file and line) when it exists but could not be parsed.
    """

    path: str
    present: bool = False
    values: dict[str, ConfValue] = {}
    error: str | None = None


# --------------------------------------------------------------------------------------------------------
# Host


class CpuFacts(Model, frozen=True, kw_only=True):
    """Host processor facts. ``physical_cores`` counts unique (socket, core) pairs, not threads."""

    vendor: str | None = None
    model: str | None = None
    flags: list[str] = []
    sockets: int | None = None
    physical_cores: int | None = None
    logical_cpus: int | None = None
    source: str = ""


class MemoryFacts(Model, frozen=True, kw_only=True):
    """Host physical memory."""

    total_kib: int | None = None
    source: str = ""


class KvmFacts(Model, frozen=True, kw_only=True):
    """The KVM kernel side: modules, the device node and the MMU-virtualisation module parameters."""

    modules: list[str] = []
    dev_kvm_present: bool | None = None
    dev_kvm_mode: str | None = None
    dev_kvm_group: str | None = None
    ept: bool | None = None
    npt: bool | None = None


class IommuFacts(Model, frozen=True, kw_only=True):
    """IOMMU (VT-d / AMD-Vi) state: groups present under /sys/kernel/iommu_groups and cmdline switches."""

    groups: int | None = None
    cmdline_flags: list[str] = []


class TpmFacts(Model, frozen=True, kw_only=True):
    """TPM and measured-boot evidence."""

    present: bool | None = None
    version_major: int | None = None
    event_log_present: bool | None = None
    ima_measurements: int | None = None
    attestation_agents: list[str] = []


class SecureBootFacts(Model, frozen=True, kw_only=True):
    """UEFI Secure Boot state from efivars. ``uefi`` False means a legacy-BIOS boot."""

    uefi: bool | None = None
    enabled: bool | None = None
    setup_mode: bool | None = None
    source: str = ""


class KernelFacts(Model, frozen=True, kw_only=True):
    """Running-kernel security settings."""

    release: str | None = None
    cmdline: str | None = None
    lockdown: str | None = None
    sig_enforce: bool | None = None
    tainted: int | None = None
    module_blacklist: list[str] = []


class QemuProcess(Model, frozen=True, kw_only=True):
    """A running QEMU process and the account it runs as."""

    pid: int
    user: str
    uid: int
    vm_name: str | None = None


class HostFacts(Model, frozen=True, kw_only=True):
    """Facts read from the host's files (``/`` or an offline ``--root``)."""

    root: str = "/"
    hostname: str | None = None
    os_id: str | None = None
    os_version: str | None = None
    default_target: str | None = None
    cpu: CpuFacts = CpuFacts()
    memory: MemoryFacts = MemoryFacts()
    kvm: KvmFacts = KvmFacts()
    iommu: IommuFacts = IommuFacts()
    tpm: TpmFacts = TpmFacts()
    secure_boot: SecureBootFacts = SecureBootFacts()
    kernel: KernelFacts = KernelFacts()
    qemu_conf: ConfFile = ConfFile(path="/etc/libvirt/qemu.conf")
    libvirtd_conf: ConfFile = ConfFile(path="/etc/libvirt/libvirtd.conf")
    qemu_processes: list[QemuProcess] | None = None


# --------------------------------------------------------------------------------------------------------
# Hypervisor (libvirt)


class NodeInfo(Model, frozen=True, kw_only=True):
    """``virNodeGetInfo``: CPU topology and memory as the hypervisor sees them."""

    model: str = ""
    memory_kib: int = 0
    cpus: int = 0
    mhz: int = 0
    numa_nodes: int = 0
    sockets: int = 0
    cores: int = 0
    threads: int = 0


class SecModel(Model, frozen=True, kw_only=True):
    """A security driver the hypervisor offers (``<secmodel>`` in capabilities)."""

    model: str
    doi: str = ""


class GuestCaps(Model, frozen=True, kw_only=True):
    """One ``<guest>`` of the capabilities: OS type, arch and the domain types it accepts."""

    os_type: str
    arch: str
    domain_types: list[str] = []


class Capabilities(Model, frozen=True, kw_only=True):
    """The parts of ``<capabilities>`` hvguard uses."""

    host_arch: str | None = None
    cpu_vendor: str | None = None
    cpu_model: str | None = None
    cpu_features: list[str] = []
    topology_sockets: int | None = None
    topology_cores: int | None = None
    topology_threads: int | None = None
    secmodels: list[SecModel] = []
    guests: list[GuestCaps] = []


class OsFacts(Model, frozen=True, kw_only=True):
    """``<os>``: guest type, firmware and Secure Boot."""

    type: str | None = None
    arch: str | None = None
    machine: str | None = None
    firmware: str | None = None
    loader: str | None = None
    loader_secure: bool | None = None
    secure_boot: bool | None = None


class VcpuFacts(Model, frozen=True, kw_only=True):
    """``<vcpu>``: ``maximum`` is the element text (the hot-plug ceiling), ``current`` its attribute."""

    maximum: int = 1
    current: int | None = None
    placement: str | None = None
    cpuset: str | None = None


class VcpuPin(Model, frozen=True, kw_only=True):
    """``<vcpupin vcpu= cpuset=>``."""

    vcpu: int
    cpuset: str


class CpuTune(Model, frozen=True, kw_only=True):
    """``<cputune>``: shares is the priority weight, period/quota the upper limit, pins the lower bound."""

    shares: int | None = None
    period: int | None = None
    quota: int | None = None
    global_period: int | None = None
    global_quota: int | None = None
    emulator_period: int | None = None
    emulator_quota: int | None = None
    vcpupins: list[VcpuPin] = []
    emulatorpin: str | None = None


class MemTune(Model, frozen=True, kw_only=True):
    """``<memtune>`` in KiB. ``min_guarantee`` is recorded but is not valid for QEMU."""

    hard_limit_kib: int | None = None
    soft_limit_kib: int | None = None
    swap_hard_limit_kib: int | None = None
    min_guarantee_kib: int | None = None


class MemoryBacking(Model, frozen=True, kw_only=True):
    """``<memoryBacking>``."""

    locked: bool = False
    hugepages: bool = False
    nosharepages: bool = False
    source_type: str | None = None


class BlkioDevice(Model, frozen=True, kw_only=True):
    """``<blkiotune><device>``: per-host-device weight and throttles."""

    path: str
    weight: int | None = None
    read_bytes_sec: int | None = None
    write_bytes_sec: int | None = None
    read_iops_sec: int | None = None
    write_iops_sec: int | None = None


class BlkioTune(Model, frozen=True, kw_only=True):
    """``<blkiotune>``."""

    weight: int | None = None
    devices: list[BlkioDevice] = []


class DiskEncryption(Model, frozen=True, kw_only=True):
    """``<encryption>`` on a disk or its source."""

    format: str
    secret_type: str | None = None
    secret_uuid: str | None = None
    secret_usage: str | None = None


class SecLabel(Model, frozen=True, kw_only=True):
    """A ``<seclabel>`` (domain level or on a disk source)."""

    type: str | None = None
    model: str | None = None
    relabel: bool | None = None
    label: str | None = None
    imagelabel: str | None = None


class Disk(Model, frozen=True, kw_only=True):
    """A ``<disk>``: device kind, backing source, encryption and ``<iotune>`` limits."""

    device: str = "disk"
    type: str | None = None
    target: str | None = None
    bus: str | None = None
    driver_type: str | None = None
    source_path: str | None = None
    source_protocol: str | None = None
    source_name: str | None = None
    source_hosts: list[str] = []
    source_pool: str | None = None
    source_volume: str | None = None
    source_tls: bool | None = None
    readonly: bool = False
    shareable: bool = False
    encryption: DiskEncryption | None = None
    iotune: dict[str, int] = {}
    seclabels: list[SecLabel] = []


class Bandwidth(Model, frozen=True, kw_only=True):
    """One direction of an interface ``<bandwidth>``; KiB/s for average/peak/floor, KiB for burst."""

    average: int | None = None
    peak: int | None = None
    burst: int | None = None
    floor: int | None = None


class Interface(Model, frozen=True, kw_only=True):
    """A ``<interface>``: how it is attached and its QoS."""

    type: str | None = None
    mac: str | None = None
    model: str | None = None
    source: str | None = None
    target_dev: str | None = None
    inbound: Bandwidth | None = None
    outbound: Bandwidth | None = None
    filterref: str | None = None


class Hostdev(Model, frozen=True, kw_only=True):
    """A ``<hostdev>`` passed through from the host."""

    mode: str | None = None
    type: str | None = None
    source: str = ""
    managed: bool | None = None


class Graphics(Model, frozen=True, kw_only=True):
    """A ``<graphics>`` console: where it listens and whether it is protected."""

    type: str
    listen: list[str] = []
    autoport: bool | None = None
    port: int | None = None
    password_set: bool = False
    tls: bool | None = None


class Tpm(Model, frozen=True, kw_only=True):
    """A virtual TPM."""

    model: str | None = None
    backend: str | None = None
    version: str | None = None


class EmulatedDevices(Model, frozen=True, kw_only=True):
    """Emulated devices that enlarge the attack surface (counts and details)."""

    usb_controllers: list[str] = []
    usb_devices: int = 0
    redirdevs: int = 0
    serials: int = 0
    parallels: int = 0
    channels: int = 0
    consoles: int = 0
    floppies: int = 0
    cdroms: int = 0
    sounds: list[str] = []
    smartcards: int = 0
    watchdogs: list[str] = []
    graphics: list[Graphics] = []
    videos: list[str] = []
    rngs: list[str] = []
    memballoon: str | None = None


class VmFacts(Model, frozen=True, kw_only=True):
    """One libvirt domain, active or inactive, as parsed from its XML.

    ``error`` is set when the XML could not be fetched or parsed; the other fields are then defaults
    and must not be trusted (checks report ``error`` for such a VM).
    """

    name: str
    uuid: str | None = None
    domain_type: str | None = None
    active: bool | None = None
    persistent: bool | None = None
    xml_sha256: str | None = None
    error: str | None = None
    os: OsFacts = OsFacts()
    vcpu: VcpuFacts = VcpuFacts()
    memory_kib: int | None = None
    current_memory_kib: int | None = None
    max_memory_kib: int | None = None
    cputune: CpuTune = CpuTune()
    memtune: MemTune = MemTune()
    memory_backing: MemoryBacking = MemoryBacking()
    blkiotune: BlkioTune = BlkioTune()
    disks: list[Disk] = []
    interfaces: list[Interface] = []
    seclabels: list[SecLabel] = []
    hostdevs: list[Hostdev] = []
    devices: EmulatedDevices = EmulatedDevices()
    tpms: list[Tpm] = []
    metadata_tags: dict[str, str] = {}


class HypervisorFacts(Model, frozen=True, kw_only=True):
    """A libvirt connection and every domain defined on it."""

    uri: str
    driver: str | None = None
    hypervisor_type: str | None = None
    hypervisor_version: str | None = None
    libvirt_version: str | None = None
    hostname: str | None = None
    node: NodeInfo | None = None
    capabilities: Capabilities | None = None
    vms: list[VmFacts] = []


# --------------------------------------------------------------------------------------------------------
# Target


class CollectionInfo(Model, frozen=True, kw_only=True):
    """How and when the facts were collected."""

    collected_at: str
    tool_version: str
    collectors: list[str] = []
    duration_s: float = 0.0


class TargetFacts(Model, frozen=True, kw_only=True):
    """Everything collected for one target (one host and/or one hypervisor connection).

    ``host`` is None when host files were not collected (e.g. a remote libvirt URI); checks that need
    them report ``error`` with the problem recorded under area ``host``. ``unreachable`` holds the reason
    when the target could not be reached at all.
    """

    id: str
    platform: str
    collection: CollectionInfo
    host: HostFacts | None = None
    hypervisor: HypervisorFacts | None = None
    problems: list[Problem] = []
    unreachable: str | None = None


class Bundle(Model, frozen=True, kw_only=True):
    """An offline evidence bundle: ``hvguard collect`` writes it, ``hvguard evaluate`` reads it."""

    schema: str
    facts_version: int
    tool_version: str
    created_at: str
    targets: list[TargetFacts] = []


BUNDLE_SCHEMA = "hvguard.bundle/1"
