"""vSphere checks of 11.1.x and 11.2.x on hand-built facts in the documented API shapes.

Tests named "stand-in" judge host facts the vSphere simulator cannot produce (services, lockdown,
acceptance level, TPM, AD, firewall and vSwitch updates): they prove hvguard's parsing and judging of the
API's shapes, never how ESXi behaves.
"""

from __future__ import annotations

import msgspec
import pytest

from factories import run
from hvguard.checks.s11_1 import vsphere_platform as p11
from hvguard.checks.s11_2 import vsphere_devices, vsphere_drivers, vsphere_host_access, vsphere_images
from hvguard.checks.s11_2 import vsphere_permissions as perms
from hvguard.collect.vsphere.resources import resources_from_vsphere
from hvguard.facts import (
    ContentLibrary,
    Datastore,
    HostCpu,
    HostTpm,
    Lockdown,
    Permission,
    Problem,
    VmDevice,
    VmFlags,
    VsphereProduct,
    host_area,
    vm_area,
)
from hvguard.findings import Status
from vsphere_factories import (
    GOOD_PERMISSIONS,
    esxi_target,
    good_host,
    good_vm,
    vcenter_target,
    vm_props,
    with_options,
)


def statuses(findings: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(f.status.value, f.subject) for f in findings]


# -- 11.1.1 ---------------------------------------------------------------------------------------------
def test_type1_passes_for_esxi_and_for_each_vcenter_host() -> None:
    assert statuses(run(p11.type1_hypervisor, esxi_target(), "11.1.1")) == [("pass", "host")]
    assert statuses(run(p11.type1_hypervisor, vcenter_target(), "11.1.1")) == [
        ("pass", "vcenter"),
        ("pass", "host:esx1.example.org"),
        ("pass", "host:esx2.example.org"),
    ]


def test_stand_in_type1_fails_for_a_hosted_product() -> None:
    hosted = VsphereProduct(name="VMware Workstation", api_type="Workstation", version="17.5")
    f = run(p11.type1_hypervisor, esxi_target(product=hosted), "11.1.1")
    assert f[0].status is Status.FAIL and "Type 2" in f[0].message and f[0].remediation


def test_type1_without_product_is_an_error_naming_the_problem() -> None:
    t = esxi_target(
        product=None,
        problems=[Problem(area="vsphere.about", source="content.about", message="NotAuthenticated")],
    )
    f = run(p11.type1_hypervisor, t, "11.1.1")
    assert f[0].status is Status.ERROR and "NotAuthenticated" in f[0].message


# -- 11.1.2 ---------------------------------------------------------------------------------------------
def test_stand_in_host_without_ept_fails_and_unknown_is_error() -> None:
    bad = good_host(moref="ha-host", cpu=HostCpu(cores=8, hv_supported=True, hw_mmu_supported=False))
    f = run(p11.host_hw_virt, esxi_target(bad), "11.1.2")
    assert f[0].status is Status.FAIL and "EPT/RVI" in f[0].message
    unknown = good_host(moref="ha-host", cpu=HostCpu(cores=8))
    assert run(p11.host_hw_virt, esxi_target(unknown), "11.1.2")[0].status is Status.ERROR
    assert run(p11.host_hw_virt, esxi_target(), "11.1.2")[0].status is Status.PASS


def test_vm_forced_to_binary_translation_fails_with_a_reconfig_fix() -> None:
    vm = good_vm(name="o'brien", flags=VmFlags(virtual_exec_usage="hvOff", virtual_mmu_usage="automatic"))
    f = run(p11.vm_hw_virt, esxi_target(vms=[vm]), "11.1.2")
    assert f[0].status is Status.FAIL and f[0].subject == "vm:o'brien"
    assert "Get-VM -Name 'o''brien'" in (f[0].remediation or "")
    assert run(p11.vm_hw_virt, esxi_target(), "11.1.2")[0].status is Status.PASS


def test_vm_flags_not_read_is_an_error() -> None:
    vm = good_vm(flags=None)
    t = esxi_target(
        vms=[vm],
        problems=[Problem(area=vm_area(vm.moref, "flags"), source="config.flags", message="missing")],
    )
    assert run(p11.vm_hw_virt, t, "11.1.2")[0].status is Status.ERROR


# -- 11.1.3 ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tpm", "status"),
    [
        (HostTpm(attestation_status="accepted", tpm_version="2.0"), Status.PASS),
        (HostTpm(attestation_status="notAccepted", attestation_message="PCR mismatch"), Status.FAIL),
        (HostTpm(attestation_status="accepted", encryption_mode="NONE"), Status.FAIL),
        (HostTpm(attestation_status="accepted", require_secure_boot=False), Status.FAIL),
        (HostTpm(tpm_supported=True), Status.ERROR),
    ],
)
def test_stand_in_tpm_attestation(tpm: HostTpm, status: Status) -> None:
    f = run(p11.tpm_attestation, esxi_target(good_host(moref="ha-host", tpm=tpm)), "11.1.3")
    assert f[0].status is status
    if status is Status.FAIL:
        assert f[0].remediation


def test_tpm_not_read_is_an_error() -> None:
    h = good_host(moref="ha-host", tpm=None)
    t = esxi_target(
        h,
        problems=[
            Problem(area=host_area("ha-host", "tpm"), source="summary.tpmAttestation", message="unset")
        ],
    )
    f = run(p11.tpm_attestation, t, "11.1.3")
    assert f[0].status is Status.ERROR and "unset" in f[0].message


# -- 11.2.1 / 11.2.6 ------------------------------------------------------------------------------------
def test_stand_in_community_acceptance_level_fails() -> None:
    f = run(
        vsphere_drivers.acceptance_level,
        esxi_target(good_host(moref="ha-host", acceptance_level="community")),
        "11.2.1",
    )
    assert f[0].status is Status.FAIL and "PartnerSupported" in (f[0].remediation or "")
    assert "ESXI-80-000133" in f[0].evidence["stig"]
    assert run(vsphere_drivers.acceptance_level, esxi_target(), "11.2.1")[0].status is Status.PASS


def test_exec_installed_only_unset_option_is_error_never_pass() -> None:
    host = with_options(
        good_host(moref="ha-host"),
        drop=("VMkernel.Boot.execInstalledOnly",),
        unreadable={"VMkernel.Boot.execInstalledOnly": "InvalidName"},
    )
    f = run(vsphere_drivers.exec_installed_only, esxi_target(host), "11.2.1")
    assert f[0].status is Status.ERROR and "InvalidName" in f[0].message
    off = with_options(good_host(moref="ha-host"), **{"VMkernel.Boot.execInstalledOnly": False})
    f = run(vsphere_drivers.exec_installed_only, esxi_target(off), "11.2.1")
    assert f[0].status is Status.FAIL
    assert (
        "Get-AdvancedSetting -Name 'VMkernel.Boot.execInstalledOnly' | Set-AdvancedSetting -Value $true"
        in (f[0].remediation or "")
    )


def test_driver_bypass_and_user_mode_drivers_are_manual_with_evidence() -> None:
    assert run(vsphere_drivers.driver_bypass, vcenter_target(), "11.2.1")[0].status is Status.MANUAL
    f = run(vsphere_drivers.user_mode_drivers, vcenter_target(), "11.2.6")
    assert f[0].status is Status.MANUAL and f[0].subject == "vcenter"
    assert f[0].evidence["acceptance_levels"] == {
        "esx1.example.org": "partner",
        "esx2.example.org": "partner",
    }


# -- 11.2.2 / 11.2.3 / 11.2.5 ---------------------------------------------------------------------------
def test_granular_permissions_pass_on_a_folder_grant_and_fail_on_root_only() -> None:
    assert run(perms.granular_permissions, vcenter_target(), "11.2.2")[0].status is Status.PASS
    root_only = [p for p in GOOD_PERMISSIONS if p.entity == "group-d1"]
    f = run(perms.granular_permissions, vcenter_target(permissions=root_only), "11.2.2")
    assert f[0].status is Status.FAIL and "New-VIPermission" in (f[0].remediation or "")


def test_standalone_esxi_with_only_root_admin_fails_granularity() -> None:
    t = esxi_target()
    assert t.vsphere is not None and t.vsphere.permissions is not None
    assert run(perms.granular_permissions, t, "11.2.2")[0].status is Status.PASS
    root_only = esxi_target(permissions=t.vsphere.permissions[:1])
    assert run(perms.granular_permissions, root_only, "11.2.2")[0].status is Status.FAIL
    unknown_entity = Permission(
        entity="group-x", principal="CORP\\ops", group=True, role_id=101, propagate=True
    )
    f = run(
        perms.granular_permissions,
        esxi_target(permissions=[*t.vsphere.permissions[:1], unknown_entity]),
        "11.2.2",
    )
    assert f[0].status is Status.FAIL


def test_permissions_not_read_are_an_error() -> None:
    t = vcenter_target(
        permissions=None,
        problems=[
            Problem(area="vsphere.permissions", source="RetrieveAllPermissions", message="NoPermission")
        ],
    )
    for fn, m in (
        (perms.granular_permissions, "11.2.2"),
        (perms.deny_within_group, "11.2.3"),
        (perms.least_privilege, "11.2.5"),
    ):
        f = run(fn, t, m)
        assert [x.status for x in f] == [Status.ERROR] and "NoPermission" in f[0].message


def test_noaccess_on_a_vm_under_a_group_grant_is_resolved_effective() -> None:
    f = run(perms.deny_within_group, vcenter_target(), "11.2.3")
    assert statuses(f) == [("pass", "vm:db1")]
    assert f[0].evidence["covering_grants"][0]["entity"] == "Prod"


def test_noaccess_overridden_on_the_same_vm_fails() -> None:
    extra = Permission(
        entity="vm-102", principal="CORP\\prod-vm-operators", group=True, role_id=101, propagate=False
    )
    f = run(perms.deny_within_group, vcenter_target(permissions=[*GOOD_PERMISSIONS, extra]), "11.2.3")
    assert statuses(f) == [("fail", "vm:db1")]
    assert "Remove-VIPermission" in (f[0].remediation or "")


def test_noaccess_through_the_resource_pool_path_only_does_not_count_as_a_deny() -> None:
    """A NoAccess on the resource pool for a group granted on the VM folder: the VM inherits both paths
    (vSphere's rule), the group still reaches it, and no VM-level deny exists: manual, not pass."""
    rp_deny = Permission(
        entity="resgroup-8", principal="CORP\\prod-vm-operators", group=True, role_id=-5, propagate=True
    )
    grants = [GOOD_PERMISSIONS[0], GOOD_PERMISSIONS[1], rp_deny]
    f = run(perms.deny_within_group, vcenter_target(permissions=grants), "11.2.3")
    assert statuses(f) == [("manual", "vcenter")]


def test_least_privilege_fails_admin_on_root_for_a_non_builtin_group() -> None:
    broad = Permission(entity="group-d1", principal="CORP\\helpdesk", group=True, role_id=-1, propagate=True)
    f = run(perms.least_privilege, vcenter_target(permissions=[*GOOD_PERMISSIONS, broad]), "11.2.5")
    assert f[0].status is Status.FAIL and "CORP\\helpdesk" in f[0].message
    assert "-Principal 'CORP\\helpdesk'" in (f[0].remediation or "")
    assert run(perms.least_privilege, vcenter_target(), "11.2.5")[0].status is Status.MANUAL


# -- 11.2.4 ---------------------------------------------------------------------------------------------
def test_stand_in_lockdown_disabled_and_dcui_access_fail() -> None:
    host = with_options(
        good_host(
            moref="ha-host", lockdown=Lockdown(mode="lockdownDisabled", exception_users=["svc-backup"])
        ),
        **{"DCUI.Access": "root,ops"},
    )
    f = run(vsphere_host_access.host_accounts, esxi_target(host), "11.2.4")
    assert f[0].status is Status.FAIL
    for part in ("lockdownDisabled", "svc-backup", "DCUI.Access"):
        assert part in f[0].message
    assert "EnterLockdownMode()" in (f[0].remediation or "")
    assert run(vsphere_host_access.host_accounts, esxi_target(), "11.2.4")[0].status is Status.PASS


def test_lockdown_not_read_is_an_error() -> None:
    host = good_host(moref="ha-host", lockdown=None)
    assert run(vsphere_host_access.host_accounts, esxi_target(host), "11.2.4")[0].status is Status.ERROR


# -- 11.2.7 ---------------------------------------------------------------------------------------------
def test_host_backed_devices_and_missing_isolation_fail_per_vm() -> None:
    vm = good_vm(
        devices=[
            VmDevice(type="VirtualFloppy", label="Floppy drive 1"),
            VmDevice(type="VirtualCdrom", label="CD/DVD drive 1", backing="host /dev/cdrom"),
        ],
        extra_config={},
    )
    f = run(vsphere_devices.vm_devices, esxi_target(vms=[vm]), "11.2.7")
    assert f[0].status is Status.FAIL
    assert {"VMCH-80-000209", "VMCH-80-000210", "VMCH-80-000197"} <= set(f[0].evidence["stig"])
    assert "Remove-FloppyDrive" in (f[0].remediation or "") and "Remove-CDDrive" in (f[0].remediation or "")


def test_iso_cdrom_is_the_vms_own_and_passthrough_is_manual() -> None:
    iso = good_vm(devices=[VmDevice(type="VirtualCdrom", label="CD/DVD drive 1", backing="iso [ds1] os.iso")])
    assert run(vsphere_devices.vm_devices, esxi_target(vms=[iso]), "11.2.7")[0].status is Status.PASS
    pt = good_vm(
        devices=[VmDevice(type="VirtualPCIPassthrough", label="PCI device 0", backing="0000:3b:00.0")]
    )
    assert run(vsphere_devices.vm_devices, esxi_target(vms=[pt]), "11.2.7")[0].status is Status.MANUAL


def test_devices_not_read_is_an_error_and_a_vm_error_is_an_error() -> None:
    f = run(vsphere_devices.vm_devices, esxi_target(vms=[good_vm(devices=None)]), "11.2.7")
    assert f[0].status is Status.ERROR
    f = run(vsphere_devices.vm_devices, esxi_target(vms=[good_vm(error="ManagedObjectNotFound")]), "11.2.7")
    assert f[0].status is Status.ERROR and "ManagedObjectNotFound" in f[0].message


# -- 11.2.8 / 11.2.9 / 11.2.10 --------------------------------------------------------------------------
def test_published_library_without_authentication_fails() -> None:
    libs = [
        ContentLibrary(id="l1", name="images", type="LOCAL", published=True, authentication_method="NONE")
    ]
    f = run(vsphere_images.library_access, vcenter_target(content_libraries=libs), "11.2.8")
    assert [x.status for x in f] == [Status.FAIL, Status.MANUAL]
    assert f[0].evidence["stig"] == ["VCSA-80-000295"]
    ok = [msgspec.structs.replace(libs[0], authentication_method="BASIC")]
    assert [
        x.status for x in run(vsphere_images.library_access, vcenter_target(content_libraries=ok), "11.2.8")
    ] == [Status.MANUAL]
    none = vcenter_target(content_libraries=None)
    assert run(vsphere_images.library_access, none, "11.2.8")[0].status is Status.ERROR


def test_vm_encryption_passes_with_a_key_and_is_manual_without() -> None:
    enc = good_vm(
        resources=resources_from_vsphere(
            vm_props(**{"config.keyId": {"keyId": "k-1", "providerId": {"id": "kms"}}})
        )
    )
    assert run(vsphere_images.vm_encryption, esxi_target(vms=[enc]), "11.2.9")[0].status is Status.PASS
    assert run(vsphere_images.vm_encryption, esxi_target(), "11.2.9")[0].status is Status.MANUAL


def test_nfs3_datastore_fails_and_krb5p_passes() -> None:
    ds = [
        Datastore(
            name="nfs-old", moref="datastore-1", type="NFS", remote_hosts=["filer"], remote_path="/vol/a"
        ),
        Datastore(
            name="nfs-krb",
            moref="datastore-2",
            type="NFS41",
            remote_hosts=["filer"],
            security_type="SEC_KRB5P",
        ),
    ]
    f = run(vsphere_images.image_transport, vcenter_target(datastores=ds), "11.2.10")
    assert [x.status for x in f] == [Status.FAIL, Status.PASS]
    assert "nfs-old" in f[0].message and "-AuthenticationMethod 'Kerberos'" in (f[0].remediation or "")


def test_http_subscription_fails() -> None:
    libs = [
        ContentLibrary(
            id="l2", name="sub", type="SUBSCRIBED", subscription_url="http://pub.example.org/lib.json"
        )
    ]
    f = run(vsphere_images.image_transport, vcenter_target(content_libraries=libs), "11.2.10")
    assert any(x.status is Status.FAIL and "not HTTPS" in x.message for x in f)
