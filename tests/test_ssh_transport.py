"""The ssh:// transport against a real OpenSSH server on a loopback port (tests/sshd_env.py).

The server has its own host key and config; root logs in with a test key through the config's
AuthorizedKeysFile, and a throwaway account ``hvgssh<pid>`` (with a sudoers drop-in) is created for
the non-root cases and deleted afterwards.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hvguard.collect.ssh import transport as ssh_module
from hvguard.collect.ssh.script import build_script
from hvguard.collect.ssh.target import SshOptions
from hvguard.collect.ssh.transport import collect_ssh_targets
from hvguard.collect.targets import collect_target
from hvguard.facts import TargetFacts
from libvirt_env import TestDomains, domain_xml, requires_libvirtd
from sshd_env import Sshd, free_port, throwaway_user

USER = throwaway_user()
HVGUARD = [sys.executable, "-m", "hvguard"]


@pytest.fixture(scope="module")
def sshd() -> Iterator[Sshd]:
    server = Sshd()
    try:
        server.authorize("root", junk=True)
        server.add_user(USER, sudo=True)
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _no_personal_ssh_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ssh-agent and an empty HOME: only what a test passes can authenticate or vouch for a host."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


@pytest.fixture()
def known_hosts(sshd: Sshd, tmp_path: Path) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text(sshd.known_hosts_line())
    return path


def _options(sshd: Sshd, known_hosts: Path, **changes: Any) -> SshOptions:
    return SshOptions(known_hosts=known_hosts, identity=sshd.client_key, **changes)


def _cli(*args: str, check_traceback: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*HVGUARD, *args], capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL, check=False
    )
    if check_traceback:
        assert "Traceback" not in done.stderr, done.stderr
    return done


def _comparable(facts: TargetFacts) -> dict[str, Any]:
    """Everything except what names the run rather than the host: the target id (``local`` vs the URL)
    and ``collection`` (timestamps, durations, and which collectors/transport were used)."""
    data = msgspec.to_builtins(facts)
    del data["id"], data["collection"]
    return data


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            out += _diff(a.get(key, "<absent>"), b.get(key, "<absent>"), f"{path}.{key}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {str(a)[:160]} != {str(b)[:160]}"]


# --------------------------------------------------------------------------------------------------------
# Fake QEMU processes: one found by its name (comm), one only by its executable's name


def _fake_qemu(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    exe = tmp_path / "qemu-system-x86_64"
    shutil.copy(os.path.realpath(sys.executable), exe)
    rename = "import ctypes,time; ctypes.CDLL(None).prctl(15, b'hvgworker', 0, 0, 0); time.sleep(600)"
    procs = [
        subprocess.Popen([str(exe), "-c", "import time; time.sleep(600)", "-name", "guest=hvg-fake-comm"]),
        subprocess.Popen([str(exe), "-c", rename, "-name", "guest=hvg-fake-exe,debug-threads=on"]),
    ]
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            comms = [Path(f"/proc/{p.pid}/comm").read_text().strip() for p in procs]
            if comms == ["qemu-system-x86", "hvgworker"]:
                break
            time.sleep(0.05)
        else:
            pytest.fail("fake QEMU processes did not start")
        yield procs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture()
def fake_qemu(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    yield from _fake_qemu(tmp_path)


# --------------------------------------------------------------------------------------------------------
# Same facts over SSH as locally


def test_localhost_over_ssh_gives_the_same_facts_as_a_local_scan(
    sshd: Sshd, known_hosts: Path, fake_qemu: list[subprocess.Popen[bytes]]
) -> None:
    """root@127.0.0.1 over SSH and ``local`` read the same machine, so every fact must match: host
    facts (linux host, access, operations), hypervisor facts (the libvirt API locally, virsh remotely;
    or the stored definitions on both sides when no daemon answers) and the collection problems.
    Only the target id and the ``collection`` block legitimately differ (see :func:`_comparable`)."""
    local = collect_target("local")
    remote = collect_ssh_targets([sshd.target("root")], _options(sshd, known_hosts))[0]
    assert remote.unreachable is None, remote.unreachable
    assert remote.host is not None and remote.host.qemu_processes is not None
    names = {p.vm_name for p in remote.host.qemu_processes}
    assert {"hvg-fake-comm", "hvg-fake-exe"} <= names  # found by comm, and by exe only
    differences = _diff(_comparable(local), _comparable(remote))
    assert differences == [], "\n".join(differences)


@requires_libvirtd
def test_hypervisor_facts_over_ssh_equal_the_libvirt_api(sshd: Sshd, known_hosts: Path) -> None:
    """virsh on the target (one session, --security-info) gives what the libvirt API gives locally:
    the same domains, running state, persistence, XML digests and console-password facts."""
    with TestDomains("qemu:///system") as domains:
        graphics = "<graphics type='vnc' port='-1' autoport='yes' passwd='hvgpass1'/>"
        domains.define(domain_xml(domains.name("ssh-pw"), extra_devices=graphics))
        domains.define_and_start(domain_xml(domains.name("ssh-run"), cputune={"shares": 512}))
        local = collect_target("local")
        remote = collect_ssh_targets([sshd.target("root")], _options(sshd, known_hosts))[0]
    assert local.hypervisor is not None and remote.hypervisor is not None
    ours = {vm.name: vm for vm in remote.hypervisor.vms if vm.name.startswith(domains.name(""))}
    assert ours[domains.name("ssh-pw")].devices.graphics[0].password_set is True
    assert ours[domains.name("ssh-run")].active is True
    differences = _diff(msgspec.to_builtins(local.hypervisor), msgspec.to_builtins(remote.hypervisor))
    assert differences == [], "\n".join(differences)
    hv_problems = [p for p in local.problems if p.area.startswith(("hypervisor", "vm:"))]
    assert [p for p in remote.problems if p.area.startswith(("hypervisor", "vm:"))] == hv_problems


# --------------------------------------------------------------------------------------------------------
# The CLI contract


def test_scan_and_collect_over_ssh_from_the_command_line(
    sshd: Sshd, known_hosts: Path, tmp_path: Path
) -> None:
    target = sshd.target("root")
    common = ["--known-hosts", str(known_hosts), "--identity", str(sshd.client_key)]
    done = _cli("scan", target, *common, "--format", "json", "--fail-on", "never")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [t["id"] for t in report["targets"]] == [target]
    ours = [r for r in report["results"] if r["target"] == target]
    assert ours and not any("could not be collected" in r["message"] for r in ours)
    assert len(report["summary"]["by_measure"]) == 36

    bundle = tmp_path / "bundle.json"
    done = _cli("collect", target, *common, "--output", str(bundle))
    assert done.returncode == 0, done.stderr
    stored = json.loads(bundle.read_text())
    (facts,) = stored["targets"]
    assert facts["id"] == target and facts["unreachable"] is None
    assert facts["host"]["hostname"] == socket.gethostname()
    assert not any("hvguard-ssh-" in json.dumps(v) for v in facts.values()), "temporary paths leaked"


def test_root_cannot_be_combined_with_an_ssh_target(sshd: Sshd, known_hosts: Path, tmp_path: Path) -> None:
    done = _cli("scan", sshd.target("root"), "--root", str(tmp_path))
    assert done.returncode == 2
    assert "--root cannot be combined" in done.stderr


def test_dry_run_prints_the_manifest_and_contacts_nothing(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        done = _cli("collect", "--dry-run", f"ssh://root@127.0.0.1:{port}", "--sudo")
        listener.settimeout(0.5)
        with pytest.raises(TimeoutError):
            listener.accept()
    assert done.returncode == 0, done.stderr
    text = done.stdout
    for expected in ("sudo -n sh -s", "sshd -T", "/etc/libvirt/qemu.conf", "/proc/cpuinfo", "dumpxml"):
        assert expected in text, expected
    assert "main <<'HVG_REQUEST_END'" in text  # the script itself is printed
    # 11.4.8 runs apt-get's simulation (stable, machine-readable output), never `apt list`
    assert "apt-get -s --ignore-hold dist-upgrade" in text and "apt list" not in text
    assert f"ssh://root@127.0.0.1:{port}" in text


# --------------------------------------------------------------------------------------------------------
# Host keys


def test_a_wrong_host_key_refuses_the_target(sshd: Sshd, tmp_path: Path) -> None:
    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, data = other.with_suffix(".pub").read_text().split()[:2]
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{sshd.port} {kind} {data}\n")
    target = sshd.target("root")
    done = _cli(
        "scan", target, "--known-hosts", str(wrong), "--identity", str(sshd.client_key), "--format", "json"
    )
    # A single target of which nothing was collected: one line naming it and the cause, exit 2.
    assert done.returncode == 2 and done.stdout == "", done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert target in line and "does NOT match" in line, line
    assert wrong.read_text() == f"[127.0.0.1]:{sshd.port} {kind} {data}\n"  # never rewritten


def test_an_unknown_host_is_refused_unless_accepted_and_then_remembered(sshd: Sshd, tmp_path: Path) -> None:
    known = tmp_path / "kh" / "known_hosts"  # neither the file nor its directory exists yet
    target = sshd.target("root")
    options = SshOptions(known_hosts=known, identity=sshd.client_key)
    (refused,) = collect_ssh_targets([target], options)
    hint = "unknown host key: use --accept-new-host-key to trust it on first use, or add it to"
    assert refused.unreachable is not None and refused.unreachable.startswith(f"{hint} {known} ")
    assert f"the host key of [127.0.0.1]:{sshd.port}, SHA256:" in refused.unreachable
    assert not known.exists()

    notes: list[str] = []
    # Two logins to the same new host in one run: one line is appended, both are collected.
    accepted, also = collect_ssh_targets(
        [target, sshd.target(USER)],
        SshOptions(known_hosts=known, identity=sshd.client_key, accept_new_host_key=True),
        notify=notes.append,
    )
    assert accepted.unreachable is None and also.unreachable is None
    assert known.read_text() == sshd.known_hosts_line()
    assert len(notes) == 1 and "SHA256:" in notes[0]

    (again,) = collect_ssh_targets([target], options)
    assert again.unreachable is None
    assert known.read_text() == sshd.known_hosts_line()  # nothing appended twice


def test_the_default_known_hosts_is_never_used_instead_of_the_given_file(sshd: Sshd, tmp_path: Path) -> None:
    """asyncssh falls back to ~/.ssh/known_hosts for an *empty* known-hosts value; hvguard must not."""
    ssh_dir = Path(os.environ["HOME"]) / ".ssh"
    ssh_dir.mkdir()
    (ssh_dir / "known_hosts").write_text(sshd.known_hosts_line())
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    (facts,) = collect_ssh_targets(
        [sshd.target("root")], SshOptions(known_hosts=empty, identity=sshd.client_key)
    )
    assert facts.unreachable is not None and "unknown host key" in facts.unreachable


def test_accepting_a_new_key_never_overrides_a_changed_one(sshd: Sshd, tmp_path: Path) -> None:
    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, data = other.with_suffix(".pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {kind} {data}\n")
    options = SshOptions(known_hosts=known, identity=sshd.client_key, accept_new_host_key=True)
    (facts,) = collect_ssh_targets([sshd.target("root")], options)
    assert facts.unreachable is not None and "does NOT match" in facts.unreachable
    assert known.read_text() == f"[127.0.0.1]:{sshd.port} {kind} {data}\n"


# --------------------------------------------------------------------------------------------------------
# One failing target never stops the others


def test_a_dead_port_is_a_target_error_while_the_other_targets_succeed(sshd: Sshd, known_hosts: Path) -> None:
    dead = f"ssh://root@127.0.0.1:{free_port()}"
    target = sshd.target("root")
    done = _cli(
        "scan",
        dead,
        target,
        "--known-hosts",
        str(known_hosts),
        "--identity",
        str(sshd.client_key),
        "--format",
        "json",
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert [t["id"] for t in report["targets"]] == [dead, target]
    dead_results = [r for r in report["results"] if r["target"] == dead]
    assert dead_results and all(r["status"] == "error" for r in dead_results)
    assert "connection refused" in dead_results[0]["message"]
    ok = [r for r in report["results"] if r["target"] == target]
    assert not any("could not be collected" in r["message"] for r in ok)


def test_a_silent_server_times_out_while_the_others_finish(
    sshd: Sshd, known_hosts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A port that accepts TCP and never speaks SSH is bounded by --ssh-timeout. (The script runs no
    manifest command here: package-manager simulations alone can take longer than this timeout.)"""
    monkeypatch.setattr(ssh_module, "build_script", functools.partial(build_script, commands=()))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        held: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            listener.settimeout(0.2)
            while not stop.is_set():
                try:
                    held.append(listener.accept()[0])
                except TimeoutError:
                    continue

        thread = threading.Thread(target=accept)
        thread.start()
        try:
            silent = f"ssh://root@127.0.0.1:{listener.getsockname()[1]}"
            started = time.monotonic()
            results = collect_ssh_targets(
                [silent, sshd.target("root")], _options(sshd, known_hosts, timeout_s=5.0)
            )
            elapsed = time.monotonic() - started
        finally:
            stop.set()
            thread.join()
            for conn in held:
                conn.close()
    assert results[0].unreachable is not None and "timed out after 5 s" in results[0].unreachable
    assert results[1].unreachable is None
    assert elapsed < 60


def test_garbage_from_the_remote_side_is_a_target_error_not_a_traceback(
    sshd: Sshd, known_hosts: Path
) -> None:
    """The junk key's authorized_keys entry forces a command that prints garbage instead of our script."""
    target = sshd.target("root")
    done = _cli(
        "scan",
        target,
        "--known-hosts",
        str(known_hosts),
        "--identity",
        str(sshd.junk_key),
        "--format",
        "json",
    )
    assert done.returncode == 2 and done.stdout == "", done.stderr
    (message,) = done.stderr.strip().splitlines()
    assert target in message and "Traceback" not in done.stderr
    assert "did not run hvguard's collection script" in message
    assert "not-hvguard garbage" in message


def test_several_targets_with_a_small_concurrency_bound(sshd: Sshd, known_hosts: Path) -> None:
    targets = [sshd.target("root"), sshd.target(USER), sshd.target("root") + "/"]
    finished: list[str] = []
    results = collect_ssh_targets(
        targets, _options(sshd, known_hosts, concurrency=2), on_done=finished.append
    )
    assert [r.id for r in results] == targets
    assert all(r.unreachable is None for r in results), [r.unreachable for r in results]
    assert sorted(finished) == sorted(targets)


# --------------------------------------------------------------------------------------------------------
# Non-root accounts, with and without sudo


def test_a_non_root_account_reports_what_it_cannot_read(sshd: Sshd, known_hosts: Path) -> None:
    (facts,) = collect_ssh_targets([sshd.target(USER)], _options(sshd, known_hosts))
    assert facts.unreachable is None and facts.host is not None
    assert facts.collection.privileged is False  # the remote script said its uid was not 0
    assert "/etc/sudoers" in facts.collection.unreadable, facts.collection.unreadable
    if os.stat("/etc/libvirt/qemu.conf").st_mode & 0o004 == 0:
        assert facts.host.qemu_conf.present is True
        assert facts.host.qemu_conf.error == "/etc/libvirt/qemu.conf: cannot read: Permission denied"
        assert facts.host.qemu_conf.values == {}


def test_sudo_gives_a_non_root_account_the_same_facts_as_root(sshd: Sshd, known_hosts: Path) -> None:
    (as_root,) = collect_ssh_targets([sshd.target("root")], _options(sshd, known_hosts))
    (with_sudo,) = collect_ssh_targets([sshd.target(USER)], _options(sshd, known_hosts, sudo=True))
    assert with_sudo.unreachable is None, with_sudo.unreachable
    assert as_root.collection.privileged is True and with_sudo.collection.privileged is True
    assert with_sudo.collection.unreadable == [], with_sudo.collection.unreadable
    differences = _diff(_comparable(as_root), _comparable(with_sudo))
    assert differences == [], "\n".join(differences)


def test_sudo_that_asks_for_a_password_is_a_target_error(sshd: Sshd, known_hosts: Path) -> None:
    """root has no sudoers entry requirement, so use an account whose drop-in is removed for this test."""
    drop_in = Path("/etc/sudoers.d") / USER
    saved = drop_in.read_text()
    drop_in.unlink()
    try:
        (facts,) = collect_ssh_targets([sshd.target(USER)], _options(sshd, known_hosts, sudo=True))
    finally:
        drop_in.write_text(saved)
        drop_in.chmod(0o440)
    assert facts.unreachable is not None
    assert "sudo" in facts.unreachable


@requires_libvirtd
def test_paths_named_by_the_targets_configuration_are_fetched_in_a_follow_up_pass(
    sshd: Sshd, known_hosts: Path, tmp_path: Path
) -> None:
    """A storage pool whose directory lies outside the manifest: the collectors look for it, a second
    script run over the same connection fetches it, and the SSH facts then equal the local scan's."""
    pool_dir = tmp_path / "pool"
    pool_dir.mkdir()
    image = pool_dir / "disk0.qcow2"
    image.write_bytes(b"QFI\xfb")
    image.chmod(0o640)
    with TestDomains("qemu:///system") as domains:
        name = domains.name("pool")
        pool = domains.conn.storagePoolDefineXML(
            f"<pool type='dir'><name>{name}</name><target><path>{pool_dir}</path></target></pool>"
        )
        try:
            local = collect_target("local")
            remote = collect_ssh_targets([sshd.target("root")], _options(sshd, known_hosts))[0]
        finally:
            pool.undefine()
    assert remote.unreachable is None, remote.unreachable
    assert local.host is not None and remote.host is not None
    assert local.host.operations is not None and remote.host.operations is not None
    remote_storage = remote.host.operations.storage
    assert remote_storage is not None
    assert str(pool_dir) in [d.path for d in remote_storage.image_dirs]
    assert any(i.path == str(image) and i.mode == 0o640 for i in remote_storage.images), (
        remote_storage.images,
        remote.collection.collectors,
        [p for p in remote.problems if p.area in ("transport", "host.operations.storage")],
    )
    differences = _diff(
        msgspec.to_builtins(local.host.operations.storage), msgspec.to_builtins(remote_storage)
    )
    assert differences == [], "\n".join(differences)
    assert any("follow-up" in c for c in remote.collection.collectors), remote.collection.collectors
    assert not [p for p in remote.problems if p.area == "transport"], remote.problems
