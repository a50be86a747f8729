"""vSphere checks of 11.3.x and 11.4.x on hand-built facts in the documented API shapes.

Tests named "stand-in" judge host facts the vSphere simulator cannot produce (services, lockdown, AD,
firewall default policy and rulesets, vSwitch teaming, host profiles): they prove hvguard's parsing and
judging of the API's shapes, never how ESXi behaves.
"""

from __future__ import annotations

import msgspec
import pytest
from msgspec.structs import replace

from factories import run
from hvguard.checks.s11_3 import vsphere_monitoring as mon
from hvguard.checks.s11_3 import vsphere_resources as res
from hvguard.checks.s11_4 import vsphere_access as acc
from hvguard.checks.s11_4 import vsphere_host as hst
from hvguard.checks.s11_4 import vsphere_logging as logs
from hvguard.checks.s11_4 import vsphere_network as net
from hvguard.collect.vsphere.resources import resources_from_vsphere
from hvguard.facts import (
    ActiveDirectory,
    AdvancedOptions,
    ContentLibrary,
    ControlsOffered,
    DistributedSwitch,
    DvPortgroup,
    Firewall,
    HostCpu,
    HostProfileState,
    HostService,
    LibraryItem,
    PortGroup,
    Teaming,
    VmkNic,
    VsphereProduct,
    VSwitch,
)
from hvguard.findings import Status
from hvguard.profile import default_profile
from vsphere_factories import (
    GOOD_ALARM,
    esxi_target,
    good_host,
    good_network,
    good_vm,
    vcenter_target,
    vm_props,
    with_options,
)

GIB = 1024**3


# -- 11.3.1 – 11.3.4, 11.3.10 ---------------------------------------------------------------------------
def test_memory_overcommit_per_host_pass_warn_fail() -> None:
    def on_host(ram_gib: int) -> Status:
        host = good_host(moref="ha-host", memory_bytes=ram_gib * GIB)
        vms = [good_vm(f"vm{i}", f"vm-{i}", "ha-host") for i in range(4)]  # 4 × 8 GiB = 32 GiB
        return run(res.memory_overcommit, esxi_target(host, vms), "11.3.1")[0].status

    assert on_host(64) is Status.PASS
    assert on_host(24) is Status.WARN
    assert on_host(16) is Status.FAIL


def test_memory_overcommit_counts_only_the_hosts_own_vms() -> None:
    t = vcenter_target(
        hosts=[
            good_host("a", "host-1", memory_bytes=8 * GIB),
            good_host("b", "host-2", memory_bytes=8 * GIB),
        ],
        vms=[good_vm("x", "vm-1", "host-1"), good_vm("y", "vm-2", "host-1"), good_vm("z", "vm-3", "host-2")],
    )
    f = run(res.memory_overcommit, t, "11.3.1")
    assert [(x.subject, x.status) for x in f] == [("host:a", Status.FAIL), ("host:b", Status.PASS)]


def test_memory_and_cpu_controls_capability() -> None:
    assert run(res.memory_controls, vcenter_target(), "11.3.2")[0].status is Status.PASS
    assert run(res.cpu_controls, vcenter_target(), "11.3.4")[0].subject == "vcenter"
    assert run(res.cpu_controls, vcenter_target(controls_offered=None), "11.3.4")[0].status is Status.ERROR
    partial = ControlsOffered(cpu_limit=True, cpu_priority=True, cpu_guarantee=None)
    assert (
        run(res.cpu_controls, vcenter_target(controls_offered=partial), "11.3.4")[0].status is Status.MANUAL
    )


def test_vcpus_must_be_strictly_below_the_hosts_cores() -> None:
    host = good_host(
        moref="ha-host", cpu=HostCpu(cores=4, threads=8, hv_supported=True, hw_mmu_supported=True)
    )
    four = good_vm(
        resources=resources_from_vsphere(vm_props(**{"config.hardware.numCPU": 4})), host="ha-host"
    )
    three = good_vm(
        "ok",
        "vm-2",
        resources=resources_from_vsphere(vm_props(**{"config.hardware.numCPU": 3})),
        host="ha-host",
    )
    f = run(res.vcpu_below_cores, esxi_target(host, [four, three]), "11.3.3")
    assert [(x.subject, x.status) for x in f] == [("vm:web1", Status.FAIL), ("vm:ok", Status.PASS)]
    assert "Set-VM -VM (Get-VM -Name 'web1') -NumCpu 3" in (f[0].remediation or "")
    reserved = replace(
        default_profile(), thresholds=replace(default_profile().thresholds, vcpu_extra_reserved_cores=1)
    )
    assert run(res.vcpu_below_cores, esxi_target(host, [three]), "11.3.3", reserved)[0].status is Status.FAIL


def test_vcpu_check_errors_when_the_host_cores_are_unknown() -> None:
    host = good_host(moref="ha-host", cpu=None)
    assert run(res.vcpu_below_cores, esxi_target(host), "11.3.3")[0].status is Status.ERROR


def test_dos_limits_need_cpu_iops_and_bandwidth() -> None:
    assert run(res.vm_dos_limits, esxi_target(), "11.3.10")[0].status is Status.PASS
    props = vm_props(
        **{
            "config.cpuAllocation": {
                "reservation": 0,
                "limit": -1,
                "shares": {"level": "normal", "shares": 1000},
            }
        }
    )
    props["config.hardware.device"][0]["storageIOAllocation"] = {"limit": -1}
    props["config.hardware.device"][1]["resourceAllocation"] = {"limit": -1}
    unshaped = good_network(portgroups=[PortGroup(name="VM Network", vswitch="vSwitch0", vlan_id=20)])
    host = good_host(moref="ha-host", network=unshaped)
    f = run(
        res.vm_dos_limits,
        esxi_target(host, [good_vm(resources=resources_from_vsphere(props), host="ha-host")]),
        "11.3.10",
    )
    assert f[0].status is Status.FAIL
    for part in ("no CPU limit", "Hard disk 1", "no traffic shaping on VM Network"):
        assert part in f[0].message


def test_port_group_shaping_stands_for_an_adapter_limit() -> None:
    props = vm_props()
    props["config.hardware.device"][1]["resourceAllocation"] = {"limit": -1}
    vm = good_vm(resources=resources_from_vsphere(props), host="ha-host")
    assert run(res.vm_dos_limits, esxi_target(vms=[vm]), "11.3.10")[0].status is Status.PASS


# -- 11.3.5 – 11.3.9 ------------------------------------------------------------------------------------
def test_attestation_measures_are_manual_but_need_vsphere_facts() -> None:
    for fn, m in ((mon.introspection, "11.3.5"), (mon.monitoring_ss025, "11.3.6")):
        assert run(fn, vcenter_target(), m)[0].status is Status.MANUAL
        no_facts = msgspec.structs.replace(vcenter_target(), vsphere=None)
        assert run(fn, no_facts, m)[0].status is Status.ERROR


def test_change_notification_alarm_and_retention() -> None:
    assert run(mon.change_notification, vcenter_target(), "11.3.7")[0].status is Status.PASS
    f = run(mon.change_notification, vcenter_target(alarms=[]), "11.3.7")
    assert f[0].status is Status.FAIL and "VmReconfiguredEvent" in (f[0].remediation or "")
    short = AdvancedOptions(values={"event.maxAge": 7, "task.maxAge": 30})
    f = run(mon.change_notification, vcenter_target(vcenter_options=short), "11.3.7")
    assert f[0].status is Status.FAIL and "event.maxAge = 7 days" in f[0].message
    silent = msgspec.structs.replace(GOOD_ALARM, actions=[])
    assert run(mon.change_notification, vcenter_target(alarms=[silent]), "11.3.7")[0].status is Status.FAIL
    assert run(mon.change_notification, vcenter_target(alarms=None), "11.3.7")[0].status is Status.ERROR
    assert run(mon.change_notification, esxi_target(), "11.3.7")[0].status is Status.MANUAL


def test_library_signing_policy_and_items() -> None:
    unsigned = [ContentLibrary(id="l1", name="images", type="LOCAL")]
    f = run(mon.library_signing, vcenter_target(content_libraries=unsigned), "11.3.9")
    assert f[0].status is Status.FAIL and f[0].evidence["stig"] == ["VCSA-80-000296"]
    bad_item = [
        ContentLibrary(
            id="l1",
            name="images",
            type="LOCAL",
            security_policy_id="p1",
            items=[LibraryItem(id="i1", name="tpl", security_compliance=False)],
        )
    ]
    assert (
        run(mon.library_signing, vcenter_target(content_libraries=bad_item), "11.3.9")[0].status
        is Status.FAIL
    )
    good = [ContentLibrary(id="l1", name="images", type="LOCAL", security_policy_id="p1", items=[])]
    assert run(mon.library_signing, vcenter_target(content_libraries=good), "11.3.9")[0].status is Status.PASS


def test_library_images_lists_items_and_errors_when_items_were_not_read() -> None:
    libs = [
        ContentLibrary(id="l1", name="images", items=[LibraryItem(id="i", name="ubuntu.ovf")]),
        ContentLibrary(id="l2", name="x"),
    ]
    f = run(mon.library_images, vcenter_target(content_libraries=libs), "11.3.8")
    assert [x.status for x in f] == [Status.ERROR, Status.MANUAL]
    assert f[1].evidence["items"]["images"] == ["ubuntu.ovf"]


# -- 11.4.1 – 11.4.6 ------------------------------------------------------------------------------------
def test_stand_in_directory_join_and_default_admin_group() -> None:
    assert run(acc.directory, esxi_target(), "11.4.1")[0].status is Status.PASS
    host = with_options(
        good_host(moref="ha-host", active_directory=ActiveDirectory(enabled=False)),
        **{"Config.HostAgent.plugins.hostsvc.esxAdminsGroup": "ESX Admins"},
    )
    f = run(acc.directory, esxi_target(host), "11.4.1")
    assert (
        f[0].status is Status.FAIL
        and "ESX Admins" in f[0].message
        and "-JoinDomain" in (f[0].remediation or "")
    )


def test_stand_in_firewall_ruleset_open_to_all_fails_11_4_2() -> None:
    assert run(acc.admin_endpoints, esxi_target(), "11.4.2")[0].status is Status.PASS
    host = good_host(moref="ha-host")
    assert host.firewall is not None
    rs = [
        msgspec.structs.replace(r, all_ip=True, ip_networks=[]) if r.key == "vSphereClient" else r
        for r in host.firewall.rulesets
    ]
    host = msgspec.structs.replace(host, firewall=msgspec.structs.replace(host.firewall, rulesets=rs))
    f = run(acc.admin_endpoints, esxi_target(host), "11.4.2")
    assert (
        f[0].status is Status.FAIL
        and "vSphereClient" in f[0].message
        and "AllIp = $false" in (f[0].remediation or "")
    )


def test_mfa_and_credential_separation_are_manual() -> None:
    f = run(acc.mfa, vcenter_target(), "11.4.3")
    assert f[0].status is Status.MANUAL and "VCSA-80-000060" in f[0].evidence["stig"]
    assert run(acc.credential_separation, vcenter_target(), "11.4.5")[0].status is Status.MANUAL


def test_stand_in_ssh_running_and_weak_timeouts_fail_11_4_6() -> None:
    assert run(acc.remote_console, esxi_target(), "11.4.6")[0].status is Status.PASS
    host = with_options(
        good_host(
            moref="ha-host",
            services=[
                HostService(key="TSM-SSH", running=True, policy="on"),
                HostService(key="TSM", running=False, policy="off"),
            ],
        ),
        **{"UserVars.ESXiShellTimeOut": 0, "Config.HostAgent.plugins.solo.enableMob": True},
    )
    f = run(acc.remote_console, esxi_target(host), "11.4.6")
    assert f[0].status is Status.FAIL
    for part in ("TSM-SSH", "ESXI-80-000193", "UserVars.ESXiShellTimeOut", "enableMob"):
        assert part in f[0].message
    fix = f[0].remediation or ""
    assert (
        "Stop-VMHostService" in fix
        and "Set-AdvancedSetting -Value 600" in fix
        and "Set-AdvancedSetting -Value $false" in fix
    )


def test_remote_console_missing_option_is_error_and_services_unread_is_error() -> None:
    host = with_options(
        good_host(moref="ha-host"),
        drop=("UserVars.DcuiTimeOut",),
        unreadable={"UserVars.DcuiTimeOut": "InvalidName"},
    )
    f = run(acc.remote_console, esxi_target(host), "11.4.6")
    assert f[0].status is Status.ERROR and "UserVars.DcuiTimeOut" in f[0].message
    f = run(acc.remote_console, esxi_target(good_host(moref="ha-host", services=None)), "11.4.6")
    assert f[0].status is Status.ERROR


# -- 11.4.4, 11.4.10, 11.4.11 ---------------------------------------------------------------------------
def test_audit_records_and_custody() -> None:
    assert run(logs.audit_records, esxi_target(), "11.4.4")[0].status is Status.PASS
    off = with_options(good_host(moref="ha-host"), **{"Syslog.global.auditRecord.remoteEnable": False})
    f = run(logs.audit_records, esxi_target(off), "11.4.4")
    assert f[0].status is Status.FAIL and "ESXI-80-000233" in f[0].message
    custody = run(logs.audit_log_custody, vcenter_target(), "11.4.4")
    assert custody[0].status is Status.MANUAL
    assert {h["principal"] for h in custody[0].evidence["log_setting_holders"]} == {
        "VSPHERE.LOCAL\\Administrator"
    }


@pytest.mark.parametrize(
    ("log_host", "status"),
    [
        ("ssl://log.example.org:1514", Status.PASS),
        ("udp://log.example.org:514", Status.FAIL),
        ("ssl://a:1514,tcp://b:514", Status.FAIL),
    ],
)
def test_syslog_tls(log_host: str, status: Status) -> None:
    host = with_options(good_host(moref="ha-host"), **{"Syslog.global.logHost": log_host})
    assert run(logs.syslog_tls, esxi_target(host), "11.4.10")[0].status is status


def test_syslog_tls_on_vcenter_adds_the_vami_attestation() -> None:
    f = run(logs.syslog_tls, vcenter_target(), "11.4.10")
    assert (f[0].status, f[0].subject) == (Status.MANUAL, "vcenter")
    assert [x.status for x in f[1:]] == [Status.PASS, Status.PASS]


def test_syslog_remote_unset_key_is_error_empty_is_fail() -> None:
    """Stock vCenter simulator answers InvalidName for Syslog.global.logHost until it is set: error."""
    unset = with_options(
        good_host(moref="ha-host"),
        drop=("Syslog.global.logHost",),
        unreadable={"Syslog.global.logHost": "InvalidName"},
    )
    assert run(logs.syslog_remote, esxi_target(unset), "11.4.11")[0].status is Status.ERROR
    empty = with_options(good_host(moref="ha-host"), **{"Syslog.global.logHost": ""})
    f = run(logs.syslog_remote, esxi_target(empty), "11.4.11")
    assert f[0].status is Status.FAIL and "Set-AdvancedSetting -Value 'ssl://SYSLOG.EXAMPLE.ORG:1514'" in (
        f[0].remediation or ""
    )


# -- 11.4.7 – 11.4.9 ------------------------------------------------------------------------------------
def test_stand_in_host_profile_compliance() -> None:
    assert run(hst.gold_config, esxi_target(), "11.4.7")[0].status is Status.PASS
    none = good_host(moref="ha-host", profile=HostProfileState())
    assert "Invoke-VMHostProfile" in (run(hst.gold_config, esxi_target(none), "11.4.7")[0].remediation or "")
    drift = good_host(moref="ha-host", profile=HostProfileState(profile="gold", compliance="nonCompliant"))
    assert run(hst.gold_config, esxi_target(drift), "11.4.7")[0].status is Status.FAIL


def test_patch_level_compares_builds_with_the_dated_list() -> None:
    f = run(hst.patch_level, vcenter_target(), "11.4.8")
    assert [(x.status, x.subject) for x in f] == [
        (Status.PASS, "vcenter"),
        (Status.PASS, "host:esx1.example.org"),
        (Status.PASS, "host:esx2.example.org"),
        (Status.MANUAL, "vcenter"),
    ]
    old = VsphereProduct(name="VMware ESXi", version="8.0.2", build="22380479", api_type="HostAgent")
    f = run(hst.patch_level, esxi_target(good_host(moref="ha-host", product=old), product=old), "11.4.8")
    assert (
        f[0].status is Status.FAIL
        and f[0].evidence["minimum_build"] == 24674464
        and "ESXI-80-000221" in f[0].evidence["stig"]
    )
    unknown_line = VsphereProduct(name="VMware ESXi", version="7.0.3", build="21930508", api_type="HostAgent")
    f = run(
        hst.patch_level,
        esxi_target(good_host(moref="ha-host", product=unknown_line), product=unknown_line),
        "11.4.8",
    )
    assert f[0].status is Status.MANUAL and "esxi 7.0" in f[0].message


def test_patch_level_profile_override_and_stale_list_warns() -> None:
    line7 = VsphereProduct(name="VMware ESXi", version="7.0.3", build="21930508", api_type="HostAgent")
    th = replace(
        default_profile().thresholds,
        vsphere_min_builds=("esxi 7.0 23794027",),
        vsphere_min_builds_as_of="2026-01-25",
    )
    profile = replace(default_profile(), thresholds=th)
    f = run(
        hst.patch_level,
        esxi_target(good_host(moref="ha-host", product=line7), product=line7),
        "11.4.8",
        profile,
    )
    assert f[0].status is Status.FAIL and f[0].evidence["minimum_from"] == "profile"
    stale = msgspec.structs.replace(
        esxi_target(),
        collection=msgspec.structs.replace(esxi_target().collection, collected_at="2027-01-01T00:00:00Z"),
    )
    f = run(hst.patch_level, stale, "11.4.8")
    assert f[0].status is Status.WARN and "dated 2026-01-20" in f[0].message
    bad = replace(
        default_profile(),
        thresholds=replace(default_profile().thresholds, vsphere_min_builds=("esxi eight",)),
    )
    assert run(hst.patch_level, esxi_target(), "11.4.8", bad)[0].status is Status.ERROR


def test_stand_in_firewall_default_policy_and_needless_rulesets() -> None:
    assert run(hst.firewall, esxi_target(), "11.4.9")[0].status is Status.PASS
    host = good_host(moref="ha-host")
    assert host.firewall is not None
    rs = [
        msgspec.structs.replace(r, enabled=True) if r.key == "CIMSLP" else r for r in host.firewall.rulesets
    ]
    fw = Firewall(incoming_blocked=False, outgoing_blocked=True, rulesets=rs)
    f = run(hst.firewall, esxi_target(msgspec.structs.replace(host, firewall=fw)), "11.4.9")
    assert f[0].status is Status.FAIL and "CIMSLP" in f[0].message
    assert {"ESXI-80-000214", "ESXI-80-000231"} <= set(f[0].evidence["stig"])
    assert "Set-VMHostFirewallDefaultPolicy -AllowIncoming $false" in (f[0].remediation or "")


# -- 11.4.12, 11.4.13 -----------------------------------------------------------------------------------
def test_management_portgroup_shared_with_vms_fails() -> None:
    assert run(net.management_segment, esxi_target(), "11.4.12")[0].status is Status.PASS
    vm = good_vm(networks=["Management Network"], host="ha-host")
    f = run(net.management_segment, esxi_target(vms=[vm]), "11.4.12")
    assert f[0].status is Status.FAIL and "ESXI-80-000198" in f[0].evidence["stig"]
    no_mgmt = good_host(moref="ha-host", network=good_network(vmknics=[VmkNic(device="vmk0", portgroup="x")]))
    assert run(net.management_segment, esxi_target(no_mgmt), "11.4.12")[0].status is Status.ERROR


def test_stand_in_single_uplink_vswitch_fails_11_4_13() -> None:
    assert run(net.vm_uplinks, esxi_target(), "11.4.13")[0].status is Status.PASS
    single = good_network(
        vswitches=[
            VSwitch(name="vSwitch0", pnics=["vmnic0"], teaming=Teaming(active=["vmnic0"], standby=["vmnic1"]))
        ],
        portgroups=[PortGroup(name="VM Network", vswitch="vSwitch0", vlan_id=20)],
    )
    f = run(net.vm_uplinks, esxi_target(good_host(moref="ha-host", network=single)), "11.4.13")
    assert f[0].status is Status.FAIL and "VM Network (vmnic0)" in f[0].message
    assert "Set-VirtualSwitch -Nic" in (f[0].remediation or "")


def test_dvs_portgroup_needs_two_host_pnics() -> None:
    dvs = DistributedSwitch(
        name="dvs1",
        moref="dvs-1",
        uplink_names=["Uplink 1", "Uplink 2"],
        host_pnics={"host-11": ["vmnic2"], "host-12": ["vmnic2", "vmnic3"]},
        portgroups=[DvPortgroup(name="dv-web", teaming=Teaming(active=["Uplink 1"], standby=["Uplink 2"]))],
    )
    vms = [
        good_vm("web1", "vm-101", "host-11", networks=["dv-web"]),
        good_vm("db1", "vm-102", "host-12", networks=["dv-web"]),
    ]
    f = run(net.vm_uplinks, vcenter_target(vms=vms, distributed_switches=[dvs]), "11.4.13")
    assert [(x.subject, x.status) for x in f] == [
        ("host:esx1.example.org", Status.FAIL),
        ("host:esx2.example.org", Status.PASS),
    ]
