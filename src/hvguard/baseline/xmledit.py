"""Edits of a domain's persistent XML for settings libvirt offers no narrower API for.

Used by remediation for: the domain type, domain ``<seclabel>`` elements, removing ``<cputune><shares>``
(the scheduler API can only set it; 0 is stored as a value), and interface ``<bandwidth>`` where the
driver refuses the interface API (libvirt: "setting bandwidth on interfaces of type 'user' is not
implemented yet"). The XML comes from libvirt itself, but is still parsed with defusedxml (no DTD).
Namespace prefixes of ``<metadata>`` children are kept as written.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any
from xml.etree import ElementTree as ET
from xml.etree.ElementTree import Element

from defusedxml.ElementTree import fromstring, iterparse


class XmlEditError(ValueError):
    """The XML does not have the element an edit needs; one line."""


def _register_prefixes(xml: str) -> None:
    # ElementTree writes ns0:, ns1: … for namespaces it has not been told about; libvirt keeps metadata
    # prefixes as written, so registering them keeps the document as it was outside the edited part.
    for _event, (prefix, uri) in iterparse(io.StringIO(xml), events=("start-ns",), forbid_dtd=True):
        if prefix:
            ET.register_namespace(prefix, uri)


def parse(xml: str) -> Element:
    """Parse domain XML (DTDs refused)."""
    _register_prefixes(xml)
    root: Element = fromstring(xml, forbid_dtd=True)
    if root.tag != "domain":
        raise XmlEditError(f"root element is <{root.tag}>, not <domain>")
    return root


def serialise(root: Element) -> str:
    """The edited document as a string for ``defineXML``."""
    return ET.tostring(root, encoding="unicode")


def set_domain_type(root: Element, dom_type: str) -> None:
    """``<domain type=...>``."""
    root.set("type", dom_type)


def set_seclabels(root: Element, labels: list[Mapping[str, Any]]) -> None:
    """Replace every domain-level ``<seclabel>`` with ``labels`` (baseline seclabel dicts)."""
    old = [el for el in root if el.tag == "seclabel"]
    position = list(root).index(old[0]) if old else len(root)
    for el in old:
        root.remove(el)
    for offset, label in enumerate(labels):
        el = Element("seclabel")
        for attr in ("type", "model"):
            if label.get(attr) is not None:
                el.set(attr, str(label[attr]))
        if label.get("relabel") is not None:
            el.set("relabel", "yes" if label["relabel"] else "no")
        for child in ("label", "imagelabel"):
            if label.get(child) is not None:
                sub = Element(child)
                sub.text = str(label[child])
                el.append(sub)
        root.insert(position + offset, el)


def remove_cputune(root: Element, tag: str) -> None:
    """Drop ``<cputune><TAG>`` (and an emptied ``<cputune>``)."""
    cputune = root.find("cputune")
    if cputune is None:
        return
    for el in cputune.findall(tag):
        cputune.remove(el)
    if len(cputune) == 0:
        root.remove(cputune)


def _interface(root: Element, mac: str) -> Element:
    devices = root.find("devices")
    if devices is not None:
        for nic in devices.findall("interface"):
            el = nic.find("mac")
            if el is not None and (el.get("address") or "").lower() == mac.lower():
                return nic
    raise XmlEditError(f"no interface with MAC {mac}")


def set_bandwidth(root: Element, mac: str, direction: str, values: Mapping[str, Any] | None) -> None:
    """Set (or with None remove) ``<bandwidth><inbound|outbound>`` of the interface with ``mac``.

    Keys left out of ``values`` keep their current attribute; a None value removes the attribute.
    """
    nic = _interface(root, mac)
    bw = nic.find("bandwidth")
    if bw is None:
        if values is None:
            return
        bw = Element("bandwidth")
        nic.append(bw)
    el = bw.find(direction)
    if values is None:
        if el is not None:
            bw.remove(el)
    else:
        if el is None:
            el = Element(direction)
            # libvirt's schema order: inbound before outbound.
            bw.insert(0 if direction == "inbound" else len(bw), el)
        for key, value in values.items():
            if value is None or value == 0:
                el.attrib.pop(key, None)
            else:
                el.set(key, str(value))
    if len(bw) == 0:
        nic.remove(bw)
