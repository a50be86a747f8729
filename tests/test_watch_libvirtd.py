"""``hvguard watch`` against the real libvirtd (qemu:///system): changes made with virsh reach a local
HTTPS webhook receiver with the right diff and a valid signature; changes made while the watcher or
libvirtd was down are reported after reconnecting; SIGTERM stops it cleanly; an untrusted receiver
certificate is logged loudly and the change is kept and delivered later.

Run with ``./scripts/test.sh tests/test_watch_libvirtd.py``.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from libvirt_env import TestDomains, domain_xml, requires_libvirtd
from test_watch_support import HttpsReceiver, Pki, Post, WatchProcess, make_pki, verify_signature

pytestmark = [requires_libvirtd, pytest.mark.libvirtd]

URI = "qemu:///system"
SECRET = b"test-hmac-key-\x00\xff-not-utf8"
DELIVERY_TIMEOUT = 20.0


def virsh(*args: str) -> str:
    proc = subprocess.run(["virsh", "-q", "-c", URI, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"virsh {' '.join(args)}: {proc.stderr.strip()}"
    return proc.stdout


@pytest.fixture
def td() -> Iterator[TestDomains]:
    with TestDomains() as t:
        yield t


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


@pytest.fixture
def receiver(pki: Pki) -> Iterator[HttpsReceiver]:
    r = HttpsReceiver(pki.server_context()).start()
    yield r
    r.stop()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    f = tmp_path / "webhook.key"
    f.write_bytes(SECRET)
    f.chmod(0o600)
    return f


class Watcher:
    """Starts watcher processes for one test and kills any left running."""

    def __init__(self, tmp: Path, receiver_url: str, ca: Path, secret_file: Path) -> None:
        self.tmp = tmp
        self.state = tmp / "state" / "watch.sqlite"
        self.url = receiver_url
        self.ca = ca
        self.secret_file = secret_file
        self.procs: list[WatchProcess] = []

    def start(self, *extra: str) -> WatchProcess:
        args = [
            URI,
            "--webhook", self.url,
            "--webhook-ca", str(self.ca),
            "--webhook-secret-file", str(self.secret_file),
            "--state", str(self.state),
            "--reconnect-max", "2",
            "--retry-max", "1",
            *extra,
        ]  # fmt: skip
        proc = WatchProcess(args, self.tmp / f"watch-{len(self.procs)}.log")
        self.procs.append(proc)
        proc.wait_log(r"ready: watching", timeout=60)
        return proc

    def close(self) -> None:
        for p in self.procs:
            p.kill()


@pytest.fixture
def watcher(tmp_path: Path, receiver: HttpsReceiver, pki: Pki, secret_file: Path) -> Iterator[Watcher]:
    w = Watcher(tmp_path, receiver.url, pki.ca_file, secret_file)
    yield w
    w.close()


def for_vm(name: str, event: str) -> Any:
    def pred(post: Post) -> bool:
        data = post.json()
        return bool(data["vm"] == name and data["event"] == event)

    return pred


def state_rows(state: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def test_virsh_change_reaches_webhook_with_diff_signature_and_findings(
    td: TestDomains, watcher: Watcher, receiver: HttpsReceiver
) -> None:
    name = td.name("w1")
    dom = td.define(domain_xml(name, cputune={"shares": 1024}))
    uuid = dom.UUIDString()
    proc = watcher.start()
    proc.wait_log(r"baseline of \d+ VM", timeout=5)

    virsh("schedinfo", name, "--config", "cpu_shares=2048")
    post = receiver.wait_for(for_vm(name, "config-changed"), DELIVERY_TIMEOUT)

    assert post.path == "/hook"
    assert post.headers["content-type"] == "application/json"
    assert verify_signature(SECRET, post)
    tampered = Post(post.path, post.headers, post.body.replace(b"2048", b"2049"), post.arrived)
    assert not verify_signature(SECRET, tampered)
    data = post.json()
    assert post.headers["x-hvguard-event-id"] == data["id"]
    assert data["schema"] == "hvguard.watch/1"
    assert (data["uri"], data["uuid"], data["scope"], data["missed"]) == (URI, uuid, "config", False)
    assert data["changes"] == [{"path": "cputune.shares", "old": 1024, "new": 2048, "kind": "changed"}]
    assert "-    <shares>1024</shares>" in data["xml_diff"]
    assert "+    <shares>2048</shares>" in data["xml_diff"]
    measures = {f["measure"] for f in data["findings"] if f["subject"] == f"vm:{name}"}
    assert {"11.3.3", "11.3.4", "11.3.10"} <= measures, measures
    shares = [f for f in data["findings"] if f["measure"] == "11.3.4" and f["subject"] == f"vm:{name}"]
    assert shares and all(f["status"] in ("pass", "warn", "fail") for f in shares)
    assert "cputune.shares: 1024 → 2048" in proc.log()  # logged as well as notified

    # Live-only change of a running VM: a different scope, its own diff.
    td.start(dom)
    proc.wait_log(rf"vm {name} started", timeout=30)
    virsh("schedinfo", name, "--live", "cpu_shares=4096")
    live = receiver.wait_for(for_vm(name, "live-changed"), DELIVERY_TIMEOUT)
    assert {"path": "cputune.shares", "old": 2048, "new": 4096, "kind": "changed"} in live.json()["changes"]
    assert live.json()["scope"] == "live"

    rc, took = proc.terminate()
    assert rc == 0, proc.log()
    assert took < 2.0, f"SIGTERM took {took:.2f} s"
    assert "SIGTERM received: stopping" in proc.log()
    assert "Traceback" not in proc.log()
    # The state file is complete on its own (no WAL left behind) and holds the last definition.
    assert not Path(f"{watcher.state}-wal").exists() or Path(f"{watcher.state}-wal").stat().st_size == 0
    assert state_rows(watcher.state, "PRAGMA integrity_check") == [("ok",)]
    (config_xml,) = state_rows(watcher.state, "SELECT config_xml FROM domains WHERE uuid = ?", uuid)[0]
    assert "<shares>2048</shares>" in config_xml
    assert state_rows(watcher.state, "SELECT COUNT(*) FROM outbox") == [(0,)]


def test_changes_while_watcher_was_down_are_reported_on_restart(
    td: TestDomains, watcher: Watcher, receiver: HttpsReceiver
) -> None:
    keep = td.define(domain_xml(td.name("keep"), vcpus=1))
    gone = td.define(domain_xml(td.name("gone")))
    gone_uuid = gone.UUIDString()
    proc = watcher.start()
    rc, _ = proc.terminate()
    assert rc == 0

    # While nobody watches: a changed maximum vCPU count, a VM removed, a VM added.
    virsh("setvcpus", td.name("keep"), "2", "--config", "--maximum")
    td.remove(td.name("gone"))
    td.define(domain_xml(td.name("new"), memory_kib=262144))

    proc = watcher.start()
    changed = receiver.wait_for(for_vm(td.name("keep"), "config-changed"), DELIVERY_TIMEOUT).json()
    assert changed["missed"] is True and changed["trigger"] == "resync:start"
    assert {"path": "vcpu.maximum", "old": 1, "new": 2, "kind": "changed"} in changed["changes"]
    assert changed["uuid"] == keep.UUIDString()
    removed = receiver.wait_for(for_vm(td.name("gone"), "undefined"), DELIVERY_TIMEOUT).json()
    assert removed["uuid"] == gone_uuid and removed["missed"] is True
    added = receiver.wait_for(for_vm(td.name("new"), "defined"), DELIVERY_TIMEOUT).json()
    assert {"path": "memory_kib", "old": None, "new": 262144, "kind": "added"} in added["changes"]
    assert proc.terminate()[0] == 0


def _libvirtd_pid() -> int:
    pid = int(Path("/run/libvirtd.pid").read_text().strip())
    assert Path(f"/proc/{pid}/comm").read_text().strip() == "libvirtd"
    return pid


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        status = (
            Path(f"/proc/{pid}/status").read_text(errors="replace") if Path(f"/proc/{pid}").exists() else ""
        )
        if "State:\tZ" in status:
            return
        assert time.monotonic() < deadline, f"libvirtd {pid} still runs"
        time.sleep(0.05)


def _start_libvirtd() -> None:
    artifacts = Path(os.environ.get("HVGUARD_ARTIFACTS", "/tmp"))
    env = {**os.environ, "LIBVIRT_LOG_OUTPUTS": f"3:file:{artifacts}/libvirtd-restarted.log"}
    subprocess.run(["libvirtd", "-d"], env=env, check=True, timeout=60)


def _wait_answers(timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        proc = subprocess.run(["virsh", "-q", "-c", URI, "version"], capture_output=True, timeout=60)
        if proc.returncode == 0:
            return
        assert time.monotonic() < deadline, "qemu:///system does not answer after the restart"
        time.sleep(0.1)


def test_libvirtd_killed_and_restarted_while_a_domain_changes(
    td: TestDomains, watcher: Watcher, receiver: HttpsReceiver
) -> None:
    name = td.name("rs")
    td.define(domain_xml(name, cputune={"shares": 1000}))
    proc = watcher.start()
    old_pid = _libvirtd_pid()
    try:
        os.kill(old_pid, signal.SIGKILL)  # a crash: no goodbye to the clients
        _wait_gone(old_pid, 30)
        proc.wait_log(r"connection lost", timeout=30)
    finally:
        _start_libvirtd()
    # Change it as soon as the daemon answers: the watcher is (most likely) still in its backoff.
    deadline = time.monotonic() + 60
    while True:
        result = subprocess.run(
            ["virsh", "-q", "-c", URI, "schedinfo", name, "--config", "cpu_shares=3000"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode == 0:
            break
        assert time.monotonic() < deadline, result.stderr
        time.sleep(0.05)
    td.reconnect()
    assert _libvirtd_pid() != old_pid

    post = receiver.wait_for(for_vm(name, "config-changed"), 60)
    data = post.json()
    assert data["changes"] == [{"path": "cputune.shares", "old": 1000, "new": 3000, "kind": "changed"}]
    assert verify_signature(SECRET, post)
    proc.wait_log(r"reconnected and resynchronised", timeout=30)
    # Reported once, by whichever path saw it first (the resync or the event after it), never twice.
    time.sleep(1.0)
    repeats = [p for p in receiver.posts if p.json()["vm"] == name and p.json()["event"] == "config-changed"]
    assert len(repeats) == 1, [p.json()["trigger"] for p in repeats]
    assert proc.terminate()[0] == 0
    _wait_answers(60)  # later tests need the daemon


def test_untrusted_receiver_certificate_is_loud_and_the_change_is_kept_then_delivered(
    td: TestDomains, tmp_path: Path, pki: Pki, secret_file: Path
) -> None:
    # The receiver presents a certificate from a CA the watcher does not trust.
    rogue = make_pki(tmp_path, "rogue")
    bad = HttpsReceiver(rogue.server_context()).start()
    port = bad.port
    w = Watcher(tmp_path, bad.url, pki.ca_file, secret_file)
    good: HttpsReceiver | None = None
    try:
        name = td.name("tls")
        td.define(domain_xml(name, cputune={"shares": 700}))
        proc = w.start()
        virsh("schedinfo", name, "--config", "cpu_shares=701")
        line = proc.wait_log(
            r"NOTIFICATION NOT DELIVERED to webhook:\S+: .*", timeout=DELIVERY_TIMEOUT
        ).group(0)
        assert "CERTIFICATE_VERIFY_FAILED" in line or "certificate verify failed" in line, line
        assert "kept in the state file" in line
        assert bad.posts == []  # the TLS handshake failed: nothing was sent
        rows = state_rows(w.state, "SELECT attempts, last_error FROM outbox")
        assert len(rows) == 1 and rows[0][0] >= 1 and "certificate" in rows[0][1].lower()

        # The real receiver comes back on the same address: the kept change is delivered.
        bad.stop()
        good = HttpsReceiver(pki.server_context(), port=port).start()
        post = good.wait_for(for_vm(name, "config-changed"), 30)
        assert post.json()["changes"] == [
            {"path": "cputune.shares", "old": 700, "new": 701, "kind": "changed"}
        ]
        assert verify_signature(SECRET, post)
        proc.wait_log(r"delivered \S+ to webhook:", timeout=10)
        assert proc.terminate()[0] == 0
        assert state_rows(w.state, "SELECT COUNT(*) FROM outbox") == [(0,)]
    finally:
        w.close()
        bad.stop()
        if good is not None:
            good.stop()
