"""vSphere facts: an ESXi host or a vCenter, every ESXi host it manages and every VM, read through the
vSphere API (PropertyCollector reads, ``OptionManager.QueryOptions``, ``AuthorizationManager``, the vAPI
content-library calls). The property map per SS-009 measure is ``../shared/design/vsphere.md`` §2.

What is platform-neutral (a VM's vCPUs, memory, reservations, limits, shares, disk and NIC limits,
passthrough, encryption key, firmware) is :class:`~hvguard.facts.VmResources` in
``VsphereVm.resources``, filled by ``hvguard.collect.vsphere.resources.resources_from_vsphere``; the rest
is vSphere's own and lives here, in the API's words and units (bits/s for traffic shaping, as
``HostNetworkTrafficShapingPolicy`` speaks).

Conventions (as for the rest of the facts model):

- ``None`` = **not read**: the call or property failed. The collector records why as a
  :class:`~hvguard.facts.Problem` in ``TargetFacts.problems`` under the area named in the field's
  docstring, so a check reports ``error`` with the reason. An empty list / dict = read, and empty.
- Areas (``Problem.area``) use managed-object ids, never names, so a host called ``esx1.example.com``
  cannot be confused with a host called ``esx1`` by the dotted-prefix matching of
  ``CheckContext.problems``: ``vsphere`` (the whole connection), ``vsphere.about``,
  ``vsphere.permissions``, ``vsphere.roles``, ``vsphere.inventory``, ``vsphere.content_libraries``,
  ``vsphere.distributed_switches``, ``vsphere.datastores``, ``vsphere.vcenter_options``,
  ``vsphere.alarms``, ``vsphere.vms`` (the VM list itself), ``vsphere.host:<moref>`` (the host as a
  whole) and ``vsphere.host:<moref>.<field>`` for each per-host field below (``options``, ``services``,
  ``lockdown``, ``acceptance_level``, ``firewall``, ``network``, ``ntp``, ``active_directory``, ``tpm``,
  ``cpu``, ``accounts``, ``profile``), ``vsphere.vm:<moref>`` and ``vsphere.vm:<moref>.<part>``
  (``devices``, ``extra_config``, ``flags``). :func:`host_area` / :func:`vm_area` build them.
- Advanced options: one ``QueryOptions`` per host. A key the host does not know answers ``InvalidName``;
  the collector records it in ``AdvancedOptions.unreadable`` (key → fault) rather than as a value, so a
  check of that key reports ``error`` (never pass or N/A). Values keep the API's type (``xsd:long`` and
  ``xsd:int`` → int, ``xsd:boolean`` → bool, strings as they are).
"""

from __future__ import annotations

from typing import Literal

from hvguard.facts.base import Model
from hvguard.facts.resources import ControlsOffered, VmResources

#: An advanced option's value as the API types it.
OptionValue = str | int | float | bool


def host_area(moref: str, part: str | None = None) -> str:
    """The ``Problem.area`` of a host's facts (``vsphere.host:host-12.options``)."""
    return f"vsphere.host:{moref}" + (f".{part}" if part else "")


def vm_area(moref: str, part: str | None = None) -> str:
    """The ``Problem.area`` of a VM's facts (``vsphere.vm:vm-42.devices``)."""
    return f"vsphere.vm:{moref}" + (f".{part}" if part else "")


class VsphereProduct(Model, frozen=True, kw_only=True, omit_defaults=True):
    """``AboutInfo`` (``content.about`` or ``HostSystem.config.product``).

    ``api_type`` is ``HostAgent`` (an ESXi host) or ``VirtualCenter``; ``name`` e.g. ``VMware ESXi`` /
    ``VMware vCenter Server``; ``version`` ``8.0.2``; ``build`` ``22380479``; ``product_line_id``
    ``embeddedEsx`` / ``vpx``."""

    name: str | None = None
    full_name: str | None = None
    version: str | None = None
    build: str | None = None
    api_type: str | None = None
    api_version: str | None = None
    product_line_id: str | None = None
    instance_uuid: str | None = None


class AdvancedOptions(Model, frozen=True, kw_only=True, omit_defaults=True):
    """Advanced settings (``OptionManager.QueryOptions``): ``values`` key → value, ``unreadable`` key →
    the fault that answered instead (``InvalidName`` for a key the host does not have)."""

    values: dict[str, OptionValue] = {}
    unreadable: dict[str, str] = {}


class HostService(Model, frozen=True, kw_only=True, omit_defaults=True):
    """One ``HostService`` of ``config.service.service``: ``key`` (``TSM-SSH``, ``TSM``, ``ntpd``,
    ``sfcbd-watchdog``, ``slpd``, ``snmpd`` …), whether it runs, and its startup ``policy`` (``on``,
    ``off``, ``automatic``)."""

    key: str
    label: str | None = None
    running: bool | None = None
    policy: str | None = None


class Lockdown(Model, frozen=True, kw_only=True, omit_defaults=True):
    """``config.lockdownMode`` (``lockdownDisabled`` / ``lockdownNormal`` / ``lockdownStrict``) and
    ``HostAccessManager.QueryLockdownExceptions`` (``exception_users``, None when not read)."""

    mode: str | None = None
    exception_users: list[str] | None = None


class FirewallRuleset(Model, frozen=True, kw_only=True, omit_defaults=True):
    """``HostFirewallRuleset``: ``key`` (``sshServer``, ``vSphereClient``, ``webAccess``, ``CIMSLP`` …),
    enabled, ``required`` (cannot be disabled), ``user_configurable`` (``userControllable``), the
    ``allowedHosts`` (``all_ip`` = ``allIp``; ``ip_addresses``; ``ip_networks`` as ``NET/PREFIX``) and
    the rules as ``tcp/22/inbound`` strings."""

    key: str
    label: str | None = None
    enabled: bool | None = None
    required: bool = False
    user_configurable: bool | None = None
    all_ip: bool | None = None
    ip_addresses: list[str] = []
    ip_networks: list[str] = []
    rules: list[str] = []


class Firewall(Model, frozen=True, kw_only=True, omit_defaults=True):
    """``config.firewall``: the default policy (``defaultPolicy.incomingBlocked`` / ``outgoingBlocked``)
    and every ruleset."""

    incoming_blocked: bool | None = None
    outgoing_blocked: bool | None = None
    rulesets: list[FirewallRuleset] = []


class SecurityPolicy(Model, frozen=True, kw_only=True, omit_defaults=True):
    """``HostNetworkSecurityPolicy`` / DVS ``DVSSecurityPolicy``: each True when allowed."""

    allow_promiscuous: bool | None = None
    mac_changes: bool | None = None
    forged_transmits: bool | None = None


class Shaping(Model, frozen=True, kw_only=True, omit_defaults=True):
    """Traffic shaping (``HostNetworkTrafficShapingPolicy`` / DVS in- or out-shaping): enabled, average
    and peak bandwidth in **bits/s**, burst size in bytes (the API's units)."""

    enabled: bool | None = None
    average_bps: int | None = None
    peak_bps: int | None = None
    burst_bytes: int | None = None


class Teaming(Model, frozen=True, kw_only=True, omit_defaults=True):
    """NIC teaming: the ordered ``active`` and ``standby`` uplinks (physical NIC names such as
    ``vmnic0`` on a standard switch, uplink port names on a DVS) and the load-balancing ``policy``."""

    active: list[str] = []
    standby: list[str] = []
    policy: str | None = None


class VSwitch(Model, frozen=True, kw_only=True, omit_defaults=True):
    """A standard vSwitch (``config.network.vswitch``): its physical NICs (``pnic`` device names),
    teaming, security and shaping from ``spec.policy``."""

    name: str
    pnics: list[str] = []
    teaming: Teaming | None = None
    security: SecurityPolicy | None = None
    shaping: Shaping | None = None
    mtu: int | None = None


class PortGroup(Model, frozen=True, kw_only=True, omit_defaults=True):
    """A standard port group (``config.network.portgroup``) with its **effective** policy
    (``computedPolicy``: the vSwitch's, with the port group's overrides applied)."""

    name: str
    vswitch: str | None = None
    vlan_id: int | None = None
    teaming: Teaming | None = None
    security: SecurityPolicy | None = None
    shaping: Shaping | None = None


class VmkNic(Model, frozen=True, kw_only=True, omit_defaults=True):
    """A VMkernel adapter (``config.network.vnic``): device, port group (or DVS port group key), IPv4
    address/netmask and the services it carries (``management``, ``vmotion``, ``vSphereProvisioning`` …
    from ``virtualNicManagerInfo``)."""

    device: str
    portgroup: str | None = None
    ip: str | None = None
    netmask: str | None = None
    services: list[str] = []


class PhysicalNic(Model, frozen=True, kw_only=True, omit_defaults=True):
    """A physical NIC (``config.network.pnic``): device name and link speed in Mb/s (None = link down)."""

    device: str
    link_speed_mb: int | None = None


class HostNetwork(Model, frozen=True, kw_only=True, omit_defaults=True):
    """A host's standard networking (``config.network`` and ``config.virtualNicManagerInfo``)."""

    pnics: list[PhysicalNic] = []
    vswitches: list[VSwitch] = []
    portgroups: list[PortGroup] = []
    vmknics: list[VmkNic] = []


class ActiveDirectory(Model, frozen=True, kw_only=True, omit_defaults=True):
    """``config.authenticationManagerInfo.authConfig`` (``HostActiveDirectoryInfo``): ``enabled``, the
    joined domain and ``domainMembershipStatus`` (``ok`` …)."""

    enabled: bool | None = None
    joined_domain: str | None = None
    membership_status: str | None = None


class HostTpm(Model, frozen=True, kw_only=True, omit_defaults=True):
    """Measured launch: ``summary.tpmAttestation`` (``status`` ``accepted``/``notAccepted``, ``message``),
    ``capability.tpmSupported``/``tpmVersion``/``txtEnabled``/``uefiSecureBoot``; and, from
    ``esxcli system settings encryption get`` where the collector can run it, ``encryption_mode``
    (``TPM``/``NONE``) and ``require_secure_boot``."""

    attestation_status: str | None = None
    attestation_message: str | None = None
    tpm_supported: bool | None = None
    tpm_version: str | None = None
    txt_enabled: bool | None = None
    uefi_secure_boot: bool | None = None
    encryption_mode: str | None = None
    require_secure_boot: bool | None = None


class HostCpu(Model, frozen=True, kw_only=True, omit_defaults=True):
    """``hardware.cpuInfo`` (packages, cores, threads, hz → MHz) and hardware-virtualisation support:
    ``hv_supported`` (VT-x/AMD-V, from ``config.featureCapability`` / ``hardware.cpuFeature``),
    ``hw_mmu_supported`` (``capability.cpuHwMmuSupported``: EPT/RVI)."""

    packages: int | None = None
    cores: int | None = None
    threads: int | None = None
    mhz: int | None = None
    model: str | None = None
    hv_supported: bool | None = None
    hw_mmu_supported: bool | None = None


class HostProfileState(Model, frozen=True, kw_only=True, omit_defaults=True):
    """Gold configuration (11.4.7): the host profile attached (name) and ``complianceCheckState``
    (``compliant``/``nonCompliant``/``unknown``) with the time of the last check (ISO 8601)."""

    profile: str | None = None
    compliance: str | None = None
    checked_at: str | None = None


class VsphereHost(Model, frozen=True, kw_only=True, omit_defaults=True):
    """One ESXi host (the only one of an ESXi target; each host of a vCenter).

    Every ``None`` field was not read; its problem is under ``host_area(moref, FIELD)`` (``network`` for
    the network fields). ``datacenter``/``cluster`` are names (None for a standalone ESXi target).
    ``memory_bytes`` is ``hardware.memorySize``. ``accounts`` are the local accounts
    (``HostLocalAccountManager`` / ``UserDirectory.RetrieveUserGroups``); ``ntp_servers`` is
    ``config.dateTimeInfo.ntpConfig.server``; ``smart_card_auth`` ``HostSmartCardAuthentication`` enabled.
    ``datastores`` are datastore names mounted on the host.
    """

    name: str
    moref: str
    datacenter: str | None = None
    cluster: str | None = None
    connection_state: str | None = None
    maintenance: bool | None = None
    product: VsphereProduct | None = None
    options: AdvancedOptions | None = None
    services: list[HostService] | None = None
    lockdown: Lockdown | None = None
    acceptance_level: str | None = None
    """``HostImageConfigGetAcceptance``: ``vmware_certified``, ``vmware_accepted``, ``partner`` or
    ``community``."""
    firewall: Firewall | None = None
    network: HostNetwork | None = None
    ntp_servers: list[str] | None = None
    active_directory: ActiveDirectory | None = None
    tpm: HostTpm | None = None
    cpu: HostCpu | None = None
    memory_bytes: int | None = None
    accounts: list[str] | None = None
    smart_card_auth: bool | None = None
    profile: HostProfileState | None = None
    datastores: list[str] = []


class InventoryEntity(Model, frozen=True, kw_only=True, omit_defaults=True):
    """A managed entity of the inventory tree, for hvguard's own permission propagation: ``moref``,
    ``name``, ``type`` (``Folder``, ``Datacenter``, ``ClusterComputeResource``, ``ComputeResource``,
    ``HostSystem``, ``ResourcePool``, ``VirtualMachine``, ``Datastore``, ``Network`` …) and ``parents``:
    the entities it inherits permissions from, nearest first — its ``parent`` and, for a VM, also its
    ``resourcePool`` (a VM inherits from its folder and from its host/cluster/resource pool)."""

    moref: str
    name: str
    type: str
    parents: list[str] = []


class Permission(Model, frozen=True, kw_only=True, omit_defaults=True):
    """``AuthorizationManager.RetrieveAllPermissions``: a role granted to a user or group on an entity,
    optionally propagating to its descendants. ``role_id`` ``-5`` is NoAccess, ``-1`` Admin."""

    entity: str
    principal: str
    group: bool
    role_id: int
    propagate: bool
    entity_name: str | None = None
    entity_type: str | None = None


class Role(Model, frozen=True, kw_only=True, omit_defaults=True):
    """``AuthorizationManager.roleList``: id, name, whether it is a system role, and its privilege ids
    (``VirtualMachine.Interact.PowerOn``, ``Host.Config.AdvancedConfig`` …)."""

    id: int
    name: str
    system: bool = False
    privileges: list[str] = []


class DvPortgroup(Model, frozen=True, kw_only=True, omit_defaults=True):
    """A distributed port group: VLAN, uplink teaming (uplink port names), security, in/out shaping."""

    name: str
    key: str | None = None
    vlan_id: int | None = None
    teaming: Teaming | None = None
    security: SecurityPolicy | None = None
    in_shaping: Shaping | None = None
    out_shaping: Shaping | None = None
    uplink: bool = False
    """The DVS's own uplink port group (not a VM network)."""


class DistributedSwitch(Model, frozen=True, kw_only=True, omit_defaults=True):
    """A distributed switch: ``config.uplinkPortPolicy.uplinkPortName``, per host (moref) the physical
    NICs backing it (``config.host[].config.backing.pnicSpec``), NIOC, and its port groups."""

    name: str
    moref: str
    uplink_names: list[str] = []
    host_pnics: dict[str, list[str]] = {}
    nioc_enabled: bool | None = None
    portgroups: list[DvPortgroup] = []


class Datastore(Model, frozen=True, kw_only=True, omit_defaults=True):
    """A datastore: ``summary.type`` (``VMFS``, ``NFS``, ``NFS41``, ``vsan``, ``VVOL``), URL, for NFS the
    remote host(s)/path and ``info.nas.securityType`` (``AUTH_SYS``, ``SEC_KRB5``, ``SEC_KRB5I``,
    ``SEC_KRB5P``), and the hosts (morefs) that mount it."""

    name: str
    moref: str
    type: str | None = None
    url: str | None = None
    remote_hosts: list[str] = []
    remote_path: str | None = None
    security_type: str | None = None
    hosts: list[str] = []


class LibraryItem(Model, frozen=True, kw_only=True, omit_defaults=True):
    """A content-library item (``content/library/item``): type (``ovf``, ``iso``, ``vm-template``),
    size in bytes, and ``security_compliance`` (signature verified under the library's policy)."""

    id: str
    name: str
    type: str | None = None
    size: int | None = None
    security_compliance: bool | None = None


class ContentLibrary(Model, frozen=True, kw_only=True, omit_defaults=True):
    """A content library (vAPI ``content/library``): ``type`` ``LOCAL``/``SUBSCRIBED``; publishing
    (``publish_info.published``, ``authentication_method`` ``NONE``/``BASIC``); a subscription's URL and
    ``ssl_thumbprint``; ``security_policy_id`` (OVF signature policy); its items (None when not listed)."""

    id: str
    name: str
    type: str | None = None
    published: bool | None = None
    authentication_method: str | None = None
    publish_url: str | None = None
    subscription_url: str | None = None
    ssl_thumbprint: str | None = None
    security_policy_id: str | None = None
    items: list[LibraryItem] | None = None


class Alarm(Model, frozen=True, kw_only=True, omit_defaults=True):
    """An alarm definition (``AlarmManager.GetAlarm``): the entity it is set on, enabled, the event
    types it triggers on (``vim.event.VmReconfiguredEvent`` …) and its action kinds (``email``,
    ``snmp``, ``script``)."""

    name: str
    entity: str | None = None
    enabled: bool | None = None
    event_types: list[str] = []
    actions: list[str] = []


class VmFlags(Model, frozen=True, kw_only=True, omit_defaults=True):
    """``config.flags``: ``virtualExecUsage`` (``hvAuto``/``hvOn``/``hvOff``), ``virtualMmuUsage``
    (``automatic``/``on``/``off``)."""

    virtual_exec_usage: str | None = None
    virtual_mmu_usage: str | None = None


class VmDevice(Model, frozen=True, kw_only=True, omit_defaults=True):
    """A virtual device from ``config.hardware.device`` that matters for isolation (11.2.7): its type
    (``VirtualFloppy``, ``VirtualCdrom``, ``VirtualSerialPort``, ``VirtualParallelPort``,
    ``VirtualUSBController``, ``VirtualUSB``, ``VirtualPCIPassthrough``, ``VirtualEthernetCard``
    subtypes …), label, ``connectable`` state and a backing summary (``iso [ds] path``, ``host /dev/…``,
    a port group name)."""

    type: str
    label: str | None = None
    connected: bool | None = None
    start_connected: bool | None = None
    allow_guest_control: bool | None = None
    backing: str | None = None


class VsphereVm(Model, frozen=True, kw_only=True, omit_defaults=True):
    """One VM (templates included, ``template`` True).

    ``folder`` is the VM-folder path under its datacenter (``Prod/Web``; ``""`` at the top, None when
    not read);
    ``host`` the moref of ``runtime.host``; ``resource_pool`` its moref. ``resources`` is the neutral
    view (``resources_from_vsphere``). ``extra_config`` keeps the subset hvguard judges (``isolation.*``,
    ``tools.setInfo.sizeLimit``, ``RemoteDisplay.maxConnections``, ``log.*``, ``mks.enable3d``,
    ``svga.vgaOnly``, ``pciPassthru*``), each key → value; ``devices`` None / ``extra_config`` None when
    their pass failed (problem under ``vm_area(moref, 'devices'|'extra_config')``). ``error`` is set when
    the VM's properties could not be read at all (checks then report ``error`` for it)."""

    name: str
    moref: str
    datacenter: str | None = None
    folder: str | None = None
    host: str | None = None
    resource_pool: str | None = None
    uuid: str | None = None
    power_state: str | None = None
    template: bool = False
    guest_id: str | None = None
    error: str | None = None
    flags: VmFlags | None = None
    extra_config: dict[str, str] | None = None
    devices: list[VmDevice] | None = None
    networks: list[str] = []
    resources: VmResources = VmResources()


class VsphereFacts(Model, frozen=True, kw_only=True, omit_defaults=True):
    """A vSphere API connection: an ESXi host (``product.api_type`` ``HostAgent``, one host) or a vCenter
    (``VirtualCenter``).

    - ``endpoint``: ``HOST[:PORT]`` connected to (never a password); ``user`` the login name;
    - ``tls_verified``: False when the user chose ``--tls-insecure`` (the report says so);
    - ``product``: ``content.about``;
    - ``hosts``, ``vms``: every ESXi host and VM (problems: ``vsphere.vms``, ``host_area``, ``vm_area``);
    - ``inventory``, ``permissions``, ``roles``: for 11.2.2/11.2.3/11.2.5/11.4.4 with hvguard's own
      propagation (an ESXi host has its own permissions too);
    - ``vcenter_options``: vCenter's advanced settings (``event.maxAge``, ``task.maxAge`` …), None on
      ESXi or when not read;
    - ``content_libraries`` (vCenter only; None on ESXi or not read), ``distributed_switches``,
      ``datastores``, ``alarms``;
    - ``controls_offered``: the per-VM resource controls vSphere offers (11.3.2/11.3.4).
    """

    endpoint: str
    user: str | None = None
    tls_verified: bool = True
    product: VsphereProduct | None = None
    hosts: list[VsphereHost] = []
    vms: list[VsphereVm] = []
    inventory: list[InventoryEntity] | None = None
    permissions: list[Permission] | None = None
    roles: list[Role] | None = None
    vcenter_options: AdvancedOptions | None = None
    content_libraries: list[ContentLibrary] | None = None
    distributed_switches: list[DistributedSwitch] | None = None
    datastores: list[Datastore] | None = None
    alarms: list[Alarm] | None = None
    controls_offered: ControlsOffered | None = None


#: ``HostImageConfigGetAcceptance`` values, most to least trusted.
AcceptanceLevel = Literal["vmware_certified", "vmware_accepted", "partner", "community"]

__all__ = [
    "AcceptanceLevel",
    "ActiveDirectory",
    "AdvancedOptions",
    "Alarm",
    "ContentLibrary",
    "Datastore",
    "DistributedSwitch",
    "DvPortgroup",
    "Firewall",
    "FirewallRuleset",
    "HostCpu",
    "HostNetwork",
    "HostProfileState",
    "HostService",
    "HostTpm",
    "InventoryEntity",
    "LibraryItem",
    "Lockdown",
    "OptionValue",
    "Permission",
    "PhysicalNic",
    "PortGroup",
    "Role",
    "SecurityPolicy",
    "Shaping",
    "Teaming",
    "VSwitch",
    "VmDevice",
    "VmFlags",
    "VmkNic",
    "VsphereFacts",
    "VsphereHost",
    "VsphereProduct",
    "VsphereVm",
    "host_area",
    "vm_area",
]
