"""Operations facts and verdicts end to end on offline fixture roots (tests/data/roots/ops-*), through the
same collectors the live host and the SSH transport use.

Git keeps neither file modes nor times, so each test copies the root and sets the modes and ages the
scenario needs (the tests run as root, like hvguard in CI, so the copies are root-owned)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from hvguard.collect.linux.operations import collect_operations
from hvguard.collect.linux.source import CommandResult, PrefetchedSource, RootSource
from hvguard.collect.targets import collect_target
from hvguard.engine import evaluate
from hvguard.facts import OperationsFacts, Problem, TargetFacts
from hvguard.findings import Finding, Status
from hvguard.profile import default_profile

ROOTS = Path(__file__).parent / "data" / "roots"
DAY = 86400.0
MODES = {
    "ops-good": {
        "var/log/audit": 0o700,
        "var/log/audit/audit.log": 0o600,
        "var/log/syslog": 0o640,
        "var/lib/libvirt/images": 0o711,
        "var/lib/libvirt/images/web1.qcow2": 0o600,
    },
    "ops-bad": {
        "var/log/audit": 0o755,
        "var/log/audit/audit.log": 0o644,
        "var/log/syslog": 0o644,
        "var/lib/libvirt/images": 0o777,
        "var/lib/libvirt/images/web1.qcow2": 0o644,
    },
}
AGES_DAYS = {
    "ops-good": {"var/lib/apt/periodic/update-success-stamp": 1},
    "ops-bad": {"var/lib/apt/periodic/update-success-stamp": 60, "var/run/reboot-required": 30},
}
MINE = (
    "11.2.8",
    "11.2.9",
    "11.2.10",
    "11.4.4",
    "11.4.8",
    "11.4.9",
    "11.4.10",
    "11.4.11",
    "11.4.12",
    "11.4.13",
)


def materialise(name: str, tmp_path: Path) -> Path:
    """A copy of fixture root ``name`` with its scenario's modes and file ages applied."""
    dst = tmp_path / name
    shutil.copytree(ROOTS / name, dst, symlinks=True)
    for rel, mode in MODES.get(name, {}).items():
        os.chmod(dst / rel, mode)
    now = time.time()
    for rel, age in AGES_DAYS.get(name, {}).items():
        os.utime(dst / rel, (now - age * DAY, now - age * DAY))
    return dst


def scan(root: Path) -> tuple[TargetFacts, list[Finding]]:
    tgt = collect_target("local", root=root)
    return tgt, [f for f in evaluate([tgt], default_profile()).findings if f.measure in MINE]


def by_check(findings: list[Finding], check: str, subject: str = "host") -> list[Finding]:
    return [f for f in findings if f.check == check and f.subject == subject]


def status_of(findings: list[Finding], check: str, subject: str = "host") -> list[Status]:
    return [f.status for f in by_check(findings, check, subject)]


# --------------------------------------------------------------------------------------------------------
# ops-good: a well-run host


def test_good_root_facts(tmp_path: Path) -> None:
    tgt, _ = scan(materialise("ops-good", tmp_path))
    assert tgt.host is not None and tgt.host.operations is not None
    ops = tgt.host.operations
    assert ops.logging is not None and ops.firewall is not None and ops.network is not None
    audit = ops.logging.audit
    assert audit.enable_flag == 2 and audit.enable_flag_at == "/etc/audit/rules.d/99-finalize.rules:2"
    assert [w.watch for w in audit.watches] == ["/var/lib/libvirt/images", "/etc/libvirt/", "/var/log/audit"]
    assert audit.remote_server is not None and audit.remote_server.value == "audit.example.net"
    fwd = {f.target: f for f in ops.logging.forwards}
    assert fwd["logs.example.net"].tls and fwd["logs.example.net"].auth_mode == "x509/name"
    assert fwd["logs.example.net"].where() == "/etc/rsyslog.d/90-remote-tls.conf:6"
    assert fwd["logs.example.net"].permitted_peers == ["logs.example.net"]
    assert fwd["logs.example.net"].ca_file == "/etc/rsyslog.d/ca.pem"
    assert fwd["logs2.example.net"].tls and fwd["logs2.example.net"].port == 6514  # legacy @@ + directives
    chain = next(c for c in ops.firewall.chains if c.name == "input")
    assert chain.policy == "drop" and chain.hook == "input"
    mgmt = next(r for r in chain.rules if r.saddrs)
    assert (
        mgmt.saddrs == ["@mgmt"]
        and mgmt.dports == ["22", "16514"]
        and mgmt.where.endswith("nftables.conf:20")
    )
    assert next(s for s in ops.firewall.sets if s.name == "mgmt").elements == [
        "192.0.2.0/24",
        "198.51.100.0/25",
    ]
    assert [r.iifs for r in chain.rules if r.iifs][-2:] == [["virbr0"], ["virbr0"]]  # from the include
    listening = {(s.proto, s.address, s.port) for s in ops.firewall.listening or []}
    assert ("tcp", "0.0.0.0", 22) in listening and ("tcp", "::", 22) in listening
    assert ("tcp", "::1", 631) in listening and ("udp", "192.168.122.1", 53) in listening
    assert all(s.port != 22 or s.address != "10.2.0.10" for s in ops.firewall.listening or [])  # ESTABLISHED
    bond = next(i for i in ops.network.interfaces or [] if i.name == "bond0")
    assert bond.kind == "bond" and bond.bond_slaves == ["eno1", "eno2"] and bond.master == "br0"
    assert ops.network.default_route_interfaces == ["eno3"]
    assert ops.storage is not None and ops.storage.mounts is not None
    root = next(m for m in ops.storage.mounts if m.mountpoint == "/")
    assert (
        root.encrypted is True
        and root.crypt_chain[0].startswith("dm-1")
        and "CRYPT-LUKS2" in root.crypt_chain[1]
    )


def test_good_root_verdicts(tmp_path: Path) -> None:
    _, found = scan(materialise("ops-good", tmp_path))
    assert status_of(found, "kvm.image-library-access") == [Status.PASS, Status.MANUAL]
    assert status_of(found, "kvm.vm-disk-encryption", "vm:web1") == [
        Status.PASS
    ]  # LUKS under the file system
    assert status_of(found, "kvm.storage-transport") == [Status.PASS]
    assert status_of(found, "host.audit-log-protection") == [Status.PASS]
    assert status_of(found, "host.firewall") == [Status.PASS]
    assert status_of(found, "host.log-protection") == [Status.PASS, Status.MANUAL]
    assert status_of(found, "host.remote-logging") == [Status.PASS]
    assert status_of(found, "host.management-segment") == [Status.PASS, Status.MANUAL]
    assert status_of(found, "host.vm-uplink-redundancy") == [Status.PASS]
    # An offline root cannot ask apt what is pending: an error, never a guess.
    state, auto, scan_evidence = by_check(found, "host.patching")
    assert state.status is Status.ERROR and "offline root" in state.message
    assert auto.status is Status.PASS and scan_evidence.status is Status.MANUAL


# --------------------------------------------------------------------------------------------------------
# ops-bad: each measure fails, naming the file and line


def test_bad_root_verdicts_name_files_and_lines(tmp_path: Path) -> None:
    _, found = scan(materialise("ops-bad", tmp_path))
    lib = by_check(found, "kvm.image-library-access")[0]
    assert (
        lib.status is Status.FAIL and "mode 0777" in lib.message and "chmod 2770" in (lib.remediation or "")
    )
    assert status_of(found, "kvm.vm-disk-encryption", "vm:web1") == [Status.FAIL]
    st = by_check(found, "kvm.storage-transport")[0]
    assert st.status is Status.FAIL and "sec=sys" in st.message and "iSCSI" in st.message
    assert "sec=krb5p" in (st.remediation or "")
    audit = by_check(found, "host.audit-log-protection")[0]
    assert audit.status is Status.FAIL and "/etc/audit/audit.rules:3" in audit.message
    assert "not copied off the host" in audit.message
    assert "0755" not in audit.message and "0644" not in audit.message  # readable, not writable: 11.4.10
    assert "99-finalize.rules" in (audit.remediation or "")
    fw = by_check(found, "host.firewall")[0]
    assert fw.status is Status.FAIL and "policy accept" in fw.message and "8080/tcp" in fw.message
    assert "policy drop" in (fw.remediation or "")
    logp = by_check(found, "host.log-protection")[0]
    assert logp.status is Status.FAIL
    for words in (
        "/etc/rsyslog.conf:4",  # *.* @@logs.example.net:514 — TCP without TLS
        "over UDP",  # auth.* @[2001:db8::5]:514
        "/etc/rsyslog.d/50-fwd.conf:2",  # gtls in mode 0
        "authentication mode anon",
        "Seal=no (/etc/systemd/journald.conf:3)",
        "/var/log/syslog mode 0644",
        "/var/log/audit mode 0755 lets 'other' list or enter it",
        "/var/log/audit/audit.log mode 0644 gives 'other' access",
    ):
        assert words in logp.message, words
    assert 'StreamDriverAuthMode="x509/name"' in (logp.remediation or "")
    remote = by_check(found, "host.remote-logging")[0]
    assert remote.status is Status.PASS and "127.0.0.1" in str(remote.evidence["ignored"])
    seg = by_check(found, "host.management-segment")[0]
    assert seg.status is Status.FAIL and "no input chain drops" in seg.message
    up = by_check(found, "host.vm-uplink-redundancy")[0]
    assert (
        up.status is Status.FAIL
        and "1 physical path" in up.message
        and "bond-slaves" in (up.remediation or "")
    )
    state, auto, _ = by_check(found, "host.patching")
    assert state.status is Status.ERROR and auto.status is Status.WARN
    assert "20auto-upgrades" in str(auto.evidence["source"])


def test_bad_root_patch_state_through_a_prefetched_source(tmp_path: Path) -> None:
    """The SSH transport hands collectors a copied root plus command results: stale lists and an old
    reboot-required fail the patch window even before the pending list is read."""
    root = materialise("ops-bad", tmp_path)
    apt = CommandResult(
        name="apt-get-simulate-dist-upgrade",
        argv=["apt-get", "-s", "dist-upgrade"],
        returncode=0,
        stdout=APT_OUTPUT,
    )
    problems: list[Problem] = []
    ops = collect_operations(
        PrefetchedSource(root, {"apt-get-simulate-dist-upgrade": apt}, label="ssh://hv1"), problems=problems
    )
    assert ops.patches is not None and ops.patches.pending is not None
    assert [u.package for u in ops.patches.pending if u.security] == [
        "libgcrypt20",
        "liblzma5",
        "libapt-pkg6.0",
    ]
    found = run_ops(ops, "11.4.8")
    state = found[0]
    assert state.status is Status.FAIL
    assert "pending longer than 14 days" in state.message and "last refreshed 60 days ago" in state.message
    assert (
        "reboot has been pending for 30 days" in state.message
        and "linux-image-6.1.0-18-amd64" in state.message
    )


APT_OUTPUT = """Reading package lists...
Building dependency tree...
Calculating upgrade...
The following packages will be upgraded:
  bash libapt-pkg6.0 libgcrypt20 liblzma5
4 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.
Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.8/oldstable [amd64])
Inst libgcrypt20 [1.10.1-3] (1.10.1-3+deb12u1 Debian:12.8/oldstable, GCRYPT_SECURITY)
Inst liblzma5 [5.4.1-1] (5.4.1-1+deb12u2 Debian-Security:12/oldstable-security [amd64])
Inst libapt-pkg6.0 [2.6.1] (2.6.2 Debian-Security:12/oldstable-security [amd64])
Conf bash (5.2.15-2+b13 Debian:12.8/oldstable [amd64])
Conf libgcrypt20 (1.10.1-3+deb12u1 Debian:12.8/oldstable, Debian-Security:12/oldstable-security [amd64])
Conf liblzma5 (5.4.1-1+deb12u2 Debian-Security:12/oldstable-security [amd64])
Conf libapt-pkg6.0 (2.6.2 Debian-Security:12/oldstable-security [amd64])
""".replace("GCRYPT_SECURITY", "Debian-Security:12/oldstable-security [amd64]")
NOTHING_PENDING = """Reading package lists...
Building dependency tree...
Calculating upgrade...
0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.
"""


def run_ops(ops: OperationsFacts, measure: str) -> list[Finding]:
    """Evaluate ``measure`` on the factory baseline host with these operations facts."""
    import msgspec

    from factories import good_host, target

    tgt = target(host=good_host(operations=ops))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    tgt = msgspec.structs.replace(tgt, collection=msgspec.structs.replace(tgt.collection, collected_at=now))
    return [f for f in evaluate([tgt], default_profile()).findings if f.measure == measure]


def test_good_root_patch_state_with_fresh_lists_and_pending_security(tmp_path: Path) -> None:
    """Lists refreshed a day ago, security updates pending: apt records no release date, so hvguard asks
    for evidence instead of guessing; with nothing pending it passes."""
    root = materialise("ops-good", tmp_path)
    results: dict[str, Any] = {}
    for key, out in (("pending", APT_OUTPUT), ("none", NOTHING_PENDING)):
        apt = CommandResult(name="apt-get-simulate-dist-upgrade", argv=["apt-get"], returncode=0, stdout=out)
        ops = collect_operations(
            PrefetchedSource(root, {"apt-get-simulate-dist-upgrade": apt}, label="x"), problems=[]
        )
        results[key] = run_ops(ops, "11.4.8")[0]
    assert results["pending"].status is Status.MANUAL and "libgcrypt20" in results["pending"].message
    assert results["none"].status is Status.PASS


# --------------------------------------------------------------------------------------------------------
# ops-broken: malformed configuration is an error naming the file and line


@pytest.mark.parametrize(
    ("check", "where"),
    [
        ("host.log-protection", "/etc/rsyslog.conf:3"),
        ("host.remote-logging", "/etc/journald.conf:1".replace("/etc/", "/etc/systemd/")),
        ("host.firewall", "/etc/nftables.conf:4"),
        ("host.audit-log-protection", "/etc/audit/rules.d/99-finalize.rules:2"),
        ("kvm.image-library-access", "/etc/libvirt/storage/broken.xml"),
        ("kvm.storage-transport", "/etc/libvirt/storage/broken.xml"),
    ],
)
def test_broken_root_errors_name_file_and_line(tmp_path: Path, check: str, where: str) -> None:
    _, found = scan(materialise("ops-broken", tmp_path))
    f = by_check(found, check)[0]
    assert f.status is Status.ERROR and where in f.message, f.message
    assert f.evidence["malformed"]


def test_offline_root_without_operations_files_collects_empty_facts(tmp_path: Path) -> None:
    problems: list[Problem] = []
    ops = collect_operations(RootSource(ROOTS / "minimal"), problems=problems)
    assert ops.firewall is not None and ops.firewall.sources == [] and ops.firewall.listening is None
    assert ops.logging is not None and ops.logging.forwards == []
    assert ops.network is not None and ops.network.interfaces is None
    assert any(p.area == "host.operations.network" for p in problems)


# --------------------------------------------------------------------------------------------------------
# apt.conf read with apt's own syntax (issue 10.3)


@pytest.mark.parametrize(
    ("body", "status", "where"),
    [
        # block syntax, as apt.conf(5) documents it: apt runs unattended-upgrades
        ('APT { Periodic { Update-Package-Lists "1"; Unattended-Upgrade "1"; }; };\n', Status.PASS, ":1"),
        ('APT::Periodic {\n  // daily\n  Unattended-Upgrade "1";\n};\n', Status.PASS, ":3"),
        # tags are case-insensitive for apt
        ('apt::periodic::unattended-upgrade "1";\n', Status.PASS, ":1"),
        # commented out, or switched off by a later block, or by APT::Periodic::Enable "0"
        ('/* APT::Periodic::Unattended-Upgrade "1"; */\n', Status.WARN, None),
        (
            'APT::Periodic::Unattended-Upgrade "1";\nAPT { Periodic { Unattended-Upgrade "0"; }; };\n',
            Status.WARN,
            ":2",
        ),
        ('APT::Periodic::Unattended-Upgrade "1";\nAPT::Periodic::Enable "0";\n', Status.WARN, ":2"),
    ],
)
def test_auto_updates_read_with_apt_conf_syntax(
    tmp_path: Path, body: str, status: Status, where: str | None
) -> None:
    root = materialise("ops-good", tmp_path)
    (root / "etc/apt/apt.conf.d/20auto-upgrades").write_text(body)
    _, found = scan(root)
    auto = by_check(found, "host.patching")[1]
    assert auto.status is status, f"{body!r}: {auto.status} — {auto.message}"
    if where is not None:
        assert str(auto.evidence["source"]) == "/etc/apt/apt.conf.d/20auto-upgrades" + where


def test_apt_conf_apt_refuses_is_an_error_naming_the_line(tmp_path: Path) -> None:
    root = materialise("ops-good", tmp_path)
    (root / "etc/apt/apt.conf").write_text('APT::Periodic::Enable "1" junk;\n')
    _, found = scan(root)
    errors = [f for f in by_check(found, "host.patching") if f.status is Status.ERROR]
    assert any("/etc/apt/apt.conf:1" in f.message for f in errors), [f.message for f in errors]
