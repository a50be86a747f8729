"""Parse libvirt domain and capabilities XML into the facts model.

Pure functions, no I/O. Input is untrusted (a compromised host or a hand-edited file may hand us
anything), so parsing goes through ``defusedxml`` with DTDs forbidden: entity expansion and external
references are refused before they cost anything.

Rules that are not obvious from the facts model:

- ``parse_domain_xml`` never raises. Bad input gives ``VmFacts(name=..., error="<one line>")`` with only
  ``name``, ``xml_sha256`` and ``error`` set. That covers malformed XML, a DTD, a root that is not
  ``<domain>`` (the message names the root) and a bad number in any numeric field.
- Secure Boot (``OsFacts.secure_boot``) is decided in this order:
  ``<os><firmware><feature name='secure-boot'|'enrolled-keys' enabled='no'>`` → False (the firmware
  does not enforce it without enrolled keys); ``<feature name='secure-boot' enabled='yes'>`` or
  ``<loader secure='yes'>`` → True; ``<loader secure='no'>`` → False; ``<os firmware='bios'>`` or
  neither a ``firmware`` attribute nor a ``<loader>`` (the legacy BIOS default) → False; otherwise
  (UEFI whose Secure Boot state the XML does not show) → None.
- ``EmulatedDevices.usb_controllers`` lists the model of each ``<controller type='usb'>`` ("default"
  when no model is given) and leaves out ``model='none'``, so an empty list means "no USB bus".
  ``usb_devices`` counts USB inputs, hubs, USB host devices and disks on ``bus='usb'``.
- ``Graphics.listen`` holds each distinct listen address; ``"socket"`` for a UNIX socket, ``"none"`` for
  ``<listen type='none'>``, ``"network:NAME"`` for a network listen not yet resolved to an address. An
  empty list means the hypervisor default (``vnc_listen``/``spice_listen`` in qemu.conf). The password
  itself is never stored: ``password_set`` only says whether a ``passwd`` attribute exists (libvirt
  documents an empty one as "access disabled").
"""

from __future__ import annotations

import hashlib
from xml.etree.ElementTree import Element

import defusedxml
from defusedxml.ElementTree import ParseError, fromstring

from hvguard.facts import (
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
    Interface,
    MemoryBacking,
    MemTune,
    OsFacts,
    SecLabel,
    SecModel,
    Tpm,
    VcpuFacts,
    VcpuPin,
    VmFacts,
)

__all__ = ["CapabilitiesError", "parse_capabilities_xml", "parse_domain_xml"]


class CapabilitiesError(ValueError):
    """The ``<capabilities>`` XML could not be parsed; the message is one line."""


class _FieldError(ValueError):
    """A field holds a value libvirt itself would reject (internal: becomes ``VmFacts.error``)."""


# libvirt's virScaleInteger: a one-letter unit or "<letter>iB" is a power of 1024, "<letter>B" a power
# of 1000, and the comparison is case-insensitive.
_UNIT_SCALES: dict[str, tuple[int, int]] = {
    letter: (1024**power, 1000**power) for power, letter in enumerate("kmgtpe", start=1)
}
_BYTE_UNITS = frozenset({"b", "byte", "bytes"})

#: Namespace of hvguard's own policy tags in a domain's ``<metadata>``:
#: ``<hvguard:policy xmlns:hvguard="https://hvguard.dev/xmlns/policy/1"><tag name="guaranteed_ram">yes</tag>``
#: becomes ``metadata_tags["hvguard.guaranteed_ram"] = "yes"``.
HVGUARD_METADATA_NS = "https://hvguard.dev/xmlns/policy/1"
_POLICY_TAG = f"{{{HVGUARD_METADATA_NS}}}policy"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _int(text: str | None, what: str) -> int:
    """Strict integer (decimal, optional sign) as libvirt writes it."""
    value = (text or "").strip()
    digits = value[1:] if value[:1] in "+-" else value
    if not digits or not digits.isascii() or not digits.isdigit():
        raise _FieldError(f"bad integer {value!r} in {what}")
    return int(value)


def _opt_int(text: str | None, what: str) -> int | None:
    return None if text is None else _int(text, what)


def _child_int(el: Element, tag: str, what: str) -> int | None:
    child = el.find(tag)
    return None if child is None else _int(child.text, f"{what}/{tag}")


def _scale(unit: str | None, what: str) -> int:
    """Bytes per unit; the default unit (no attribute) is KiB."""
    if unit is None:
        return 1024
    u = unit.strip().lower()
    if u in _BYTE_UNITS:
        return 1
    scales = _UNIT_SCALES.get(u[:1])
    if scales is not None:
        rest = u[1:]
        if rest in ("", "ib"):
            return scales[0]
        if rest == "b":
            return scales[1]
    raise _FieldError(f"unknown unit {unit!r} in {what}")


def _kib(el: Element, what: str) -> int:
    """A sized element (``<memory unit='G'>4</memory>``) in KiB, rounded up as libvirt does."""
    value = _int(el.text, what)
    if value < 0:
        raise _FieldError(f"negative size {value} in {what}")
    scale = _scale(el.get("unit"), what)
    if scale == 1024:
        return value
    return -(-value * scale // 1024)


def _opt_kib(el: Element | None, what: str) -> int | None:
    return None if el is None else _kib(el, what)


def _yes_no(value: str | None) -> bool | None:
    if value == "yes":
        return True
    if value == "no":
        return False
    return None


def _hexnum(value: str | None) -> int | None:
    """An address number read like libvirt's strtoul(base 0): "0x06" hex, "010" octal, "6" decimal.

    Lenient (None when absent or unparsable): it only feeds a display string.
    """
    if value is None:
        return None
    text = value.strip().lower()
    try:
        if text.startswith("0x"):
            return int(text[2:], 16)
        if len(text) > 1 and text.startswith("0"):
            return int(text[1:], 8)
        return int(text, 10)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------------------
# Domain


def parse_domain_xml(xml: str, *, name_hint: str | None = None) -> VmFacts:
    """Parse one libvirt domain XML document into :class:`VmFacts`.

    Never raises: any failure (malformed or hostile XML, a root other than ``<domain>``, a bad number)
    yields ``VmFacts(name=name_hint or the parsed name or "?", error=<one-line reason>)``.
    ``persistent`` is left None; the connection collector knows it, the XML does not.
    """
    try:
        digest = hashlib.sha256(xml.encode("utf-8", "surrogatepass")).hexdigest()
    except Exception as exc:  # a non-str argument: still no exception may escape
        return VmFacts(name=name_hint or "?", error=_one_line(f"cannot hash XML: {exc}"))
    fallback = name_hint or "?"
    try:
        root = fromstring(xml, forbid_dtd=True)
    except ParseError as exc:
        return VmFacts(name=fallback, xml_sha256=digest, error=_one_line(f"invalid XML: {exc}"))
    except defusedxml.DefusedXmlException as exc:
        # str() of these names the offending DTD/entity; say plainly that it was refused.
        return VmFacts(
            name=fallback, xml_sha256=digest, error=_one_line(f"refused XML ({type(exc).__name__}): {exc}")
        )
    except Exception as exc:
        return VmFacts(name=fallback, xml_sha256=digest, error=_one_line(f"cannot parse XML: {exc!r}"))
    if root.tag != "domain":
        return VmFacts(
            name=fallback, xml_sha256=digest, error=_one_line(f"root element is <{root.tag}>, not <domain>")
        )
    try:
        return _domain(root, digest, name_hint)
    except _FieldError as exc:
        name_el = root.find("name")
        name = name_hint or (name_el.text.strip() if name_el is not None and name_el.text else "") or "?"
        return VmFacts(name=name, xml_sha256=digest, error=_one_line(str(exc)))
    except Exception as exc:  # a bug here must cost one VM, not the whole scan
        return VmFacts(name=fallback, xml_sha256=digest, error=_one_line(f"internal parser error: {exc!r}"))


class _Devices:
    """Accumulates ``<devices>`` children during the single pass over them."""

    __slots__ = (
        "cdroms",
        "channels",
        "consoles",
        "disks",
        "floppies",
        "graphics",
        "hostdevs",
        "interfaces",
        "memballoon",
        "parallels",
        "redirdevs",
        "rngs",
        "serials",
        "smartcards",
        "sounds",
        "tpms",
        "usb_controllers",
        "usb_devices",
        "videos",
        "watchdogs",
    )

    def __init__(self) -> None:
        self.disks: list[Disk] = []
        self.interfaces: list[Interface] = []
        self.hostdevs: list[Hostdev] = []
        self.tpms: list[Tpm] = []
        self.graphics: list[Graphics] = []
        self.usb_controllers: list[str] = []
        self.sounds: list[str] = []
        self.watchdogs: list[str] = []
        self.videos: list[str] = []
        self.rngs: list[str] = []
        self.memballoon: str | None = None
        self.usb_devices = 0
        self.redirdevs = 0
        self.serials = 0
        self.parallels = 0
        self.channels = 0
        self.consoles = 0
        self.floppies = 0
        self.cdroms = 0
        self.smartcards = 0

    def add(self, el: Element) -> None:
        tag = el.tag
        if tag == "disk":
            disk = _disk(el)
            self.disks.append(disk)
            if disk.device == "cdrom":
                self.cdroms += 1
            elif disk.device == "floppy":
                self.floppies += 1
            if disk.bus == "usb":
                self.usb_devices += 1
        elif tag == "interface":
            self.interfaces.append(_interface(el))
        elif tag == "controller":
            if el.get("type") == "usb":
                usb_model = el.get("model") or "default"
                if usb_model != "none":
                    self.usb_controllers.append(usb_model)
        elif tag == "input":
            if el.get("bus") == "usb":
                self.usb_devices += 1
        elif tag == "hub":
            if el.get("type") == "usb":
                self.usb_devices += 1
        elif tag == "hostdev":
            hostdev = _hostdev(el)
            self.hostdevs.append(hostdev)
            if hostdev.type == "usb":
                self.usb_devices += 1
        elif tag == "redirdev":
            self.redirdevs += 1
        elif tag == "serial":
            self.serials += 1
        elif tag == "parallel":
            self.parallels += 1
        elif tag == "channel":
            self.channels += 1
        elif tag == "console":
            self.consoles += 1
        elif tag == "sound":
            self.sounds.append(el.get("model") or "default")
        elif tag == "smartcard":
            self.smartcards += 1
        elif tag == "watchdog":
            self.watchdogs.append(el.get("model") or "default")
        elif tag == "graphics":
            self.graphics.append(_graphics(el))
        elif tag == "video":
            video_model = el.find("model")
            self.videos.append((video_model.get("type") if video_model is not None else None) or "default")
        elif tag == "rng":
            backend = el.find("backend")
            self.rngs.append((backend.get("model") if backend is not None else None) or "default")
        elif tag == "memballoon":
            self.memballoon = el.get("model") or "default"
        elif tag == "tpm":
            backend = el.find("backend")
            self.tpms.append(
                Tpm(
                    model=el.get("model"),
                    backend=backend.get("type") if backend is not None else None,
                    version=backend.get("version") if backend is not None else None,
                )
            )

    def emulated(self) -> EmulatedDevices:
        return EmulatedDevices(
            usb_controllers=self.usb_controllers,
            usb_devices=self.usb_devices,
            redirdevs=self.redirdevs,
            serials=self.serials,
            parallels=self.parallels,
            channels=self.channels,
            consoles=self.consoles,
            floppies=self.floppies,
            cdroms=self.cdroms,
            sounds=self.sounds,
            smartcards=self.smartcards,
            watchdogs=self.watchdogs,
            graphics=self.graphics,
            videos=self.videos,
            rngs=self.rngs,
            memballoon=self.memballoon,
        )


def _domain(root: Element, digest: str, name_hint: str | None) -> VmFacts:
    name: str | None = None
    uuid: str | None = None
    os = OsFacts()
    vcpu = VcpuFacts()
    memory: int | None = None
    current_memory: int | None = None
    max_memory: int | None = None
    cputune = CpuTune()
    memtune = MemTune()
    backing = MemoryBacking()
    blkio = BlkioTune()
    seclabels: list[SecLabel] = []
    tags: dict[str, str] = {}
    devices = _Devices()

    # One pass over the root's children; each handler only looks inside its own (small) element.
    for el in root:
        tag = el.tag
        if tag == "name":
            name = (el.text or "").strip() or None
        elif tag == "uuid":
            uuid = (el.text or "").strip() or None
        elif tag == "os":
            os = _os(el)
        elif tag == "vcpu":
            vcpu = VcpuFacts(
                maximum=_int(el.text, "vcpu"),
                current=_opt_int(el.get("current"), "vcpu@current"),
                placement=el.get("placement"),
                cpuset=el.get("cpuset"),
            )
        elif tag == "memory":
            memory = _kib(el, "memory")
        elif tag == "currentMemory":
            current_memory = _kib(el, "currentMemory")
        elif tag == "maxMemory":
            max_memory = _kib(el, "maxMemory")
        elif tag == "cputune":
            cputune = _cputune(el)
        elif tag == "memtune":
            memtune = MemTune(
                hard_limit_kib=_opt_kib(el.find("hard_limit"), "memtune/hard_limit"),
                soft_limit_kib=_opt_kib(el.find("soft_limit"), "memtune/soft_limit"),
                swap_hard_limit_kib=_opt_kib(el.find("swap_hard_limit"), "memtune/swap_hard_limit"),
                min_guarantee_kib=_opt_kib(el.find("min_guarantee"), "memtune/min_guarantee"),
            )
        elif tag == "memoryBacking":
            source = el.find("source")
            backing = MemoryBacking(
                locked=el.find("locked") is not None,
                hugepages=el.find("hugepages") is not None,
                nosharepages=el.find("nosharepages") is not None,
                source_type=source.get("type") if source is not None else None,
            )
        elif tag == "blkiotune":
            blkio = _blkiotune(el)
        elif tag == "seclabel":
            seclabels.append(_seclabel(el))
        elif tag == "devices":
            for dev in el:
                devices.add(dev)
        elif tag == "metadata":
            tags = _policy_tags(el)

    domain_id = root.get("id")
    return VmFacts(
        name=name_hint or name or "?",
        uuid=uuid,
        domain_type=root.get("type"),
        active=domain_id is not None and domain_id.strip() != "-1",
        xml_sha256=digest,
        os=os,
        vcpu=vcpu,
        memory_kib=memory,
        current_memory_kib=current_memory,
        max_memory_kib=max_memory,
        cputune=cputune,
        memtune=memtune,
        memory_backing=backing,
        blkiotune=blkio,
        disks=devices.disks,
        interfaces=devices.interfaces,
        seclabels=seclabels,
        hostdevs=devices.hostdevs,
        devices=devices.emulated(),
        tpms=devices.tpms,
        metadata_tags=tags,
    )


def _policy_tags(metadata: Element) -> dict[str, str]:
    """hvguard's policy tags from ``<metadata>``; other applications' metadata is ignored."""
    tags: dict[str, str] = {}
    for policy in metadata.iter(_POLICY_TAG):
        for tag in policy:
            key = tag.get("name")
            if tag.tag in {"tag", f"{{{HVGUARD_METADATA_NS}}}tag"} and key:
                tags[f"hvguard.{key}"] = (tag.text or "").strip()
    return tags


def _os(el: Element) -> OsFacts:
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
            loader_secure = _yes_no(child.get("secure"))
        elif tag == "firmware":
            for feature in child.iter("feature"):
                fname = feature.get("name")
                if fname == "secure-boot":
                    sb_feature = _yes_no(feature.get("enabled"))
                elif fname == "enrolled-keys":
                    enrolled_keys = _yes_no(feature.get("enabled"))
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


def _cputune(el: Element) -> CpuTune:
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
            scalars[tag] = _int(child.text, f"cputune/{tag}")
        elif tag == "vcpupin":
            pins.append(
                VcpuPin(vcpu=_int(child.get("vcpu"), "cputune/vcpupin@vcpu"), cpuset=child.get("cpuset", ""))
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


def _blkiotune(el: Element) -> BlkioTune:
    weight: int | None = None
    devices: list[BlkioDevice] = []
    for child in el:
        if child.tag == "weight":
            weight = _int(child.text, "blkiotune/weight")
        elif child.tag == "device":
            path_el = child.find("path")
            what = "blkiotune/device"
            devices.append(
                BlkioDevice(
                    path=(path_el.text or "").strip() if path_el is not None else "",
                    weight=_child_int(child, "weight", what),
                    read_bytes_sec=_child_int(child, "read_bytes_sec", what),
                    write_bytes_sec=_child_int(child, "write_bytes_sec", what),
                    read_iops_sec=_child_int(child, "read_iops_sec", what),
                    write_iops_sec=_child_int(child, "write_iops_sec", what),
                )
            )
    return BlkioTune(weight=weight, devices=devices)


def _seclabel(el: Element) -> SecLabel:
    label = el.find("label")
    imagelabel = el.find("imagelabel")
    return SecLabel(
        type=el.get("type"),
        model=el.get("model"),
        relabel=_yes_no(el.get("relabel")),
        label=(label.text or "").strip() if label is not None else None,
        imagelabel=(imagelabel.text or "").strip() if imagelabel is not None else None,
    )


def _encryption(el: Element) -> DiskEncryption:
    secret = el.find("secret")
    return DiskEncryption(
        format=el.get("format") or "default",
        secret_type=secret.get("type") if secret is not None else None,
        secret_uuid=secret.get("uuid") if secret is not None else None,
        secret_usage=secret.get("usage") if secret is not None else None,
    )


def _host(el: Element) -> str | None:
    name = el.get("name")
    if name:
        port = el.get("port")
        if not port:
            return name
        return f"[{name}]:{port}" if ":" in name else f"{name}:{port}"
    socket = el.get("socket")
    return f"unix:{socket}" if socket else None


def _disk(el: Element) -> Disk:
    driver_type: str | None = None
    target: str | None = None
    bus: str | None = None
    source_path: str | None = None
    protocol: str | None = None
    source_name: str | None = None
    hosts: list[str] = []
    pool: str | None = None
    volume: str | None = None
    tls: bool | None = None
    readonly = False
    shareable = False
    disk_encryption: DiskEncryption | None = None
    source_encryption: DiskEncryption | None = None
    iotune: dict[str, int] = {}
    seclabels: list[SecLabel] = []
    for child in el:
        tag = child.tag
        if tag == "source":
            source_path = child.get("file") or child.get("dev") or child.get("dir") or child.get("path")
            protocol = child.get("protocol")
            source_name = child.get("name")
            pool = child.get("pool")
            volume = child.get("volume")
            tls = _yes_no(child.get("tls"))
            for sub in child:
                if sub.tag == "host":
                    host = _host(sub)
                    if host:
                        hosts.append(host)
                elif sub.tag == "encryption":
                    source_encryption = _encryption(sub)
                elif sub.tag == "seclabel":
                    seclabels.append(_seclabel(sub))
        elif tag == "driver":
            driver_type = child.get("type")
        elif tag == "target":
            target = child.get("dev")
            bus = child.get("bus")
        elif tag == "readonly":
            readonly = True
        elif tag == "shareable":
            shareable = True
        elif tag == "encryption":
            disk_encryption = _encryption(child)
        elif tag == "iotune":
            for limit in child:
                # Only numeric limits; group_name is a string and not a limit.
                text = (limit.text or "").strip()
                if text.isascii() and text.isdigit():
                    iotune[limit.tag] = int(text)
    return Disk(
        device=el.get("device") or "disk",
        type=el.get("type"),
        target=target,
        bus=bus,
        driver_type=driver_type,
        source_path=source_path,
        source_protocol=protocol,
        source_name=source_name,
        source_hosts=hosts,
        source_pool=pool,
        source_volume=volume,
        source_tls=tls,
        readonly=readonly,
        shareable=shareable,
        # The <source> form is the newer one and describes this very layer; prefer it when both exist.
        encryption=source_encryption or disk_encryption,
        iotune=iotune,
        seclabels=seclabels,
    )


_IFACE_SOURCE_ATTRS = ("network", "bridge", "dev", "path", "name", "address")


def _bandwidth(el: Element | None, what: str) -> Bandwidth | None:
    if el is None:
        return None
    return Bandwidth(
        average=_opt_int(el.get("average"), f"{what}@average"),
        peak=_opt_int(el.get("peak"), f"{what}@peak"),
        burst=_opt_int(el.get("burst"), f"{what}@burst"),
        floor=_opt_int(el.get("floor"), f"{what}@floor"),
    )


def _interface_source(el: Element) -> str | None:
    for attr in _IFACE_SOURCE_ATTRS:
        value = el.get(attr)
        if value:
            port = el.get("port")
            return f"{value}:{port}" if attr == "address" and port else value
    address = el.find("address")
    if address is not None:
        # type='hostdev' interfaces name the PCI/USB device inside <source><address>.
        return _address_summary(address)
    return None


def _interface(el: Element) -> Interface:
    mac: str | None = None
    model: str | None = None
    source: str | None = None
    target_dev: str | None = None
    inbound: Bandwidth | None = None
    outbound: Bandwidth | None = None
    filterref: str | None = None
    for child in el:
        tag = child.tag
        if tag == "mac":
            mac = child.get("address")
        elif tag == "model":
            model = child.get("type")
        elif tag == "source":
            source = _interface_source(child)
        elif tag == "target":
            target_dev = child.get("dev")
        elif tag == "bandwidth":
            inbound = _bandwidth(child.find("inbound"), "bandwidth/inbound")
            outbound = _bandwidth(child.find("outbound"), "bandwidth/outbound")
        elif tag == "filterref":
            filterref = child.get("filter")
    return Interface(
        type=el.get("type"),
        mac=mac,
        model=model,
        source=source,
        target_dev=target_dev,
        inbound=inbound,
        outbound=outbound,
        filterref=filterref,
    )


def _address_summary(address: Element) -> str:
    """``<address>`` as a short string: "pci 0000:01:00.0", "usb bus=1 device=2", "mdev UUID"."""
    kind = address.get("type")
    domain = _hexnum(address.get("domain"))
    bus = _hexnum(address.get("bus"))
    slot = _hexnum(address.get("slot"))
    function = _hexnum(address.get("function"))
    if slot is not None and bus is not None and function is not None:
        return f"pci {domain or 0:04x}:{bus:02x}:{slot:02x}.{function:x}"
    if address.get("uuid"):
        return f"mdev {address.get('uuid')}"
    if kind == "usb" or address.get("device") is not None:
        return f"usb bus={address.get('bus')} device={address.get('device')}"
    parts = [f"{k}={v}" for k, v in address.items()]
    return " ".join(parts)


def _hostdev_source(hostdev_type: str | None, source: Element) -> str:
    kind = hostdev_type or "?"
    vendor = source.find("vendor")
    product = source.find("product")
    if vendor is not None or product is not None:
        vid = _hexnum(vendor.get("id")) if vendor is not None else None
        pid = _hexnum(product.get("id")) if product is not None else None
        v = f"{vid:04x}" if vid is not None else "?"
        p = f"{pid:04x}" if pid is not None else "?"
        return f"{kind} {v}:{p}"
    adapter = source.find("adapter")
    address = source.find("address")
    if adapter is not None:
        tail = ""
        if address is not None:
            tail = f":{address.get('bus')}:{address.get('target')}:{address.get('unit')}"
        return f"{kind} {adapter.get('name')}{tail}"
    protocol = source.get("protocol")
    if protocol:
        return f"{kind} {protocol}:{source.get('name') or source.get('wwpn') or ''}"
    if address is not None:
        summary = _address_summary(address)
        # The summary already starts with the bus kind ("pci …", "usb …", "mdev …").
        return summary if summary.split(" ", 1)[0] == kind else f"{kind} {summary}"
    for sub in source:
        # capabilities mode: <block>/dev/sdf1</block>, <char>, <interface>
        if sub.text and sub.text.strip():
            return f"{kind} {sub.text.strip()}"
    return kind


def _hostdev(el: Element) -> Hostdev:
    hostdev_type = el.get("type")
    source = el.find("source")
    return Hostdev(
        mode=el.get("mode"),
        type=hostdev_type,
        source=_hostdev_source(hostdev_type, source) if source is not None else (hostdev_type or ""),
        managed=_yes_no(el.get("managed")),
    )


def _graphics(el: Element) -> Graphics:
    gtype = el.get("type") or "?"
    listens: list[str] = []

    def add(value: str | None) -> None:
        if value and value not in listens:
            listens.append(value)

    add(el.get("listen"))
    if el.get("socket"):
        add("socket")
    secure_channel = False
    for child in el:
        if child.tag == "listen":
            ltype = child.get("type")
            if ltype == "socket":
                add("socket")
            elif ltype == "none":
                add("none")
            elif ltype == "network":
                # A running domain carries the resolved address; an inactive one only the network name.
                add(child.get("address") or f"network:{child.get('network')}")
            else:
                add(child.get("address"))
        elif child.tag == "channel" and child.get("mode") == "secure":
            secure_channel = True
    tls: bool | None = None
    if gtype == "spice":
        tls = el.get("defaultMode") == "secure" or secure_channel
    return Graphics(
        type=gtype,
        listen=listens,
        autoport=_yes_no(el.get("autoport")),
        port=_opt_int(el.get("port"), "graphics@port"),
        password_set=el.get("passwd") is not None,
        tls=tls,
    )


# --------------------------------------------------------------------------------------------------------
# Capabilities


def parse_capabilities_xml(xml: str) -> Capabilities:
    """Parse ``virConnectGetCapabilities`` XML.

    Raises :class:`CapabilitiesError` (one-line message) for malformed or hostile XML, a root other
    than ``<capabilities>`` (e.g. ``<domainCapabilities>``) or a bad topology number.
    """
    try:
        root = fromstring(xml, forbid_dtd=True)
    except ParseError as exc:
        raise CapabilitiesError(_one_line(f"invalid capabilities XML: {exc}")) from exc
    except defusedxml.DefusedXmlException as exc:
        raise CapabilitiesError(_one_line(f"refused capabilities XML ({type(exc).__name__}): {exc}")) from exc
    except Exception as exc:
        raise CapabilitiesError(_one_line(f"cannot parse capabilities XML: {exc!r}")) from exc
    if root.tag != "capabilities":
        raise CapabilitiesError(f"root element is <{root.tag}>, not <capabilities>")

    host_arch = cpu_vendor = cpu_model = None
    features: list[str] = []
    sockets = cores = threads = None
    secmodels: list[SecModel] = []
    host = root.find("host")
    try:
        if host is not None:
            cpu = host.find("cpu")
            if cpu is not None:
                host_arch = (cpu.findtext("arch") or "").strip() or None
                cpu_vendor = (cpu.findtext("vendor") or "").strip() or None
                cpu_model = (cpu.findtext("model") or "").strip() or None
                features = [f for f in (e.get("name") for e in cpu.iterfind("feature")) if f]
                topology = cpu.find("topology")
                if topology is not None:
                    sockets = _opt_int(topology.get("sockets"), "cpu/topology@sockets")
                    cores = _opt_int(topology.get("cores"), "cpu/topology@cores")
                    threads = _opt_int(topology.get("threads"), "cpu/topology@threads")
            for sm in host.iterfind("secmodel"):
                model = (sm.findtext("model") or "").strip()
                if model:
                    secmodels.append(SecModel(model=model, doi=(sm.findtext("doi") or "").strip()))
    except _FieldError as exc:
        raise CapabilitiesError(_one_line(str(exc))) from exc

    guests: list[GuestCaps] = []
    for guest in root.iterfind("guest"):
        os_type = (guest.findtext("os_type") or "").strip()
        for arch in guest.iterfind("arch"):
            guests.append(
                GuestCaps(
                    os_type=os_type,
                    arch=arch.get("name") or "",
                    domain_types=[t for t in (d.get("type") for d in arch.iterfind("domain")) if t],
                )
            )
    return Capabilities(
        host_arch=host_arch,
        cpu_vendor=cpu_vendor,
        cpu_model=cpu_model,
        cpu_features=features,
        topology_sockets=sockets,
        topology_cores=cores,
        topology_threads=threads,
        secmodels=secmodels,
        guests=guests,
    )
