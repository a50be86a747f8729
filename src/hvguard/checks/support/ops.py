"""Pure helpers that interpret the operations facts for the 11.2 and 11.4 checks (no I/O).

Firewall: which traffic each ``input`` base chain admits, following jumps; netfilter semantics — every
base chain on the hook must accept a packet, a chain's policy applies when no rule decides, and a
match-less ``drop``/``reject`` rule acts as the chain's default. Storage: the mount holding a path (the
longest mount-point prefix) and what a pool's or mount's protocol means for transport security.
Network: which bridges and NICs carry VM traffic, and whether an uplink has two physical paths.
"""

from __future__ import annotations

import ipaddress
import posixpath
from datetime import datetime
from typing import Any

import msgspec

from hvguard.checks.base import HOST, CannotEvaluate, CheckContext
from hvguard.facts import (
    ConfigIssue,
    FileStat,
    FirewallChain,
    FirewallFacts,
    FirewallRule,
    LibvirtNetwork,
    MountPoint,
    NetInterface,
    StoragePool,
)

# --------------------------------------------------------------------------------------------------------
# Time


def epoch_of(iso: str) -> float | None:
    """POSIX seconds of an ISO-8601 timestamp (``…Z`` accepted); None when unparsable."""
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def days(seconds: float) -> float:
    """Seconds as days."""
    return seconds / 86400.0


# --------------------------------------------------------------------------------------------------------
# Ports

#: Ports a libvirt virtual network needs on its own bridge (dnsmasq DNS/DHCP, DHCPv6): libvirt adds
#: these accepts itself for the bridge it owns.
VM_BRIDGE_SERVICES = ("53/udp", "53/tcp", "67/udp", "547/udp")
LOOPBACK_IFS = frozenset({"lo"})
_ICMP = frozenset({"icmp", "ipv6-icmp", "icmpv6", "1", "58"})
_RETURN_STATES = frozenset({"established", "related"})


class PortSpec(msgspec.Struct, frozen=True):
    """``PORT[-PORT]/PROTO`` from the profile's allow-list."""

    low: int
    high: int
    proto: str

    @classmethod
    def parse(cls, text: str) -> PortSpec:
        """Parse ``22/tcp`` or ``49152-49215/tcp`` (ValueError when malformed)."""
        ports, _, proto = text.strip().partition("/")
        proto = proto.lower() or "tcp"
        if proto not in ("tcp", "udp", "sctp"):
            raise ValueError(f"{text!r}: protocol must be tcp, udp or sctp")
        lo, _, hi = ports.partition("-")
        low, high = int(lo), int(hi or lo)
        if not 0 < low <= high <= 65535:
            raise ValueError(f"{text!r}: ports must be 1-65535, low first")
        return cls(low, high, proto)

    def covers(self, low: int, high: int, proto: str) -> bool:
        """True when this spec admits every port low..high of ``proto``."""
        return self.proto == proto and self.low <= low and high <= self.high

    def __str__(self) -> str:
        return f"{self.low}/{self.proto}" if self.low == self.high else f"{self.low}-{self.high}/{self.proto}"


def port_range(text: str) -> tuple[int, int] | None:
    """``22`` or ``49152-49215`` as a range; None for names nft/iptables would resolve we cannot."""
    lo, _, hi = text.partition("-")
    try:
        low, high = int(lo), int(hi or lo)
    except ValueError:
        return None
    return (low, high) if 0 <= low <= high <= 65535 else None


# --------------------------------------------------------------------------------------------------------
# Firewall


class Opening(msgspec.Struct):
    """Traffic an input chain accepts: ports (or every port) of protocols, from sources, on interfaces."""

    protos: list[str]
    ports: list[str]
    sources: list[str]
    iifs: list[str]
    where: str
    text: str

    @property
    def all_ports(self) -> bool:
        """True when no port restriction applies."""
        return not self.ports

    def describe(self) -> str:
        """One line: what is admitted, from where, at which rule."""
        what = ",".join(self.ports) if self.ports else "every port"
        proto = "/".join(self.protos) if self.protos else "any protocol"
        src = ("from " + ",".join(self.sources)) if self.sources else "from anywhere"
        iif = (" on " + ",".join(self.iifs)) if self.iifs else ""
        return f"{what} ({proto}) {src}{iif} — {self.where}"


class ChainAnalysis(msgspec.Struct):
    """One input base chain: whether it drops by default, what it opens, and rules it cannot read."""

    chain: FirewallChain
    default_drop: bool
    default_where: str
    openings: list[Opening] = []
    unclear: list[str] = []

    @property
    def label(self) -> str:
        """``backend family table chain``."""
        c = self.chain
        return f"{c.backend} {c.family} {c.table} {c.name}"


def _classify(rule: FirewallRule) -> Opening | str | None:
    """An accept rule as an opening, a description of why it is unclear, or None (harmless)."""
    if rule.ct_states and set(rule.ct_states) <= _RETURN_STATES:
        return None  # replies to connections the host opened
    if rule.iifs and set(rule.iifs) <= LOOPBACK_IFS:
        return None
    if rule.protocols and set(rule.protocols) <= _ICMP and not rule.dports:
        return None
    if rule.other:
        return f"{rule.where}: accept with conditions hvguard does not interpret ({'; '.join(rule.other)})"
    return Opening(
        protos=[p for p in rule.protocols if p not in _ICMP] or ([] if not rule.dports else ["tcp", "udp"]),
        ports=list(rule.dports),
        sources=list(rule.saddrs),
        iifs=list(rule.iifs),
        where=rule.where,
        text=rule.text,
    )


def _walk(
    fw: FirewallFacts, chain: FirewallChain, out: ChainAnalysis, seen: set[str], depth: int = 0
) -> bool:
    """Add the chain's openings to ``out``; True when a match-less drop/reject ended the chain."""
    for rule in chain.rules:
        v = rule.verdict
        if v in ("drop", "reject") and not (
            rule.protocols or rule.dports or rule.saddrs or rule.iifs or rule.ct_states or rule.other
        ):
            out.default_where = rule.where
            return True
        if v == "accept":
            c = _classify(rule)
            if isinstance(c, Opening):
                out.openings.append(c)
            elif isinstance(c, str):
                out.unclear.append(c)
        elif v in ("jump", "goto") and rule.jump:
            target = next(
                (
                    x
                    for x in fw.chains
                    if x.backend == chain.backend
                    and x.family == chain.family
                    and x.table == chain.table
                    and x.name == rule.jump
                    and x.hook is None
                ),
                None,
            )
            if target is None:
                out.unclear.append(f"{rule.where}: jumps to {rule.jump}, which is not in the ruleset")
                continue
            key = f"{target.table}/{target.name}"
            if key in seen or depth > 8:
                continue
            seen.add(key)
            ended = _walk(fw, target, out, seen, depth + 1)
            if ended and v == "goto" and not (rule.protocols or rule.dports or rule.saddrs or rule.iifs):
                return True
        elif v == "vmap":
            out.unclear.append(f"{rule.where}: verdict map ({'; '.join(rule.other)})")
    return False


def analyse_input(fw: FirewallFacts) -> list[ChainAnalysis]:
    """Every input-hook base chain (IP families) with its default and openings."""
    out: list[ChainAnalysis] = []
    for chain in fw.chains:
        if chain.hook != "input" or chain.family not in ("ip", "ip6", "inet"):
            continue
        a = ChainAnalysis(chain=chain, default_drop=chain.policy == "drop", default_where=chain.where)
        if _walk(fw, chain, a, set()):
            a.default_drop = True
        out.append(a)
    return out


def resolve_sources(fw: FirewallFacts, chain: FirewallChain, sources: list[str]) -> list[str]:
    """Sources with ``@set`` references replaced by the set's elements (kept when unknown)."""
    out: list[str] = []
    for s in sources:
        if s.startswith("@"):
            found = next(
                (
                    x
                    for x in fw.sets
                    if x.name == s[1:] and x.table == chain.table and x.family == chain.family
                ),
                None,
            )
            out += [f"{e} (@{found.name})" for e in found.elements] if found else [s]
        else:
            out.append(s)
    return out


def is_wide_source(source: str) -> bool:
    """True for sources that mean 'anyone' (0.0.0.0/0, ::/0)."""
    base = source.split(" ", 1)[0]
    try:
        return ipaddress.ip_network(base, strict=False).prefixlen == 0
    except ValueError:
        return False


def opening_allowed(o: Opening, allowed: list[PortSpec], vm_bridges: set[str]) -> tuple[bool, str | None]:
    """Whether an opening is within the allow-list; (False, why) otherwise."""
    if o.all_ports:
        return False, "admits every port"
    extra = (
        [PortSpec.parse(s) for s in VM_BRIDGE_SERVICES]
        if o.iifs and _on_vm_bridges(o.iifs, vm_bridges)
        else []
    )
    for port in o.ports:
        rng = port_range(port)
        if rng is None:
            return False, f"port {port!r} is not a number hvguard can compare"
        for proto in o.protos or ["tcp", "udp"]:
            if not any(spec.covers(rng[0], rng[1], proto) for spec in [*allowed, *extra]):
                return False, f"{port}/{proto} is not in the allowed list"
    return True, None


def _on_vm_bridges(iifs: list[str], vm_bridges: set[str]) -> bool:
    return all(i in vm_bridges or i.startswith("virbr") for i in iifs)


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8 and ::1 (IPv4-mapped too)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def is_wildcard(address: str) -> bool:
    """True for 0.0.0.0 and :: (every address of the host)."""
    return address in ("0.0.0.0", "::")  # noqa: S104 (recognising the wildcard, not binding to it)


# --------------------------------------------------------------------------------------------------------
# Storage


def mount_for(path: str, mounts: list[MountPoint]) -> MountPoint | None:
    """The mount holding ``path``: the longest mount point that is a prefix (the last one mounted)."""
    p = posixpath.normpath(path)
    best: MountPoint | None = None
    for m in mounts:
        mp = posixpath.normpath(m.mountpoint)
        if (p == mp or p.startswith(mp.rstrip("/") + "/")) and (
            best is None or len(mp) >= len(posixpath.normpath(best.mountpoint))
        ):
            best = m
    return best


REMOTE_FS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "glusterfs", "fuse.glusterfs", "ceph", "9p"})
LOCAL_POOL_TYPES = frozenset({"dir", "fs", "logical", "disk", "zfs", "mpath", "scsi"})


def mount_transport(fstype: str, options: list[str]) -> tuple[bool | None, str]:
    """Whether a remote file system's transport is encrypted: (True/False/None=needs evidence, why)."""
    opts = {o.split("=", 1)[0]: (o.split("=", 1)[1] if "=" in o else "") for o in options}
    if fstype in ("nfs", "nfs4"):
        sec = opts.get("sec", "sys")
        xprt = opts.get("xprtsec", "none")
        if "krb5p" in sec.split(":"):
            return True, f"NFS with sec={sec} (Kerberos privacy: encrypted)"
        if xprt in ("tls", "mtls"):
            return True, f"NFS over TLS (xprtsec={xprt})"
        return False, f"NFS with sec={sec}, xprtsec={xprt}: traffic is not encrypted"
    if fstype in ("cifs", "smb3", "smbfs"):
        if "seal" in opts:
            return True, "SMB3 with seal (encrypted)"
        return False, "SMB without the seal option: traffic is not encrypted"
    if fstype in ("glusterfs", "fuse.glusterfs"):
        return None, "Gluster: show TLS on the volume (client.ssl on, server.ssl on)"
    if fstype == "ceph":
        ms = opts.get("ms_mode", "")
        if ms in ("secure", "prefer-secure"):
            return True, f"CephFS with ms_mode={ms}"
        return None, "CephFS: show msgr2 secure mode (ms_mode=secure)"
    return None, f"{fstype}: show that the transport is encrypted"


def pool_transport(pool: StoragePool, mounts: list[MountPoint] | None) -> tuple[bool | None, str]:
    """Whether a storage pool reaches its server over an encrypted transport (True/False/None, why)."""
    t = pool.type
    if t in LOCAL_POOL_TYPES:
        return True, f"{t} pool: local storage, no image server"
    if t == "netfs":
        fmt = pool.source_format or "auto"
        live = mount_for(pool.target_path, mounts or []) if pool.target_path else None
        if live is not None and live.fstype in REMOTE_FS:
            ok, why = mount_transport(live.fstype, live.options)
            return ok, f"mounted at {live.mountpoint}: {why}"
        fstype = {"auto": "nfs", "nfs": "nfs", "cifs": "cifs", "glusterfs": "glusterfs"}.get(fmt, fmt)
        ok, why = mount_transport(fstype, pool.mount_options)
        return ok, f"pool mount options {pool.mount_options or '(none)'}: {why}"
    if t in ("iscsi", "iscsi-direct"):
        return False, "iSCSI has no transport encryption (CHAP only authenticates)"
    if t == "sheepdog":
        return False, "Sheepdog has no transport encryption"
    if t == "rbd":
        return None, "Ceph RBD: show msgr2 secure mode (ms_client_mode = secure in ceph.conf)"
    if t == "gluster":
        return None, "Gluster: show TLS on the volume (client.ssl on, server.ssl on)"
    return None, f"{t} pool: show that access to its server is encrypted"


# --------------------------------------------------------------------------------------------------------
# Network


class VmNetwork(msgspec.Struct):
    """A network VMs attach to: how (bridge, nat, macvtap …) and which host device carries it."""

    label: str
    mode: str
    device: str | None
    vms: list[str] = []
    network: LibvirtNetwork | None = None


def vm_networks(
    vm_ifaces: list[tuple[str, str | None, str | None]], networks: list[LibvirtNetwork]
) -> list[VmNetwork]:
    """Group (vm, interface type, source) triples into the host networks they use."""
    by_name = {n.name: n for n in networks}
    out: dict[str, VmNetwork] = {}
    for vm, typ, source in vm_ifaces:
        if typ == "bridge" and source:
            key, net = f"bridge:{source}", VmNetwork(f"bridge {source}", "bridge", source)
        elif typ == "direct" and source:
            key, net = f"direct:{source}", VmNetwork(f"macvtap on {source}", "direct", source)
        elif typ == "network" and source:
            ln = by_name.get(source)
            if ln is None:
                key, net = f"network:{source}", VmNetwork(f"network {source}", "unknown", None)
            elif ln.error is not None:  # its definition could not be used: nothing is known of it
                key, net = (
                    f"network:{source}",
                    VmNetwork(f"network {source} ({ln.path}: {ln.error})", "error", None),
                )
            elif ln.forward_mode in (None, ""):
                key, net = (
                    f"network:{source}",
                    VmNetwork(f"network {source} (isolated)", "isolated", ln.bridge),
                )
            elif ln.forward_mode in ("nat", "route", "open"):
                key, net = (
                    f"network:{source}",
                    VmNetwork(
                        f"network {source} ({ln.forward_mode} via the default route)", "routed", ln.bridge
                    ),
                )
            elif ln.forward_mode == "bridge" and ln.bridge:
                key, net = (
                    f"network:{source}",
                    VmNetwork(f"network {source} (bridge {ln.bridge})", "bridge", ln.bridge),
                )
            else:
                key, net = (
                    f"network:{source}",
                    VmNetwork(
                        f"network {source} ({ln.forward_mode} on {','.join(ln.forward_devs) or '?'})",
                        "devs",
                        ",".join(ln.forward_devs) or None,
                    ),
                )
            net.network = ln
        else:
            key, net = (
                f"{typ}:{source}",
                VmNetwork(f"{typ or '?'} interface {source or ''}".strip(), "other", None),
            )
        out.setdefault(key, net).vms.append(vm)
    for n in out.values():
        n.vms = sorted(set(n.vms))
    return list(out.values())


def physical_paths(name: str, ifaces: dict[str, NetInterface], depth: int = 0) -> tuple[int, str]:
    """How many physical NICs carry traffic leaving through ``name`` (and how, for evidence)."""
    i = ifaces.get(name)
    if i is None or depth > 6:
        return 0, f"{name}: not found"
    if i.kind == "physical" or i.physical:
        return 1, f"{name} (physical NIC)"
    if i.kind == "bond":
        counts = [physical_paths(s, ifaces, depth + 1) for s in i.bond_slaves]
        n = sum(c for c, _ in counts)
        return n, f"{name} (bond {i.bond_mode or ''} of {', '.join(d for _, d in counts) or 'no slaves'})"
    if i.kind == "vlan" and i.vlan_parent:
        n, d = physical_paths(i.vlan_parent, ifaces, depth + 1)
        return n, f"{name} (VLAN {i.vlan_id} on {d})"
    if i.kind == "bridge":
        uplinks = [
            p for p in i.bridge_ports if (ifaces.get(p) and ifaces[p].kind in ("physical", "bond", "vlan"))
        ]
        counts = [physical_paths(p, ifaces, depth + 1) for p in uplinks]
        # Two single NICs in one bridge are two paths only with STP; count the best uplink.
        best = max(counts, default=(0, "no physical uplink"))
        return best[0], f"{name} (bridge; uplink {best[1]})"
    return 0, f"{name} ({i.kind})"


# --------------------------------------------------------------------------------------------------------
# Check-side access to the operations facts


def ops_group(ctx: CheckContext, group: str, what: str) -> Any:
    """``host.operations.<group>``; raises :class:`CannotEvaluate` saying why it is not known."""
    host = ctx.host
    if host is None:
        raise CannotEvaluate(HOST, what, "host")
    ops = host.operations
    if ops is None:
        raise CannotEvaluate(HOST, f"{what} (operations facts were not collected)", "host.operations")
    value = getattr(ops, group)
    if value is None:
        raise CannotEvaluate(HOST, what, f"host.operations.{group}")
    return value


def require_well_formed(what: str, issues: list[ConfigIssue]) -> None:
    """Raise :class:`CannotEvaluate` naming every unparsable file and line, when there is one."""
    if not issues:
        return
    raise CannotEvaluate(
        HOST,
        f"{what}: malformed configuration — "
        + "; ".join(f"{i.where()}: {i.message}" for i in issues[:5])
        + (f" (and {len(issues) - 5} more)" if len(issues) > 5 else ""),
        evidence={"malformed": [{"where": i.where(), "message": i.message} for i in issues[:20]]},
    )


def mode_text(mode: int | None) -> str:
    """``0750`` (or ``?``)."""
    return "?" if mode is None else f"{mode:04o}"


def stat_evidence(st: FileStat) -> dict[str, Any]:
    """A file's owner/group/mode as evidence."""
    return {
        "path": st.path,
        "owner": st.owner,
        "group": st.group,
        "mode": mode_text(st.mode),
        "acl": st.has_acl,
    }
