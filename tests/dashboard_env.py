"""Helpers for the dashboard tests: a history store populated through the real ``HistoryStore.save``,
certificates for mutual TLS (trustme), and a running ``hvguard serve`` stopped by its PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import msgspec

from factories import good_vm, target
from hvguard.engine import evaluate
from hvguard.facts import TargetFacts, VcpuFacts
from hvguard.history.store import HistoryStore
from hvguard.profile import default_profile
from hvguard.workflow.exceptions import load_exceptions

REPO = Path(__file__).resolve().parents[1]

#: Names a hostile or careless host could report: markup, and non-ASCII text.
HOSTILE_VM = "<script>alert(1)</script>"
UNICODE_VM = "データベース-ü/ß"
GOOD = "qemu+ssh://hv1.example/system"
BAD = "qemu+ssh://hv2.example/system"
DOWN = "qemu+tls://hv3.example/system"
HOSTILE_TARGET = "ssh://<b>evil</b>.example/?x=<script>"
TARGETS = (GOOD, BAD, DOWN, HOSTILE_TARGET)


#: Inventory groups of the targets (a target may be in several).
GROUPS = {GOOD: ("prod", "site-a"), BAD: ("site-a",), DOWN: ("site-b",), HOSTILE_TARGET: ("<i>lab</i>",)}


def _grouped(t: TargetFacts) -> TargetFacts:
    return msgspec.structs.replace(t, groups=GROUPS[t.id])


def register(tmp: Path, today: date) -> Path:
    """An exceptions register: EX-SOON expires in 10 days, EX-LATER in 90 (neither matches a finding)."""
    path = tmp / "exceptions.yaml"
    entries = [
        ("EX-SOON", "11.4.13", today + timedelta(days=10)),
        ("EX-LATER", "11.4.12", today + timedelta(days=90)),
    ]
    body = "exceptions:\n" + "".join(
        f"""  - id: {i}
    measure: "{m}"
    scope: {{target: "hv-decommissioned-*", subject: host}}
    justification: Single uplink until the rack move.
    risk_owner: Network lead
    approved_by: CISO
    approved_on: "{(today - timedelta(days=30)).isoformat()}"
    expires_on: "{until.isoformat()}"
    risk_rating: low
"""
        for i, m, until in entries
    )
    path.write_text(body, encoding="utf-8")
    return path


def _estate(oversized: bool, exceptions: Path) -> Any:
    """Four targets: one compliant, one with an oversized VM (11.3.3 fails when ``oversized``), one
    unreachable, and one whose id and VM names are hostile; evaluated with the exceptions register."""
    today = date.today()
    db_vcpu = VcpuFacts(maximum=16) if oversized else VcpuFacts(maximum=2)
    good = target([good_vm("web1")], tid=GOOD)
    bad = target([good_vm("web2"), good_vm("db1", vcpu=db_vcpu)], tid=BAD)
    down = msgspec.structs.replace(
        target(tid=DOWN), host=None, hypervisor=None, unreachable="connection refused"
    )
    hostile = target([good_vm(HOSTILE_VM), good_vm(UNICODE_VM)], tid=HOSTILE_TARGET)
    targets = [_grouped(t) for t in (good, bad, down, hostile)]
    register_ = load_exceptions(exceptions, today=today)
    return evaluate(targets, default_profile(), exceptions=register_, as_of=today)


@dataclass
class Populated:
    """The two stored scans and the evaluation of the second (what the dashboard must show)."""

    first: int
    second: int
    latest: Any


def populate(db: Path | str, tmp: Path | None = None) -> Populated:
    """Two scans of the estate in ``db`` (a SQLite file or a database URL): the first before db1 was
    oversized, the second after. The exceptions register is written to ``tmp`` (default: beside ``db``)."""
    exceptions = register(tmp or Path(db).parent, date.today())
    latest = _estate(True, exceptions)
    with HistoryStore.open(str(db), create=True) as store:
        first = store.save(_estate(False, exceptions), command="scan", inputs=list(TARGETS))
        second = store.save(latest, command="scan", inputs=list(TARGETS))
    return Populated(first, second, latest)


@dataclass
class Certs:
    """Server certificate, the client CA, a client certificate of it and one of a stranger CA."""

    server_ca: Path
    server_cert: Path
    server_key: Path
    client_ca: Path
    client: tuple[str, str]
    stranger: tuple[str, str]


def make_certs(tmp: Path) -> Certs:
    """Fresh certificates in ``tmp`` (trustme: a test CA per role)."""
    import trustme

    server_ca, client_ca, other_ca = trustme.CA(), trustme.CA(), trustme.CA()
    server = server_ca.issue_cert("127.0.0.1", "localhost")
    out = Certs(
        tmp / "server-ca.pem", tmp / "server.crt", tmp / "server.key", tmp / "client-ca.pem",
        (str(tmp / "client.crt"), str(tmp / "client.key")),
        (str(tmp / "stranger.crt"), str(tmp / "stranger.key")),
    )  # fmt: skip
    server_ca.cert_pem.write_to_path(str(out.server_ca))
    client_ca.cert_pem.write_to_path(str(out.client_ca))
    server.cert_chain_pems[0].write_to_path(str(out.server_cert))
    server.private_key_pem.write_to_path(str(out.server_key))
    for ca, (crt, key) in ((client_ca, out.client), (other_ca, out.stranger)):
        leaf = ca.issue_cert("auditor@example.org")
        leaf.cert_chain_pems[0].write_to_path(crt)
        leaf.private_key_pem.write_to_path(key)
    return out


@dataclass
class Server:
    """A running ``hvguard serve``."""

    url: str
    certs: Certs
    proc: subprocess.Popen[str]

    def get(self, path: str, timeout: float = 60, **kw: Any) -> Any:
        """GET ``path`` with the client certificate."""
        import requests

        return requests.get(
            self.url + path, cert=self.certs.client, verify=str(self.certs.server_ca), timeout=timeout, **kw
        )


def serve_args(db: Path | str, certs: Certs) -> list[str]:
    """The ``hvguard serve`` command line on 127.0.0.1, port 0."""
    return [
        "serve", "--db", str(db), "--listen", "127.0.0.1:0", "--tls-cert", str(certs.server_cert),
        "--tls-key", str(certs.server_key), "--client-ca", str(certs.client_ca),
    ]  # fmt: skip


def start(db: Path | str, certs: Certs) -> Iterator[Server]:
    """Run ``hvguard serve`` until the generator is closed; stopped with SIGTERM by PID."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hvguard", *serve_args(db, certs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("https://"):
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise AssertionError(f"serve did not print its URL: {line!r} {err}")
    try:
        yield Server(line, certs, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
