"""The operations checks (11.2.8–11.2.10, 11.4.4, 11.4.8–11.4.13) on hand-made facts: the factory's
well-run host, bent one way per test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from factories import good_host, good_operations, good_vm, run, target
from hvguard.checks.s11_2 import encryption, image_library, transport
from hvguard.checks.s11_4 import audit_logs, management_segment, uplinks
from hvguard.checks.s11_4 import firewall as s11_4_firewall
from hvguard.checks.s11_4 import logging as s11_4_logging
from hvguard.checks.s11_4 import patching as s11_4_patching
from hvguard.facts import (
    FirewallChain,
    FirewallFacts,
    FirewallRule,
    Interface,
    LibvirtNetwork,
    ListeningSocket,
    LogForward,
    MountPoint,
    NetInterface,
    OperationsFacts,
    PendingUpdate,
    SudoFacts,
    SudoRule,
    TargetFacts,
)
from hvguard.facts.access import AccessFacts
from hvguard.findings import Finding, Status
from hvguard.profile import ProfileError, load_profile

replace = msgspec.structs.replace
OPS = good_operations()


def with_ops(vms: list[Any] | None = None, **groups: Any) -> TargetFacts:
    return target(vms, host=good_host(operations=replace(OPS, **groups)))


def first(fn: Any, tgt: TargetFacts, measure: str, profile: Any = None) -> Finding:
    return run(fn, tgt, measure, profile)[0]


def input_chain(*rules: FirewallRule, policy: str = "drop", backend: str = "nftables") -> FirewallFacts:
    assert OPS.firewall is not None
    chain = FirewallChain(
        backend=backend,
        family="inet",
        table="filter",
        name="input",
        hook="input",
        policy=policy,
        rules=list(rules),
    )
    return replace(OPS.firewall, chains=[chain])


def accept(where: str, **kw: Any) -> FirewallRule:
    return FirewallRule(where=where, verdict="accept", **kw)


# --------------------------------------------------------------------------------------------------------
# 11.4.9


def test_firewall_port_outside_the_allow_list_fails_unless_the_profile_allows_it(tmp_path: Path) -> None:
    fw = input_chain(accept("/etc/nftables.conf:9", protocols=["tcp"], dports=["5900-5910"], text="vnc"))
    f = first(s11_4_firewall.firewall, with_ops(firewall=fw), "11.4.9")
    assert f.status is Status.FAIL and "5900-5910/tcp is not in the allowed list" in f.message
    assert "/etc/nftables.conf:9" in (f.remediation or "")
    prof = tmp_path / "p.yaml"
    prof.write_text("thresholds:\n  firewall_allowed_ports: ['22/tcp', '16514/tcp', '5900-5999/tcp']\n")
    assert (
        first(s11_4_firewall.firewall, with_ops(firewall=fw), "11.4.9", load_profile(prof)).status
        is Status.PASS
    )


def test_firewall_accept_everything_and_accept_policy_fail() -> None:
    f = first(
        s11_4_firewall.firewall, with_ops(firewall=input_chain(accept("r1", saddrs=["10.0.0.0/8"]))), "11.4.9"
    )
    assert f.status is Status.FAIL and "admits every port" in f.message
    f = first(s11_4_firewall.firewall, with_ops(firewall=input_chain(policy="accept")), "11.4.9")
    assert f.status is Status.FAIL and "No input chain drops by default" in f.message


def test_firewall_final_drop_rule_and_jumps_are_followed() -> None:
    assert OPS.firewall is not None
    inp = FirewallChain(
        backend="iptables",
        family="ip",
        table="filter",
        name="INPUT",
        hook="input",
        policy="accept",
        rules=[
            FirewallRule(where="rules.v4:5", verdict="jump", jump="MGMT"),
            FirewallRule(where="rules.v4:6", verdict="drop"),
            accept("rules.v4:7", protocols=["tcp"], dports=["8080"]),  # after the final drop: unreachable
        ],
    )
    mgmt = FirewallChain(
        backend="iptables",
        family="ip",
        table="filter",
        name="MGMT",
        rules=[accept("rules.v4:9", protocols=["tcp"], dports=["22"], saddrs=["192.0.2.0/24"])],
    )
    f = first(s11_4_firewall.firewall, with_ops(firewall=replace(OPS.firewall, chains=[inp, mgmt])), "11.4.9")
    assert f.status is Status.PASS and f.evidence["input_chains"][0]["where"] == "rules.v4:6"
    assert f.evidence["accepted"] == ["22 (tcp) from 192.0.2.0/24 — rules.v4:9"]


def test_firewall_uninterpreted_accept_is_manual_and_ruleset_absence_fails() -> None:
    fw = input_chain(accept("nft handle 9", other=["meta skuid 0"]))
    assert first(s11_4_firewall.firewall, with_ops(firewall=fw), "11.4.9").status is Status.MANUAL
    assert OPS.firewall is not None
    none = replace(OPS.firewall, sources=[], chains=[], sets=[])
    f = first(s11_4_firewall.firewall, with_ops(firewall=none), "11.4.9")
    assert f.status is Status.FAIL and "No host firewall ruleset" in f.message


def test_bad_allowed_ports_in_a_profile_is_a_profile_error(tmp_path: Path) -> None:
    prof = tmp_path / "p.yaml"
    prof.write_text("thresholds:\n  firewall_allowed_ports: ['ssh']\n")
    with pytest.raises(ProfileError, match="PORT"):
        load_profile(prof)


# --------------------------------------------------------------------------------------------------------
# 11.4.12 and 11.4.13


def test_sshd_reachable_on_a_vm_bridge_without_source_filtering_fails() -> None:
    assert OPS.network is not None and OPS.firewall is not None
    net = replace(
        OPS.network,
        interfaces=[
            *(OPS.network.interfaces or []),
            NetInterface(name="virbr0", kind="bridge", addresses=["192.168.122.1/24"]),
        ],
        libvirt_networks=[LibvirtNetwork(name="default", path="/x.xml", bridge="virbr0", forward_mode="nat")],
    )
    fw = input_chain(accept("nft handle 5", protocols=["tcp"], dports=["22"]))
    fw = replace(fw, listening=[ListeningSocket(proto="tcp", address="0.0.0.0", port=22, process="sshd")])
    seg, diagram = run(management_segment.management_segment, with_ops(network=net, firewall=fw), "11.4.12")
    assert seg.status is Status.FAIL and "reachable via VM-facing virbr0" in seg.message
    assert "from any source" in seg.message and diagram.status is Status.MANUAL


def test_nat_network_needs_a_bonded_default_route() -> None:
    assert OPS.network is not None
    nat = [LibvirtNetwork(name="default", path="/x.xml", bridge="virbr0", forward_mode="nat")]
    single = replace(OPS.network, libvirt_networks=nat)  # default route via eno3, a single NIC
    f = first(uplinks.vm_uplink_redundancy, with_ops(network=single), "11.4.13")
    assert f.status is Status.FAIL and "default route via eno3" in f.message
    bonded = replace(OPS.network, libvirt_networks=nat, default_route_interfaces=["bond0"])
    assert first(uplinks.vm_uplink_redundancy, with_ops(network=bonded), "11.4.13").status is Status.PASS
    isolated = replace(
        OPS.network, libvirt_networks=[LibvirtNetwork(name="default", path="/x.xml", bridge="v")]
    )
    assert (
        first(uplinks.vm_uplink_redundancy, with_ops(network=isolated), "11.4.13").status
        is Status.NOT_APPLICABLE
    )
    direct = [good_vm(interfaces=[Interface(type="direct", source="eno3")])]
    f = first(uplinks.vm_uplink_redundancy, with_ops(direct), "11.4.13")
    assert f.status is Status.FAIL and "macvtap on eno3" in f.message


# --------------------------------------------------------------------------------------------------------
# 11.4.10 / 11.4.11 / 11.4.4


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"auth_mode": "x509/certvalid"}, "authentication mode x509/certvalid"),
        ({"auth_mode": None}, "without an explicit StreamDriverAuthMode"),
        ({"tls": False, "driver": "gtls"}, "without TLS (StreamDriver gtls, mode 0)"),
    ],
)
def test_weak_tls_forwards_fail(changes: dict[str, Any], words: str) -> None:
    assert OPS.logging is not None
    fwd = replace(OPS.logging.forwards[0], **changes)
    logging = replace(OPS.logging, forwards=[fwd])
    f = first(s11_4_logging.log_protection, with_ops(logging=logging), "11.4.10")
    assert f.status is Status.FAIL and words in f.message and "/etc/rsyslog.d/90-remote.conf:2" in f.message


def test_unsealed_journal_fails_and_only_local_targets_fail_remote_logging() -> None:
    assert OPS.logging is not None
    logging = replace(OPS.logging, journald=replace(OPS.logging.journald, fss_keys=[]))
    f = first(s11_4_logging.log_protection, with_ops(logging=logging), "11.4.10")
    assert f.status is Status.FAIL and "journalctl --setup-keys" in f.message
    local = LogForward(daemon="rsyslog", path="/etc/rsyslog.conf", line=3, target="[::1]:514", protocol="tcp")
    f = first(
        s11_4_logging.remote_logging, with_ops(logging=replace(OPS.logging, forwards=[local])), "11.4.11"
    )
    assert (
        f.status is Status.FAIL
        and "only local targets" in f.message
        and 'type="omfwd"' in (f.remediation or "")
    )


def test_audit_protection_lists_sudo_all_grants_and_fails_without_off_host_copy() -> None:
    assert OPS.logging is not None
    rule = SudoRule(principals=["%hv-admins"], written="%hv-admins", commands=["ALL"], all_commands=True,
                    file="/etc/sudoers.d/hv", line=1)  # fmt: skip
    host = good_host(access=AccessFacts(sudo=SudoFacts(present=True, rules=[rule])))
    f = first(audit_logs.audit_log_protection, target(host=host), "11.4.4")
    assert f.status is Status.PASS and "%hv-admins (/etc/sudoers.d/hv:1)" in f.message
    audit = replace(OPS.logging.audit, remote_plugin_active=False)
    logging = replace(OPS.logging, audit=audit, forwards=[])
    f = first(audit_logs.audit_log_protection, with_ops(logging=logging), "11.4.4")
    assert f.status is Status.FAIL and "au-remote.conf: active = yes" in (f.remediation or "")


# --------------------------------------------------------------------------------------------------------
# 11.4.8


def test_dnf_advisory_older_than_the_window_fails_and_a_recent_one_passes() -> None:
    assert OPS.patches is not None
    old = PendingUpdate(
        package="kernel-5.14", candidate="kernel-5.14", security=True, advisory="RHSA-1", issued="2025-11-01"
    )
    new = replace(old, advisory="RHSA-2", issued="2025-12-28")
    f = first(
        s11_4_patching.patching,
        with_ops(patches=replace(OPS.patches, manager="dnf", pending=[old, new])),
        "11.4.8",
    )
    assert f.status is Status.FAIL and "RHSA-1, issued 2025-11-01" in f.message and "RHSA-2" not in f.message
    f = first(
        s11_4_patching.patching,
        with_ops(patches=replace(OPS.patches, manager="dnf", pending=[new])),
        "11.4.8",
    )
    assert f.status is Status.PASS  # issued 4 days before collection: inside the 14-day window


def test_missing_operations_facts_are_errors_not_guesses() -> None:
    tgt = target(host=good_host(operations=OperationsFacts()))
    for fn, measure in (
        (s11_4_firewall.firewall, "11.4.9"),
        (s11_4_logging.remote_logging, "11.4.11"),
        (uplinks.vm_uplink_redundancy, "11.4.13"),
        (transport.storage_transport, "11.2.10"),
    ):
        assert first(fn, tgt, measure).status is Status.ERROR


# --------------------------------------------------------------------------------------------------------
# 11.2.8–11.2.10


def test_disk_on_luks_storage_passes_and_unknown_storage_is_manual() -> None:
    assert OPS.storage is not None
    crypt = MountPoint(mountpoint="/var/lib/libvirt", fstype="xfs", source="/dev/mapper/img", encrypted=True,
                       crypt_chain=["dm-3 (CRYPT-LUKS2-abc-img)", "sdb"])  # fmt: skip
    st = replace(OPS.storage, mounts=[*(OPS.storage.mounts or []), crypt])
    f = run(encryption.vm_disk_encryption, with_ops([good_vm()], storage=st), "11.2.9")[0]
    assert f.status is Status.PASS and "dm-crypt" in f.evidence["disks"]["vda"]["backing"]
    unknown = replace(crypt, encrypted=None, crypt_chain=[])
    st = replace(OPS.storage, mounts=[*(OPS.storage.mounts or []), unknown])
    assert (
        run(encryption.vm_disk_encryption, with_ops([good_vm()], storage=st), "11.2.9")[0].status
        is Status.MANUAL
    )


def test_group_writable_by_users_fails_and_missing_watch_warns() -> None:
    assert OPS.storage is not None and OPS.logging is not None
    d = replace(OPS.storage.image_dirs[0], mode=0o2775, group="users")
    f = first(
        image_library.image_library_access, with_ops(storage=replace(OPS.storage, image_dirs=[d])), "11.2.8"
    )
    assert f.status is Status.FAIL and "broad group users" in f.message
    logging = replace(OPS.logging, audit=replace(OPS.logging.audit, watches=[]))
    f = first(image_library.image_library_access, with_ops(logging=logging), "11.2.8")
    assert f.status is Status.WARN and "-w /var/lib/libvirt/images -p wa" in (f.remediation or "")


def test_vm_disk_on_an_nfs_mount_without_krb5p_fails_image_transport() -> None:
    assert OPS.storage is not None
    nfs = MountPoint(mountpoint="/var/lib/libvirt/images", fstype="nfs4", source="nas:/img",
                     options=["rw", "vers=4.2", "sec=sys"])  # fmt: skip
    st = replace(OPS.storage, mounts=[*(OPS.storage.mounts or []), nfs])
    f = run(transport.vm_image_transport, with_ops([good_vm()], storage=st), "11.2.10")[0]
    assert f.status is Status.FAIL and "NFS with sec=sys" in f.message
    ok = replace(nfs, options=["rw", "sec=krb5p"])
    st = replace(OPS.storage, mounts=[*(OPS.storage.mounts or []), ok])
    assert (
        run(transport.vm_image_transport, with_ops([good_vm()], storage=st), "11.2.10")[0].status
        is Status.PASS
    )
