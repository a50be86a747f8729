"""ESXi hosts: one narrow PropertyCollector read of every host's configuration, then, per host, the
manager calls the properties cannot answer (advanced options, acceptance level, lockdown exceptions,
local accounts). Every gap is a problem under the host's area for that field
(:func:`~hvguard.facts.host_area`), so the measures fed by it report ``error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hvguard.collect.vsphere.api import ApiCall, guarded_call
from hvguard.collect.vsphere.connection import Connection
from hvguard.collect.vsphere.host_network import firewall, network
from hvguard.collect.vsphere.inventory import Tree
from hvguard.collect.vsphere.options import OPTION_CALLS, read_options
from hvguard.collect.vsphere.props import retrieve
from hvguard.collect.vsphere.values import boolean, dig, integer, items, mapping, strings, text
from hvguard.facts import (
    ActiveDirectory,
    HostCpu,
    HostService,
    HostTpm,
    Lockdown,
    Problem,
    VsphereHost,
    VsphereProduct,
    host_area,
)

#: Property paths read for every host, and the facts field each one feeds (its problem's area).
PATHS: dict[str, str] = {
    "name": "",
    "runtime.connectionState": "",
    "runtime.inMaintenanceMode": "",
    "config.product": "product",
    "config.service": "services",
    "config.lockdownMode": "lockdown",
    "config.firewall": "firewall",
    "config.network": "network",
    "config.virtualNicManagerInfo": "network",
    "config.authenticationManagerInfo": "active_directory",
    "config.dateTimeInfo.ntpConfig.server": "ntp",
    "summary.tpmAttestation": "tpm",
    "capability": "tpm",
    "hardware.cpuInfo": "cpu",
    "summary.hardware.cpuModel": "cpu",
    "hardware.memorySize": "cpu",
    "datastore": "",
    "configManager": "",
}
#: Hosts whose manager calls (QueryOptions, acceptance level, lockdown exceptions) are in flight at once.
HOST_WORKERS = 8
#: Paths whose absence is a gap, not an unset optional value.
_REQUIRED = (
    "name",
    "config.product",
    "config.service",
    "config.firewall",
    "config.network",
    "hardware.cpuInfo",
    "hardware.memorySize",
    "configManager",
)
CALLS = (
    ApiCall(
        "RetrievePropertiesEx",
        "HostSystem (ContainerView of the root folder)",
        tuple(PATHS),
        "each host's product, services, lockdown, firewall, network, directory, TPM, CPU and memory",
    ),
    *OPTION_CALLS,
    ApiCall(
        "HostImageConfigGetAcceptance",
        "HostImageConfigManager (configManager.imageConfigManager)",
        why="VIB acceptance level (11.2.1)",
    ),
    ApiCall(
        "QueryLockdownExceptions",
        "HostAccessManager (configManager.hostAccessManager)",
        why="lockdown exception users (11.2.4, 11.4.6)",
    ),
    ApiCall("RetrieveUserGroups", "UserDirectory (ESXi targets only)", why="local accounts (11.2.4)"),
)


def read_hosts(
    conn: Connection, tree: Tree, datastore_names: Mapping[str, str], problems: list[Problem]
) -> list[VsphereHost]:
    """Every host's facts."""
    source = conn.target.text

    def area_of(moid: str, path: str) -> str:
        return host_area(moid, PATHS.get(path) or None)

    read = retrieve(
        conn,
        "HostSystem",
        tuple(PATHS),
        problems,
        area="vsphere.inventory",
        object_area=area_of,
        keep_raw=("configManager",),
    )

    def one(moid: str) -> tuple[VsphereHost, list[Problem]]:
        mine: list[Problem] = []
        props = read.objects[moid]
        for path in _REQUIRED:
            if path not in props:
                mine.append(
                    Problem(
                        area=area_of(moid, path),
                        source=source,
                        message=f"{moid} {path}: not returned by the server",
                    )
                )
        managers = read.raw.get(moid, {}).get("configManager")
        return _host(conn, moid, props, managers, tree, datastore_names, mine), mine

    # The per-host manager calls are round trips, not work: a few in flight at once hide the latency
    # (a vCenter answers them concurrently). Each host keeps its own problem list, merged in host order,
    # so the facts do not depend on which thread finished first.
    with ThreadPoolExecutor(max_workers=HOST_WORKERS, thread_name_prefix="hvguard-vsphere") as pool:
        done = list(pool.map(one, sorted(read.objects)))
    hosts = []
    for host, mine in done:
        hosts.append(host)
        problems.extend(mine)
    return hosts


def _host(
    conn: Connection,
    moid: str,
    props: Mapping[str, Any],
    managers: Any,
    tree: Tree,
    datastore_names: Mapping[str, str],
    problems: list[Problem],
) -> VsphereHost:
    source = conn.target.text
    name = text(props.get("name")) or moid

    def call(part: str, what: str, fn: Any) -> Any:
        return guarded_call(problems, host_area(moid, part), source, f"{name} {what}", fn)[0]

    def manager(attr: str, part: str) -> Any:
        ref = getattr(managers, attr, None) if managers is not None else None
        if ref is None:
            problems.append(
                Problem(
                    area=host_area(moid, part),
                    source=source,
                    message=f"{name}: configManager.{attr} is not set",
                )
            )
        return ref

    options = None
    option_manager = manager("advancedOption", "options")
    if option_manager is not None:
        options = read_options(option_manager, host_area(moid, "options"), source, name, problems)
    acceptance = None
    image = manager("imageConfigManager", "acceptance_level")
    if image is not None:
        acceptance = call(
            "acceptance_level", "HostImageConfigGetAcceptance", image.HostImageConfigGetAcceptance
        )
    lockdown = None
    if "config.lockdownMode" in props:
        exceptions = None
        access = manager("hostAccessManager", "lockdown")
        if access is not None:
            found = call("lockdown", "QueryLockdownExceptions", access.QueryLockdownExceptions)
            exceptions = [str(u) for u in found] if found is not None else None
        lockdown = Lockdown(mode=text(props.get("config.lockdownMode")), exception_users=exceptions)
    else:
        problems.append(
            Problem(
                area=host_area(moid, "lockdown"),
                source=source,
                message=f"{name} config.lockdownMode: not returned by the server",
            )
        )
    return VsphereHost(
        name=name,
        moref=moid,
        datacenter=tree.name_of(tree.nearest(moid, "Datacenter")),
        cluster=tree.name_of(tree.nearest(moid, "ClusterComputeResource")),
        connection_state=text(props.get("runtime.connectionState")),
        maintenance=boolean(props.get("runtime.inMaintenanceMode")),
        product=product(props.get("config.product")),
        options=options,
        services=_services(props.get("config.service")),
        lockdown=lockdown,
        acceptance_level=text(acceptance),
        firewall=firewall(props["config.firewall"])
        if isinstance(props.get("config.firewall"), Mapping)
        else None,
        network=(
            network(props["config.network"], mapping(props.get("config.virtualNicManagerInfo")))
            if isinstance(props.get("config.network"), Mapping)
            else None
        ),
        ntp_servers=strings(props.get("config.dateTimeInfo.ntpConfig.server")),
        active_directory=_active_directory(props, moid, name, source, problems),
        tpm=_tpm(props, moid, name, source, problems),
        cpu=_cpu(props),
        memory_bytes=integer(props.get("hardware.memorySize")),
        accounts=_accounts(conn, moid, name, problems),
        datastores=sorted(datastore_names.get(d, d) for d in strings(props.get("datastore"))),
    )


def product(value: Any) -> VsphereProduct | None:
    """``AboutInfo`` → :class:`VsphereProduct` (None when absent)."""
    about = mapping(value)
    if not about:
        return None
    return VsphereProduct(
        name=text(about.get("name")),
        full_name=text(about.get("fullName")),
        version=text(about.get("version")),
        build=text(about.get("build")),
        api_type=text(about.get("apiType")),
        api_version=text(about.get("apiVersion")),
        product_line_id=text(about.get("productLineId")),
        instance_uuid=text(about.get("instanceUuid")),
    )


def _services(value: Any) -> list[HostService] | None:
    if not isinstance(value, Mapping):
        return None
    return [
        HostService(
            key=str(s.get("key")),
            label=text(s.get("label")),
            running=boolean(s.get("running")),
            policy=text(s.get("policy")),
        )
        for s in items(value.get("service"))
    ]


def _active_directory(
    props: Mapping[str, Any], moid: str, name: str, source: str, problems: list[Problem]
) -> ActiveDirectory | None:
    info = props.get("config.authenticationManagerInfo")
    if not isinstance(info, Mapping):
        problems.append(
            Problem(
                area=host_area(moid, "active_directory"),
                source=source,
                message=f"{name} config.authenticationManagerInfo: not returned by the server",
            )
        )
        return None
    ad = next(
        (a for a in items(info.get("authConfig")) if a.get("_typeName") == "HostActiveDirectoryInfo"), None
    )
    if ad is None:
        return ActiveDirectory(enabled=False)
    return ActiveDirectory(
        enabled=boolean(ad.get("enabled")),
        joined_domain=text(ad.get("joinedDomain")),
        membership_status=text(ad.get("domainMembershipStatus")),
    )


def _tpm(
    props: Mapping[str, Any], moid: str, name: str, source: str, problems: list[Problem]
) -> HostTpm | None:
    attestation = props.get("summary.tpmAttestation")
    capability = props.get("capability")
    if not isinstance(attestation, Mapping) and not isinstance(capability, Mapping):
        problems.append(
            Problem(
                area=host_area(moid, "tpm"),
                source=source,
                message=f"{name}: neither summary.tpmAttestation nor capability was returned",
            )
        )
        return None
    cap = mapping(capability)
    return HostTpm(
        attestation_status=text(dig(attestation, "status")),
        attestation_message=text(dig(attestation, "message.message")) or text(dig(attestation, "message")),
        tpm_supported=boolean(cap.get("tpmSupported")),
        tpm_version=text(cap.get("tpmVersion")),
        txt_enabled=boolean(cap.get("txtEnabled")),
        uefi_secure_boot=boolean(cap.get("uefiSecureBoot")),
    )


def _cpu(props: Mapping[str, Any]) -> HostCpu | None:
    info = props.get("hardware.cpuInfo")
    if not isinstance(info, Mapping):
        return None
    hz = integer(info.get("hz"))
    cap = mapping(props.get("capability"))
    return HostCpu(
        packages=integer(info.get("numCpuPackages")),
        cores=integer(info.get("numCpuCores")),
        threads=integer(info.get("numCpuThreads")),
        mhz=hz // 1_000_000 if hz else None,
        model=text(props.get("summary.hardware.cpuModel")),
        hw_mmu_supported=boolean(cap.get("cpuHwMmuSupported")),
    )


def _accounts(conn: Connection, moid: str, name: str, problems: list[Problem]) -> list[str] | None:
    """Local accounts: only a direct ESXi connection can list them (its UserDirectory)."""
    source = conn.target.text
    if conn.is_vcenter:
        problems.append(
            Problem(
                area=host_area(moid, "accounts"),
                source=source,
                message=f"{name}: local accounts are listed only by a direct ESXi connection "
                "(scan vsphere://USER@HOST for this host)",
            )
        )
        return None
    directory = conn.content.userDirectory

    def users() -> list[str]:
        found = directory.RetrieveUserGroups(searchStr="", exactMatch=False, findUsers=True, findGroups=False)
        return sorted(str(u.principal) for u in found or ())

    result, _ = guarded_call(
        problems, host_area(moid, "accounts"), source, f"{name} RetrieveUserGroups", users
    )
    return result
