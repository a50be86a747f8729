"""vSphere → platform-neutral resource facts: the shape a future vSphere collector fills.

:func:`resources_from_vsphere` maps one VM's properties, as a PropertyCollector read returns them
(``RetrievePropertiesEx`` over a ContainerView, see ``../shared/design/vsphere.md`` §2 and §4), into
:class:`~hvguard.facts.VmResources`. ``props`` is keyed by property path; data objects are mappings of
their documented field names, and each device carries its type as ``_typeName`` (what pyVmomi's
``_wsdlName`` and the vSphere JSON API's ``_typeName`` give). The paths read:

- ``config.hardware.numCPU``, ``config.hardware.memoryMB`` (MB = MiB in vSphere);
- ``config.cpuAllocation`` / ``config.memoryAllocation``: ``ResourceAllocationInfo`` {``reservation``
  (MHz / MB), ``limit`` (MHz / MB, ``-1`` = unlimited), ``shares`` {``level``, ``shares``}};
- ``config.memoryReservationLockedToMax``: the reservation follows the whole configured RAM;
- ``config.hardware.device``: ``VirtualDisk`` (``storageIOAllocation`` {``limit`` IOPS, ``-1`` =
  unlimited; ``shares``}, ``backing.keyId``), ``VirtualEthernetCard`` subtypes (``macAddress``,
  ``resourceAllocation`` {``limit`` Mbit/s, ``-1`` = unlimited}), ``VirtualPCIPassthrough``
  (``backing.id``), ``VirtualTPM``, ``VirtualCdrom``, ``VirtualFloppy``;
- ``config.flags.virtualExecUsage`` (``hvAuto``/``hvOn``/``hvOff``);
- ``config.keyId`` (``CryptoKeyId`` {``keyId``, ``providerId`` {``id``}}): VM Encryption;
- ``config.firmware`` (``bios``/``efi``), ``config.bootOptions.efiSecureBootEnabled``.

A property missing from ``props`` leaves its control ``None``; the collector records why as a
``Problem``, as every hvguard collector does. Conversions: MB × 1,048,576 → bytes; Mbit/s × 125,000 →
bytes/s (network rates are decimal: 1 Mbit/s = 10⁶ bit/s); MHz and IOPS as they are.

Controls vSphere has no per-VM setting for (``VmResources.unsupported``): byte-rate and separate
read/write disk limits (``storageIOAllocation`` is IOPS for both together), a VM-wide disk priority (it is
per disk), per-direction adapter limits (the adapter limit has no direction; traffic shaping is a port
group setting, a host fact), and confinement (every VM runs in its own VMX process; there is no per-VM
switch to turn that off).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from hvguard.facts import (
    Control,
    CpuLimit,
    DiskResources,
    NicResources,
    Shares,
    SharesLevel,
    VmResources,
)

#: Bytes in vSphere's MB (``memoryMB``, memory reservation and limit).
MB = 1024 * 1024
#: Bytes/s in one Mbit/s (``resourceAllocation.limit`` of a network adapter).
MBIT_S = 1_000_000 // 8
#: What vSphere reports for "no limit".
UNLIMITED = -1
#: Controls a vSphere VM has no per-VM setting for.
VSPHERE_UNSUPPORTED: tuple[Control, ...] = (
    "disk_bytes_limit",
    "disk_read_write_limit",
    "io_shares",
    "nic_inbound_limit",
    "nic_outbound_limit",
    "confinement",
)
#: ``VirtualEthernetCard`` subtypes (vSphere 7/8).
NIC_TYPES = frozenset(
    {
        "VirtualE1000",
        "VirtualE1000e",
        "VirtualPCNet32",
        "VirtualSriovEthernetCard",
        "VirtualVmxnet",
        "VirtualVmxnet2",
        "VirtualVmxnet3",
        "VirtualVmxnet3Vrdma",
    }
)
_SHARES_LEVELS: dict[str, SharesLevel] = {
    "low": "low",
    "normal": "normal",
    "high": "high",
    "custom": "custom",
}
_EXEC_USAGE: dict[str, Literal["on", "off", "auto"]] = {"hvOn": "on", "hvOff": "off", "hvAuto": "auto"}


def resources_from_vsphere(props: Mapping[str, Any]) -> VmResources:
    """The neutral resource controls of one vSphere VM from its PropertyCollector properties."""
    cpu = _mapping(props.get("config.cpuAllocation"))
    mem = _mapping(props.get("config.memoryAllocation"))
    memory_mb = _int(props.get("config.hardware.memoryMB"))
    memory = memory_mb * MB if memory_mb is not None else None
    reservation_mb = _positive(mem.get("reservation"))
    devices = [d for d in props.get("config.hardware.device") or () if isinstance(d, Mapping)]
    key = _mapping(props.get("config.keyId")).get("keyId")
    cpu_limit = _limit(cpu.get("limit"))
    memory_limit = _limit(mem.get("limit"))
    return VmResources(
        vcpus=_int(props.get("config.hardware.numCPU")),
        memory_bytes=memory,
        cpu_reservation_mhz=_positive(cpu.get("reservation")),
        cpu_limit=CpuLimit(mhz=cpu_limit) if cpu_limit is not None else None,
        cpu_shares=_shares(cpu.get("shares")),
        memory_reservation_bytes=(
            memory
            if props.get("config.memoryReservationLockedToMax") is True
            else (reservation_mb * MB if reservation_mb is not None else None)
        ),
        memory_limit_bytes=memory_limit * MB if memory_limit is not None else None,
        memory_shares=_shares(mem.get("shares")),
        disks=[
            _disk(d)
            for d in devices
            if d.get("_typeName") in {"VirtualDisk", "VirtualCdrom", "VirtualFloppy"}
        ],
        nics=[_nic(d) for d in devices if d.get("_typeName") in NIC_TYPES],
        passthrough=[_passthrough(d) for d in devices if d.get("_typeName") == "VirtualPCIPassthrough"],
        encryption_key=str(key) if key else None,
        firmware=_firmware(props.get("config.firmware")),
        secure_boot=_bool(_mapping(props.get("config.bootOptions")).get("efiSecureBootEnabled")),
        vtpm=any(d.get("_typeName") == "VirtualTPM" for d in devices),
        hardware_virtualisation=_EXEC_USAGE.get(
            str(_mapping(props.get("config.flags")).get("virtualExecUsage"))
        ),
        unsupported=list(VSPHERE_UNSUPPORTED),
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _positive(value: Any) -> int | None:
    """A reservation: 0 reserves nothing, so it is unset."""
    n = _int(value)
    return n if n is not None and n > 0 else None


def _limit(value: Any) -> int | None:
    """A limit: ``-1`` (or any negative) is unlimited, so unset; 0 is a real, if starving, limit."""
    n = _int(value)
    return n if n is not None and n > UNLIMITED else None


def _shares(value: Any) -> Shares | None:
    info = _mapping(value)
    level = _SHARES_LEVELS.get(str(info.get("level")))
    if level is None:
        return None
    return Shares(level=level, value=_int(info.get("shares")))


def _label(device: Mapping[str, Any], kind: str) -> str:
    label = _mapping(device.get("deviceInfo")).get("label")
    return str(label) if label else f"{kind}-{device.get('key', '?')}"


def _disk(device: Mapping[str, Any]) -> DiskResources:
    kind = str(device.get("_typeName"))
    io = _mapping(device.get("storageIOAllocation"))
    encrypted = bool(_mapping(device.get("backing")).get("keyId"))
    return DiskResources(
        name=_label(device, "disk"),
        device={"VirtualCdrom": "cdrom", "VirtualFloppy": "floppy"}.get(kind, "disk"),
        total_iops_sec=_limit(io.get("limit")),
        shares=_shares(io.get("shares")),
        encryption="vm-encryption" if encrypted else None,
    )


def _nic(device: Mapping[str, Any]) -> NicResources:
    mbit = _limit(_mapping(device.get("resourceAllocation")).get("limit"))
    mac = device.get("macAddress")
    return NicResources(
        name=str(mac) if mac else _label(device, "nic"),
        adapter_bytes_sec=mbit * MBIT_S if mbit is not None else None,
    )


def _passthrough(device: Mapping[str, Any]) -> str:
    backing = _mapping(device.get("backing"))
    return f"pci {backing.get('id') or backing.get('deviceName') or _label(device, 'pci')}"


def _firmware(value: Any) -> Literal["bios", "efi"] | None:
    if value == "bios":
        return "bios"
    if value == "efi":
        return "efi"
    return None
