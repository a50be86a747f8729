"""Sub-parsers of the domain XML for ``<devices>``: disks, interfaces, host devices, graphics, TPMs and
the emulated devices, collected in one pass (pure functions of one element, no I/O)."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from hvguard.collect.libvirt.xml_tuning import parse_seclabel
from hvguard.collect.libvirt.xml_values import (
    hexnum,
    opt_int,
    yes_no,
)
from hvguard.facts import (
    Bandwidth,
    Disk,
    DiskEncryption,
    EmulatedDevices,
    Graphics,
    Hostdev,
    Interface,
    SecLabel,
    Tpm,
)


class Devices:
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
        """Take one child of ``<devices>`` into the matching list or counter."""
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
        """The emulated devices counted so far."""
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
            tls = yes_no(child.get("tls"))
            for sub in child:
                if sub.tag == "host":
                    host = _host(sub)
                    if host:
                        hosts.append(host)
                elif sub.tag == "encryption":
                    source_encryption = _encryption(sub)
                elif sub.tag == "seclabel":
                    seclabels.append(parse_seclabel(sub))
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
        average=opt_int(el.get("average"), f"{what}@average"),
        peak=opt_int(el.get("peak"), f"{what}@peak"),
        burst=opt_int(el.get("burst"), f"{what}@burst"),
        floor=opt_int(el.get("floor"), f"{what}@floor"),
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
    domain = hexnum(address.get("domain"))
    bus = hexnum(address.get("bus"))
    slot = hexnum(address.get("slot"))
    function = hexnum(address.get("function"))
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
        vid = hexnum(vendor.get("id")) if vendor is not None else None
        pid = hexnum(product.get("id")) if product is not None else None
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
        managed=yes_no(el.get("managed")),
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
        autoport=yes_no(el.get("autoport")),
        port=opt_int(el.get("port"), "graphics@port"),
        password_set=el.get("passwd") is not None,
        tls=tls,
    )
