"""Datastores (11.2.10 secure image transport) and distributed switches (11.3.10, 11.4.12, 11.4.13)."""

from __future__ import annotations

from typing import Any

from hvguard.collect.vsphere.api import ApiCall
from hvguard.collect.vsphere.connection import Connection
from hvguard.collect.vsphere.host_network import security, shaping
from hvguard.collect.vsphere.props import retrieve
from hvguard.collect.vsphere.values import boolean, dig, integer, items, mapping, strings, text
from hvguard.facts import Datastore, DistributedSwitch, DvPortgroup, Problem, Teaming

DATASTORE_PATHS = ("name", "summary.type", "summary.url", "info", "host")
DVS_PATHS = ("name", "config.uplinkPortPolicy", "config.host", "config.networkResourceManagementEnabled")
DVPG_PATHS = ("name", "key", "config.distributedVirtualSwitch", "config.defaultPortConfig", "config.uplink")
CALLS = (
    ApiCall(
        "RetrievePropertiesEx",
        "Datastore (ContainerView of the root folder)",
        DATASTORE_PATHS,
        "type, URL, NFS server and Kerberos security, mounting hosts",
    ),
    ApiCall(
        "RetrievePropertiesEx", "DistributedVirtualSwitch (vCenter)", DVS_PATHS, "uplinks, member hosts' NICs"
    ),
    ApiCall(
        "RetrievePropertiesEx",
        "DistributedVirtualPortgroup (vCenter)",
        DVPG_PATHS,
        "VLAN, teaming, security, in/out shaping",
    ),
)


def read_datastores(
    conn: Connection, problems: list[Problem]
) -> tuple[list[Datastore] | None, dict[str, str]]:
    """Every datastore, and a map of datastore id → name (None and a problem when not read)."""
    before = len(problems)
    read = retrieve(conn, "Datastore", DATASTORE_PATHS, problems, area="vsphere.datastores")
    names = {moid: str(p.get("name") or moid) for moid, p in read.objects.items()}
    if len(problems) > before and not read.objects:
        return None, names
    out = []
    for moid in sorted(read.objects):
        p = read.objects[moid]
        nas = mapping(dig(p, "info.nas"))
        out.append(
            Datastore(
                name=names[moid],
                moref=moid,
                type=text(p.get("summary.type")),
                url=text(p.get("summary.url")),
                remote_hosts=strings(nas.get("remoteHostNames"))
                or ([nas["remoteHost"]] if text(nas.get("remoteHost")) else []),
                remote_path=text(nas.get("remotePath")),
                security_type=text(nas.get("securityType")),
                hosts=sorted(str(m.get("key")) for m in items(p.get("host")) if m.get("key")),
            )
        )
    return out, names


def _teaming(policy: Any) -> Teaming | None:
    p = mapping(policy)
    if not p:
        return None
    order = mapping(p.get("uplinkPortOrder"))
    return Teaming(
        active=strings(order.get("activeUplinkPort")),
        standby=strings(order.get("standbyUplinkPort")),
        policy=text(dig(p, "policy.value")),
    )


def read_switches(conn: Connection, problems: list[Problem]) -> list[DistributedSwitch] | None:
    """Every distributed switch with its port groups (vCenter); None when not read."""
    before = len(problems)
    switches = retrieve(
        conn, "DistributedVirtualSwitch", DVS_PATHS, problems, area="vsphere.distributed_switches"
    )
    groups = retrieve(
        conn, "DistributedVirtualPortgroup", DVPG_PATHS, problems, area="vsphere.distributed_switches"
    )
    if len(problems) > before:
        return None
    by_switch: dict[str, list[DvPortgroup]] = {}
    for moid in sorted(groups.objects):
        g = groups.objects[moid]
        port = mapping(g.get("config.defaultPortConfig"))
        vlan = mapping(port.get("vlan"))
        by_switch.setdefault(str(g.get("config.distributedVirtualSwitch")), []).append(
            DvPortgroup(
                name=str(g.get("name") or moid),
                key=text(g.get("key")),
                vlan_id=integer(vlan.get("vlanId")),
                teaming=_teaming(port.get("uplinkTeamingPolicy")),
                security=_dvs_security(port.get("securityPolicy")),
                in_shaping=_dvs_shaping(port.get("inShapingPolicy")),
                out_shaping=_dvs_shaping(port.get("outShapingPolicy")),
                uplink=g.get("config.uplink") is True,
            )
        )
    out = []
    for moid in sorted(switches.objects):
        s = switches.objects[moid]
        host_pnics = {
            str(h.get("config", {}).get("host")): [
                str(x.get("pnicDevice")) for x in items(dig(h, "config.backing.pnicSpec"))
            ]
            for h in items(s.get("config.host"))
        }
        out.append(
            DistributedSwitch(
                name=str(s.get("name") or moid),
                moref=moid,
                uplink_names=strings(dig(s, "config.uplinkPortPolicy.uplinkPortName")),
                host_pnics=host_pnics,
                nioc_enabled=boolean(s.get("config.networkResourceManagementEnabled")),
                portgroups=by_switch.get(moid, []),
            )
        )
    return out


def _dvs_value(policy: Any, name: str) -> Any:
    """DVS policies wrap each setting in a ``BoolPolicy``/``LongPolicy`` with ``value``."""
    return dig(policy, f"{name}.value")


def _dvs_security(policy: Any) -> Any:
    if not mapping(policy):
        return None
    return security({k: _dvs_value(policy, k) for k in ("allowPromiscuous", "macChanges", "forgedTransmits")})


def _dvs_shaping(policy: Any) -> Any:
    if not mapping(policy):
        return None
    return shaping(
        {k: _dvs_value(policy, k) for k in ("enabled", "averageBandwidth", "peakBandwidth", "burstSize")}
    )
