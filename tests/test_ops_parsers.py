"""The operations parsers against the real tools: rsyslogd -N1 validates the rsyslog fixtures, nft -c and a
throw-away network namespace load the nftables fixtures (whose live ``nft -j`` JSON must mean what the
text reader read), iptables-restore/iptables-save round-trip the iptables fixture, ip(8) builds bridges
whose ``ip -d -j link`` hvguard reads, /proc/net/tcp shows a socket this test opens, and apt-get's real
simulation output parses line for line. Plus syntax cases for each reader."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from hvguard.collect.linux.manifest import COMMANDS
from hvguard.collect.linux.ops_files import OpsReader
from hvguard.collect.linux.ops_iptables import read_iptables_save
from hvguard.collect.linux.ops_network import parse_ip_link
from hvguard.collect.linux.ops_nftables import NftResult, read_nft_json, read_nft_text
from hvguard.collect.linux.ops_patches import is_security_release, parse_apt_simulation, parse_dnf_security
from hvguard.collect.linux.ops_rsyslog import read_rsyslog
from hvguard.collect.linux.ops_sockets import collect_listening, decode_address
from hvguard.collect.linux.ops_syslogng import read_syslog_ng
from hvguard.collect.linux.source import LocalSource, run_local
from hvguard.facts import FirewallChain

ROOTS = Path(__file__).parent / "data" / "roots"
CI = os.environ.get("CI") == "true"


def need(tool: str) -> str:
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if path is None:
        if CI:
            pytest.fail(f"{tool} missing: scripts/setup.sh test installs it")
        pytest.skip(f"{tool} not installed (scripts/setup.sh test installs it)")
    return path


def text_reader(files: dict[str, str]):  # type: ignore[no-untyped-def]
    """read/expand callables over an in-memory set of host files."""

    def read(path: str) -> str | None:
        return files.get(path)

    def expand(pattern: str) -> list[str]:
        import fnmatch

        return sorted(
            p for p in files if fnmatch.fnmatchcase(p, pattern) or p.startswith(pattern.rstrip("/") + "/")
        )

    return read, expand


def fixture_files(root: str, *globs: str) -> dict[str, str]:
    out: dict[str, str] = {}
    base = ROOTS / root
    for g in globs:
        for p in sorted(base.glob(g)):
            if p.is_file():
                out["/" + str(p.relative_to(base))] = p.read_text()
    return out


# --------------------------------------------------------------------------------------------------------
# rsyslog


def _rsyslog_copy(root: str, tmp_path: Path) -> Path:
    """The fixture's rsyslog configuration under tmp_path, with /etc/rsyslog.d/ pointing there."""
    src = ROOTS / root / "etc"
    d = tmp_path / "rsyslog.d"
    d.mkdir()
    for p in sorted((src / "rsyslog.d").glob("*")):
        (d / p.name).write_text(p.read_text().replace("/etc/rsyslog.d/", f"{d}/"))
    main = tmp_path / "rsyslog.conf"
    main.write_text((src / "rsyslog.conf").read_text().replace("/etc/rsyslog.d/", f"{d}/"))
    return main


@pytest.mark.parametrize(("root", "valid"), [("ops-good", True), ("ops-bad", True), ("ops-broken", False)])
def test_rsyslogd_agrees_with_the_fixtures(root: str, valid: bool, tmp_path: Path) -> None:
    rsyslogd = need("rsyslogd")
    main = _rsyslog_copy(root, tmp_path)
    done = subprocess.run([rsyslogd, "-N1", "-f", str(main)], capture_output=True, text=True, timeout=30)
    assert (done.returncode == 0) is valid, done.stderr
    files = fixture_files(root, "etc/rsyslog.conf", "etc/rsyslog.d/*")
    res = read_rsyslog(*text_reader(files))
    assert (not res.issues) is valid, res.issues
    if not valid:  # both name the same line
        assert res.issues[0].where() == "/etc/rsyslog.conf:3" and "on or before line 3" in done.stderr


def test_rsyslog_both_syntaxes_and_their_directive_state() -> None:
    files = {
        "/etc/rsyslog.conf": """
# comment with action(type="omfwd" target="not.me") inside
$DefaultNetstreamDriver gtls
$DefaultNetstreamDriverCAFile /etc/ssl/ca.pem
*.* @@(o)plain.example:10514
$ActionSendStreamDriverMode 1
$ActionSendStreamDriverAuthMode x509/fingerprint
$ActionSendStreamDriverPermittedPeer SHA1:AA:BB
kern.* @@[2001:db8::1]:6514
& @udp.example
include(file="/etc/rsyslog.d/*.conf" mode="optional")
""",
        "/etc/rsyslog.d/a.conf": """
ruleset(name="remote") {
  if $programname == 'libvirtd' then {
    action(type="omrelp" target="relp.example" port="2514" tls="on" tls.authMode="name"
           tls.permittedPeer=["relp.example"] tls.caCert="/etc/ca.pem")
  } else {
    action(type="omfwd" target="udp2.example" protocol="udp")
  }
}
template(name="t" type="list") { constant(value="a}b") property(name="msg") }
*.*
  action(type="omfwd" target="tls.example" port="6514" protocol="tcp" StreamDriver="ossl"
         StreamDriverMode="1" StreamDriverAuthMode="x509/certvalid" StreamDriver.CAFile="/x/ca.pem")
""",
    }
    res = read_rsyslog(*text_reader(files))
    assert not res.issues, res.issues
    got = {f.target: f for f in res.forwards}
    assert set(got) == {
        "plain.example",
        "2001:db8::1",
        "udp.example",
        "relp.example",
        "udp2.example",
        "tls.example",
    }
    assert got["plain.example"].protocol == "tcp" and not got["plain.example"].tls  # mode 0 so far
    assert got["plain.example"].port == 10514 and got["plain.example"].where() == "/etc/rsyslog.conf:5"
    v6 = got["2001:db8::1"]
    assert v6.tls and v6.auth_mode == "x509/fingerprint" and v6.permitted_peers == ["SHA1:AA:BB"]
    assert v6.ca_file == "/etc/ssl/ca.pem" and v6.port == 6514
    assert got["udp.example"].protocol == "udp" and not got["udp.example"].tls
    relp = got["relp.example"]
    assert relp.protocol == "relp" and relp.tls and relp.auth_mode == "x509/name"
    assert relp.permitted_peers == ["relp.example"] and relp.where() == "/etc/rsyslog.d/a.conf:4"
    assert got["tls.example"].tls and got["tls.example"].driver == "ossl"
    assert got["tls.example"].auth_mode == "x509/certvalid" and got["tls.example"].ca_file == "/x/ca.pem"
    assert got["tls.example"].where() == "/etc/rsyslog.d/a.conf:12"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('action(type="omfwd" target="x"\n', 1, "no closing ')'"),
        ('*.* action(type="omfwd" target)\n', 1, "has no '=' and value"),
        ("/* never closed\n*.* @@x\n", 1, "unterminated /* comment"),
        ('\n\nruleset(name="r") {\n *.* @@x\n', 5, "unterminated block"),
        ("\n*.*\n", 2, "has no action"),
    ],
)
def test_rsyslog_syntax_errors_name_the_line(text: str, line: int, words: str) -> None:
    res = read_rsyslog(*text_reader({"/etc/rsyslog.conf": text}))
    assert res.issues and res.issues[0].line == line and words in res.issues[0].message, res.issues


def test_syslog_ng_destinations_used_by_log_paths() -> None:
    files = {
        "/etc/syslog-ng/syslog-ng.conf": """@version: 3.38
@include "scl.conf"
@include "/etc/syslog-ng/conf.d/*.conf"
source s_src { system(); internal(); };
destination d_tls { network("logs.example" port(6514) transport("tls")
    tls(ca-dir("/etc/syslog-ng/ca.d") peer-verify(required-trusted))); };
destination d_plain { syslog("plain.example" transport("tcp") port(601)); };
destination d_unused { udp("unused.example"); };
log { source(s_src); destination(d_tls); destination(d_plain); };
""",
        "/etc/syslog-ng/conf.d/ext.conf": """# an extra destination
destination d_weak { network("weak.example" transport(tls) tls(peer-verify(optional-untrusted))); };
log { source(s_src); destination(d_weak); flags(final); };
""",
    }
    res = read_syslog_ng(*text_reader(files))
    assert not res.issues
    got = {f.target: f for f in res.forwards}
    assert set(got) == {"logs.example", "plain.example", "weak.example"}
    assert got["logs.example"].tls and got["logs.example"].auth_mode == "peer-verify(required-trusted)"
    assert got["logs.example"].ca_file == "/etc/syslog-ng/ca.d" and got["logs.example"].line == 5
    assert not got["plain.example"].tls and got["plain.example"].port == 601
    assert got["weak.example"].auth_mode == "peer-verify(optional-untrusted)"
    bad = read_syslog_ng(
        *text_reader({"/etc/syslog-ng/syslog-ng.conf": 'destination d { network("x" ; };\n'})
    )
    assert bad.issues and bad.issues[0].line == 1


# --------------------------------------------------------------------------------------------------------
# nftables


def _nft_conf_copy(root: str, tmp_path: Path) -> Path:
    base = ROOTS / root / "etc"
    inc = tmp_path / "nftables.d"
    if (base / "nftables.d").is_dir():
        shutil.copytree(base / "nftables.d", inc)
    conf = tmp_path / "nftables.conf"
    conf.write_text((base / "nftables.conf").read_text().replace('"/etc/nftables.d/', f'"{inc}/'))
    return conf


def _netns_json(conf: Path) -> str:
    """Load the ruleset in a new, empty network namespace and list it as JSON (the host is untouched)."""
    nft = need("nft")
    unshare = need("unshare")
    done = subprocess.run(
        [unshare, "--net", "--", "sh", "-c", f'"{nft}" -f "$1" && "{nft}" -j list ruleset', "sh", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0 and not CI and "Operation not permitted" in done.stderr:
        pytest.skip(f"cannot create a network namespace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    return done.stdout


def _shape(chains: list[FirewallChain]) -> dict[str, object]:
    """What decides admission, per chain, in a form both readers must agree on."""
    return {
        f"{c.family} {c.table} {c.name}": (
            c.hook,
            c.policy,
            [
                (
                    r.verdict,
                    sorted(r.protocols),
                    sorted(r.dports),
                    sorted(r.saddrs),
                    r.iifs,
                    sorted(r.ct_states),
                )
                for r in c.rules
            ],
        )
        for c in chains
    }


@pytest.mark.parametrize("root", ["ops-good", "ops-bad"])
def test_nft_fixtures_are_valid_and_both_readers_agree_with_the_kernel(root: str, tmp_path: Path) -> None:
    nft = need("nft")
    conf = _nft_conf_copy(root, tmp_path)
    check = subprocess.run([nft, "-c", "-f", str(conf)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    files = {
        str(p): p.read_text() for p in [conf, *sorted((tmp_path / "nftables.d").glob("*"))] if p.is_file()
    }
    text = read_nft_text(*text_reader(files), str(conf))
    assert not text.issues, text.issues
    live: NftResult = read_nft_json(_netns_json(conf), "nft -j list ruleset")
    assert not live.issues
    assert _shape(text.chains) == _shape(live.chains)
    assert {(s.name, tuple(s.elements)) for s in text.sets} == {
        (s.name, tuple(s.elements)) for s in live.sets
    }


def test_nft_broken_fixture_fails_on_the_line_nft_names(tmp_path: Path) -> None:
    nft = need("nft")
    conf = _nft_conf_copy("ops-broken", tmp_path)
    check = subprocess.run([nft, "-c", "-f", str(conf)], capture_output=True, text=True, timeout=30)
    assert check.returncode != 0 and f"{conf}:4:" in check.stderr
    res = read_nft_text(*text_reader({str(conf): conf.read_text()}), str(conf))
    assert res.issues and res.issues[0].line == 4


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('include "/etc/missing.d/x.nft"\ntable ip t {\n', 2, "no closing"),
        (
            "table inet f {\n chain c {\n  type filter hook input priority 0; policy maybe;\n }\n}\n",
            3,
            "policy",
        ),
        ("table inet f {\n chain c {\n  tcp dport $nope accept\n }\n}\n", 3, "undefined variable"),
        ('table inet f {\n chain c {\n  comment "unterminated\n }\n}\n', 3, "unterminated string"),
    ],
)
def test_nft_syntax_errors_name_the_line(text: str, line: int, words: str) -> None:
    res = read_nft_text(*text_reader({"/etc/nftables.conf": text}), "/etc/nftables.conf")
    assert res.issues and res.issues[0].line == line and words in res.issues[0].message, res.issues


def test_nft_json_that_is_not_json_is_an_issue() -> None:
    res = read_nft_json("{not json", "nft -j list ruleset")
    assert res.issues and res.issues[0].line == 1


# --------------------------------------------------------------------------------------------------------
# iptables


def test_iptables_fixture_round_trips_through_the_kernel(tmp_path: Path) -> None:
    restore, save, unshare = need("iptables-restore"), need("iptables-save"), need("unshare")
    src = ROOTS / "ops-bad" / "etc" / "iptables" / "rules.v4"
    done = subprocess.run(
        [unshare, "--net", "--", "sh", "-c", f'"{restore}" < "$1" && "{save}"', "sh", str(src)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0 and not CI and "Operation not permitted" in done.stderr:
        pytest.skip(f"cannot create a network namespace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    from_file, issues = read_iptables_save(src.read_text(), "/etc/iptables/rules.v4")
    from_kernel, issues2 = read_iptables_save(done.stdout, "iptables-save")
    assert not issues and not issues2
    assert _shape(from_file) == _shape(from_kernel)
    inp = next(c for c in from_kernel if c.name == "INPUT")
    assert inp.policy == "accept" and inp.hook == "input"
    assert [r.dports for r in inp.rules] == [[], ["8080"], ["22", "16509"]]


def test_iptables_malformed_lines_are_issues() -> None:
    chains, issues = read_iptables_save("*filter\n:INPUT DROP [0:0]\n-A NOPE -j ACCEPT\nbogus\nCOMMIT\n", "f")
    assert [i.line for i in issues] == [3, 4] and chains[0].policy == "drop"


# --------------------------------------------------------------------------------------------------------
# ip link, /proc/net, apt


def test_ip_link_json_of_a_real_bridge() -> None:
    ip, unshare = need("ip"), need("unshare")
    script = (
        f'"{ip}" link add br9 type bridge && "{ip}" link add v9 type veth peer name v9p && '
        f'"{ip}" link set v9 master br9 && "{ip}" link add link v9p name v9p.42 type vlan id 42 2>/dev/null; '
        f'"{ip}" -d -j link show'
    )
    done = subprocess.run(
        [unshare, "--net", "--", "sh", "-c", script], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0 and not CI and "Operation not permitted" in done.stderr:
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, done.stderr
    got = {i.name: i for i in parse_ip_link(done.stdout)}
    assert got["br9"].kind == "bridge" and got["br9"].bridge_ports == ["v9"]
    assert got["v9"].master == "br9" and got["lo"].kind == "loopback"
    if "v9p.42" in got:  # the 8021q module may be missing in a container
        assert (
            got["v9p.42"].kind == "vlan"
            and got["v9p.42"].vlan_id == 42
            and got["v9p.42"].vlan_parent == "v9p"
        )


def test_proc_net_shows_a_socket_this_test_listens_on() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s4, socket.socket(socket.AF_INET6) as s6:
        s4.bind(("127.0.0.1", 0))
        s4.listen()
        s6.bind(("::1", 0))
        s6.listen()
        p4, p6 = s4.getsockname()[1], s6.getsockname()[1]
        found, issues = collect_listening(OpsReader(LocalSource(), []))
    assert not issues and found is not None
    mine = {(s.address, s.port): s for s in found}
    assert ("127.0.0.1", p4) in mine and ("::1", p6) in mine
    assert mine[("127.0.0.1", p4)].pid == os.getpid()


def test_address_decoding_is_host_word_order() -> None:
    assert decode_address("0100007F", "little") == "127.0.0.1"
    assert decode_address("00000000000000000000000001000000", "little") == "::1"
    assert decode_address("B80D01200000000000000000010000FF", "little") == "2001:db8::ff00:1"


def test_real_apt_simulation_parses_every_inst_line() -> None:
    need("apt-get")
    result = run_local(COMMANDS["apt-get-simulate-dist-upgrade"])
    assert result.error is None and result.returncode == 0, result.stderr
    listed = [line for line in result.stdout.splitlines() if line.startswith("Inst ")]
    parsed = parse_apt_simulation(result.stdout)
    assert len(parsed) == len(listed)
    assert all(u.candidate and u.suite for u in parsed)
    assert all(u.security == any(is_security_release(r) for r in (u.suite or "").split(", ")) for u in parsed)


def test_apt_simulation_lines() -> None:
    out = (
        "NOTE: This is only a simulation!\n"
        "Inst libssl3 [3.0.11-1~deb12u2] (3.0.15-1~deb12u1 Debian:12.8/stable,"
        " Debian-Security:12/stable-security [amd64])\n"
        "Inst linux-image-6.1.0-28-amd64 (6.1.119-1 Debian-Security:12/stable-security [amd64])\n"
        "Inst tzdata [2024a-0+deb12u1] (2024b-0+deb12u1 Debian:12.8/stable [all])\n"
        "Inst openssh-client [1:8.9p1-3ubuntu0.10] (1:8.9p1-3ubuntu0.11 Ubuntu:22.04/jammy-updates,"
        " Ubuntu:22.04/jammy-security [amd64])\n"
        "Inst local-tool [1.0] (1.1 localhost [amd64])\n"
        "Inst bpo [1.0] (1.1 Debian Backports:stable-backports [amd64])\n"
        "Conf libssl3 (3.0.15-1~deb12u1 Debian:12.8/stable, Debian-Security:12/stable-security [amd64])\n"
        "Remv oldpkg [1.0]\n"
    )
    kept = "The following packages have been kept back:\n  held-a libssl3\n  held-b\n0 upgraded\n"
    got = {u.package: (u.installed, u.candidate, u.security) for u in parse_apt_simulation(out)}
    assert got == {
        "libssl3": ("3.0.11-1~deb12u2", "3.0.15-1~deb12u1", True),
        "linux-image-6.1.0-28-amd64": (None, "6.1.119-1", True),
        "tzdata": ("2024a-0+deb12u1", "2024b-0+deb12u1", False),
        "openssh-client": ("1:8.9p1-3ubuntu0.10", "1:8.9p1-3ubuntu0.11", True),
        "local-tool": ("1.0", "1.1", False),
        "bpo": ("1.0", "1.1", False),
    }
    both = parse_apt_simulation(kept + out)
    assert [u.package for u in both if u.kept_back] == ["held-a", "held-b"]
    assert not any(u.security for u in both if u.kept_back)


def test_dnf_security_list_and_issue_dates() -> None:
    listing = (
        "RHSA-2024:1234 Important/Sec. kernel-5.14.0-362.24.1.el9_3.x86_64\n"
        "RHSA-2024:2000 Moderate/Sec.  openssl-1:3.0.7-27.el9.x86_64\n"
    )
    info = "  Update ID: RHSA-2024:1234\n       Type: security\n     Issued: 2024-03-12 00:00:00\n"
    got = parse_dnf_security(listing, info)
    assert [(u.advisory, u.issued) for u in got] == [
        ("RHSA-2024:1234", "2024-03-12"),
        ("RHSA-2024:2000", None),
    ]
