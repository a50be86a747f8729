"""SS-009 11.2 checks (device emulation and access control) on hand-made KVM/libvirt facts.

A hardened baseline (:func:`hardened`) passes every automatable part; each test bends one fact and
expects the exact status, evidence and remediation that fact deserves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import pytest

from factories import conf, good_host, good_vm, run, target
from hvguard.checks.base import HOST, CheckContext
from hvguard.checks.registry import registered_checks
from hvguard.checks.s11_2 import accounts, api_access, device_acl, drivers, image_library, least_privilege
from hvguard.checks.s11_2 import encryption as s11_2_encryption
from hvguard.checks.s11_2 import transport as s11_2_transport
from hvguard.checks.s11_2 import unprivileged as s11_2_unprivileged
from hvguard.checks.support.libvirt_conf import DEFAULT_CGROUP_DEVICE_ACL
from hvguard.engine import evaluate
from hvguard.facts import (
    Capabilities,
    ConfFile,
    Disk,
    DiskEncryption,
    Hostdev,
    HostFacts,
    KernelFacts,
    QemuProcess,
    SecLabel,
    SecModel,
    SecureBootFacts,
    TargetFacts,
    VmFacts,
)
from hvguard.findings import Finding, Status
from hvguard.profile import default_profile

QEMU = "/etc/libvirt/qemu.conf"
LIBVIRTD = "/etc/libvirt/libvirtd.conf"
replace = msgspec.structs.replace
Check = Callable[[CheckContext], Iterable[Finding]]

# --------------------------------------------------------------------------------------------------------
# Builders


def luks_disk(name: str = "web1") -> Disk:
    return Disk(
        device="disk",
        type="file",
        target="vda",
        source_path=f"/var/lib/libvirt/images/{name}.qcow2",
        encryption=DiskEncryption(format="luks", secret_type="passphrase", secret_uuid="6f1f-0001"),
    )


def secure_vm(name: str = "web1", **changes: Any) -> VmFacts:
    """good_vm with a LUKS-encrypted disk (the factory's disk is unencrypted)."""
    return good_vm(name, **{"disks": [luks_disk(name)], **changes})


def signed_host(**changes: Any) -> HostFacts:
    """A host meeting every automatable 11.2 part: Secure Boot, signed modules, confined non-root QEMU."""
    base = good_host(
        secure_boot=SecureBootFacts(uefi=True, enabled=True, source="efivars"),
        kernel=KernelFacts(
            release="6.1.0-18-amd64",
            sig_enforce=True,
            lockdown="integrity",
            tainted=0,
            module_blacklist=["floppy"],
        ),
        qemu_processes=[QemuProcess(pid=4242, user="libvirt-qemu", uid=64055, vm_name="web1")],
        qemu_conf=conf(
            QEMU,
            security_driver="apparmor",
            security_require_confined=1,
            user="libvirt-qemu",
            group="libvirt-qemu",
        ),
        libvirtd_conf=conf(
            LIBVIRTD,
            access_drivers=["polkit"],
            unix_sock_group="hv-ops",
            unix_sock_ro_perms="0770",
            auth_unix_ro="polkit",
        ),
    )
    return replace(base, **changes)


def with_caps(tgt: TargetFacts, *models: str) -> TargetFacts:
    assert tgt.hypervisor is not None
    caps = Capabilities(host_arch="x86_64", secmodels=[SecModel(model=m) for m in models])
    return replace(tgt, hypervisor=replace(tgt.hypervisor, capabilities=caps))


def hardened(vms: list[VmFacts] | None = None, **host_changes: Any) -> TargetFacts:
    """Hardened host + AppArmor sVirt in the capabilities + VMs with LUKS disks."""
    return with_caps(
        target(vms if vms is not None else [secure_vm()], host=signed_host(**host_changes)), "apparmor", "dac"
    )


def kernel(**changes: Any) -> KernelFacts:
    return replace(KernelFacts(sig_enforce=True, lockdown="integrity", tainted=0), **changes)


def no_host(vms: list[VmFacts] | None = None) -> TargetFacts:
    return replace(target(vms), host=None)


def malformed(path: str) -> ConfFile:
    return ConfFile(path=path, present=True, error=f"{path} line 7: expecting a value")


def only(findings: list[Finding], subject: str = HOST) -> Finding:
    mine = [f for f in findings if f.subject == subject]
    assert len(mine) == 1, findings
    return mine[0]


def statuses(findings: list[Finding]) -> list[Status]:
    return [f.status for f in findings]


# --------------------------------------------------------------------------------------------------------
# 11.2.1 driver signing (must)


def test_driver_signing_passes_with_secure_boot_signed_modules_and_no_taint() -> None:
    f = only(run(drivers.driver_signing, hardened(), "11.2.1"))
    assert f.status is Status.PASS
    assert f.evidence["kernel.lockdown"] == "integrity" and f.evidence["unsigned_module_taint_bit13"] is False


def test_lockdown_alone_enforces_signatures() -> None:
    tgt = hardened(kernel=kernel(sig_enforce=False, lockdown="integrity"))
    assert only(run(drivers.driver_signing, tgt, "11.2.1")).status is Status.PASS


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"secure_boot": SecureBootFacts(uefi=True, enabled=False)}, "Secure Boot is disabled"),
        ({"secure_boot": SecureBootFacts(uefi=False, enabled=False)}, "legacy BIOS"),
        ({"kernel": kernel(sig_enforce=False, lockdown="none")}, "unsigned kernel modules are allowed"),
        ({"kernel": kernel(tainted=8192 | 4096)}, "taint bit 13"),
    ],
)
def test_driver_signing_fails(changes: dict[str, Any], words: str) -> None:
    f = only(run(drivers.driver_signing, hardened(**changes), "11.2.1"))
    assert f.status is Status.FAIL and words in f.message
    assert f.remediation


def test_out_of_tree_taint_alone_is_not_unsigned() -> None:
    f = only(run(drivers.driver_signing, hardened(kernel=kernel(tainted=4096)), "11.2.1"))
    assert f.status is Status.PASS


def test_driver_signing_unknown_facts_are_an_error_not_a_pass() -> None:
    unknown = target(host=good_host(secure_boot=SecureBootFacts(), kernel=KernelFacts()))
    f = only(run(drivers.driver_signing, unknown, "11.2.1"))
    assert f.status is Status.ERROR and "Secure Boot state" in f.message
    unknown_lockdown = hardened(kernel=kernel(sig_enforce=False, lockdown=None))
    assert only(run(drivers.driver_signing, unknown_lockdown, "11.2.1")).status is Status.ERROR


def test_driver_bypass_passes_and_lists_the_blacklist() -> None:
    f = only(run(drivers.driver_bypass, hardened(), "11.2.1"))
    assert f.status is Status.PASS
    assert f.evidence["kernel.module_blacklist"] == ["floppy"] and "runbook" in f.message


# --------------------------------------------------------------------------------------------------------
# 11.2.1 QEMU confinement (should → warn)


def test_confinement_passes_on_hardened_host() -> None:
    f = only(run(drivers.qemu_confinement, hardened(), "11.2.1"))
    assert f.status is Status.PASS and "apparmor" in f.message


def test_confinement_shortfalls_warn_never_fail() -> None:
    root = [QemuProcess(pid=1, user="root", uid=0, vm_name="web1")]
    tgt = hardened(qemu_processes=root, qemu_conf=conf(QEMU, security_driver="none", seccomp_sandbox=0))
    f = only(run(drivers.qemu_confinement, tgt, "11.2.1"))
    assert f.status is Status.WARN
    for words in (
        "runs as root",
        'security_driver = "none"',
        "seccomp_sandbox = 0",
        "security_require_confined = 0",
    ):
        assert words in f.message
    assert f"{QEMU} line 2: seccomp_sandbox = 1" in (f.remediation or "")


def test_absent_qemu_conf_evaluates_defaults() -> None:
    """No qemu.conf: libvirt's defaults apply — only security_require_confined (default 0) falls short."""
    tgt = hardened(qemu_conf=ConfFile(path=QEMU))
    f = only(run(drivers.qemu_confinement, tgt, "11.2.1"))
    assert f.status is Status.WARN and "security_require_confined = 0" in f.message
    assert "seccomp" not in f.message
    assert f.evidence["seccomp_sandbox"] == {"value": 1, "source": f"default ({QEMU} absent)"}
    assert f"{QEMU} (add): security_require_confined = 1" in (f.remediation or "")


def test_confinement_with_unknown_qemu_account_is_manual() -> None:
    tgt = hardened(
        qemu_processes=[], qemu_conf=conf(QEMU, security_driver="apparmor", security_require_confined=1)
    )
    f = only(run(drivers.qemu_confinement, tgt, "11.2.1"))
    assert f.status is Status.MANUAL and "baselabel" in f.message


# --------------------------------------------------------------------------------------------------------
# Missing and malformed facts (every host-reading check)

HOST_CHECKS: list[tuple[Check, str]] = [
    (drivers.driver_signing, "11.2.1"),
    (drivers.driver_bypass, "11.2.1"),
    (drivers.qemu_confinement, "11.2.1"),
    (api_access.libvirt_access_driver, "11.2.2"),
    (api_access.libvirt_deny_rules, "11.2.3"),
    (least_privilege.libvirt_socket_access, "11.2.5"),
    (least_privilege.libvirt_role_model, "11.2.5"),
    (s11_2_unprivileged.qemu_unprivileged, "11.2.6"),
    (device_acl.device_acl_host, "11.2.7"),
    (s11_2_transport.libvirt_remote_transport, "11.2.10"),
]


@pytest.mark.parametrize(("fn", "measure"), HOST_CHECKS)
def test_missing_host_facts_are_errors(fn: Check, measure: str) -> None:
    found = run(fn, no_host(), measure)
    assert statuses(found) == [Status.ERROR]
    assert "host facts were not collected" in found[0].message


QEMU_CHECKS = [
    (drivers.qemu_confinement, "11.2.1"),
    (s11_2_unprivileged.qemu_unprivileged, "11.2.6"),
    (device_acl.device_acl_host, "11.2.7"),
    (s11_2_transport.libvirt_remote_transport, "11.2.10"),
]
LIBVIRTD_CHECKS = [
    (api_access.libvirt_access_driver, "11.2.2"),
    (api_access.libvirt_deny_rules, "11.2.3"),
    (least_privilege.libvirt_socket_access, "11.2.5"),
    (least_privilege.libvirt_role_model, "11.2.5"),
    (s11_2_transport.libvirt_remote_transport, "11.2.10"),
]


@pytest.mark.parametrize(("fn", "measure"), QEMU_CHECKS)
def test_malformed_qemu_conf_is_an_error_naming_file_and_line(fn: Check, measure: str) -> None:
    found = run(fn, hardened(qemu_conf=malformed(QEMU)), measure)
    assert statuses(found) == [Status.ERROR]
    assert f"{QEMU} line 7" in found[0].message and found[0].evidence["file"] == QEMU


@pytest.mark.parametrize(("fn", "measure"), LIBVIRTD_CHECKS)
def test_malformed_libvirtd_conf_is_an_error_naming_file_and_line(fn: Check, measure: str) -> None:
    found = run(fn, hardened(libvirtd_conf=malformed(LIBVIRTD)), measure)
    assert statuses(found) == [Status.ERROR]
    assert f"{LIBVIRTD} line 7" in found[0].message


def test_unread_conf_is_an_error_not_defaults() -> None:
    from hvguard.facts import Problem

    tgt = hardened(qemu_conf=ConfFile(path=QEMU))
    tgt = replace(tgt, problems=[Problem(area="host.qemu_conf", source=QEMU, message="permission denied")])
    found = run(device_acl.device_acl_host, tgt, "11.2.7")
    assert statuses(found) == [Status.ERROR] and "permission denied" in found[0].message


def test_wrongly_typed_setting_is_an_error_naming_file_and_line() -> None:
    tgt = hardened(qemu_conf=conf(QEMU, security_driver="apparmor", seccomp_sandbox="yes"))
    found = run(s11_2_unprivileged.qemu_unprivileged, tgt, "11.2.6")
    assert statuses(found) == [Status.ERROR] and f"{QEMU}:2: seccomp_sandbox" in found[0].message


# --------------------------------------------------------------------------------------------------------
# 11.2.2 / 11.2.3 access driver


@pytest.mark.parametrize(
    ("fn", "measure"),
    [(api_access.libvirt_access_driver, "11.2.2"), (api_access.libvirt_deny_rules, "11.2.3")],
)
def test_access_drivers_absent_fails_with_polkit_remediation(fn: Check, measure: str) -> None:
    f = only(run(fn, target(), measure))
    assert f.status is Status.FAIL
    assert f.evidence["access_drivers"]["source"] == f"default ({LIBVIRTD} absent)"
    rem = f.remediation or ""
    assert 'access_drivers = [ "polkit" ]' in rem and 'action.lookup("domain_name")' in rem
    assert "polkit.Result.NO" in rem


def test_access_drivers_without_polkit_fails_naming_the_line() -> None:
    tgt = hardened(libvirtd_conf=conf(LIBVIRTD, listen_tls=0, access_drivers=["nop"]))
    f = only(run(api_access.libvirt_access_driver, tgt, "11.2.2"))
    assert f.status is Status.FAIL and f"{LIBVIRTD} line 2" in (f.remediation or "")


def test_polkit_access_driver_needs_the_rules_as_evidence() -> None:
    found22 = run(api_access.libvirt_access_driver, hardened(), "11.2.2")
    found23 = run(api_access.libvirt_deny_rules, hardened(), "11.2.3")
    assert statuses(found22) == statuses(found23) == [Status.MANUAL]
    assert "domain_name" in found22[0].message and "polkit.Result.NO" in found23[0].message


# --------------------------------------------------------------------------------------------------------
# 11.2.5 least privilege


def test_world_readable_ro_socket_without_auth_fails() -> None:
    tgt = hardened(libvirtd_conf=conf(LIBVIRTD, access_drivers=["polkit"], auth_unix_ro="none"))
    f = only(run(least_privilege.libvirt_socket_access, tgt, "11.2.5"))
    assert f.status is Status.FAIL and "any local user can list every VM and read its definition" in f.message
    assert f'{LIBVIRTD} (add): unix_sock_ro_perms = "0770"' in (f.remediation or "")
    assert f'{LIBVIRTD} line 2: auth_unix_ro = "polkit"' in (f.remediation or "")


@pytest.mark.parametrize(
    "values", [{"unix_sock_admin_perms": "0777"}, {"unix_sock_rw_perms": "0777", "auth_unix_rw": "none"}]
)
def test_world_writable_control_sockets_fail(values: dict[str, str]) -> None:
    tgt = hardened(libvirtd_conf=conf(LIBVIRTD, unix_sock_ro_perms="0770", **values))
    assert only(run(least_privilege.libvirt_socket_access, tgt, "11.2.5")).status is Status.FAIL


def test_default_sockets_need_the_polkit_monitor_rule() -> None:
    f = only(run(least_privilege.libvirt_socket_access, target(), "11.2.5"))
    assert f.status is Status.MANUAL and "org.libvirt.unix.monitor" in f.message


def test_group_restricted_sockets_pass() -> None:
    assert only(run(least_privilege.libvirt_socket_access, hardened(), "11.2.5")).status is Status.PASS


def test_role_model_fails_without_access_driver_else_manual() -> None:
    assert only(run(least_privilege.libvirt_role_model, target(), "11.2.5")).status is Status.FAIL
    f = only(run(least_privilege.libvirt_role_model, hardened(), "11.2.5"))
    assert f.status is Status.MANUAL and "need-to-know" in f.message


# --------------------------------------------------------------------------------------------------------
# 11.2.6 unprivileged device emulation


def test_unprivileged_qemu_passes_and_lists_processes() -> None:
    f = only(run(s11_2_unprivileged.qemu_unprivileged, hardened(), "11.2.6"))
    assert f.status is Status.PASS
    assert f.evidence["qemu_processes"] == [{"pid": 4242, "user": "libvirt-qemu", "uid": 64055, "vm": "web1"}]


def test_qemu_running_as_root_fails() -> None:
    tgt = hardened(qemu_processes=[QemuProcess(pid=7, user="root", uid=0, vm_name="web1")])
    f = only(run(s11_2_unprivileged.qemu_unprivileged, tgt, "11.2.6"))
    assert f.status is Status.FAIL and "runs as root (running QEMU processes)" in f.message
    assert f"{QEMU} line 3: user" in (f.remediation or "")


@pytest.mark.parametrize("user", ["root", "+0", "0"])
def test_conf_user_root_fails_when_no_qemu_runs(user: str) -> None:
    tgt = hardened(qemu_processes=None, qemu_conf=conf(QEMU, user=user))
    f = only(run(s11_2_unprivileged.qemu_unprivileged, tgt, "11.2.6"))
    assert f.status is Status.FAIL and "qemu.conf user/group" in f.message


def test_conf_user_decides_when_no_vm_runs() -> None:
    tgt = hardened(qemu_processes=[], qemu_conf=conf(QEMU, user="libvirt-qemu"))
    f = only(run(s11_2_unprivileged.qemu_unprivileged, tgt, "11.2.6"))
    assert f.status is Status.PASS and f.evidence["qemu_processes"] == "none running"


def test_build_default_account_is_manual() -> None:
    f = only(run(s11_2_unprivileged.qemu_unprivileged, target(), "11.2.6"))
    assert f.status is Status.MANUAL and "build-time default" in f.message


@pytest.mark.parametrize("key", ["seccomp_sandbox", "clear_emulator_capabilities"])
def test_sandbox_or_capabilities_off_fails(key: str) -> None:
    tgt = hardened(qemu_conf=conf(QEMU, user="libvirt-qemu", **{key: 0}))
    f = only(run(s11_2_unprivileged.qemu_unprivileged, tgt, "11.2.6"))
    assert f.status is Status.FAIL and f"{key} = 0" in f.message and f"{QEMU} line 2" in (f.remediation or "")


def test_vm_dac_override_to_root_fails_that_vm() -> None:
    root_vm = secure_vm("db1", seclabels=[SecLabel(type="static", model="dac", relabel=False, label="+0:+0")])
    found = run(s11_2_unprivileged.qemu_unprivileged, hardened([secure_vm(), root_vm]), "11.2.6")
    assert only(found, "vm:db1").status is Status.FAIL
    assert only(found, HOST).status is Status.PASS


# --------------------------------------------------------------------------------------------------------
# 11.2.7 device ACL — host part


def test_device_acl_host_passes_with_apparmor() -> None:
    f = only(run(device_acl.device_acl_host, hardened(), "11.2.7"))
    assert f.status is Status.PASS and f.evidence["capabilities.secmodels"] == ["apparmor", "dac"]


def test_absent_qemu_conf_with_mac_active_passes_on_defaults() -> None:
    f = only(run(device_acl.device_acl_host, hardened(qemu_conf=ConfFile(path=QEMU)), "11.2.7"))
    assert f.status is Status.PASS
    assert f.evidence["namespaces"]["source"] == f"default ({QEMU} absent)"


def test_dac_only_host_fails_with_svirt_remediation() -> None:
    tgt = with_caps(target([secure_vm()], host=signed_host()), "none", "dac")
    f = only(run(device_acl.device_acl_host, tgt, "11.2.7"))
    assert f.status is Status.FAIL and "only the DAC driver" in f.message
    assert 'security_driver = "apparmor"' in (f.remediation or "")


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"security_driver": "none"}, 'security_driver = "none"'),
        ({"dynamic_ownership": 0}, "dynamic_ownership = 0"),
        ({"namespaces": []}, 'lacks "mount"'),
        ({"security_default_confined": 0}, "security_default_confined = 0"),
        ({"cgroup_device_acl": [*sorted(DEFAULT_CGROUP_DEVICE_ACL), "/dev/sda"]}, "/dev/sda"),
        ({"cgroup_controllers": ["cpu", "memory"]}, 'omits "devices"'),
    ],
)
def test_device_acl_host_failures(values: dict[str, Any], words: str) -> None:
    f = only(run(device_acl.device_acl_host, hardened(qemu_conf=conf(QEMU, **values)), "11.2.7"))
    assert f.status is Status.FAIL and words in f.message
    assert f"{QEMU} line 1" in (f.remediation or "") or "security_driver" in (f.remediation or "")


def test_default_device_acl_list_is_not_a_widening() -> None:
    tgt = hardened(
        qemu_conf=conf(QEMU, cgroup_device_acl=sorted(DEFAULT_CGROUP_DEVICE_ACL - {"/dev/userfaultfd"}))
    )
    assert only(run(device_acl.device_acl_host, tgt, "11.2.7")).status is Status.PASS


def test_unknown_secmodels_without_explicit_driver_is_an_error() -> None:
    tgt = target([secure_vm()], host=signed_host(qemu_conf=ConfFile(path=QEMU)))
    assert only(run(device_acl.device_acl_host, tgt, "11.2.7")).status is Status.ERROR
    explicit = target([secure_vm()], host=signed_host())
    f = only(run(device_acl.device_acl_host, explicit, "11.2.7"))
    assert f.status is Status.PASS and f.evidence["capabilities.secmodels"] == "not collected"


# --------------------------------------------------------------------------------------------------------
# 11.2.7 per VM


def test_seclabel_none_fails_the_vm() -> None:
    bad = secure_vm("open1", seclabels=[SecLabel(type="none")])
    found = run(device_acl.vm_confined, hardened([secure_vm(), bad]), "11.2.7")
    assert only(found, "vm:open1").status is Status.FAIL
    assert "virsh edit open1" in (only(found, "vm:open1").remediation or "")
    assert only(found, "vm:web1").status is Status.PASS


def test_shared_static_label_fails_both_vms() -> None:
    label = SecLabel(type="static", model="selinux", relabel=True, label="system_u:system_r:svirt_t:s0:c1,c2")
    vms = [secure_vm("a", seclabels=[label]), secure_vm("b", seclabels=[label])]
    found = run(device_acl.vm_confined, hardened(vms), "11.2.7")
    assert statuses(found) == [Status.FAIL, Status.FAIL] and "shared with another VM" in found[0].message


def test_unique_static_label_without_relabel_is_manual() -> None:
    label = SecLabel(
        type="static", model="selinux", relabel=False, label="system_u:system_r:svirt_t:s0:c7,c9"
    )
    f = only(run(device_acl.vm_confined, hardened([secure_vm(seclabels=[label])]), "11.2.7"), "vm:web1")
    assert f.status is Status.MANUAL and "ls -Z" in f.message


def test_disk_relabel_no_fails_only_for_writable_private_disks() -> None:
    norelabel = [SecLabel(relabel=False)]
    rw = Disk(target="vdb", source_path="/srv/data.img", seclabels=norelabel)
    ro = Disk(target="vdc", source_path="/srv/base.iso", readonly=True, seclabels=norelabel)
    f = only(
        run(device_acl.vm_confined, hardened([secure_vm(disks=[luks_disk(), rw, ro])]), "11.2.7"), "vm:web1"
    )
    assert f.status is Status.FAIL and "vdb" in f.message and "vdc" not in f.message


def test_passthrough_devices_are_listed() -> None:
    vm = secure_vm(hostdevs=[Hostdev(mode="subsystem", type="pci", source="0000:03:00.0", managed=True)])
    f = only(run(device_acl.vm_confined, hardened([vm]), "11.2.7"), "vm:web1")
    assert f.status is Status.PASS and f.evidence["hostdevs"] == ["pci:0000:03:00.0"]
    assert "0000:03:00.0" in f.message


@pytest.mark.parametrize(
    ("fn", "measure"),
    [
        (device_acl.vm_confined, "11.2.7"),
        (s11_2_encryption.vm_disk_encryption, "11.2.9"),
        (s11_2_transport.vm_image_transport, "11.2.10"),
    ],
)
def test_per_vm_checks_zero_vms_broken_vm_and_no_connection(fn: Check, measure: str) -> None:
    empty = run(fn, hardened([]), measure)
    assert (
        statuses(empty) == [Status.NOT_APPLICABLE] and empty[0].message == "no VMs defined on qemu:///system"
    )
    broken = run(fn, hardened([VmFacts(name="bad", error="XML parse error line 3")]), measure)
    assert statuses(broken) == [Status.ERROR] and broken[0].subject == "vm:bad"
    none = run(fn, target(with_hypervisor=False, host=signed_host()), measure)
    assert statuses(none) == [Status.ERROR]


# --------------------------------------------------------------------------------------------------------
# 11.2.9 disk encryption


def test_luks_disk_passes() -> None:
    f = only(run(s11_2_encryption.vm_disk_encryption, hardened(), "11.2.9"), "vm:web1")
    assert f.status is Status.PASS and f.evidence["disks"]["vda"]["encryption"]["format"] == "luks"


def test_unencrypted_disk_fails_with_luks_remediation() -> None:
    f = only(run(s11_2_encryption.vm_disk_encryption, target([good_vm()]), "11.2.9"), "vm:web1")
    assert f.status is Status.FAIL and "unencrypted: vda" in f.message
    assert "<encryption format='luks'>" in (f.remediation or "") and "exception" in (f.remediation or "")


def test_legacy_qcow_encryption_fails() -> None:
    weak = replace(luks_disk(), encryption=DiskEncryption(format="qcow"))
    f = only(run(s11_2_encryption.vm_disk_encryption, target([good_vm(disks=[weak])]), "11.2.9"), "vm:web1")
    assert f.status is Status.FAIL and "legacy qcow" in f.message


def test_network_disk_without_encryption_is_manual_and_cdrom_is_ignored() -> None:
    net = Disk(
        type="network", target="vdb", source_protocol="rbd", source_name="pool/img", source_hosts=["ceph1"]
    )
    cd = Disk(device="cdrom", target="sda", source_path="/isos/debian.iso")
    f = only(
        run(s11_2_encryption.vm_disk_encryption, target([good_vm(disks=[luks_disk(), net, cd])]), "11.2.9"),
        "vm:web1",
    )
    assert (
        f.status is Status.MANUAL and "vdb (network disk)" in f.message and "sda" not in f.evidence["disks"]
    )


def test_vm_with_only_a_cdrom_is_not_applicable() -> None:
    cd = Disk(device="cdrom", target="sda", source_path="/isos/debian.iso")
    f = only(run(s11_2_encryption.vm_disk_encryption, target([good_vm(disks=[cd])]), "11.2.9"), "vm:web1")
    assert f.status is Status.NOT_APPLICABLE and "no disk images" in f.message


# --------------------------------------------------------------------------------------------------------
# 11.2.10 image transport — per VM


def net_disk(protocol: str, **changes: Any) -> Disk:
    return replace(
        Disk(
            type="network",
            target="vdb",
            source_protocol=protocol,
            source_name="images/web1.qcow2",
            source_hosts=["img.example.net"],
        ),
        **changes,
    )


def transport(disk: Disk, **host_changes: Any) -> Finding:
    tgt = hardened([secure_vm(disks=[luks_disk(), disk])], **host_changes)
    return only(run(s11_2_transport.vm_image_transport, tgt, "11.2.10"), "vm:web1")


@pytest.mark.parametrize("protocol", ["http", "ftp", "iscsi", "nfs"])
def test_cleartext_image_protocols_fail(protocol: str) -> None:
    f = transport(net_disk(protocol))
    assert f.status is Status.FAIL and f"{protocol}://img.example.net" in f.message
    assert "protocol='https'" in (f.remediation or "")


@pytest.mark.parametrize("protocol", ["https", "ssh", "ftps"])
def test_secure_image_protocols_pass(protocol: str) -> None:
    assert transport(net_disk(protocol)).status is Status.PASS


def test_nbd_tls_attribute_and_qemu_conf_default() -> None:
    assert transport(net_disk("nbd", source_tls=True)).status is Status.PASS
    assert transport(net_disk("nbd")).status is Status.FAIL  # nbd_tls defaults to 0
    f = transport(net_disk("nbd"), qemu_conf=conf(QEMU, nbd_tls=1))
    assert f.status is Status.PASS and f.evidence["network_disks"]["vdb"]["tls_from"]["nbd_tls"]["value"] == 1
    assert transport(net_disk("nbd", source_tls=False), qemu_conf=conf(QEMU, nbd_tls=1)).status is Status.FAIL


def test_nbd_default_unknown_without_host_is_an_error() -> None:
    tgt = no_host([secure_vm(disks=[net_disk("nbd")])])
    f = only(run(s11_2_transport.vm_image_transport, tgt, "11.2.10"), "vm:web1")
    assert f.status is Status.ERROR and "nbd_tls" in f.message


def test_rbd_and_pool_volumes_need_evidence() -> None:
    f = transport(net_disk("rbd"))
    assert f.status is Status.MANUAL and "ms_client_mode" in f.message
    vol = Disk(type="volume", target="vdc", source_pool="nfs-images", source_volume="web1.qcow2")
    assert transport(vol).status is Status.MANUAL


def test_local_disks_only_pass_with_the_reason() -> None:
    f = only(run(s11_2_transport.vm_image_transport, hardened(), "11.2.10"), "vm:web1")
    assert f.status is Status.PASS and "local file or block device" in f.message


# --------------------------------------------------------------------------------------------------------
# 11.2.10 image transport — host part


@pytest.mark.parametrize(
    ("lvalues", "qvalues", "words"),
    [
        ({"listen_tcp": 1, "auth_tcp": "none"}, {}, "cleartext, unauthenticated"),
        ({"tls_no_verify_certificate": 1}, {}, "not authenticated"),
        ({}, {"default_tls_x509_verify": 0}, "default_tls_x509_verify = 0"),
        ({}, {"backup_tls_x509_verify": 0}, "backup_tls_x509_verify = 0"),
    ],
)
def test_remote_transport_failures(lvalues: dict[str, Any], qvalues: dict[str, Any], words: str) -> None:
    tgt = hardened(libvirtd_conf=conf(LIBVIRTD, **lvalues), qemu_conf=conf(QEMU, **qvalues))
    f = only(run(s11_2_transport.libvirt_remote_transport, tgt, "11.2.10"))
    assert f.status is Status.FAIL and words in f.message and f.remediation


def test_remote_transport_sasl_tcp_is_manual_and_defaults_pass() -> None:
    tgt = hardened(libvirtd_conf=conf(LIBVIRTD, listen_tcp=1))
    f = only(run(s11_2_transport.libvirt_remote_transport, tgt, "11.2.10"))
    assert f.status is Status.MANUAL and "mech_list" in f.message
    f = only(run(s11_2_transport.libvirt_remote_transport, target(), "11.2.10"))
    assert f.status is Status.PASS and "migrate_tls_force = 1" in f.message


# --------------------------------------------------------------------------------------------------------
# Manual measures, and contracts every finding keeps


@pytest.mark.parametrize(
    ("fn", "measure", "keyword"),
    [
        (accounts.direct_access_accounts, "11.2.4", "sudoers"),
    ],
)
def test_manual_measures_say_what_evidence_is_needed(fn: Check, measure: str, keyword: str) -> None:
    for tgt in (target(), no_host()):
        f = only(run(fn, tgt, measure))
        assert f.status is Status.MANUAL and keyword in f.message and f.evidence


def test_image_library_lists_image_directories() -> None:
    checked, api_side = run(
        image_library.image_library_access, target([good_vm("a"), good_vm("b")]), "11.2.8"
    )
    assert checked.status is Status.PASS
    assert checked.evidence["image_dirs"][0]["path"] == "/var/lib/libvirt/images"
    assert api_side.status is Status.MANUAL and "storage-vol" in api_side.message
    assert api_side.evidence["vm_image_directories"] == ["/var/lib/libvirt/images"]


SCENARIOS = [
    target(),
    hardened(),
    no_host(),
    hardened(qemu_conf=malformed(QEMU)),
    hardened(
        qemu_processes=[QemuProcess(pid=1, user="root", uid=0)], qemu_conf=conf(QEMU, security_driver="none")
    ),
    with_caps(target([good_vm(seclabels=[SecLabel(type="none")], disks=[net_disk("http")])]), "dac"),
]


def test_every_finding_has_evidence_and_every_fail_a_remediation() -> None:
    mine = [c for c in registered_checks() if c.measure.startswith("11.2.")]
    assert len(mine) >= 14
    for tgt in SCENARIOS:
        for chk in mine:
            for f in chk.fn(CheckContext(tgt, default_profile(), chk.measure, chk.id)):
                assert f.message and f.evidence, (chk.id, f)
                if f.status is Status.FAIL:
                    assert f.remediation, (chk.id, f)
    assert all(c.doc for c in mine)


# --------------------------------------------------------------------------------------------------------
# The whole engine


MEASURES = [f"11.2.{i}" for i in range(1, 11)]


def test_engine_roll_up_on_hardened_and_default_estates() -> None:
    ev = evaluate([hardened()], default_profile())
    assert {m: ev.by_measure[m] for m in MEASURES} == {
        "11.2.1": Status.PASS,
        "11.2.2": Status.MANUAL,
        "11.2.3": Status.MANUAL,
        "11.2.4": Status.MANUAL,
        "11.2.5": Status.MANUAL,
        "11.2.6": Status.PASS,
        "11.2.7": Status.PASS,
        "11.2.8": Status.MANUAL,
        "11.2.9": Status.PASS,
        "11.2.10": Status.PASS,
    }
    ev = evaluate([target()], default_profile())
    assert {m: ev.by_measure[m] for m in MEASURES} == {
        "11.2.1": Status.WARN,  # signing enforced, but the "should" confinement part is unmet
        "11.2.2": Status.FAIL,
        "11.2.3": Status.FAIL,
        "11.2.4": Status.MANUAL,
        "11.2.5": Status.FAIL,
        "11.2.6": Status.MANUAL,
        "11.2.7": Status.ERROR,  # no capabilities: whether sVirt is active is unknown
        "11.2.8": Status.MANUAL,
        "11.2.9": Status.FAIL,
        "11.2.10": Status.PASS,
    }


def test_dynamic_mac_label_passes_and_is_named() -> None:
    vm = secure_vm(seclabels=[SecLabel(type="dynamic", model="apparmor", relabel=True)])
    f = only(run(device_acl.vm_confined, hardened([vm]), "11.2.7"), "vm:web1")
    assert f.status is Status.PASS and "dynamic apparmor label" in f.message
