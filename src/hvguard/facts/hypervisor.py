"""Hypervisor facts: a libvirt connection, its node and every domain defined on it."""

from __future__ import annotations

from hvguard.facts.base import Model
from hvguard.facts.resources import ControlsOffered, VmResources


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

    ``resources`` is the platform-neutral view of the VM's controls (:mod:`hvguard.facts.resources`),
    derived from the libvirt fields above by ``hvguard.collect.libvirt.resources``; the libvirt fields
    stay as the platform's own detail.
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
    resources: VmResources = VmResources()


class HypervisorFacts(Model, frozen=True, kw_only=True):
    """A libvirt connection and every domain defined on it.

    ``controls_offered`` is the platform-neutral statement of which per-VM resource controls the
    connection's driver offers (:class:`ControlsOffered`); ``None`` when the driver is not known.
    """

    uri: str
    driver: str | None = None
    hypervisor_type: str | None = None
    hypervisor_version: str | None = None
    libvirt_version: str | None = None
    hostname: str | None = None
    node: NodeInfo | None = None
    capabilities: Capabilities | None = None
    vms: list[VmFacts] = []
    controls_offered: ControlsOffered | None = None
