"""The warm decider (hvguard.guard.warm): the hook script's Python entry run as libvirt runs it — argv,
the domain XML on stdin, stdout and stderr pipes that the caller reads to their end.

The first run decides cold and forks a decider; later runs are answered by it (their syslog line
carries the decider's PID), with the same records and the same one stderr line. Each test stops the
deciders it caused (by the PID in warm.pid).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard_env import (
    decisions,
    make_state_dir,
    node_domain_xml,
    process_gone,
    snapshot_bundle,
    syslog_socket,
    wait_until,
)
from hvguard.guard import warm
from hvguard.guard.install import HOOK_ENTRY, HOOK_PYTHON_FLAGS, interpreter

PROCID = re.compile(rb"^<\d+>1 \S+ \S+ hvguard-guard (\d+) decision ")


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot_bundle(tmp_path_factory.mktemp("snapshot"))


@pytest.fixture(scope="module")
def pypath() -> str:
    return interpreter()[2]


@pytest.fixture
def state(tmp_path: Path, snapshot: Path) -> Iterator[Path]:
    path = make_state_dir(tmp_path / "g", snapshot)
    yield path
    warm.stop(str(path))


@pytest.fixture
def syslog(tmp_path: Path) -> Iterator[tuple[Path, socket.socket]]:
    with syslog_socket(tmp_path / "log.sock") as bound:
        yield bound


def hook(state: Path, pypath: str, name: str, syslog: Path, xml: str | None = None) -> tuple[int, str]:
    """One run of the hook script's Python entry, as libvirt starts it: stderr and stdout are pipes the
    caller reads to their end (a decider that kept one would hang this, and libvirt)."""
    argv = [sys.executable, *HOOK_PYTHON_FLAGS.split(), "-c", HOOK_ENTRY, pypath]
    argv += ["--state-dir", str(state), "--syslog-socket", str(syslog), name, "prepare", "begin", "-"]
    proc = subprocess.run(
        argv,
        input=(node_domain_xml(name) if xml is None else xml).encode(),
        capture_output=True,
        timeout=30,
        check=False,
        env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
    )
    assert proc.stdout == b""
    assert b"Traceback" not in proc.stderr
    return proc.returncode, proc.stderr.decode()


def procid(sock: socket.socket) -> int:
    line = sock.recv(65536)
    found = PROCID.match(line)
    assert found, line
    return int(found.group(1))


def wait_for_decider(state: Path) -> int:
    up = wait_until(lambda: (state / warm.SOCKET_FILE).exists() and (state / warm.PID_FILE).exists())
    assert up, "no warm decider came up"
    return int((state / warm.PID_FILE).read_text())


def _without_time(records: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{k: v for k, v in r.items() if k != "at"} for r in records]


def test_a_cold_run_starts_a_decider_that_answers_the_next_runs_alike(
    state: Path, pypath: str, syslog: tuple[Path, socket.socket]
) -> None:
    sock_path, sock = syslog
    first = hook(state, pypath, "qemu-loose", sock_path)
    cold_pid = procid(sock)
    decider = wait_for_decider(state)
    assert decider != cold_pid, (decider, cold_pid)
    assert not process_gone(decider), decider
    assert oct(os.stat(state / warm.SOCKET_FILE).st_mode & 0o777) == "0o600"
    second = hook(state, pypath, "qemu-loose", sock_path)
    assert procid(sock) == decider, (decider, cold_pid)  # answered warm …
    assert second == first and first[0] == 1 and "refused qemu-loose: 11.1.1" in first[1]  # … alike
    assert hook(state, pypath, "kvm-hardened", sock_path) == (0, "")
    assert procid(sock) == decider
    records = _without_time(decisions(state))
    assert records[0] == records[1] and len(records) == 3
    assert records[2]["outcome"] == "allowed"


def test_the_decider_checks_the_pins_on_every_request(
    state: Path, pypath: str, syslog: tuple[Path, socket.socket]
) -> None:
    sock_path, sock = syslog
    assert hook(state, pypath, "kvm-hardened", sock_path) == (0, "")
    decider = wait_for_decider(state)
    with (state / "host-facts.json").open("a") as f:
        f.write(" ")  # the pinned host snapshot, changed
    code, err = hook(state, pypath, "kvm-hardened", sock_path)
    procid(sock)
    assert procid(sock) == decider
    assert code == 1 and "changed since install" in err and "on-error=deny: refused" in err
    assert decisions(state)[-1]["reason"] == "hvguard-error"


def test_no_decider_when_the_state_says_so_and_none_outlives_its_install(
    state: Path, pypath: str, syslog: tuple[Path, socket.socket]
) -> None:
    import json

    sock_path, _sock = syslog
    doc = json.loads((state / "state.json").read_text())
    (state / "state.json").write_text(json.dumps({**doc, "warm": False}))
    assert hook(state, pypath, "kvm-hardened", sock_path) == (0, "")
    time.sleep(0.5)
    assert not (state / warm.SOCKET_FILE).exists() and not (state / warm.PID_FILE).exists()
    (state / "state.json").write_text(json.dumps(doc))
    assert hook(state, pypath, "kvm-hardened", sock_path) == (0, "")
    decider = wait_for_decider(state)
    (state / "state.json").unlink()  # uninstalled: the decider leaves by itself
    assert wait_until(lambda: process_gone(decider))
    assert not (state / warm.SOCKET_FILE).exists()


def test_a_dead_or_silent_decider_means_a_cold_decision(
    state: Path, pypath: str, syslog: tuple[Path, socket.socket]
) -> None:
    sock_path, sock = syslog
    # a socket file nobody listens on (a decider killed hard)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(state / warm.SOCKET_FILE))
    stale.close()
    code, err = hook(state, pypath, "qemu-loose", sock_path)
    assert code == 1 and "refused qemu-loose" in err
    assert procid(sock) != 0
    decider = wait_for_decider(state)  # the cold run replaced it
    assert not process_gone(decider)
    # garbage on the decider's socket does not break it
    for junk in (b"", b"\xff\xff\xff\xff", b"\x00\x00\x00\x05a\x00b", b"\x00\x00\x00\x00" + b"<domain/>"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.settimeout(10)
            c.connect(str(state / warm.SOCKET_FILE))
            c.sendall(junk)
            c.shutdown(socket.SHUT_WR)
            try:
                answer = c.recv(1000)
            except ConnectionResetError:  # closed with the request unread: no answer either
                answer = b""
            assert not answer.startswith((b"0\n", b"1\n")) or b"failed" in answer
    assert hook(state, pypath, "kvm-hardened", sock_path) == (0, "")
    assert procid(sock) == decider


def test_a_decider_answers_for_its_own_state_directory_only(
    state: Path, tmp_path: Path, snapshot: Path, pypath: str, syslog: tuple[Path, socket.socket]
) -> None:
    sock_path, _sock = syslog
    assert hook(state, pypath, "kvm-hardened", sock_path) == (0, "")
    wait_for_decider(state)
    other = make_state_dir(tmp_path / "other", snapshot, mode="audit")
    argv = [
        "--state-dir",
        str(other),
        "--syslog-socket",
        str(sock_path),
        "qemu-loose",
        "prepare",
        "begin",
        "-",
    ]
    assert warm.ask(str(state), argv, node_domain_xml("qemu-loose").encode()) is None
    assert decisions(other) == []


def test_uninstall_style_stop_ends_the_decider(
    state: Path, pypath: str, syslog: tuple[Path, socket.socket]
) -> None:
    sock_path, _sock = syslog
    assert hook(state, pypath, "kvm-hardened", sock_path) == (0, "")
    decider = wait_for_decider(state)
    assert warm.stop(str(state)) is True
    assert wait_until(lambda: process_gone(decider))
    assert not (state / warm.SOCKET_FILE).exists() and not (state / warm.PID_FILE).exists()
