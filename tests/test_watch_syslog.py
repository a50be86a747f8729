"""The syslog channel against a real rsyslogd on loopback (started and stopped by PID here): TLS with
a client certificate (RFC 5425), plain TCP with octet counting, UDP, and a local Unix socket. rsyslog's
own RFC 5424 parser must recover every field hvguard wrote."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hvguard.services.watch.config import SyslogChannel
from hvguard.services.watch.notify_base import NotifyError
from hvguard.services.watch.notify_syslog import SyslogNotifier
from hvguard.services.watch.payload import encode, make_payload
from test_watch_support import Pki, make_pki

FIELDS = [
    *("inputname", "syslogfacility", "syslogseverity", "hostname", "app-name", "procid", "msgid"),
    *("structured-data", "msg"),
]
SEP = "|#|"


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Rsyslog:
    proc: subprocess.Popen[bytes]
    out: Path
    tls_port: int
    tcp_port: int
    udp_port: int
    sock: Path
    pki: Pki
    client_cert: Path
    client_key: Path

    def records(self) -> list[dict[str, str]]:
        if not self.out.exists():
            return []
        lines = self.out.read_text(encoding="utf-8").splitlines()
        return [dict(zip(FIELDS, line.split(SEP), strict=True)) for line in lines if line]

    def wait(self, n: int, timeout: float = 10) -> list[dict[str, str]]:
        deadline = time.monotonic() + timeout
        while len(got := self.records()) < n:
            assert time.monotonic() < deadline, f"rsyslog wrote {len(got)} record(s), expected {n}"
            time.sleep(0.05)
        return got


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    binary = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    if not Path(binary).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("rsyslogd missing: scripts/setup.sh test installs rsyslog + rsyslog-gnutls")
        pytest.skip("rsyslogd not installed (scripts/setup.sh test installs it)")
    pki = make_pki(tmp_path)
    client = pki.ca.issue_cert("hvguard-watch.test")
    client_cert, client_key = tmp_path / "client.pem", tmp_path / "client.key"
    client.cert_chain_pems[0].write_to_path(str(client_cert))
    client.private_key_pem.write_to_path(str(client_key))
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "out.log"
    sock = tmp_path / "log.sock"
    tls_port, tcp_port, udp_port = _free_port(), _free_port(), _free_port(socket.SOCK_DGRAM)
    template = SEP.join(f"%{f}%" for f in FIELDS)
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(
        f"""
global(workDirectory="{work}" maxMessageSize="16k")
module(load="imtcp")
module(load="imudp")
module(load="imuxsock" SysSock.Use="off")
input(type="imtcp" port="{tls_port}" address="127.0.0.1" name="tls"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid"
      streamDriver.CAFile="{pki.ca_file}" streamDriver.CertFile="{pki.server_cert_file}"
      streamDriver.KeyFile="{pki.server_key_file}"
      gnutlsPriorityString="NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2")
input(type="imtcp" port="{tcp_port}" address="127.0.0.1" name="tcp")
input(type="imudp" port="{udp_port}" address="127.0.0.1" name="udp")
input(type="imuxsock" socket="{sock}" useSpecialParser="off" parseHostname="on")
template(name="fields" type="string" string="{template}\\n")
*.* action(type="omfile" file="{out}" template="fields")
"""
    )
    proc = subprocess.Popen(
        [binary, "-n", "-f", str(conf), "-i", str(tmp_path / "rsyslog.pid")],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "rsyslogd.err", "wb"),  # noqa: SIM115 (closed with the process)
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", tcp_port), timeout=0.2).close()
            socket.create_connection(("127.0.0.1", tls_port), timeout=0.2).close()
            if sock.exists():
                break
        except OSError:
            pass
        assert proc.poll() is None, (tmp_path / "rsyslogd.err").read_text()
        assert time.monotonic() < deadline, "rsyslogd did not start listening"
        time.sleep(0.05)
    yield Rsyslog(proc, out, tls_port, tcp_port, udp_port, sock, pki, client_cert, client_key)
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def channel(transport: str, address: str, port: int, **kw: Any) -> SyslogChannel:
    base: dict[str, Any] = {
        "ca_file": None, "cert_file": None, "key_file": None, "facility": 19, "app_name": "hvguard",
        "sd_id": "hvguard@32473", "timeout_s": 5,
    }  # fmt: skip
    return SyslogChannel(transport=transport, address=address, port=port, **{**base, **kw})  # type: ignore[arg-type]


def payload(vm: str, status: str = "pass") -> dict[str, Any]:
    return make_payload(
        event="config-changed", scope="config", trigger="config-file", missed=False, uri="qemu:///system",
        host="hv1", vm=vm, uuid="u-1", time="t",
        changes=[{"path": "cputune.shares", "old": 1024, "new": 2048, "kind": "changed"}], xml_diff="",
        findings=[
            {"measure": "11.3.3", "status": status, "subject": f"vm:{vm}", "message": "m", "remediation": ""}
        ],
    )  # fmt: skip


def send(ch: SyslogChannel, p: dict[str, Any]) -> None:
    SyslogNotifier(ch).send(p, encode(p))


def test_every_transport_is_parsed_as_rfc5424_by_rsyslog(rsyslog: Rsyslog) -> None:
    tls = channel(
        "tls", "127.0.0.1", rsyslog.tls_port, ca_file=rsyslog.pki.ca_file,
        cert_file=rsyslog.client_cert, key_file=rsyslog.client_key,
    )  # fmt: skip
    send(tls, payload('tls-"vm]', status="fail"))
    send(channel("tcp", "127.0.0.1", rsyslog.tcp_port), payload("tcp-vm"))
    send(channel("udp", "127.0.0.1", rsyslog.udp_port), payload("udp-vm"))
    send(channel("local", str(rsyslog.sock), 0), payload("local-vm"))
    records = {r["inputname"]: r for r in rsyslog.wait(4)}
    assert set(records) == {"tls", "tcp", "udp", "imuxsock"}
    for r in records.values():
        assert (r["syslogfacility"], r["app-name"], r["procid"], r["msgid"]) == (
            "19", "hvguard", str(os.getpid()), "vm-change",
        )  # fmt: skip
        assert r["structured-data"].startswith('[hvguard@32473 event="config-changed" scope="config" vm=')
        assert r["hostname"] and r["hostname"] != "-"
    tls_rec = records["tls"]
    assert tls_rec["syslogseverity"] == "4"  # a failing finding: warning
    assert 'vm="tls-\\"vm\\]"' in tls_rec["structured-data"]  # escaped per RFC 5424 §6.3.3
    assert tls_rec["msg"].lstrip("\ufeff").startswith('vm tls-"vm] (u-1) config-changed on qemu:///system: ')
    assert "cputune.shares: 1024 → 2048 [findings: 11.3.3 fail]" in tls_rec["msg"]
    assert records["tcp"]["syslogseverity"] == "5"  # notice


def test_tls_refuses_an_untrusted_server(rsyslog: Rsyslog, tmp_path: Path) -> None:
    other = make_pki(tmp_path, "other")
    ch = channel(
        "tls", "127.0.0.1", rsyslog.tls_port, ca_file=other.ca_file,
        cert_file=rsyslog.client_cert, key_file=rsyslog.client_key,
    )  # fmt: skip
    with pytest.raises(NotifyError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        send(ch, payload("x"))


def test_unreachable_targets_fail_loudly(tmp_path: Path) -> None:
    with pytest.raises(NotifyError, match="Connection refused"):
        send(channel("tcp", "127.0.0.1", _free_port()), payload("x"))
    with pytest.raises(NotifyError, match="No such file"):
        send(channel("local", str(tmp_path / "absent.sock"), 0), payload("x"))


def test_tls_without_the_required_client_certificate_is_not_counted_as_sent(rsyslog: Rsyslog) -> None:
    # TLS 1.3: the client's handshake completes before rsyslog refuses the missing certificate.
    ch = channel("tls", "127.0.0.1", rsyslog.tls_port, ca_file=rsyslog.pki.ca_file)
    with pytest.raises(NotifyError, match="closed the TLS session after the handshake"):
        send(ch, payload("no-client-cert"))
    time.sleep(0.5)
    assert rsyslog.records() == []
