"""Hand-built vSphere facts for unit tests of the vSphere checks: a compliant ESXi host, vCenter and VM
that each test bends one way. They stand in for what ESXi/vCenter would answer, built from the
documented API shapes (``../shared/design/vsphere.md`` §2); tests using them are named "stand-in" where
they stand in for ESXi behaviour the simulator cannot produce."""

from __future__ import annotations

from typing import Any

import msgspec

from hvguard.collect.vsphere.resources import resources_from_vsphere
from hvguard.facts import (
    ActiveDirectory,
    AdvancedOptions,
    Alarm,
    CollectionInfo,
    ControlsOffered,
    Firewall,
    FirewallRuleset,
    HostCpu,
    HostNetwork,
    HostProfileState,
    HostService,
    HostTpm,
    InventoryEntity,
    Lockdown,
    Permission,
    PhysicalNic,
    PortGroup,
    Problem,
    Role,
    SecurityPolicy,
    Shaping,
    TargetFacts,
    Teaming,
    VmDevice,
    VmFlags,
    VmkNic,
    VsphereFacts,
    VsphereHost,
    VsphereProduct,
    VsphereVm,
    VSwitch,
)

GIB = 1024**3

#: ESXi 8 STIG values for the advanced options hvguard judges (a compliant host).
GOOD_OPTIONS: dict[str, str | int | bool] = {
    "Syslog.global.logHost": "ssl://syslog.example.org:1514",
    "Syslog.global.certificate.checkSSLCerts": True,
    "Syslog.global.certificate.strictX509Compliance": True,
    "Syslog.global.auditRecord.storageEnable": True,
    "Syslog.global.auditRecord.remoteEnable": True,
    "UserVars.ESXiShellTimeOut": 600,
    "UserVars.ESXiShellInteractiveTimeOut": 900,
    "UserVars.DcuiTimeOut": 600,
    "DCUI.Access": "root",
    "Config.HostAgent.plugins.solo.enableMob": False,
    "Config.HostAgent.plugins.hostsvc.esxAdminsGroup": "hv-esx-admins",
    "Security.AccountLockFailures": 3,
    "Security.AccountUnlockTime": 900,
    "VMkernel.Boot.execInstalledOnly": True,
    "Net.BlockGuestBPDU": 1,
}

ESXI_PRODUCT = VsphereProduct(
    name="VMware ESXi",
    full_name="VMware ESXi 8.0.3 build-24674464",
    version="8.0.3",
    build="24674464",
    api_type="HostAgent",
    api_version="8.0.3.0",
    product_line_id="embeddedEsx",
)
VCENTER_PRODUCT = VsphereProduct(
    name="VMware vCenter Server",
    full_name="VMware vCenter Server 9.0.2 build-25148086",
    version="9.0.2",
    build="25148086",
    api_type="VirtualCenter",
    api_version="8.0.3.0",
    product_line_id="vpx",
)


def ruleset(key: str, *, enabled: bool = True, all_ip: bool = False, **changes: Any) -> FirewallRuleset:
    """A firewall ruleset, restricted to the management network unless ``all_ip``."""
    return FirewallRuleset(
        key=key,
        enabled=enabled,
        user_configurable=True,
        all_ip=all_ip,
        ip_networks=[] if all_ip else ["10.0.5.0/24"],
        **changes,
    )


def good_network(**changes: Any) -> HostNetwork:
    """vSwitch0 with two active uplinks, secure policies, shaping on; management vmk0 on its own VLAN."""
    secure = SecurityPolicy(allow_promiscuous=False, mac_changes=False, forged_transmits=False)
    shaping = Shaping(
        enabled=True, average_bps=1_000_000_000, peak_bps=2_000_000_000, burst_bytes=104_857_600
    )
    team = Teaming(active=["vmnic0", "vmnic1"], policy="loadbalance_srcid")
    base = HostNetwork(
        pnics=[
            PhysicalNic(device="vmnic0", link_speed_mb=10000),
            PhysicalNic(device="vmnic1", link_speed_mb=10000),
        ],
        vswitches=[
            VSwitch(
                name="vSwitch0", pnics=["vmnic0", "vmnic1"], teaming=team, security=secure, shaping=shaping
            )
        ],
        portgroups=[
            PortGroup(
                name="Management Network",
                vswitch="vSwitch0",
                vlan_id=10,
                teaming=team,
                security=secure,
                shaping=shaping,
            ),
            PortGroup(
                name="VM Network",
                vswitch="vSwitch0",
                vlan_id=20,
                teaming=team,
                security=secure,
                shaping=shaping,
            ),
        ],
        vmknics=[
            VmkNic(
                device="vmk0",
                portgroup="Management Network",
                ip="10.0.5.11",
                netmask="255.255.255.0",
                services=["management"],
            )
        ],
    )
    return msgspec.structs.replace(base, **changes)


def good_host(name: str = "esx1.example.org", moref: str = "host-11", **changes: Any) -> VsphereHost:
    """A compliant ESXi 8 host (every fact read)."""
    base = VsphereHost(
        name=name,
        moref=moref,
        connection_state="connected",
        product=ESXI_PRODUCT,
        options=AdvancedOptions(values=dict(GOOD_OPTIONS)),
        services=[
            HostService(key="TSM-SSH", label="SSH", running=False, policy="off"),
            HostService(key="TSM", label="ESXi Shell", running=False, policy="off"),
            HostService(key="ntpd", label="NTP Daemon", running=True, policy="on"),
            HostService(key="slpd", label="slpd", running=False, policy="off"),
            HostService(key="sfcbd-watchdog", label="CIM Server", running=False, policy="off"),
            HostService(key="snmpd", label="SNMP Server", running=False, policy="off"),
        ],
        lockdown=Lockdown(mode="lockdownNormal", exception_users=[]),
        acceptance_level="partner",
        firewall=Firewall(
            incoming_blocked=True,
            outgoing_blocked=True,
            rulesets=[
                ruleset("sshServer", enabled=False, rules=["tcp/22/inbound"]),
                ruleset("vSphereClient", required=True, rules=["tcp/902/inbound", "tcp/443/inbound"]),
                ruleset("webAccess", rules=["tcp/80/inbound"]),
                ruleset("ntpClient", rules=["udp/123/outbound"]),
                ruleset("syslog", rules=["tcp/1514/outbound"]),
                ruleset("CIMSLP", enabled=False, rules=["udp/427/inbound"]),
                ruleset("snmp", enabled=False, rules=["udp/161/inbound"]),
            ],
        ),
        network=good_network(),
        ntp_servers=["ntp1.example.org", "ntp2.example.org"],
        active_directory=ActiveDirectory(
            enabled=True, joined_domain="corp.example.org", membership_status="ok"
        ),
        tpm=HostTpm(
            attestation_status="accepted",
            tpm_supported=True,
            tpm_version="2.0",
            uefi_secure_boot=True,
            encryption_mode="TPM",
            require_secure_boot=True,
        ),
        cpu=HostCpu(packages=2, cores=32, threads=64, mhz=2600, hv_supported=True, hw_mmu_supported=True),
        memory_bytes=512 * GIB,
        accounts=["root", "dcui", "vpxuser"],
        smart_card_auth=False,
        profile=HostProfileState(
            profile="gold-esxi-8", compliance="compliant", checked_at="2026-11-30T00:00:00Z"
        ),
        datastores=["ds-vmfs-01"],
    )
    return msgspec.structs.replace(base, **changes)


def vm_props(**changes: Any) -> dict[str, Any]:
    """A compliant VM's PropertyCollector properties, in the documented API shapes."""
    props: dict[str, Any] = {
        "config.hardware.numCPU": 4,
        "config.hardware.memoryMB": 8192,
        "config.cpuAllocation": {
            "reservation": 1000,
            "limit": 8000,
            "shares": {"level": "normal", "shares": 4000},
        },
        "config.memoryAllocation": {
            "reservation": 4096,
            "limit": 8192,
            "shares": {"level": "normal", "shares": 81920},
        },
        "config.hardware.device": [
            {
                "_typeName": "VirtualDisk",
                "key": 2000,
                "deviceInfo": {"label": "Hard disk 1"},
                "storageIOAllocation": {"limit": 2000, "shares": {"level": "normal", "shares": 1000}},
            },
            {
                "_typeName": "VirtualVmxnet3",
                "key": 4000,
                "deviceInfo": {"label": "Network adapter 1"},
                "macAddress": "00:50:56:aa:bb:01",
                "resourceAllocation": {"limit": 1000},
            },
        ],
        "config.flags": {"virtualExecUsage": "hvAuto", "virtualMmuUsage": "automatic"},
        "config.firmware": "efi",
        "config.bootOptions": {"efiSecureBootEnabled": True},
    }
    props.update(changes)
    return props


GOOD_EXTRA_CONFIG = {
    "isolation.device.connectable.disable": "TRUE",
    "isolation.tools.copy.disable": "TRUE",
    "isolation.tools.paste.disable": "TRUE",
    "isolation.tools.dnd.disable": "TRUE",
    "isolation.tools.diskShrink.disable": "TRUE",
    "isolation.tools.diskWiper.disable": "TRUE",
}


def good_vm(name: str = "web1", moref: str = "vm-101", host: str = "host-11", **changes: Any) -> VsphereVm:
    """A compliant VM on ``host``: limits and reservations set, no removable devices, isolation keys."""
    props = changes.pop("props", None) or vm_props()
    base = VsphereVm(
        name=name,
        moref=moref,
        datacenter="DC1",
        folder="Prod",
        host=host,
        resource_pool="resgroup-8",
        power_state="poweredOn",
        flags=VmFlags(virtual_exec_usage="hvAuto", virtual_mmu_usage="automatic"),
        extra_config=dict(GOOD_EXTRA_CONFIG),
        devices=[
            VmDevice(type="VirtualDisk", label="Hard disk 1"),
            VmDevice(
                type="VirtualVmxnet3",
                label="Network adapter 1",
                connected=True,
                start_connected=True,
                backing="VM Network",
            ),
        ],
        networks=["VM Network"],
        resources=resources_from_vsphere(props),
    )
    return msgspec.structs.replace(base, **changes)


ROLES = [
    Role(id=-5, name="NoAccess", system=True),
    Role(id=-2, name="ReadOnly", system=True, privileges=["System.Anonymous", "System.Read", "System.View"]),
    Role(
        id=-1,
        name="Admin",
        system=True,
        privileges=["Host.Config.AdvancedConfig", "VirtualMachine.Interact.PowerOn"],
    ),
    Role(
        id=101,
        name="VM Operator",
        privileges=[
            "System.Anonymous",
            "System.Read",
            "System.View",
            "VirtualMachine.Interact.PowerOn",
            "VirtualMachine.Interact.PowerOff",
        ],
    ),
    Role(
        id=102,
        name="Content Admin",
        privileges=["ContentLibrary.AddLibraryItem", "ContentLibrary.DeleteLibraryItem"],
    ),
]


def inventory(vms: list[VsphereVm]) -> list[InventoryEntity]:
    """Root folder → DC1 → vm folder → Prod folder → each VM (also under resgroup-8 of cluster domain-c7)."""
    return [
        InventoryEntity(moref="group-d1", name="Datacenters", type="Folder"),
        InventoryEntity(moref="datacenter-2", name="DC1", type="Datacenter", parents=["group-d1"]),
        InventoryEntity(moref="group-v3", name="vm", type="Folder", parents=["datacenter-2"]),
        InventoryEntity(moref="group-v20", name="Prod", type="Folder", parents=["group-v3"]),
        InventoryEntity(moref="group-h4", name="host", type="Folder", parents=["datacenter-2"]),
        InventoryEntity(
            moref="domain-c7", name="Cluster1", type="ClusterComputeResource", parents=["group-h4"]
        ),
        InventoryEntity(moref="resgroup-8", name="Resources", type="ResourcePool", parents=["domain-c7"]),
        *[
            InventoryEntity(
                moref=vm.moref, name=vm.name, type="VirtualMachine", parents=["group-v20", "resgroup-8"]
            )
            for vm in vms
        ],
    ]


GOOD_PERMISSIONS = [
    Permission(
        entity="group-d1", principal="VSPHERE.LOCAL\\Administrator", group=False, role_id=-1, propagate=True
    ),
    Permission(
        entity="group-v20", principal="CORP\\prod-vm-operators", group=True, role_id=101, propagate=True
    ),
    Permission(entity="vm-102", principal="CORP\\prod-vm-operators", group=True, role_id=-5, propagate=True),
]


GOOD_ALARM = Alarm(
    name="VM reconfigured",
    entity="group-d1",
    enabled=True,
    event_types=["vim.event.VmReconfiguredEvent"],
    actions=["email"],
)


def esxi_target(
    host: VsphereHost | None = None,
    vms: list[VsphereVm] | None = None,
    *,
    problems: list[Problem] | None = None,
    **changes: Any,
) -> TargetFacts:
    """A standalone ESXi target (``vmware-esxi``) with one compliant host and one VM."""
    h = host or good_host(moref="ha-host")
    vm_list = vms if vms is not None else [good_vm(host=h.moref)]
    vs = VsphereFacts(
        endpoint="esx1.example.org:443",
        user="root",
        product=ESXI_PRODUCT,
        hosts=[h],
        vms=vm_list,
        inventory=inventory(vm_list),
        permissions=[
            Permission(entity="ha-folder-root", principal="root", group=False, role_id=-1, propagate=True)
        ],
        roles=ROLES,
        content_libraries=None,
        distributed_switches=[],
        datastores=[],
        alarms=[],
        controls_offered=ControlsOffered(
            memory_limit=True,
            memory_guarantee=True,
            memory_priority=True,
            cpu_limit=True,
            cpu_guarantee=True,
            cpu_priority=True,
        ),
    )
    vs = msgspec.structs.replace(vs, **changes)
    return TargetFacts(
        id="vsphere://root@esx1.example.org",
        platform="vmware-esxi",
        collection=CollectionInfo(collected_at="2026-02-01T00:00:00Z", tool_version="test"),
        vsphere=vs,
        problems=problems or [],
    )


def vcenter_target(
    hosts: list[VsphereHost] | None = None,
    vms: list[VsphereVm] | None = None,
    *,
    problems: list[Problem] | None = None,
    **changes: Any,
) -> TargetFacts:
    """A vCenter target (``vmware-vcenter``): two compliant hosts in Cluster1 and two VMs in Prod."""
    host_list = hosts or [
        good_host("esx1.example.org", "host-11", datacenter="DC1", cluster="Cluster1"),
        good_host("esx2.example.org", "host-12", datacenter="DC1", cluster="Cluster1"),
    ]
    vm_list = (
        vms
        if vms is not None
        else [good_vm("web1", "vm-101", "host-11"), good_vm("db1", "vm-102", "host-12")]
    )
    vs = VsphereFacts(
        endpoint="vc.example.org:443",
        user="administrator@vsphere.local",
        product=VCENTER_PRODUCT,
        hosts=host_list,
        vms=vm_list,
        inventory=inventory(vm_list),
        permissions=list(GOOD_PERMISSIONS),
        roles=ROLES,
        vcenter_options=AdvancedOptions(
            values={
                "event.maxAge": 30,
                "task.maxAge": 30,
                "event.maxAgeEnabled": True,
                "task.maxAgeEnabled": True,
            }
        ),
        content_libraries=[],
        distributed_switches=[],
        datastores=[],
        alarms=[GOOD_ALARM],
        controls_offered=ControlsOffered(
            memory_limit=True,
            memory_guarantee=True,
            memory_priority=True,
            cpu_limit=True,
            cpu_guarantee=True,
            cpu_priority=True,
        ),
    )
    vs = msgspec.structs.replace(vs, **changes)
    return TargetFacts(
        id="vsphere://administrator%40vsphere.local@vc.example.org",
        platform="vmware-vcenter",
        collection=CollectionInfo(collected_at="2026-02-01T00:00:00Z", tool_version="test"),
        vsphere=vs,
        problems=problems or [],
    )


def with_options(
    host: VsphereHost, *, drop: tuple[str, ...] = (), unreadable: dict[str, str] | None = None, **values: Any
) -> VsphereHost:
    """``host`` with advanced options changed (keys with dots given as ``values`` through ``**{...}``),
    some dropped, some answered by a fault."""
    assert host.options is not None
    vals = {k: v for k, v in host.options.values.items() if k not in drop}
    vals.update(values)
    opts = AdvancedOptions(values=vals, unreadable=dict(unreadable or {}))
    return msgspec.structs.replace(host, options=opts)
