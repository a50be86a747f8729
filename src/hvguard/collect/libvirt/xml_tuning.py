"""Sub-parsers of the domain XML for the guest's boot and resource elements: ``<os>``, ``<cputune>``,
``<blkiotune>`` and ``<seclabel>`` (pure functions of one element, no I/O)."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from hvguard.collect.libvirt.xml_values import (
    child_int,
    int_value,
    yes_no,
)
from hvguard.facts import (
    BlkioDevice,
    BlkioTune,
    CpuTune,
    OsFacts,
    SecLabel,
    VcpuPin,
)


def parse_os(el: Element) -> OsFacts:
    """The guest's boot settings from ``<os>``: type, loader and Secure Boot (rules: domain_xml)."""
    os_type: str | None = None
    arch: str | None = None
    machine: str | None = None
    loader: str | None = None
    loader_secure: bool | None = None
    has_loader = False
    sb_feature: bool | None = None
    enrolled_keys: bool | None = None
    for child in el:
        tag = child.tag
        if tag == "type":
            os_type = (child.text or "").strip() or None
            arch = child.get("arch")
            machine = child.get("machine")
        elif tag == "loader":
            has_loader = True
            loader = (child.text or "").strip() or None
            loader_secure = yes_no(child.get("secure"))
        elif tag == "firmware":
            for feature in child.iter("feature"):
                fname = feature.get("name")
                if fname == "secure-boot":
                    sb_feature = yes_no(feature.get("enabled"))
                elif fname == "enrolled-keys":
                    enrolled_keys = yes_no(feature.get("enabled"))
    firmware = el.get("firmware")

    secure_boot: bool | None
    if sb_feature is False or enrolled_keys is False:
        secure_boot = False
    elif sb_feature is True or loader_secure is True:
        secure_boot = True
    elif loader_secure is False or firmware == "bios" or (firmware is None and not has_loader):
        secure_boot = False
    else:
        secure_boot = None
    return OsFacts(
        type=os_type,
        arch=arch,
        machine=machine,
        firmware=firmware,
        loader=loader,
        loader_secure=loader_secure,
        secure_boot=secure_boot,
    )


def parse_cputune(el: Element) -> CpuTune:
    """CPU tuning from ``<cputune>``: shares, period/quota, vCPU and emulator pinning."""
    scalars: dict[str, int] = {}
    pins: list[VcpuPin] = []
    emulatorpin: str | None = None
    for child in el:
        tag = child.tag
        if tag in (
            "shares",
            "period",
            "quota",
            "global_period",
            "global_quota",
            "emulator_period",
            "emulator_quota",
        ):
            scalars[tag] = int_value(child.text, f"cputune/{tag}")
        elif tag == "vcpupin":
            pins.append(
                VcpuPin(
                    vcpu=int_value(child.get("vcpu"), "cputune/vcpupin@vcpu"), cpuset=child.get("cpuset", "")
                )
            )
        elif tag == "emulatorpin":
            emulatorpin = child.get("cpuset")
    return CpuTune(
        shares=scalars.get("shares"),
        period=scalars.get("period"),
        quota=scalars.get("quota"),
        global_period=scalars.get("global_period"),
        global_quota=scalars.get("global_quota"),
        emulator_period=scalars.get("emulator_period"),
        emulator_quota=scalars.get("emulator_quota"),
        vcpupins=pins,
        emulatorpin=emulatorpin,
    )


def parse_blkiotune(el: Element) -> BlkioTune:
    """Block I/O tuning from ``<blkiotune>``: the weight and per-device limits."""
    weight: int | None = None
    devices: list[BlkioDevice] = []
    for child in el:
        if child.tag == "weight":
            weight = int_value(child.text, "blkiotune/weight")
        elif child.tag == "device":
            path_el = child.find("path")
            what = "blkiotune/device"
            devices.append(
                BlkioDevice(
                    path=(path_el.text or "").strip() if path_el is not None else "",
                    weight=child_int(child, "weight", what),
                    read_bytes_sec=child_int(child, "read_bytes_sec", what),
                    write_bytes_sec=child_int(child, "write_bytes_sec", what),
                    read_iops_sec=child_int(child, "read_iops_sec", what),
                    write_iops_sec=child_int(child, "write_iops_sec", what),
                )
            )
    return BlkioTune(weight=weight, devices=devices)


def parse_seclabel(el: Element) -> SecLabel:
    """One ``<seclabel>``: the security model, its type and labels."""
    label = el.find("label")
    imagelabel = el.find("imagelabel")
    return SecLabel(
        type=el.get("type"),
        model=el.get("model"),
        relabel=yes_no(el.get("relabel")),
        label=(label.text or "").strip() if label is not None else None,
        imagelabel=(imagelabel.text or "").strip() if imagelabel is not None else None,
    )
