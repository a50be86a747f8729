"""Network layout: interfaces, bridges and their ports, bonds and their slaves, VLANs, addresses, the
default route, and libvirt's virtual networks.

Linux sysfs (Documentation/ABI/testing/sysfs-class-net, bonding.rst, bridge): ``/sys/class/net/X/bridge/``
exists for a bridge and ``brif/`` lists its ports; ``bonding/slaves`` lists a bond's slaves and
``bonding/mode`` its mode; ``device`` links a NIC to its bus device (physical); ``tun_flags`` marks a
tap/tun; ``master`` links a port to its bridge or bond. ``/proc/net/vlan/config`` maps VLAN devices to
id and parent. ``/proc/net/route`` lists IPv4 routes (the default: destination and mask ``00000000``);
``/proc/net/ipv6_route`` the IPv6 ones (``::/0``). Addresses come from ``ip -j addr`` (JSON) when the
host can be asked. libvirt keeps network definitions in /etc/libvirt/qemu/networks and, for running
networks, a status copy in /run/libvirt/network. ``<forward>`` without a mode means NAT; no
``<forward>`` means isolated.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

import msgspec
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from hvguard.collect.linux.ops_files import OpsReader, command_output
from hvguard.collect.reader import ReadError
from hvguard.facts import ConfigIssue, LibvirtNetwork, NetInterface, NetworkFacts

AREA = "host.operations.network"
NETWORK_DIRS = ("etc/libvirt/qemu/networks", "run/libvirt/network")


def _kind(r: OpsReader, name: str, vlans: dict[str, tuple[int, str]]) -> tuple[str, bool]:
    base = f"sys/class/net/{name}"
    physical = r.exists(f"{base}/device")
    if name == "lo" or (r.text(f"{base}/type", AREA) or "").strip() == "772":
        return "loopback", False
    if r.exists(f"{base}/bridge"):
        return "bridge", False
    if r.exists(f"{base}/bonding"):
        return "bond", False
    if name in vlans:
        return "vlan", False
    if r.exists(f"{base}/tun_flags"):
        return "tap", False
    return ("physical" if physical else "virtual"), physical


def _vlans(r: OpsReader, issues: list[ConfigIssue]) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    text = r.text("proc/net/vlan/config", AREA)
    for n, line in enumerate((text or "").splitlines(), 1):
        parts = [p.strip() for p in line.split("|")]
        if n <= 2 or len(parts) != 3:
            continue
        if not parts[1].isdigit():
            issues.append(
                ConfigIssue(path="/proc/net/vlan/config", line=n, message=f"bad VLAN id {parts[1]!r}")
            )
            continue
        out[parts[0]] = (int(parts[1]), parts[2])
    return out


def _addresses(r: OpsReader, issues: list[ConfigIssue]) -> dict[str, list[str]] | None:
    out, _ = command_output(r.run("ip-addr"))
    if out is None:
        return None
    try:
        doc = json.loads(out)
    except json.JSONDecodeError as exc:
        issues.append(ConfigIssue(path="ip -j addr", line=exc.lineno, message=f"not JSON: {exc.msg}"))
        return None
    addrs: dict[str, list[str]] = {}
    for link in doc if isinstance(doc, list) else []:
        if not isinstance(link, dict) or "ifname" not in link:
            continue
        addrs[str(link["ifname"])] = [
            f"{a.get('local')}/{a.get('prefixlen')}"
            for a in link.get("addr_info") or []
            if isinstance(a, dict) and a.get("local")
        ]
    return addrs


def _default_routes(r: OpsReader) -> list[str]:
    out: list[str] = []
    for n, line in enumerate((r.text("proc/net/route", AREA) or "").splitlines()):
        f = line.split()
        if n and len(f) >= 8 and f[1] == "00000000" and f[7] == "00000000":
            out.append(f[0])
    for line in (r.text("proc/net/ipv6_route", AREA) or "").splitlines():
        f = line.split()
        if len(f) >= 10 and f[0] == "0" * 32 and f[1] == "00" and f[9] != "lo":
            out.append(f[9])
    return list(dict.fromkeys(out))


def _libvirt_networks(r: OpsReader, issues: list[ConfigIssue]) -> list[LibvirtNetwork]:
    found: dict[str, LibvirtNetwork] = {}
    for d in NETWORK_DIRS:
        for rel in r.glob(f"{d}/*.xml", AREA):
            # A definition that cannot be used is kept, by its file name (libvirt names it NAME.xml),
            # as an error: dropping it would turn the VMs on it into "unknown network" (manual).
            unusable = None
            try:
                text = r.reader.read_text(rel)
            except ReadError as exc:
                r.problem(AREA, rel, exc.message)
                text, unusable = None, exc.message
            root = net = None
            if text is not None:
                try:
                    root = ElementTree.fromstring(text, forbid_dtd=True)
                except (ElementTree.ParseError, DefusedXmlException) as exc:
                    unusable = f"malformed network XML: {' '.join(str(exc).split())}"
                    issues.append(ConfigIssue(path=r.shown(rel), message=unusable))
                else:
                    net = root if root.tag == "network" else root.find("network")
                    if net is None:
                        unusable = f"not a libvirt network definition (root element <{root.tag}>)"
                        issues.append(ConfigIssue(path=r.shown(rel), message=unusable))
            if net is None:
                if unusable is not None:
                    name = posixpath.basename(rel)[:-4]
                    found.setdefault(name, LibvirtNetwork(name=name, path=r.shown(rel), error=unusable))
                continue
            name = (net.findtext("name") or posixpath.basename(rel)[:-4]).strip()
            fwd = net.find("forward")
            mode = None if fwd is None else (fwd.get("mode") or "nat")
            devs: list[str] = []
            if fwd is not None:
                if fwd.get("dev"):
                    devs.append(fwd.get("dev") or "")
                devs += [i.get("dev") or "" for i in fwd.findall("interface") if i.get("dev")]
                devs += [p.get("dev") or "" for p in fwd.findall("pf") if p.get("dev")]
            bridge = net.find("bridge")
            found.setdefault(
                name,
                LibvirtNetwork(
                    name=name,
                    path=r.shown(rel),
                    bridge=bridge.get("name") if bridge is not None else None,
                    forward_mode=mode,
                    forward_devs=list(dict.fromkeys(devs)),
                ),
            )
    return sorted(found.values(), key=lambda n: n.name)


def parse_ip_link(text: str) -> list[NetInterface]:
    """Interfaces from ``ip -d -j link show`` (iproute2 JSON): kind from ``linkinfo.info_kind``, bond
    and bridge membership from ``master``, VLAN id and parent from ``info_data.id`` and ``link``; an
    Ethernet link with no ``info_kind`` (or with ``parentbus``) is a physical NIC."""
    doc = json.loads(text)
    links = [x for x in doc if isinstance(x, dict) and "ifname" in x] if isinstance(doc, list) else []
    kinds = {
        "bridge": "bridge",
        "bond": "bond",
        "team": "bond",
        "vlan": "vlan",
        "tun": "tap",
        "macvtap": "tap",
    }
    out: list[NetInterface] = []
    for link in links:
        raw_info = link.get("linkinfo")
        info: dict[str, Any] = raw_info if isinstance(raw_info, dict) else {}
        info_kind = info.get("info_kind")
        raw_data = info.get("info_data")
        data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
        name = str(link["ifname"])
        if link.get("link_type") == "loopback":
            kind = "loopback"
        elif info_kind in kinds:
            kind = kinds[info_kind]
        elif info_kind is None and link.get("link_type") == "ether":
            kind = "physical"
        else:
            kind = "virtual"
        out.append(
            NetInterface(
                name=name,
                kind=kind,
                physical=kind == "physical",
                master=link.get("master"),
                bond_mode=str(data.get("mode")) if kind == "bond" and data.get("mode") else None,
                vlan_id=int(data["id"]) if kind == "vlan" and isinstance(data.get("id"), int) else None,
                vlan_parent=link.get("link") if kind == "vlan" else None,
                operstate=link.get("operstate"),
            )
        )
    ports: dict[str, list[str]] = {}
    for i in out:
        if i.master:
            ports.setdefault(i.master, []).append(i.name)
    return [
        msgspec.structs.replace(
            i,
            bridge_ports=sorted(ports.get(i.name, [])) if i.kind == "bridge" else [],
            bond_slaves=sorted(ports.get(i.name, [])) if i.kind == "bond" else [],
        )
        for i in out
    ]


def collect_network(r: OpsReader) -> NetworkFacts:
    """Read interfaces (when sysfs is there), addresses (live), default routes and libvirt networks."""
    issues: list[ConfigIssue] = []
    interfaces: list[NetInterface] | None = None
    addrs = _addresses(r, issues)
    link_out, _ = command_output(r.run("ip-link"))
    if link_out is not None:
        try:
            interfaces = parse_ip_link(link_out)
        except (json.JSONDecodeError, ValueError, TypeError) as exc:
            issues.append(ConfigIssue(path="ip -d -j link show", message=f"unusable output: {exc}"))
        if interfaces is not None and addrs is not None:
            interfaces = [msgspec.structs.replace(i, addresses=addrs.get(i.name, [])) for i in interfaces]
    names = r.listdir("sys/class/net", AREA) if interfaces is None else []
    if interfaces is None and names:
        vlans = _vlans(r, issues)
        interfaces = []
        for name in names:
            base = f"sys/class/net/{name}"
            kind, physical = _kind(r, name, vlans)
            link = r.readlink(f"{base}/master")
            slaves = (r.text(f"{base}/bonding/slaves", AREA) or "").split()
            mode = (r.text(f"{base}/bonding/mode", AREA) or "").split()
            vlan = vlans.get(name)
            interfaces.append(
                NetInterface(
                    name=name,
                    kind=kind,
                    physical=physical,
                    master=posixpath.basename(link) if link else None,
                    bridge_ports=r.listdir(f"{base}/brif", AREA) if kind == "bridge" else [],
                    bond_slaves=slaves,
                    bond_mode=mode[0] if mode else None,
                    vlan_id=vlan[0] if vlan else None,
                    vlan_parent=vlan[1] if vlan else None,
                    addresses=(addrs or {}).get(name, []),
                    operstate=(r.text(f"{base}/operstate", AREA) or "").strip() or None,
                )
            )
        # A port's master is also visible from the bridge/bond side (fixtures and copies lack links).
        masters = {p: i.name for i in interfaces for p in (*i.bridge_ports, *i.bond_slaves)}
        interfaces = [
            i if i.master or i.name not in masters else msgspec.structs.replace(i, master=masters[i.name])
            for i in interfaces
        ]
    if interfaces is None:
        r.problem(AREA, "sys/class/net", "no interface data: neither `ip -d -j link` nor sys/class/net")
    return NetworkFacts(
        interfaces=interfaces,
        addresses_known=addrs is not None,
        default_route_interfaces=_default_routes(r),
        libvirt_networks=_libvirt_networks(r, issues),
        issues=issues,
    )
