"""The access-control checks (11.2.2–11.2.5, 11.4.1–11.4.3, 11.4.5, 11.4.6) on fixture roots read by the real
collectors: a hardened host, a host with the usual mistakes, and one with malformed files."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import msgspec
import pytest

from factories import run
from hvguard.checks.base import CheckContext
from hvguard.checks.s11_2 import accounts as s11_2_accounts
from hvguard.checks.s11_2 import api_access, least_privilege
from hvguard.checks.s11_4 import credentials, endpoints, remote_access
from hvguard.checks.s11_4 import directory as s11_4_directory
from hvguard.checks.s11_4 import mfa as s11_4_mfa
from hvguard.cli import main
from hvguard.collect.linux.access_probe import classify, parse_probe_spec
from hvguard.collect.targets import collect_target
from hvguard.facts import (
    AclProbe,
    Bundle,
    FirewallChain,
    FirewallFacts,
    FirewallRule,
    OperationsFacts,
    TargetFacts,
)
from hvguard.findings import Finding, Status
from hvguard.profile import Profile, default_profile

DATA = Path(__file__).parent / "data" / "roots"
Check = Callable[[CheckContext], Iterable[Finding]]
replace = msgspec.structs.replace


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> TargetFacts:
    """The hardened fixture, copied so sssd.conf can carry the 0600 mode git does not keep."""
    root = tmp_path_factory.mktemp("good") / "root"
    shutil.copytree(DATA / "access-good", root, symlinks=True)
    (root / "etc/sssd/sssd.conf").chmod(0o600)
    return collect_target("local", root=root)


@pytest.fixture(scope="module")
def bad() -> TargetFacts:
    return collect_target("local", root=DATA / "access-bad")


@pytest.fixture(scope="module")
def malformed() -> TargetFacts:
    return collect_target("local", root=DATA / "access-malformed")


def statuses(fn: Check, tgt: TargetFacts, measure: str, profile: Profile | None = None) -> list[Status]:
    return [f.status for f in run(fn, tgt, measure, profile)]


def one(fn: Check, tgt: TargetFacts, measure: str, profile: Profile | None = None) -> Finding:
    found = run(fn, tgt, measure, profile)
    assert len(found) == 1, found
    return found[0]


def with_thresholds(**changes: object) -> Profile:
    base = default_profile()
    return msgspec.structs.replace(base, thresholds=msgspec.structs.replace(base.thresholds, **changes))


ACCESS_CHECKS: list[tuple[Check, str]] = [
    (api_access.libvirt_access_driver, "11.2.2"),
    (api_access.libvirt_deny_rules, "11.2.3"),
    (least_privilege.libvirt_role_model, "11.2.5"),
    (least_privilege.sudo_least_privilege, "11.2.5"),
    (s11_4_directory.directory_integration, "11.4.1"),
    (endpoints.admin_endpoints, "11.4.2"),
    (s11_4_mfa.sshd_mfa, "11.4.3"),
    (s11_4_mfa.sudo_mfa, "11.4.3"),
    (s11_4_mfa.admin_mfa, "11.4.3"),
    (remote_access.sshd_remote_access, "11.4.6"),
]


# --------------------------------------------------------------------------------------------------------
# The hardened host passes; the usual mistakes fail with file:line and exact fixes


@pytest.mark.parametrize(("fn", "measure"), ACCESS_CHECKS)
def test_hardened_host_passes(good: TargetFacts, fn: Check, measure: str) -> None:
    found = run(fn, good, measure)
    assert found and all(f.status is Status.PASS for f in found), [(f.status, f.message) for f in found]


@pytest.mark.parametrize(
    ("fn", "measure", "words"),
    [
        (
            api_access.libvirt_access_driver,
            "11.2.2",
            "50-libvirt-everything.rules:2) without testing the domain",
        ),
        (api_access.libvirt_deny_rules, "11.2.3", "No polkit rule returns polkit.Result.NO"),
        (least_privilege.libvirt_role_model, "11.2.5", "only as whole families"),
        (
            least_privilege.sudo_least_privilege,
            "11.2.5",
            "/etc/sudoers.d/90-local:1 gives frank every command",
        ),
        (s11_4_directory.directory_integration, "11.4.1", "not integrated with an enterprise directory"),
        (endpoints.admin_endpoints, "11.4.2", "SSH: the firewall admits port(s) 22 from any source"),
        (s11_4_mfa.sshd_mfa, "11.4.3", "Match Address 192.168.0.0/16 (/etc/ssh/sshd_config:7)"),
        (s11_4_mfa.sudo_mfa, "11.4.3", "/etc/sudoers.d/90-local:1: NOPASSWD for frank"),
        (remote_access.sshd_remote_access, "11.4.6", "PermitRootLogin is yes (/etc/ssh/sshd_config:3)"),
    ],
)
def test_usual_mistakes_fail_with_evidence_and_fix(
    bad: TargetFacts, fn: Check, measure: str, words: str
) -> None:
    fails = [f for f in run(fn, bad, measure) if f.status is Status.FAIL]
    assert len(fails) == 1
    assert words in fails[0].message and fails[0].remediation and fails[0].evidence


def test_sshd_fixes_are_the_exact_lines(bad: TargetFacts) -> None:
    f = one(remote_access.sshd_remote_access, bad, "11.4.6")
    fix = f.remediation or ""
    assert "/etc/ssh/sshd_config line 3: PermitRootLogin no" in fix
    assert "/etc/ssh/sshd_config line 9: PermitRootLogin no" in fix  # the Match block re-enabling root
    assert "AllowGroups hv-admins" in fix
    mfa = one(s11_4_mfa.sshd_mfa, bad, "11.4.3")
    assert "/etc/ssh/sshd_config line 4: KbdInteractiveAuthentication yes" in (mfa.remediation or "")


def test_pam_factor_marked_optional_with_nullok_is_not_mfa(bad: TargetFacts) -> None:
    f = one(s11_4_mfa.sudo_mfa, bad, "11.4.3")
    assert "pam_google_authenticator.so (totp, optional) at /etc/pam.d/common-auth:4" in f.message
    assert "nullok" in f.message


# --------------------------------------------------------------------------------------------------------
# 11.2.4 accounts against the approved list


def test_accounts_without_a_list_are_listed_and_warn_above_the_maximum(
    good: TargetFacts, bad: TargetFacts
) -> None:
    f = one(s11_2_accounts.direct_access_accounts, good, "11.2.4")
    assert f.status is Status.MANUAL and "alice, bob, breakglass, root" in f.message
    found = run(s11_2_accounts.direct_access_accounts, bad, "11.2.4")
    assert [x.status for x in found] == [Status.WARN, Status.MANUAL]
    assert "more than max_host_accounts = 5" in found[0].message
    assert "svc-backup" not in found[0].message and "daemon" not in found[0].message  # nologin accounts
    assert "ldapuser" in found[0].message  # a directory account in the local libvirt group
    assert "%domain-admins" in found[1].message  # a directory group sudo trusts


def test_accounts_against_an_approved_list(good: TargetFacts, bad: TargetFacts) -> None:
    approved = with_thresholds(approved_host_accounts=("root", "alice", "bob", "breakglass"))
    assert one(s11_2_accounts.direct_access_accounts, good, "11.2.4", approved).status is Status.PASS
    strict = with_thresholds(approved_host_accounts=("root", "alice"))
    f = one(s11_2_accounts.direct_access_accounts, good, "11.2.4", strict)
    assert f.status is Status.FAIL and "bob" in f.message and "breakglass" in f.message
    fix = f.remediation or ""
    assert "bob: usermod -s /usr/sbin/nologin bob" in fix
    assert "visudo -f /etc/sudoers.d/50-hv-roles: remove bob from line 8" in fix
    found = run(s11_2_accounts.direct_access_accounts, bad, "11.2.4", approved)
    assert found[0].status is Status.FAIL and "gpasswd -d erin libvirt" in (found[0].remediation or "")


def test_full_root_grants_outside_the_approved_list_fail(bad: TargetFacts) -> None:
    profile = with_thresholds(approved_host_accounts=("root", "alice"))
    f = one(least_privilege.sudo_least_privilege, bad, "11.2.5", profile)
    assert "/etc/sudoers:3 gives full root to carol, not on the approved list" in f.message


# --------------------------------------------------------------------------------------------------------
# Malformed files are errors naming file and line; nothing crashes


@pytest.mark.parametrize(
    ("fn", "measure", "where"),
    [
        (api_access.libvirt_access_driver, "11.2.2", "/etc/polkit-1/rules.d/100-libvirt-acl.rules line 2"),
        (api_access.libvirt_deny_rules, "11.2.3", "/etc/polkit-1/rules.d/100-libvirt-acl.rules line 2"),
        (s11_2_accounts.direct_access_accounts, "11.2.4", "/etc/passwd line 2"),
        (least_privilege.sudo_least_privilege, "11.2.5", "/etc/sudoers line 3"),
        (s11_4_directory.directory_integration, "11.4.1", "/etc/sssd/sssd.conf line 5"),
        (
            s11_4_mfa.sshd_mfa,
            "11.4.3",
            "/etc/ssh/sshd_config line 3: Bad configuration option: PermitRootLogn",
        ),
        (s11_4_mfa.sshd_mfa, "11.4.3", "/etc/pam.d/sshd line 2: unknown control"),
        (
            remote_access.sshd_remote_access,
            "11.4.6",
            "/etc/ssh/sshd_config line 9: Directive 'Port' is not allowed",
        ),
    ],
)
def test_malformed_files_are_errors_with_file_and_line(
    malformed: TargetFacts, fn: Check, measure: str, where: str
) -> None:
    errors = [f for f in run(fn, malformed, measure) if f.status is Status.ERROR]
    assert any(where in f.message for f in errors), [f.message for f in errors]


def test_every_access_check_survives_every_fixture(
    good: TargetFacts, bad: TargetFacts, malformed: TargetFacts
) -> None:
    extra: list[tuple[Check, str]] = [
        (s11_2_accounts.direct_access_accounts, "11.2.4"),
        (credentials.admin_credential_separation, "11.4.5"),
    ]
    for tgt in (good, bad, malformed):
        for fn, measure in [*ACCESS_CHECKS, *extra]:
            for f in run(fn, tgt, measure):
                assert f.message and f.evidence is not None
                if f.status is Status.FAIL:
                    assert f.remediation


# --------------------------------------------------------------------------------------------------------
# Probes decide 11.2.2/11.2.3; static analysis says so when it decides


def probe(user: str, vm: str, outcome: str) -> AclProbe:
    return AclProbe(
        user=user,
        vm=vm,
        uri="qemu:///system",
        argv=["runuser", "-u", user, "--", "virsh", "-c", "qemu:///system", "dominfo", "--domain", vm],
        outcome=outcome,
        reason="test",
    )


def with_probes(tgt: TargetFacts, *probes: AclProbe) -> TargetFacts:
    assert tgt.host is not None and tgt.host.access is not None
    access = replace(tgt.host.access, probes=list(probes))
    return replace(tgt, host=replace(tgt.host, access=access))


def test_probe_decides_when_it_shows_allow_and_deny(bad: TargetFacts) -> None:
    tgt = with_probes(bad, probe("bob", "web-1", "allowed"), probe("bob", "web-payments", "denied"))
    for fn, measure in (
        (api_access.libvirt_access_driver, "11.2.2"),
        (api_access.libvirt_deny_rules, "11.2.3"),
    ):
        f = one(fn, tgt, measure)
        assert f.status is Status.PASS and f.method == "probe" and "Decided by probe" in f.message
        assert f.evidence["probes"][1]["outcome"] == "denied"


def test_static_analysis_says_it_decided(good: TargetFacts) -> None:
    f = one(api_access.libvirt_deny_rules, good, "11.2.3")
    assert f.method == "static-analysis" and "100-libvirt-acl.rules:13" in f.message
    undecided = with_probes(good, probe("bob", "web-1", "allowed"), probe("bob", "web-2", "allowed"))
    g = one(api_access.libvirt_deny_rules, undecided, "11.2.3")
    assert g.method == "static-analysis" and len(g.evidence["probes"]) == 2


# --------------------------------------------------------------------------------------------------------
# 11.4.2 uses the firewall facts when sshd's own configuration does not restrict the source


def with_firewall(tgt: TargetFacts, *rules: FirewallRule, policy: str = "drop") -> TargetFacts:
    chain = FirewallChain(
        backend="nft",
        family="inet",
        table="filter",
        name="input",
        hook="input",
        policy=policy,
        rules=list(rules),
    )
    fw = FirewallFacts(sources=["test"], live=True, chains=[chain])
    assert tgt.host is not None
    return replace(tgt, host=replace(tgt.host, operations=OperationsFacts(firewall=fw)))


def test_firewall_limiting_management_ports_passes_11_4_2(bad: TargetFacts) -> None:
    ssh = FirewallRule(
        where="fw:3", verdict="accept", protocols=["tcp"], dports=["22"], saddrs=["10.0.5.0/24"]
    )
    tcp = FirewallRule(
        where="fw:4", verdict="accept", protocols=["tcp"], dports=["16509"], saddrs=["10.0.5.0/24"]
    )
    f = one(endpoints.admin_endpoints, with_firewall(bad, ssh, tcp), "11.4.2")
    assert f.status is Status.PASS and "only from 10.0.5.0/24" in f.message


def test_firewall_open_to_everyone_fails_and_unknown_rules_need_evidence(bad: TargetFacts) -> None:
    anyone = FirewallRule(where="fw:3", verdict="accept", protocols=["tcp"], dports=["22", "16509"])
    f = one(endpoints.admin_endpoints, with_firewall(bad, anyone), "11.4.2")
    assert f.status is Status.FAIL and "fw:3" in f.message
    odd = FirewallRule(
        where="fw:5", verdict="accept", protocols=["tcp"], dports=["22"], other=["meta mark 0x1"]
    )
    g = one(endpoints.admin_endpoints, with_firewall(bad, odd), "11.4.2")
    assert g.status is Status.MANUAL and "cannot be interpreted" in g.message


# --------------------------------------------------------------------------------------------------------
# Directory details, old bundles, round trip


def test_sssd_conf_readable_by_others_fails(tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(DATA / "access-good", root, symlinks=True)
    (root / "etc/sssd/sssd.conf").chmod(0o644)
    f = one(s11_4_directory.directory_integration, collect_target("local", root=root), "11.4.1")
    assert (
        f.status is Status.FAIL
        and "mode 0644" in f.message
        and "chmod 0600 /etc/sssd/sssd.conf" in (f.remediation or "")
    )


def test_facts_without_access_keep_the_evidence_statements(good: TargetFacts) -> None:
    assert good.host is not None
    old = replace(good, host=replace(good.host, access=None))
    assert one(remote_access.sshd_remote_access, old, "11.4.6").status is Status.MANUAL
    assert one(s11_2_accounts.direct_access_accounts, old, "11.2.4").status is Status.MANUAL
    assert (
        run(s11_4_mfa.sshd_mfa, old, "11.4.3") == []
        and run(least_privilege.sudo_least_privilege, old, "11.2.5") == []
    )


def test_access_facts_round_trip_through_a_bundle(good: TargetFacts) -> None:
    bundle = Bundle(
        schema="hvguard.bundle/1",
        facts_version=1,
        tool_version="test",
        created_at="2026-01-01T00:00:00Z",
        targets=[with_probes(good, probe("bob", "web-1", "allowed"))],
    )
    again = msgspec.json.decode(msgspec.json.encode(bundle), type=Bundle)
    assert again == bundle
    assert again.targets[0].host is not None and again.targets[0].host.access is not None
    assert again.targets[0].host.access.probes[0].user == "bob"


def test_separation_names_the_admin_groups(good: TargetFacts) -> None:
    f = one(credentials.admin_credential_separation, good, "11.4.5")
    assert f.status is Status.MANUAL
    assert f.evidence["hypervisor_admin_groups"] == ["hv-admins", "hv-web-ops"]
    assert "hv-admins" in f.message


# --------------------------------------------------------------------------------------------------------
# --probe-acl parsing (the probe itself runs against the real libvirtd in test_access_probe.py)


def test_probe_spec_and_classification() -> None:
    assert parse_probe_spec("alice:web-1") == ("alice", "web-1")
    assert parse_probe_spec("alice:vm:with:colons") == ("alice", "vm:with:colons")
    for bad_spec in ("alice", ":vm", "alice:", "-rf:vm", "a b:vm"):
        with pytest.raises(ValueError):
            parse_probe_spec(bad_spec)
    assert classify(1, "error: access denied: 'domain.getattr' denied")[0] == "denied"
    assert classify(1, "error: Failed to connect socket: Permission denied")[0] == "denied"
    assert classify(1, "error: something else entirely")[0] == "error"
    assert classify(0, "State: running")[0] == "allowed"


def test_probe_needs_this_machine(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["scan", "local", "--root", str(DATA / "access-good"), "--probe-acl", "root:vm"],
        ["scan", "local", "--probe-acl", "not-a-spec"],
    ):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 2
    err = capsys.readouterr().err
    assert "--probe-acl runs libvirt on this machine" in err and "expected USER:VM" in err
