"""Platform-neutral VM resource controls and the platform's offer of them.

Every hypervisor platform fills the same shape: the KVM/libvirt collector maps its domain XML facts into
it (``hvguard.collect.libvirt.resources``), a vSphere collector maps ``VirtualMachine.config`` into it
(``hvguard.collect.vsphere.resources``). What only one platform has (libvirt ``<memtune><soft_limit>``,
qemu.conf, polkit, ESXi advanced options) stays in that platform's own facts.

Units, once for the whole module:

- sizes are **bytes**; rates are **bytes/s**; I/O operation rates are **IOPS**;
- CPU clock is **MHz** (vSphere's unit); CPU time as a share of the host is **host CPUs' worth**
  (``0.5`` = half of one host CPU), the unit of libvirt's ``quota``/``period``;
- a priority is :class:`Shares` ``{level, value}``.

Three states of a control, kept apart:

- **set**: the field holds a value;
- **unset**: the field is ``None`` (or an empty list) and the control's name is *not* in
  ``VmResources.unsupported`` — the platform could set it, this VM does not (a limit of "unlimited",
  vSphere's ``-1``, is unset);
- **unsupported**: the control's name is in ``VmResources.unsupported`` — the platform has no per-VM
  setting for it, so a check must judge it from the platform's own facts or from an attestation, never
  fail the VM for leaving it unset. Its field is then ``None``.

A VM whose definition could not be read (``VmFacts.error``) has the empty default and must not be judged
on it, as for every other VM fact.

Encoding: these structs leave out fields at their default (``omit_defaults``), so a bundle of 10,000
VMs does not carry every unset control as ``null``; a missing key decodes to its default. No field
has a string default: msgspec tells a default string by identity, so an equal string read back from
JSON would be written out again and a fresh scan and a migrated one would encode differently.
"""

from __future__ import annotations

from typing import Literal

from hvguard.facts.base import Model

#: vSphere's ``SharesInfo.level``; libvirt's numeric weights are ``custom``.
SharesLevel = Literal["low", "normal", "high", "custom"]

#: The names ``VmResources.unsupported`` uses for controls.
Control = Literal[
    "cpu_reservation",
    "cpu_limit",
    "cpu_shares",
    "memory_reservation",
    "memory_limit",
    "memory_shares",
    "io_shares",
    "disk_bytes_limit",
    "disk_iops_limit",
    "disk_read_write_limit",
    "nic_inbound_limit",
    "nic_outbound_limit",
    "nic_adapter_limit",
    "confinement",
    "vm_encryption",
    "disk_encryption",
    "hardware_virtualisation",
]

#: The controls :class:`ControlsOffered` reports on, as its field names.
OfferedControl = Literal[
    "memory_limit", "memory_guarantee", "memory_priority", "cpu_limit", "cpu_guarantee", "cpu_priority"
]


class Shares(Model, frozen=True, kw_only=True, omit_defaults=True):
    """A relative priority under contention: more shares, a larger slice when resources are short.

    ``level`` is vSphere's named level (``low``/``normal``/``high``) or ``custom`` for an explicit number,
    which is how libvirt's weights (``<cputune><shares>``, ``<blkiotune><weight>``) are recorded. ``value``
    is the number of shares (vSphere reports it for every level); ``None`` when the platform gave only
    the level.
    """

    level: SharesLevel
    value: int | None = None


class CpuLimit(Model, frozen=True, kw_only=True, omit_defaults=True):
    """An upper bound on the CPU a VM may use, in the unit the platform speaks; the others are ``None``.

    - ``mhz``: the whole VM, in MHz (vSphere ``cpuAllocation.limit``);
    - ``cpus``: the whole VM, in host CPUs' worth of time per period (libvirt
      ``global_quota``/``global_period``);
    - ``cpus_per_vcpu``: each vCPU thread, in host CPUs' worth (libvirt ``quota``/``period``). A value
      of 1 or more can never throttle a single vCPU thread; it is recorded as set, and a check decides.

    hvguard never converts between MHz and CPU time: a host's clock speed varies with load and power
    state, so such a figure would be invented.
    """

    mhz: int | None = None
    cpus: float | None = None
    cpus_per_vcpu: float | None = None


class DiskResources(Model, frozen=True, kw_only=True, omit_defaults=True):
    """One virtual disk's controls. ``name`` identifies it on its platform (libvirt target ``vda``,
    vSphere device label ``Hard disk 1``); ``device`` is ``disk``, ``cdrom`` or ``floppy``.

    Limits are bytes/s and IOPS; ``None`` = no limit. ``total_*`` bounds reads and writes together.
    ``shares`` is this disk's I/O priority; ``encryption`` names the scheme protecting its image (libvirt
    ``luks``/``qcow``, vSphere ``vm-encryption``), ``None`` when it is not encrypted.
    """

    name: str
    device: str
    total_bytes_sec: int | None = None
    read_bytes_sec: int | None = None
    write_bytes_sec: int | None = None
    total_iops_sec: int | None = None
    read_iops_sec: int | None = None
    write_iops_sec: int | None = None
    shares: Shares | None = None
    encryption: str | None = None


class NicResources(Model, frozen=True, kw_only=True, omit_defaults=True):
    """One virtual network adapter's bandwidth limits, in bytes/s; ``None`` = no limit.

    ``inbound``/``outbound`` are seen from the VM (libvirt ``<bandwidth>`` ``average``).
    ``adapter_bytes_sec`` is a limit the platform documents without a direction (vSphere
    ``VirtualEthernetCard.resourceAllocation.limit``: "the utilization of the virtual network adapter will
    not exceed this limit"); a check decides which directions it answers for. ``name`` is the MAC address
    where there is one, else the platform's device name.
    """

    name: str
    inbound_bytes_sec: int | None = None
    outbound_bytes_sec: int | None = None
    adapter_bytes_sec: int | None = None


class Confinement(Model, frozen=True, kw_only=True, omit_defaults=True):
    """What the VM's own definition says about confining its process to its own devices.

    ``opted_out`` is True when the definition switches confinement off (libvirt ``<seclabel type='none'>``
    or model ``none``); ``models`` are the security models it names (``selinux``, ``apparmor``, ``dac``),
    empty when the platform default applies. Whether that default confines is a platform fact.
    """

    opted_out: bool = False
    models: list[str] = []


class VmResources(Model, frozen=True, kw_only=True, omit_defaults=True):
    """A VM's resource and isolation controls in the platform-neutral shape (units: see the module).

    - ``vcpus``: the vCPU count the VM can reach (libvirt ``<vcpu>`` maximum, vSphere ``numCPU``);
    - ``memory_bytes``: configured guest RAM;
    - ``cpu_reservation_mhz`` / ``cpu_limit`` / ``cpu_shares``: CPU guarantee, ceiling and priority;
    - ``memory_reservation_bytes`` / ``memory_limit_bytes`` / ``memory_shares``: RAM guarantee, ceiling
      and priority. A reservation of the whole RAM is ``memory_bytes``;
    - ``io_shares``: the VM-wide disk I/O priority (libvirt ``<blkiotune><weight>``);
    - ``disks`` / ``nics``: per-device limits;
    - ``confinement``: the definition's confinement settings, ``None`` when unsupported;
    - ``passthrough``: host devices assigned to the VM, as ``type address`` (``pci 0000:3b:00.0``,
      ``usb 046d:c077``), empty when none;
    - ``encryption_key``: the key that encrypts the whole VM (vSphere ``config.keyId``), ``None`` when
      it is not encrypted as a whole;
    - ``firmware`` (``bios``/``efi``, ``None`` when it cannot be told), ``secure_boot``, ``vtpm``
      (a virtual TPM is attached);
    - ``hardware_virtualisation``: the VM runs on the CPU's virtualisation extensions (``on``), in
      software (``off``) or as the host decides (``auto``);
    - ``unsupported``: controls the platform has no per-VM setting for (see the module notes).
    """

    vcpus: int | None = None
    memory_bytes: int | None = None
    cpu_reservation_mhz: int | None = None
    cpu_limit: CpuLimit | None = None
    cpu_shares: Shares | None = None
    memory_reservation_bytes: int | None = None
    memory_limit_bytes: int | None = None
    memory_shares: Shares | None = None
    io_shares: Shares | None = None
    disks: list[DiskResources] = []
    nics: list[NicResources] = []
    confinement: Confinement | None = None
    passthrough: list[str] = []
    encryption_key: str | None = None
    firmware: Literal["bios", "efi"] | None = None
    secure_boot: bool | None = None
    vtpm: bool = False
    hardware_virtualisation: Literal["on", "off", "auto"] | None = None
    unsupported: list[Control] = []


class ControlsOffered(Model, frozen=True, kw_only=True, omit_defaults=True):
    """Which per-VM resource controls the platform offers (measures 11.3.2 and 11.3.4 ask for the offer).

    Each field is True (offered), False (known not to be offered) or ``None`` (hvguard does not assess
    this platform's offer: a human must show it). ``approximate`` names controls that are offered only
    in a weaker form than the measure's words (KVM: a memory priority only as ``<memtune><soft_limit>``
    contention behaviour, a CPU guarantee only as dedicated ``<vcpupin>`` pinning).

    ``HypervisorFacts.controls_offered`` is ``None`` when the collector could not tell which platform or
    driver it talked to.
    """

    memory_limit: bool | None = None
    memory_guarantee: bool | None = None
    memory_priority: bool | None = None
    cpu_limit: bool | None = None
    cpu_guarantee: bool | None = None
    cpu_priority: bool | None = None
    approximate: list[OfferedControl] = []
