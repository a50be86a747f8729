"""The guard on the real libvirtd: ``hvguard guard install`` into the real /etc/libvirt/hooks, then real
``virsh start`` / ``save`` / ``restore`` of ``hvg-test-*`` domains.

The hook directory is machine-wide and the install sends libvirtd SIGHUP, so these tests run only when
scripts/test.sh started libvirtd itself (it exports HVGUARD_LIBVIRTD_OURS=1). The hook judges only this
run's ``hvg-test-<pid>-guard-*`` domains; the module's fixture uninstalls at the end, whatever happened,
and the last test proves the hook directory is back byte for byte.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guard_env import process_gone, wait_until
from libvirt_env import TestDomains, disk_xml, domain_xml, requires_libvirtd, run_prefix, user_interface_xml

_NOT_OURS = (
    "the guard tests change /etc/libvirt/hooks and SIGHUP libvirtd: only when scripts/test.sh started it"
)
pytestmark = [
    requires_libvirtd,
    pytest.mark.libvirtd,
    pytest.mark.skipif(not os.environ.get("HVGUARD_LIBVIRTD_OURS"), reason=_NOT_OURS),
]

URI = "qemu:///system"
HOOKS = Path("/etc/libvirt/hooks")
HOOK = HOOKS / "qemu.d" / "50-hvguard"
PREFIX = f"{run_prefix()}guard-"
TUNED = {"shares": 512, "period": 100000, "quota": 50000}
IOTUNE = {"total_bytes_sec": 10_485_760, "total_iops_sec": 500}
BANDWIDTH = {"inbound": {"average": 1000}, "outbound": {"average": 1000}}


def tree_hash(root: Path) -> str:
    """Names, types, bytes, modes and owners of everything under ``root``."""
    h = hashlib.sha256()
    for p in [root, *sorted(root.rglob("*"))] if root.exists() else []:
        st = p.lstat()
        h.update(f"{p.relative_to(root.parent)}|{st.st_mode:o}|{st.st_uid}|{st.st_gid}|".encode())
        if p.is_file():
            h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def hvguard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hvguard", *args], capture_output=True, text=True, timeout=300, check=False
    )


def virsh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["virsh", "-c", URI, *args], capture_output=True, text=True, timeout=120, check=False
    )


class Guard:
    """The installed guard of this module: its state directory, syslog socket and test domains."""

    def __init__(self, state: Path, syslog: socket.socket, td: TestDomains) -> None:
        self.state = state
        self.syslog = syslog
        self.td = td

    def update(self, *args: str) -> None:
        p = hvguard("guard", "install", "--update", "--state-dir", str(self.state), *args)
        assert p.returncode == 0, p.stderr

    def decisions(self, domain: str) -> list[dict[str, Any]]:
        lines = (self.state / "decisions.jsonl").read_text().splitlines()
        return [r for r in map(json.loads, lines) if r.get("domain") == domain]

    def last(self, domain: str) -> dict[str, Any]:
        return self.decisions(domain)[-1]

    def define(self, suffix: str, **kw: Any) -> str:
        name = PREFIX + suffix
        kw.setdefault("cputune", TUNED)
        self.td.define(domain_xml(name, **kw))
        return name

    def syslog_lines(self) -> list[str]:
        out = []
        self.syslog.settimeout(0.2)
        try:
            while True:
                out.append(self.syslog.recv(65536).decode())
        except TimeoutError:
            return out


@pytest.fixture(scope="module")
def before() -> str:
    return tree_hash(HOOKS)


@pytest.fixture(scope="module")
def guard(before: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guard]:
    base = tmp_path_factory.mktemp("hvg-test-guard-")
    state = base / "state"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(base / "log.sock"))
    try:
        p = hvguard(
            "guard", "install", "--mode", "enforce", "--domains", PREFIX + "*", "--state-dir", str(state),
            "--syslog-socket", str(base / "log.sock"), "--reload-libvirtd",
        )  # fmt: skip
        assert p.returncode == 0, p.stderr
        assert "warning" not in p.stderr, p.stderr  # libvirt will call the hook (SIGHUP sent)
        time.sleep(1)  # libvirtd looks for hooks again in its reload thread
        with TestDomains(prefix=PREFIX) as td:
            yield Guard(state, sock, td)
    finally:
        sock.close()
        if (state / "state.json").exists():
            hvguard("guard", "uninstall", "--purge", "--force", "--state-dir", str(state))
        if HOOK.exists() and str(state) in HOOK.read_text():
            HOOK.unlink()  # uninstall itself failed: never leave the test hook behind


def host_cores() -> int:
    import libvirt

    conn = libvirt.open(URI)
    try:
        info = conn.getInfo()  # model, memory, cpus, mhz, nodes, sockets, cores, threads
    finally:
        conn.close()
    return int(info[4] * info[5] * info[6])


def test_a_compliant_vm_starts_and_the_decision_is_logged(guard: Guard) -> None:
    name = guard.define("ok")
    p = virsh("start", name)
    assert p.returncode == 0, p.stderr
    rec = guard.last(name)
    assert rec["schema"] == "hvguard.guard-decision/1"
    assert (rec["operation"], rec["mode"], rec["outcome"], rec["reason"]) == (
        "prepare", "enforce", "allowed", "compliant"
    )  # fmt: skip
    assert any('outcome="allowed"' in line and name in line for line in guard.syslog_lines())
    virsh("destroy", name)


@pytest.mark.parametrize(
    ("suffix", "needles"),
    [
        ("tcg", ("11.1.1", "domain type 'qemu'")),
        ("vcpus", ("11.3.3", "physical cores")),
        ("noquota", ("11.3.10", "no CPU quota")),
        ("noio", ("11.3.10", "no I/O limit")),
        ("nobw", ("11.3.10", "bandwidth limit")),
    ],
)
def test_a_violating_vm_is_refused_with_the_measure_in_virsh_error(
    guard: Guard, suffix: str, needles: tuple[str, ...]
) -> None:
    kw: dict[str, Any] = {}
    if suffix == "tcg":
        kw["dom_type"] = "qemu"
    elif suffix == "vcpus":
        kw["vcpus"] = host_cores()
    elif suffix == "noquota":
        kw["cputune"] = {"shares": 512}
    elif suffix == "noio":
        kw["disks"] = [disk_xml(guard.td.make_qcow2(f"{suffix}.qcow2"))]
    else:
        kw["interfaces"] = [user_interface_xml()]
    name = guard.define(suffix, **kw)
    p = virsh("start", name)
    assert p.returncode != 0
    assert f"hvguard guard: refused {name}:" in p.stderr
    for needle in needles:
        assert needle in p.stderr
    assert virsh("domstate", name).stdout.strip() == "shut off"
    rec = guard.last(name)
    assert (rec["outcome"], rec["reason"]) == ("refused", "violations")
    assert needles[0] in {v["measure"] for v in rec["violations"]}
    # the limit that is present is not what is refused: a bandwidth/iotune-limited twin starts
    if suffix in ("noio", "nobw"):
        kw2 = (
            {"disks": [disk_xml(guard.td.make_qcow2("io.qcow2"), iotune=IOTUNE)]}
            if suffix == "noio"
            else {"interfaces": [user_interface_xml(bandwidth=BANDWIDTH)]}
        )
        twin = guard.define(suffix + "-limited", **kw2)
        virsh("start", twin)
        assert "11.3.10" not in {v["measure"] for v in guard.last(twin)["violations"]}
        virsh("destroy", twin)


def test_an_active_exception_lets_the_vm_start_and_is_named(guard: Guard, tmp_path: Path) -> None:
    name = guard.define("excepted", cputune={"shares": 512})
    assert virsh("start", name).returncode != 0
    today = dt.date.today()
    register = tmp_path / "exceptions.yaml"
    register.write_text(
        "exceptions:\n"
        f"  - {{id: EX-GUARD-1, measure: '11.3.10', scope: {{subject: 'vm:{name}'}}, justification: j,\n"
        f"     risk_owner: o, approved_by: a, approved_on: '{today - dt.timedelta(days=1)}',\n"
        f"     expires_on: '{today + dt.timedelta(days=30)}', risk_rating: low}}\n"
    )
    guard.update("--exceptions", str(register))
    p = virsh("start", name)
    assert p.returncode == 0, p.stderr
    rec = guard.last(name)
    assert (rec["outcome"], rec["reason"]) == ("allowed", "covered-by-exception")
    assert [(c["measure"], c["exception"]) for c in rec["covered"]] == [("11.3.10", "EX-GUARD-1")]
    virsh("destroy", name)


def test_audit_mode_starts_it_and_logs_the_would_be_refusal_then_restore_is_judged(guard: Guard) -> None:
    guard.update("--mode", "audit")
    name = guard.define("audit-tcg", dom_type="qemu")
    p = virsh("start", name)
    assert p.returncode == 0, p.stderr
    rec = guard.last(name)
    assert (rec["mode"], rec["outcome"], rec["reason"]) == ("audit", "would-refuse", "violations")
    assert "11.1.1" in {v["measure"] for v in rec["violations"]}

    saved = guard.td.path("audit-tcg.save")
    p = virsh("save", name, str(saved))
    assert p.returncode == 0, p.stderr
    guard.update("--mode", "enforce")
    p = virsh("restore", str(saved))
    assert p.returncode != 0
    assert f"hvguard guard: refused {name}:" in p.stderr and "11.1.1" in p.stderr
    rec = guard.last(name)
    assert (rec["operation"], rec["outcome"]) == ("restore", "refused")


def test_save_and_restore_of_a_compliant_vm_is_judged_and_allowed(guard: Guard) -> None:
    name = guard.define("saved-ok")
    assert virsh("start", name).returncode == 0
    saved = guard.td.path("saved-ok.save")
    assert virsh("save", name, str(saved)).returncode == 0
    seen = len(guard.decisions(name))
    p = virsh("restore", str(saved))
    assert p.returncode == 0, p.stderr
    # libvirt runs the hook for "restore begin" (with the saved XML) and then for "prepare begin"
    ops = [(r["operation"], r["outcome"], r["reason"]) for r in guard.decisions(name)[seen:]]
    assert ops == [("restore", "allowed", "compliant"), ("prepare", "allowed", "compliant")]
    virsh("destroy", name)


def test_break_glass_lets_a_refused_vm_start_and_is_logged(guard: Guard) -> None:
    name = guard.define("glass", dom_type="qemu")
    assert virsh("start", name).returncode != 0
    p = hvguard(
        "guard", "break-glass", "--state-dir", str(guard.state), "--domain", name, "--minutes", "5",
        "--reason", "INC-7 host recovery",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    p = virsh("start", name)
    assert p.returncode == 0, p.stderr
    grant, rec = guard.decisions(name)[-2:]
    assert grant["schema"] == "hvguard.guard-break-glass/1" and grant["reason"] == "INC-7 host recovery"
    assert (rec["outcome"], rec["reason"]) == ("allowed", "break-glass")
    virsh("destroy", name)


def test_a_tampered_policy_file_follows_on_error(guard: Guard) -> None:
    name = guard.define("tamper")
    pinned = guard.state / "policy" / "profile.yaml"
    with pinned.open("a") as f:
        f.write("# changed behind hvguard's back\n")
    p = virsh("start", name)
    assert p.returncode != 0
    assert "hvguard guard failed (" in p.stderr and "on-error=deny: refused" in p.stderr
    rec = guard.last(name)
    assert (rec["outcome"], rec["reason"]) == ("refused", "hvguard-error")

    guard.update("--on-error", "allow")  # re-pins the profile from its source
    with pinned.open("a") as f:
        f.write("# changed again\n")
    p = virsh("start", name)
    assert p.returncode == 0, p.stderr
    rec = guard.last(name)
    assert (rec["outcome"], rec["reason"]) == ("allowed", "hvguard-error")
    virsh("destroy", name)
    guard.update("--on-error", "deny")


def test_a_recorded_migrate_begin_call_is_judged(guard: Guard) -> None:
    # libvirt calls the hook on the destination host as: DOMAIN migrate begin - (domain XML on stdin)
    env = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
    for suffix, kw, code in [("mig-ok", {}, 0), ("mig-tcg", {"dom_type": "qemu"}, 1)]:
        name = PREFIX + suffix
        xml = domain_xml(name, cputune=TUNED, **kw)
        p = subprocess.run(
            [str(HOOK), name, "migrate", "begin", "-"], input=xml.encode(), capture_output=True, env=env,
            timeout=60, check=False,
        )  # fmt: skip
        assert p.returncode == code, p.stderr
        assert p.stdout == b""  # libvirt would take stdout as the replacement XML
        rec = guard.last(name)
        assert rec["operation"] == "migrate"
        assert rec["outcome"] == ("allowed" if code == 0 else "refused")
        if code:
            assert "11.1.1" in p.stderr.decode()


def test_later_starts_are_answered_by_the_warm_decider(guard: Guard) -> None:
    """After a judged start a warm decider serves the hook (hvguard.guard.warm); libvirt is not held up
    by it (the starts below return), and its answers are logged under its own PID."""
    import re

    name = guard.define("warm")
    for _ in range(2):
        p = virsh("start", name)
        assert p.returncode == 0, p.stderr
        virsh("destroy", name)
    status = json.loads(
        hvguard("guard", "status", "--format", "json", "--state-dir", str(guard.state)).stdout
    )
    assert status["warm"]["enabled"] and status["warm"]["running"], status["warm"]
    pid = status["warm"]["pid"]
    guard.syslog_lines()
    assert virsh("start", name).returncode == 0
    virsh("destroy", name)
    procids = [re.match(r"<\d+>1 \S+ \S+ hvguard-guard (\d+) ", line) for line in guard.syslog_lines()]
    assert [int(m.group(1)) for m in procids if m] == [pid]
    assert guard.last(name)["outcome"] == "allowed"


def test_uninstall_restores_the_hook_directory_byte_for_byte(guard: Guard, before: str) -> None:
    decider = (guard.state / "warm.pid").read_text().strip() if (guard.state / "warm.pid").exists() else None
    p = hvguard("guard", "uninstall", "--state-dir", str(guard.state))
    assert p.returncode == 0, p.stderr
    assert tree_hash(HOOKS) == before
    if decider is not None:  # uninstall stopped the warm decider
        assert wait_until(lambda: process_gone(int(decider)))
    assert not HOOK.exists()
    # no hook any more: a VM the guard refused starts
    name = guard.define("after", dom_type="qemu")
    assert virsh("start", name).returncode == 0
    virsh("destroy", name)
