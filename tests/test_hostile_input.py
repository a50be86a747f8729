"""Hostile input end to end: every case runs hvguard in a subprocess with a time limit and an address-space
limit, so that a regression fails here instead of hanging the suite or exhausting the machine."""

from __future__ import annotations

import json
import os
import resource
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"
KVM_GOOD = DATA / "roots" / "kvm-good"
ACCESS_GOOD = DATA / "roots" / "access-good"

#: Seconds a hostile case may take: a normal scan of a test root takes well under a second.
TIME_LIMIT = 20
#: Address space a hostile case may use (the interpreter and its libraries need a few hundred MiB).
MEMORY_LIMIT = 1536 * 1024 * 1024


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def hostile(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the hvguard CLI under the time and memory limits (a hang is a test failure, not a stuck run)."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "hvguard", *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=TIME_LIMIT,
            preexec_fn=_limits,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"hvguard {' '.join(args)} did not finish within {TIME_LIMIT} s: {exc}")


def scan_root(root: Path, *extra: str) -> dict[str, Any]:
    r = hostile("scan", "local", "--root", str(root), "--format", "json", "--no-history", *extra)
    assert r.returncode in (0, 1), r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    report: dict[str, Any] = json.loads(r.stdout)
    return report


def problems(report: dict[str, Any]) -> list[str]:
    return [f"{p.get('source')}: {p['message']}" for t in report["targets"] for p in t["problems"]]


def result(report: dict[str, Any], measure: str, subject: str | None = None) -> dict[str, Any]:
    found = [r for r in report["results"] if r["measure"] == measure and subject in (None, r["subject"])]
    assert found, f"no result for {measure} {subject}"
    return found[0]


def copy_root(tmp_path: Path, *sources: Path) -> Path:
    root = tmp_path / "root"
    for src in sources:
        shutil.copytree(src, root, symlinks=True, dirs_exist_ok=True)
    return root


# --- offline roots: regular files only -----------------------------------------------------------------


def test_a_fifo_in_an_offline_root_is_a_read_error_not_a_hang(tmp_path: Path) -> None:
    root = copy_root(tmp_path, KVM_GOOD, ACCESS_GOOD)
    (root / "proc" / "cpuinfo").unlink()
    os.mkfifo(root / "proc" / "cpuinfo")
    (root / "etc" / "ssh" / "sshd_config").unlink()
    os.mkfifo(root / "etc" / "ssh" / "sshd_config")
    (root / "etc" / "libvirt" / "qemu").mkdir(parents=True)
    os.mkfifo(root / "etc" / "libvirt" / "qemu" / "web.xml")
    report = scan_root(root)
    said = "\n".join(problems(report))
    for rel in ("proc/cpuinfo", "etc/libvirt/qemu/web.xml"):
        assert f"{rel}: cannot read: not a regular file (a FIFO)" in said or (
            f"cannot read {root}/{rel}: not a regular file (a FIFO)" in said
        ), said
    sshd = [r for r in report["results"] if r["measure"] == "11.4.6" and "sshd_config" in r["message"]]
    assert [r["status"] for r in sshd] == ["error"], sshd  # 11.4.6 reads sshd_config
    assert "sshd_config: cannot read: not a regular file (a FIFO)" in sshd[0]["message"], sshd


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a character device needs root")
def test_an_endless_device_behind_the_ima_log_is_refused(tmp_path: Path) -> None:
    root = copy_root(tmp_path, KVM_GOOD)
    log = root / "sys" / "kernel" / "security" / "ima" / "ascii_runtime_measurements"
    log.unlink()
    os.mknod(log, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero: never ends
    report = scan_root(root)
    said = "\n".join(problems(report))
    assert "ascii_runtime_measurements: cannot read: not a regular file (a character device)" in said, said


def test_a_dangling_sshd_config_link_is_a_read_error_not_sshd_absent(tmp_path: Path) -> None:
    root = copy_root(tmp_path, KVM_GOOD, ACCESS_GOOD)
    (root / "etc" / "ssh" / "sshd_config").unlink()
    (root / "usr" / "sbin" / "sshd").unlink()  # an image whose only sign of sshd is its (broken) config
    (root / "etc" / "ssh" / "sshd_config").symlink_to("/etc/ssh/sshd_config.real")
    report = scan_root(root)
    said = [(r["measure"], r["status"], r["message"]) for r in report["results"] if "sshd" in r["message"]]
    assert not [s for s in said if "not installed" in s[2]], said
    errors = [s for s in said if s[0] == "11.4.6" and s[1] == "error"]
    assert errors, said
    assert "/etc/ssh/sshd_config: cannot read: dangling link to /etc/ssh/sshd_config.real" in errors[0][2]


# --- YAML inputs: one guarded loader -------------------------------------------------------------------


def _billion_laughs() -> str:
    """A ~450-byte YAML sequence whose aliases expand to 9**9 strings ("billion laughs")."""
    items = ['&l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    items += [f"&l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return "[" + ", ".join(items) + "]"


#: Each YAML input: how it is passed, and the (valid) key under which the hostile value goes.
YAML_INPUTS = {
    "profile": (("scan", "local", "--root", str(KVM_GOOD), "--no-history", "--profile"), "advisory"),
    "exceptions": (("scan", "local", "--root", str(KVM_GOOD), "--no-history", "--exceptions"), "exceptions"),
    "attestations": (
        ("scan", "local", "--root", str(KVM_GOOD), "--no-history", "--attestations"),
        "attestations",
    ),
    "baseline": (("scan", "local", "--root", str(KVM_GOOD), "--no-history", "--baseline"), "vm_classes"),
    "watch": (("watch", "--check-config", "--config"), "notify"),
}


REGISTERS = ("exceptions", "attestations")


def refused(args: tuple[str, ...], path: str) -> str:
    """Run with the hostile file; it must be refused with exit 2 and one line (no traceback)."""
    r = hostile(*args, path)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal error" not in lines[0], r.stderr[-2000:]
    return lines[0]


@pytest.mark.parametrize("kind", sorted(YAML_INPUTS))
def test_a_yaml_alias_bomb_is_refused_at_once(kind: str, tmp_path: Path) -> None:
    args, key = YAML_INPUTS[kind]
    bomb = tmp_path / f"{kind}.yaml"
    bomb.write_text(f"{key}: {_billion_laughs()}\n", encoding="utf-8")
    line = refused(args, str(bomb))
    assert str(bomb) in line and "line 1" in line and "aliases expand to more than" in line, line


@pytest.mark.parametrize("kind", sorted(YAML_INPUTS))
def test_deeply_nested_yaml_is_refused_with_one_line(kind: str, tmp_path: Path) -> None:
    args, key = YAML_INPUTS[kind]
    deep = tmp_path / f"{kind}.yaml"
    deep.write_text(f"{key}: " + "[" * 900 + "]" * 900 + "\n", encoding="utf-8")
    line = refused(args, str(deep))
    assert str(deep) in line and "line 1" in line and "nested more than 100 levels deep" in line, line


@pytest.mark.parametrize("kind", sorted(YAML_INPUTS))
def test_dev_zero_as_a_yaml_input_is_refused_by_type(kind: str) -> None:
    args, _ = YAML_INPUTS[kind]
    line = refused(args, "/dev/zero")
    assert "/dev/zero" in line and "not a regular file (a character device)" in line, line


@pytest.mark.parametrize("kind", sorted(YAML_INPUTS))
def test_an_oversized_yaml_input_is_refused_unread(kind: str, tmp_path: Path) -> None:
    args, key = YAML_INPUTS[kind]
    big = tmp_path / f"{kind}.yaml"
    with big.open("wb") as out:
        out.write(f"{key}: []\n".encode())
        out.truncate(64 * 1024 * 1024)  # sparse: 64 MiB of NULs after a valid line
    line = refused(args, str(big))
    assert str(big) in line and "larger than" in line, line


@pytest.mark.parametrize("kind", sorted(YAML_INPUTS))
def test_a_duplicate_key_in_any_yaml_input_is_refused_with_its_lines(kind: str, tmp_path: Path) -> None:
    args, key = YAML_INPUTS[kind]
    dup = tmp_path / f"{kind}.yaml"
    dup.write_text(f"{key}: []\n# comment\n{key}: []\n", encoding="utf-8")
    line = refused(args, str(dup))
    # The registers list every duplicate with the entry it is in; the other inputs refuse the first.
    said = (
        "(line 3): key '{0}' appears twice (lines 1 and 3)"
        if kind in REGISTERS
        else "line 3: duplicate key '{0}' (first at line 1)"
    )
    assert str(dup) in line and said.format(key) in line, line


# --- libvirt XML: what libvirt cannot load is an error, never dropped -----------------------------------

OPS_GOOD = DATA / "roots" / "ops-good"


def test_an_unparsable_network_definition_makes_11_4_13_an_error(tmp_path: Path) -> None:
    root = copy_root(tmp_path, OPS_GOOD)
    (root / "etc" / "libvirt" / "qemu" / "networks" / "default.xml").write_text(
        "<network><name>default</name><forward mode='nat'/>", encoding="utf-8"
    )
    finding = result(scan_root(root), "11.4.13")
    assert finding["status"] == "error", finding
    assert "network default" in finding["message"] and "default.xml" in finding["message"], finding


@pytest.mark.parametrize("count", ["-5", "0", "4294967296"])
def test_a_vcpu_count_libvirt_refuses_makes_the_vm_an_error(count: str, tmp_path: Path) -> None:
    root = copy_root(tmp_path, OPS_GOOD)
    shutil.copy(KVM_GOOD / "proc" / "cpuinfo", root / "proc" / "cpuinfo")
    xml = root / "etc" / "libvirt" / "qemu" / "web1.xml"
    xml.write_text(xml.read_text(encoding="utf-8").replace("<vcpu>2</vcpu>", f"<vcpu>{count}</vcpu>"))
    finding = result(scan_root(root), "11.3.3", "vm:web1")
    assert finding["status"] == "error", finding
    assert f"vcpu count {count!r}" in finding["message"], finding


# --- no "internal error" for bad input -----------------------------------------------------------------


@pytest.mark.parametrize("target", ["ssh://[::1", "qemu+ssh://[x/system", "ssh://root@[fe80::1/"])
def test_an_unparsable_target_uri_is_one_line_not_an_internal_error(target: str) -> None:
    line = refused(("scan", "--no-history"), target)
    assert target in line and "not a valid URI" in line, line


@pytest.mark.parametrize(
    "config",
    [
        "notify:\n  webhook:\n    - url: 'https://[x/'\n      secret_env: HOME\n",
        "notify:\n  syslog:\n    - target: 'tcp://[x:514'\n",
        "uris: ['qemu+ssh://[x/system']\nnotify:\n  syslog:\n    - target: local\n",
    ],
)
def test_an_unparsable_url_in_the_watch_config_is_one_line(config: str, tmp_path: Path) -> None:
    path = tmp_path / "watch.yaml"
    path.write_text(config, encoding="utf-8")
    line = refused(("watch", "--check-config", "--config"), str(path))
    assert str(path) in line or "[x" in line, line


def test_the_ssh_script_refuses_fifos_and_devices_by_type(tmp_path: Path) -> None:
    """The SSH transport's script reads the target's files with head/wc: a FIFO would block it and a
    device never end; it records them as unreadable, with the local reader's wording."""
    from hvguard.collect.interface import Fetch
    from hvguard.collect.ssh.records import parse_answer
    from hvguard.collect.ssh.script import build_script, new_boundary

    fifo = tmp_path / "sshd_config"
    os.mkfifo(fifo)
    items = (Fetch("F", str(fifo), "test"), Fetch("F", "/dev/zero", "test"), Fetch("N", "/dev/zero", "test"))
    boundary = new_boundary()
    try:
        done = subprocess.run(
            ["sh", "-s"],
            input=build_script(boundary, items),
            capture_output=True,
            timeout=TIME_LIMIT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the SSH script did not finish within {TIME_LIMIT} s: {exc}")
    answer = parse_answer(done.stdout, boundary)
    assert answer.entries[str(fifo)].kind == "unreadable", answer.entries[str(fifo)]
    assert answer.entries[str(fifo)].reason == "not a regular file (a FIFO)"
    assert answer.entries["/dev/zero"].reason == "not a regular file (a character device)"


@pytest.mark.parametrize("secret", ["fifo", "/dev/zero"])
def test_a_webhook_secret_file_that_is_not_a_regular_file_is_refused(secret: str, tmp_path: Path) -> None:
    if secret == "fifo":
        secret = str(tmp_path / "secret")
        os.mkfifo(secret)
    config = tmp_path / "watch.yaml"
    config.write_text(
        f"notify:\n  webhook:\n    - url: https://hooks.example/x\n      secret_file: {secret}\n",
        encoding="utf-8",
    )
    line = refused(("watch", "--check-config", "--config"), str(config))
    assert f"secret file {secret}: not a regular file" in line, line


def test_dev_zero_as_known_hosts_is_refused_by_type() -> None:
    line = refused(("scan", "--no-history", "--known-hosts", "/dev/zero"), "ssh://127.0.0.1:1")
    assert "/dev/zero" in line and "not a regular file (a character device)" in line, line
