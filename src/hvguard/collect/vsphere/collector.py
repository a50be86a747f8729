"""The vSphere collector: one read-only pass over an ESXi host or a vCenter into ``TargetFacts``.

Order of reads: the service content (``about``), the inventory tree, datastores, hosts (and their
per-host manager calls), VMs (narrow pass, then devices and extraConfig), permissions and roles, and on a
vCenter its own advanced settings, distributed switches, alarms and content libraries. Each concern's
module declares its calls (:data:`ALL_CALLS`, printed by ``collect --dry-run``). A target that cannot be
logged in to is ``unreachable``; anything that fails after login is a problem on the facts it feeds.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, ClassVar

from hvguard import __version__
from hvguard.collect.interface import Collector, guarded
from hvguard.collect.vsphere import access, hosts, inventory, library, storage, vms
from hvguard.collect.vsphere.api import ApiCall, guarded_call
from hvguard.collect.vsphere.connection import Connection, VsphereUnreachable, connect
from hvguard.collect.vsphere.options import JUDGED_VCENTER_OPTIONS, read_options
from hvguard.collect.vsphere.target import (
    VsphereOptions,
    VsphereTarget,
    parse_vsphere_target,
    password_for,
)
from hvguard.facts import (
    Alarm,
    CollectionInfo,
    ControlsOffered,
    Datastore,
    Platform,
    Problem,
    TargetFacts,
    VsphereFacts,
    VsphereHost,
    VsphereVm,
)

ABOUT_CALLS = (
    ApiCall("RetrieveServiceContent", "ServiceInstance", ("about",), "product, version, build, API type"),
    ApiCall("Login", "SessionManager", why="the session (password from the environment or a file)"),
)
VCENTER_CALLS = (
    ApiCall(
        "QueryOptions", "OptionManager (content.setting), name ''", why="vCenter settings (event.maxAge …)"
    ),
    ApiCall("GetAlarm / RetrieveProperties", "AlarmManager", ("info",), "alarm definitions (11.3.7)"),
)
ALL_CALLS: tuple[ApiCall, ...] = (
    *ABOUT_CALLS,
    *inventory.CALLS,
    *storage.CALLS,
    *hosts.CALLS,
    *vms.CALLS,
    *access.CALLS,
    *VCENTER_CALLS,
    *library.CALLS,
)
#: Every per-VM resource control vSphere offers (``ResourceAllocationInfo`` for CPU and memory).
VSPHERE_OFFERS = ControlsOffered(
    memory_limit=True,
    memory_guarantee=True,
    memory_priority=True,
    cpu_limit=True,
    cpu_guarantee=True,
    cpu_priority=True,
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class VsphereCollector(Collector[Connection, VsphereFacts]):
    """Everything hvguard reads from one logged-in vSphere connection."""

    area: ClassVar[str] = "vsphere"
    reads = ()
    calls: ClassVar[tuple[ApiCall, ...]] = ALL_CALLS

    def collect(self, source: Connection, problems: list[Problem]) -> VsphereFacts:
        """The facts of ``source``; every gap is a problem, nothing is raised."""
        conn = source
        about = hosts.product(_plain_about(conn))
        empty_ds: tuple[list[Datastore] | None, dict[str, str]] = (None, {})
        empty_vms: tuple[list[VsphereVm], dict[str, str]] = ([], {})
        no_hosts: list[VsphereHost] = []
        tree = guarded(
            problems,
            inventory.AREA,
            conn.target.text,
            inventory.Tree(),
            lambda: inventory.read_tree(conn, problems),
        )
        datastores, ds_names = guarded(
            problems,
            "vsphere.datastores",
            conn.target.text,
            empty_ds,
            lambda: storage.read_datastores(conn, problems),
        )
        host_facts = guarded(
            problems,
            "vsphere.inventory",
            conn.target.text,
            no_hosts,
            lambda: hosts.read_hosts(conn, tree, ds_names, problems),
        )
        vm_facts, pools = guarded(
            problems, "vsphere.vms", conn.target.text, empty_vms, lambda: vms.read_vms(conn, tree, problems)
        )
        vcenter = conn.is_vcenter
        return VsphereFacts(
            endpoint=f"{conn.target.host}:{conn.target.port}",
            user=conn.target.user,
            tls_verified=not conn.insecure,
            product=about,
            hosts=host_facts,
            vms=vm_facts,
            inventory=inventory.entities(tree, pools),
            permissions=guarded(
                problems,
                "vsphere.permissions",
                conn.target.text,
                None,
                lambda: access.read_permissions(conn, tree, problems),
            ),
            roles=guarded(
                problems, "vsphere.roles", conn.target.text, None, lambda: access.read_roles(conn, problems)
            ),
            vcenter_options=(
                guarded(
                    problems,
                    "vsphere.vcenter_options",
                    conn.target.text,
                    None,
                    lambda: read_options(
                        conn.content.setting,
                        "vsphere.vcenter_options",
                        conn.target.text,
                        "vCenter",
                        problems,
                        JUDGED_VCENTER_OPTIONS,
                    ),
                )
                if vcenter
                else None
            ),
            content_libraries=guarded(
                problems, library.AREA, conn.target.text, None, lambda: library.read_libraries(conn, problems)
            ),
            distributed_switches=(
                guarded(
                    problems,
                    "vsphere.distributed_switches",
                    conn.target.text,
                    None,
                    lambda: storage.read_switches(conn, problems),
                )
                if vcenter
                else None
            ),
            datastores=datastores,
            alarms=guarded(
                problems, "vsphere.alarms", conn.target.text, None, lambda: _alarms(conn, problems)
            ),
            controls_offered=VSPHERE_OFFERS,
        )


def _plain_about(conn: Connection) -> object:
    from hvguard.collect.vsphere.plain import plain

    return plain(conn.content.about)


def _alarms(conn: Connection, problems: list[Problem]) -> list[Alarm] | None:
    manager = conn.content.alarmManager
    if manager is None:
        problems.append(
            Problem(
                area="vsphere.alarms",
                source=conn.target.text,
                message="this server has no AlarmManager (alarms are defined on vCenter)",
            )
        )
        return None
    found, _ = guarded_call(
        problems,
        "vsphere.alarms",
        conn.target.text,
        "AlarmManager.GetAlarm",
        lambda: manager.GetAlarm(conn.content.rootFolder),
    )
    if found is None:
        return None
    out = []
    for alarm in found:

        def info_of(a: Any = alarm) -> Any:
            return a.info

        info, _ = guarded_call(problems, "vsphere.alarms", conn.target.text, "Alarm.info", info_of)
        if info is None:
            continue
        expressions = getattr(info.expression, "expression", None) or [info.expression]
        out.append(
            Alarm(
                name=str(info.name),
                entity=getattr(info.entity, "_moId", None),
                enabled=bool(info.enabled),
                event_types=sorted(
                    {
                        str(getattr(e, "eventTypeId", None) or getattr(e, "eventType", "") or "")
                        for e in expressions
                    }
                    - {""}
                ),
                actions=sorted(
                    {
                        type(a.action).__name__
                        for a in getattr(info.action, "action", None) or ()
                        if getattr(a, "action", None) is not None
                    }
                ),
            )
        )
    return out


COLLECTOR = VsphereCollector()


def collect_vsphere_target(target: str, options: VsphereOptions | None = None) -> TargetFacts:
    """Collect ``target`` (``vsphere://USER@HOST[:PORT]``). A usage error (bad target, no password)
    raises :class:`~hvguard.collect.vsphere.target.VsphereTargetError`; a target that cannot be logged in
    to is returned with ``unreachable`` set."""
    opts = options or VsphereOptions()
    parsed: VsphereTarget = parse_vsphere_target(target)
    password = password_for(parsed, opts)
    started = time.monotonic()
    collected_at = _now()
    problems: list[Problem] = []
    try:
        conn = connect(parsed, opts, password)
    except VsphereUnreachable as exc:
        return TargetFacts(
            id=target,
            platform=Platform.VMWARE_ESXI,
            collection=_info(collected_at, started, []),
            unreachable=str(exc),
        )
    try:
        facts = COLLECTOR.collect(conn, problems)
        platform = Platform.VMWARE_VCENTER if conn.is_vcenter else Platform.VMWARE_ESXI
    finally:
        conn.close()
    return TargetFacts(
        id=target,
        platform=platform,
        collection=_info(collected_at, started, [f"vsphere:{parsed.host}:{parsed.port}"]),
        vsphere=facts,
        problems=problems,
    )


def _info(collected_at: str, started: float, collectors: list[str]) -> CollectionInfo:
    return CollectionInfo(
        collected_at=collected_at,
        tool_version=__version__,
        collectors=collectors,
        duration_s=round(time.monotonic() - started, 3),
        privileged=None,  # a vSphere session's rights are its role's, not a local uid's
    )
