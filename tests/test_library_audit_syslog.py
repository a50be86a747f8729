"""The audit trail's syslog copy: a real ``library serve`` sends each record to a Unix datagram socket the
test binds (``--syslog-socket``), and a syslog that cannot be reached loses only the copy."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from library_env import Library, hvguard, make_store, need, start_server

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

#: <PRI>Mmm dd hh:mm:ss TAG[PID]: text — what the C library's syslog() sends to /dev/log
_LINE = re.compile(r"^<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d hvguard-library\[(\d+)\]: (.*)$")


@pytest.fixture
def syslog_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "log.sock"))
    sock.settimeout(10)
    yield sock
    sock.close()


def _disk(tmp_path: Path) -> Path:
    disk = tmp_path / "data.raw"
    disk.write_bytes(b"\0" * 65536)
    return disk


def _push(lib: Library, disk: Path, user: str) -> str:
    out = hvguard(
        "library", "push", lib.url, disk, "--name", "data/disk", "--version", user, *lib.client(user)
    )
    return out.stdout.strip()


def _records(lib: Library) -> list[dict[str, object]]:
    return [json.loads(line) for line in (lib.store / "audit.log").read_text().splitlines()]


def test_each_record_is_copied_to_the_syslog_socket(tmp_path: Path, syslog_socket: socket.socket) -> None:
    need("qemu-img")
    lib = make_store(tmp_path, guest_inspection="off")
    gen = start_server(lib, tmp_path, extra=("--syslog-socket", str(tmp_path / "log.sock")))
    next(gen)
    try:
        assert _push(lib, _disk(tmp_path), "pete")
        assert not _push(lib, _disk(tmp_path), "rita")  # a reader may not push: refused
        datagrams = [syslog_socket.recv(8192).decode() for _ in range(3)]  # serve, push ok, push refused
    finally:
        next(gen, None)
    by_seq = {r["seq"]: r for r in _records(lib)}
    seen = []
    for datagram in datagrams:
        m = _LINE.match(datagram)
        assert m, datagram
        pri, pid, text = int(m[1]), int(m[2]), m[3]
        fields = dict(part.split("=", 1) for part in text.split(" "))
        record = by_seq[int(fields["seq"])]
        # the copy is the file's record: same hash, actor, action and outcome
        assert fields == {k: str(record[k]) for k in ("seq", "actor", "action", "subject", "outcome", "hash")}
        assert pri // 8 == 10  # facility authpriv
        assert pri % 8 == (5 if record["outcome"] == "ok" else 4)  # notice / warning
        assert lib.proc is not None and pid == lib.proc.pid
        seen.append((record["actor"], record["action"], record["outcome"]))
    assert seen == [("local", "serve", "ok"), ("pete", "push", "ok"), ("rita", "push", "refused")]


def test_an_unreachable_syslog_loses_only_the_copy(tmp_path: Path) -> None:
    need("qemu-img")
    lib = make_store(tmp_path, guest_inspection="off")
    gone = tmp_path / "no-syslog-here.sock"
    gen = start_server(lib, tmp_path, extra=("--syslog-socket", str(gone)))
    next(gen)
    try:
        image_id = _push(lib, _disk(tmp_path), "pete")
        assert image_id
        assert _push(lib, _disk(tmp_path), "anna") == ""  # refused: recorded all the same
    finally:
        next(gen, None)
    assert lib.proc is not None and lib.proc.returncode == 0
    records = _records(lib)
    assert ("pete", "push", "ok") in {(r["actor"], r["action"], r["outcome"]) for r in records}
    assert ("anna", "push", "refused") in {(r["actor"], r["action"], r["outcome"]) for r in records}
    assert any(image_id in str(r["detail"]) for r in records)
    assert hvguard("library", "audit", "verify", lib.store).returncode == 0
    # the server said once that the copy failed, naming the socket
    assert lib.proc.stderr is not None
    warnings = [line for line in lib.proc.stderr.read().splitlines() if "syslog copy" in line]
    assert len(warnings) == 1 and str(gone) in warnings[0], warnings
