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

from xml.etree.ElementTree import Element

import defusedxml
from defusedxml.ElementTree import ParseError, fromstring

from hvguard.collect.errors import CollectError
from hvguard.collect.libvirt.xml_devices import Devices
from hvguard.collect.libvirt.xml_tuning import parse_blkiotune, parse_cputune, parse_os, parse_seclabel
from hvguard.collect.libvirt.xml_values import (
    FieldError,
    kib,
    one_line,
    opt_int,
    opt_kib,
    vcpu_count,
)
from hvguard.digest import sha256
from hvguard.facts import (
    BlkioTune,
    Capabilities,
    CpuTune,
    GuestCaps,
    MemoryBacking,
    MemTune,
    OsFacts,
    SecLabel,
    SecModel,
    VcpuFacts,
    VmFacts,
)

__all__ = ["CapabilitiesError", "parse_capabilities_xml", "parse_domain_xml"]


class CapabilitiesError(CollectError, ValueError):
    """The ``<capabilities>`` XML could not be parsed; the message is one line."""


#: Namespace of hvguard's own policy tags in a domain's ``<metadata>``:
#: ``<hvguard:policy xmlns:hvguard="https://hvguard.dev/xmlns/policy/1"><tag name="guaranteed_ram">yes</tag>``
#: becomes ``metadata_tags["hvguard.guaranteed_ram"] = "yes"``.
HVGUARD_METADATA_NS = "https://hvguard.dev/xmlns/policy/1"
_POLICY_TAG = f"{{{HVGUARD_METADATA_NS}}}policy"


# --------------------------------------------------------------------------------------------------------
# Domain


def parse_domain_xml(xml: str, *, name_hint: str | None = None) -> VmFacts:
    """Parse one libvirt domain XML document into :class:`VmFacts`.

    Never raises: any failure (malformed or hostile XML, a root other than ``<domain>``, a bad number)
    yields ``VmFacts(name=name_hint or the parsed name or "?", error=<one-line reason>)``.
    ``persistent`` is left None; the connection collector knows it, the XML does not.
    """
    try:
        digest = str(sha256(xml.encode("utf-8", "surrogatepass")).hexdigest())
    except Exception as exc:  # a non-str argument: still no exception may escape
        return VmFacts(name=name_hint or "?", error=one_line(f"cannot hash XML: {exc}"))
    fallback = name_hint or "?"
    try:
        root = fromstring(xml, forbid_dtd=True)
    except ParseError as exc:
        return VmFacts(name=fallback, xml_sha256=digest, error=one_line(f"invalid XML: {exc}"))
    except defusedxml.DefusedXmlException as exc:
        # str() of these names the offending DTD/entity; say plainly that it was refused.
        return VmFacts(
            name=fallback, xml_sha256=digest, error=one_line(f"refused XML ({type(exc).__name__}): {exc}")
        )
    except Exception as exc:
        return VmFacts(name=fallback, xml_sha256=digest, error=one_line(f"cannot parse XML: {exc!r}"))
    if root.tag != "domain":
        return VmFacts(
            name=fallback, xml_sha256=digest, error=one_line(f"root element is <{root.tag}>, not <domain>")
        )
    try:
        return _domain(root, digest, name_hint)
    except FieldError as exc:
        name_el = root.find("name")
        name = name_hint or (name_el.text.strip() if name_el is not None and name_el.text else "") or "?"
        return VmFacts(name=name, xml_sha256=digest, error=one_line(str(exc)))
    except Exception as exc:  # a bug here must cost one VM, not the whole scan
        return VmFacts(name=fallback, xml_sha256=digest, error=one_line(f"internal parser error: {exc!r}"))


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
    devices = Devices()

    # One pass over the root's children; each handler only looks inside its own (small) element.
    for el in root:
        tag = el.tag
        if tag == "name":
            name = (el.text or "").strip() or None
        elif tag == "uuid":
            uuid = (el.text or "").strip() or None
        elif tag == "os":
            os = parse_os(el)
        elif tag == "vcpu":
            current = el.get("current")
            vcpu = VcpuFacts(
                maximum=vcpu_count(el.text, "vcpu", minimum=1),
                current=None if current is None else vcpu_count(current, "vcpu@current", minimum=0),
                placement=el.get("placement"),
                cpuset=el.get("cpuset"),
            )
        elif tag == "memory":
            memory = kib(el, "memory")
        elif tag == "currentMemory":
            current_memory = kib(el, "currentMemory")
        elif tag == "maxMemory":
            max_memory = kib(el, "maxMemory")
        elif tag == "cputune":
            cputune = parse_cputune(el)
        elif tag == "memtune":
            memtune = MemTune(
                hard_limit_kib=opt_kib(el.find("hard_limit"), "memtune/hard_limit"),
                soft_limit_kib=opt_kib(el.find("soft_limit"), "memtune/soft_limit"),
                swap_hard_limit_kib=opt_kib(el.find("swap_hard_limit"), "memtune/swap_hard_limit"),
                min_guarantee_kib=opt_kib(el.find("min_guarantee"), "memtune/min_guarantee"),
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
            blkio = parse_blkiotune(el)
        elif tag == "seclabel":
            seclabels.append(parse_seclabel(el))
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
    """hvguard's policy tags from ``<metadata>``; other applications' metadata is ignored.

    ``<image disk="vda" id="UUID"/>`` (the library image a disk was made from, for ``scan --library``)
    becomes ``hvguard.image.vda = UUID``."""
    tags: dict[str, str] = {}
    for policy in metadata.iter(_POLICY_TAG):
        for tag in policy:
            key = tag.get("name")
            if tag.tag in {"tag", f"{{{HVGUARD_METADATA_NS}}}tag"} and key:
                tags[f"hvguard.{key}"] = (tag.text or "").strip()
            elif tag.tag in {"image", f"{{{HVGUARD_METADATA_NS}}}image"}:
                disk, image_id = (tag.get("disk") or "").strip(), (tag.get("id") or "").strip()
                if disk and image_id:
                    tags[f"hvguard.image.{disk}"] = image_id
    return tags


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
        raise CapabilitiesError(one_line(f"invalid capabilities XML: {exc}")) from exc
    except defusedxml.DefusedXmlException as exc:
        raise CapabilitiesError(one_line(f"refused capabilities XML ({type(exc).__name__}): {exc}")) from exc
    except Exception as exc:
        raise CapabilitiesError(one_line(f"cannot parse capabilities XML: {exc!r}")) from exc
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
                    sockets = opt_int(topology.get("sockets"), "cpu/topology@sockets")
                    cores = opt_int(topology.get("cores"), "cpu/topology@cores")
                    threads = opt_int(topology.get("threads"), "cpu/topology@threads")
            for sm in host.iterfind("secmodel"):
                model = (sm.findtext("model") or "").strip()
                if model:
                    secmodels.append(SecModel(model=model, doi=(sm.findtext("doi") or "").strip()))
    except FieldError as exc:
        raise CapabilitiesError(one_line(str(exc))) from exc

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
