"""Virtual machines in two PropertyCollector passes: a narrow one (identity, placement, sizes,
reservations, limits, shares, flags, encryption key, firmware) and one for the heavy parts —
``config.hardware.device`` and ``config.extraConfig`` — which dominate the wire size and the client's
parsing time (``../shared/design/vsphere.md`` §4). The neutral resource view comes from
:func:`~hvguard.collect.vsphere.resources.resources_from_vsphere` over both passes' properties.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hvguard.collect.vsphere.api import ApiCall
from hvguard.collect.vsphere.connection import Connection
from hvguard.collect.vsphere.inventory import Tree
from hvguard.collect.vsphere.props import retrieve
from hvguard.collect.vsphere.resources import NIC_TYPES, resources_from_vsphere
from hvguard.collect.vsphere.values import boolean, dig, items, mapping, strings, text
from hvguard.facts import Problem, VmDevice, VmFlags, VsphereVm, vm_area

NARROW_PATHS = (
    "name",
    "parent",
    "resourcePool",
    "runtime.host",
    "runtime.powerState",
    "network",
    "config.template",
    "config.uuid",
    "config.guestId",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.cpuAllocation",
    "config.memoryAllocation",
    "config.memoryReservationLockedToMax",
    "config.flags",
    "config.keyId",
    "config.firmware",
    "config.bootOptions",
)
DEVICE_PATHS = ("config.hardware.device", "config.extraConfig")
#: Paths every configured VM has; their absence is a gap (an inaccessible VM has no config).
_REQUIRED = (
    "name",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.cpuAllocation",
    "config.memoryAllocation",
    "config.flags",
)
CALLS = (
    ApiCall(
        "RetrievePropertiesEx",
        "VirtualMachine (ContainerView of the root folder)",
        NARROW_PATHS,
        "identity, placement, vCPUs, memory, reservations, limits, shares, flags, encryption, firmware",
    ),
    ApiCall(
        "RetrievePropertiesEx",
        "VirtualMachine (ContainerView of the root folder), second pass",
        DEVICE_PATHS,
        "virtual devices and isolation settings (11.2.7, 11.3.10)",
    ),
)
#: Devices 11.2.7 judges (isolation): removable media, ports, USB, passthrough, network adapters.
_DEVICE_TYPES = frozenset(
    {
        "VirtualFloppy",
        "VirtualCdrom",
        "VirtualSerialPort",
        "VirtualParallelPort",
        "VirtualUSBController",
        "VirtualUSBXHCIController",
        "VirtualUSB",
        "VirtualPCIPassthrough",
        "VirtualSoundCard",
        "VirtualEnsoniq1371",
        "VirtualHdAudioCard",
        "VirtualSoundBlaster16",
        "VirtualTPM",
        *NIC_TYPES,
    }
)
#: extraConfig keys kept (the subset the checks judge; the rest is the guest's business).
_EXTRA_PREFIXES = ("isolation.", "tools.", "RemoteDisplay.", "log.", "mks.", "svga.", "pciPassthru")


def read_vms(
    conn: Connection, tree: Tree, problems: list[Problem], refs: Sequence[Any] | None = None
) -> tuple[list[VsphereVm], dict[str, str]]:
    """Every VM's facts (or only those of ``refs``, live VM references), and each VM's resource pool
    (its second permission parent)."""
    source = conn.target.text

    def area_of(moid: str, path: str) -> str:
        if path in DEVICE_PATHS:
            return vm_area(moid, "devices" if path == "config.hardware.device" else "extra_config")
        return vm_area(moid, "flags" if path == "config.flags" else None)

    narrow = retrieve(
        conn, "VirtualMachine", NARROW_PATHS, problems, area="vsphere.vms", object_area=area_of, objects=refs
    )
    before = len(problems)
    heavy = retrieve(
        conn, "VirtualMachine", DEVICE_PATHS, problems, area="vsphere.vms", object_area=area_of, objects=refs
    )
    heavy_failed = len(problems) > before and not heavy.objects
    vms = []
    pools: dict[str, str] = {}
    for moid in sorted(narrow.objects):
        props = dict(narrow.objects[moid])
        extra = heavy.objects.get(moid, {})
        props.update(extra)
        error = None
        missing = [p for p in _REQUIRED if p not in props]
        if missing:
            error = f"properties not returned: {', '.join(missing)}"
            problems.append(Problem(area=vm_area(moid), source=source, message=f"{moid} {error}"))
        if "config.hardware.device" not in extra and not heavy_failed:
            problems.append(
                Problem(
                    area=vm_area(moid, "devices"),
                    source=source,
                    message=f"{moid} config.hardware.device: not returned by the server",
                )
            )
        pool = text(props.get("resourcePool"))
        if pool:
            pools[moid] = pool
        vms.append(_vm(moid, props, tree, device_read=not heavy_failed))
    return vms, pools


def _vm(moid: str, props: Mapping[str, Any], tree: Tree, *, device_read: bool) -> VsphereVm:
    devices = items(props.get("config.hardware.device")) if "config.hardware.device" in props else None
    extra = _extra_config(props.get("config.extraConfig")) if device_read else None
    flags = mapping(props.get("config.flags"))
    return VsphereVm(
        name=text(props.get("name")) or moid,
        moref=moid,
        datacenter=tree.name_of(tree.nearest(moid, "Datacenter")),
        folder=tree.folder_path(moid),
        host=text(props.get("runtime.host")),
        resource_pool=text(props.get("resourcePool")),
        uuid=text(props.get("config.uuid")),
        power_state=text(props.get("runtime.powerState")),
        template=props.get("config.template") is True,
        guest_id=text(props.get("config.guestId")),
        error=None if "config.hardware.numCPU" in props else "the VM's configuration was not returned",
        flags=VmFlags(
            virtual_exec_usage=text(flags.get("virtualExecUsage")),
            virtual_mmu_usage=text(flags.get("virtualMmuUsage")),
        )
        if "config.flags" in props
        else None,
        extra_config=extra,
        devices=[_device(d) for d in devices if d.get("_typeName") in _DEVICE_TYPES]
        if devices is not None
        else None,
        networks=sorted(tree.name_of(n) or n for n in strings(props.get("network"))),
        resources=resources_from_vsphere(props),
    )


def _extra_config(value: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for option in items(value):
        key = option.get("key")
        if isinstance(key, str) and key.startswith(_EXTRA_PREFIXES):
            # A key listed twice (the simulator appends instead of replacing): the last one is in force.
            out[key] = str(option.get("value"))
    return out


def _device(d: Mapping[str, Any]) -> VmDevice:
    connectable = mapping(d.get("connectable"))
    return VmDevice(
        type=str(d.get("_typeName")),
        label=text(dig(d, "deviceInfo.label")),
        connected=boolean(connectable.get("connected")),
        start_connected=boolean(connectable.get("startConnected")),
        allow_guest_control=boolean(connectable.get("allowGuestControl")),
        backing=_backing(mapping(d.get("backing"))),
    )


def _backing(b: Mapping[str, Any]) -> str | None:
    kind = str(b.get("_typeName") or "")
    name = text(b.get("fileName")) or text(b.get("deviceName")) or text(dig(b, "port.portgroupKey"))
    if "Iso" in kind or "Image" in kind:
        return f"iso {name}" if name else "iso"
    if kind.endswith("DeviceBackingInfo") and "Network" not in kind:
        return f"host {name}" if name else "host device"
    if "Network" in kind or "Port" in kind:
        return f"network {name}" if name else "network"
    if "Pipe" in kind:
        return f"pipe {name}" if name else "pipe"
    if "URI" in kind:
        return f"uri {text(b.get('serviceURI')) or ''}".strip()
    return f"{kind} {name}".strip() if kind or name else None
