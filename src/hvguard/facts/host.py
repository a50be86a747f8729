"""Host facts: read from the host's files (``/`` or an offline ``--root``) and, live, its processes."""

from __future__ import annotations

from hvguard.facts.access import AccessFacts
from hvguard.facts.base import ConfFile, Model
from hvguard.facts.operations import OperationsFacts


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
    access: AccessFacts | None = None
    """Access-control facts; None when not collected (e.g. an older bundle)."""
    operations: OperationsFacts | None = None
    """Logging, firewall, patching, network and storage facts; None when not collected."""
