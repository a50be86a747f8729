"""What hvguard judges a compliant rsyslog forward really delivers over TLS, and what it rejects really
does not: a real rsyslogd TLS receiver on loopback (gtls, client certificate required, an openssl-made
CA) and real rsyslogd senders whose configurations hvguard's collector reads. Every daemon is started
here and stopped by PID."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hvguard.checks.s11_4.logging import forward_problem
from hvguard.collect.linux.ops_files import OpsReader
from hvguard.collect.linux.ops_logging import collect_logging
from hvguard.collect.linux.source import RootSource
from hvguard.facts import LogForward

SERVER_NAME = "logs.hvguard.test"


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} missing: scripts/setup.sh test installs rsyslog, rsyslog-gnutls, openssl")
        pytest.skip(f"{name} not installed")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl(*args: str) -> None:
    subprocess.run([_tool("openssl"), *args], check=True, capture_output=True, timeout=60)


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_pki(d: Path) -> Pki:
    """A throw-away CA and a server and client certificate signed by it (openssl CLI)."""
    d.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=hvguard test CA",
             "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))  # fmt: skip
    for name, cn, san in (
        ("server", SERVER_NAME, f"DNS:{SERVER_NAME},DNS:localhost,IP:127.0.0.1"),
        ("client", "hv1.hvguard.test", "DNS:hv1.hvguard.test"),
    ):
        key, csr = str(d / f"{name}.key"), str(d / f"{name}.csr")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", key, "-out", csr)
        ext = d / f"{name}.ext"
        ext.write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth,clientAuth\n")
        _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"), "-CAkey",
                 str(d / "ca.key"), "-CAcreateserial", "-days", "2", "-extfile", str(ext),
                 "-out", str(d / f"{name}.pem"))  # fmt: skip
    return Pki(d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key")


class Daemon:
    """An rsyslogd in the foreground (-n) with its own config, pid file and work directory."""

    def __init__(self, conf: Path, folder: Path) -> None:
        self.err = folder / "rsyslogd.err"
        self.proc = subprocess.Popen(
            [_tool("rsyslogd"), "-n", "-f", str(conf), "-i", str(folder / "rsyslogd.pid")],
            stdout=subprocess.DEVNULL,
            stderr=self.err.open("wb"),
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # by PID: this Popen's own process
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Receiver:
    port: int
    out: Path
    daemon: Daemon

    def received(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
def receiver(tmp_path: Path, pki: Pki) -> Iterator[Receiver]:
    folder = tmp_path / "receiver"
    (folder / "work").mkdir(parents=True)
    port = _free_port()
    out = folder / "received.log"
    conf = folder / "rsyslog.conf"
    conf.write_text(
        f"""
global(workDirectory="{folder}/work"
       DefaultNetstreamDriverCAFile="{pki.ca}"
       DefaultNetstreamDriverCertFile="{pki.server_cert}"
       DefaultNetstreamDriverKeyFile="{pki.server_key}")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="x509/certvalid"
       gnutlsPriorityString="NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2")
input(type="imtcp" port="{port}" address="127.0.0.1")
*.* action(type="omfile" file="{out}")
"""
    )
    daemon = Daemon(conf, folder)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert daemon.alive(), daemon.err.read_text()
            assert time.monotonic() < deadline, "the TLS receiver did not start listening"
            time.sleep(0.05)
    yield Receiver(port, out, daemon)
    daemon.stop()


def sender_root(tmp_path: Path, name: str, pki: Pki, action: str) -> Path:
    """A host root whose /etc/rsyslog.conf forwards everything with ``action`` (the file hvguard reads
    and the file the sender rsyslogd runs)."""
    root = tmp_path / name
    etc = root / "etc"
    (root / "work").mkdir(parents=True)
    etc.mkdir()
    (etc / "rsyslog.conf").write_text(
        f"""# sender {name}
global(workDirectory="{root}/work"
       DefaultNetstreamDriverCAFile="{pki.ca}"
       DefaultNetstreamDriverCertFile="{pki.client_cert}"
       DefaultNetstreamDriverKeyFile="{pki.client_key}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{root}/log.sock")
{action}
"""
    )
    return root


def judged(root: Path) -> LogForward:
    """The single forward hvguard's collector finds in this root (whose configuration rsyslogd -N1
    accepts)."""
    check = subprocess.run([_tool("rsyslogd"), "-N1", "-f", str(root / "etc" / "rsyslog.conf")],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    facts = collect_logging(OpsReader(RootSource(root), []))
    assert not facts.issues, facts.issues
    (fwd,) = facts.forwards
    return fwd


def deliver(root: Path, receiver: Receiver, *, expect: bool) -> bool:
    """Start the sender, log a unique message into its socket, and report whether the receiver got it."""
    daemon = Daemon(root / "etc" / "rsyslog.conf", root)
    try:
        sock = root / "log.sock"
        deadline = time.monotonic() + 20
        while not sock.exists():
            assert daemon.alive(), daemon.err.read_text()
            assert time.monotonic() < deadline, "the sender did not create its socket"
            time.sleep(0.05)
        marker = f"hvguard-probe-{uuid.uuid4().hex}"
        subprocess.run([_tool("logger"), "-u", str(sock), "-t", "hvguard", marker], check=True, timeout=10)
        deadline = time.monotonic() + (15 if expect else 5)
        while time.monotonic() < deadline:
            if marker in receiver.received():
                return True
            time.sleep(0.1)
        return False
    finally:
        daemon.stop()


def test_a_forward_hvguard_accepts_delivers_over_tls(tmp_path: Path, pki: Pki, receiver: Receiver) -> None:
    root = sender_root(
        tmp_path,
        "tls",
        pki,
        f'*.* action(type="omfwd" target="127.0.0.1" port="{receiver.port}" protocol="tcp"\n'
        '           StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"\n'
        f'           StreamDriverPermittedPeers="{SERVER_NAME}")',
    )
    fwd = judged(root)
    assert fwd.tls and fwd.auth_mode == "x509/name" and fwd.permitted_peers == [SERVER_NAME]
    assert forward_problem(fwd) is None  # hvguard: a secure, authenticated channel
    assert deliver(root, receiver, expect=True), receiver.daemon.err.read_text()


def test_a_plain_tcp_forward_is_rejected_by_hvguard_and_refused_by_the_server(
    tmp_path: Path, pki: Pki, receiver: Receiver
) -> None:
    root = sender_root(
        tmp_path,
        "plain",
        pki,
        f'*.* action(type="omfwd" target="127.0.0.1" port="{receiver.port}" protocol="tcp")',
    )
    fwd = judged(root)
    problem = forward_problem(fwd)
    assert not fwd.tls and problem is not None and "without TLS" in problem
    assert not deliver(root, receiver, expect=False)


def test_a_wrong_permitted_peer_is_not_delivered(tmp_path: Path, pki: Pki, receiver: Receiver) -> None:
    """x509/name really checks the server's name: the same TLS forward naming another peer fails."""
    root = sender_root(
        tmp_path,
        "wrongpeer",
        pki,
        f'*.* action(type="omfwd" target="127.0.0.1" port="{receiver.port}" protocol="tcp"'
        ' StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"'
        ' StreamDriverPermittedPeers="other.hvguard.test")',
    )
    assert forward_problem(judged(root)) is None  # well-formed; the name is the operator's to choose
    assert not deliver(root, receiver, expect=False)


def test_x509_name_without_permitted_peers_checks_the_target_name(
    tmp_path: Path, pki: Pki, receiver: Receiver
) -> None:
    """With x509/name and no StreamDriverPermittedPeers, rsyslog (nsd_gtls) matches the certificate's
    names against the forward's target: "localhost" (a DNS name in the server certificate) is
    delivered, "127.0.0.1" (not a DNS name or CN of it) is refused. A name IS checked."""
    action = (
        '*.* action(type="omfwd" target="{target}" port="{port}" protocol="tcp"'
        ' StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name")'
    )
    good = sender_root(tmp_path, "byname", pki, action.format(target="localhost", port=receiver.port))
    fwd = judged(good)
    assert fwd.tls and fwd.auth_mode == "x509/name" and not fwd.permitted_peers
    assert forward_problem(fwd) is None, forward_problem(fwd)
    assert deliver(good, receiver, expect=True), receiver.daemon.err.read_text()
    bad = sender_root(tmp_path, "byip", pki, action.format(target="127.0.0.1", port=receiver.port))
    assert not deliver(bad, receiver, expect=False)


@pytest.mark.parametrize(
    "name, config, tls",
    [
        (
            "rainerscript-after",
            '*.* action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp" StreamDriverMode="1"\n'
            '           StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="' + SERVER_NAME + '")\n'
            'global(defaultNetstreamDriver="gtls")\n',
            True,
        ),
        (
            "legacy-after",
            "$ActionSendStreamDriverMode 1\n$ActionSendStreamDriverAuthMode x509/name\n"
            "$ActionSendStreamDriverPermittedPeer " + SERVER_NAME + "\n*.* @@127.0.0.1:{port}\n"
            "$DefaultNetstreamDriver gtls\n",
            True,
        ),
        (
            "legacy-no-mode",
            "$DefaultNetstreamDriver gtls\n$ActionSendStreamDriverAuthMode x509/name\n"
            "$ActionSendStreamDriverPermittedPeer " + SERVER_NAME + "\n*.* @@127.0.0.1:{port}\n",
            False,
        ),
    ],
)
def test_the_global_default_netstream_driver_applies_to_every_forward(
    tmp_path: Path, pki: Pki, receiver: Receiver, name: str, config: str, tls: bool
) -> None:
    """A forward without StreamDriver uses the global DefaultNetstreamDriver, wherever in the
    configuration it is set (rsyslog applies global settings to the whole configuration); the driver
    mode still defaults to 0 (plain TCP)."""
    root = sender_root(tmp_path, name, pki, config.format(port=receiver.port))
    fwd = judged(root)
    assert fwd.driver == "gtls" and fwd.tls is tls, fwd
    assert (forward_problem(fwd) is None) is tls, forward_problem(fwd)
    assert deliver(root, receiver, expect=tls) is tls, receiver.daemon.err.read_text()
