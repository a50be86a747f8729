"""Hostile bundles are refused in one line (exit 2), in bounded time and memory.

Each file is built here: gzip bombs, a bundle of a million VMs (written streaming), a FIFO, a device.
The CLI runs in a subprocess whose address space is capped (RLIMIT_AS), so a regression fails the test
instead of exhausting the machine.
"""

from __future__ import annotations

import gzip
import os
import resource
import subprocess
import sys
import time
import zlib
from pathlib import Path

import msgspec
import pytest

from factories import good_vm, target
from hvguard.collect.bundle import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_TARGETS,
    DEFAULT_MAX_VMS,
    make_bundle,
    write_bundle,
)

AS_LIMIT = 1536 * 1024 * 1024  # 1.5 GiB of address space for the whole hvguard process
TIME_LIMIT = 60.0


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def evaluate_refused(bundle: Path, **env: str) -> str:
    """``hvguard evaluate BUNDLE`` under the memory cap: exit 2, one line, in bounded time."""
    start = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "hvguard", "evaluate", str(bundle), "--no-history", "--format", "json"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
        preexec_fn=_cap_memory,
        timeout=TIME_LIMIT,
        check=False,
    )
    assert time.monotonic() - start < TIME_LIMIT
    assert r.returncode == 2, (r.returncode, r.stdout[:300], r.stderr[-2000:])
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "internal error" not in lines[0], lines[0]
    return lines[0]


def gzip_member(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9)


def test_the_limits_are_above_the_scale_goals() -> None:
    assert DEFAULT_MAX_VMS >= 100_000 and DEFAULT_MAX_TARGETS >= 10_000
    assert DEFAULT_MAX_BYTES >= 100_000 * 1024  # room for 100,000 real VMs (about 2 KB of JSON each)


def test_a_gzip_bomb_of_zeros_is_refused(tmp_path: Path) -> None:
    # 48 copies of a 64 MiB member of zeros: 3 GiB inflated from about 3 MB.
    member = gzip_member(bytes(64 * 1024 * 1024))
    bomb = tmp_path / "zeros.json.gz"
    bomb.write_bytes(member * 48)
    assert bomb.stat().st_size < 4 * 1024 * 1024
    line = evaluate_refused(bomb)
    assert str(bomb) in line and "not an hvguard bundle" in line


def test_a_gzip_bomb_that_starts_like_a_bundle_stops_at_the_cap(tmp_path: Path) -> None:
    head = gzip_member(b'{"schema": "hvguard.bundle/1", "facts_version": 3, "targets": [')
    blanks = gzip_member(b" " * (64 * 1024 * 1024))
    bomb = tmp_path / "blanks.json.gz"
    bomb.write_bytes(head + blanks * 48)  # 3 GiB of white space after a bundle's opening
    line = evaluate_refused(bomb)
    assert f"inflates to more than the limit of {DEFAULT_MAX_BYTES} bytes" in line
    assert "HVGUARD_BUNDLE_MAX_BYTES" in line
    # The cap is configurable.
    line = evaluate_refused(bomb, HVGUARD_BUNDLE_MAX_BYTES=str(4 * 1024 * 1024))
    assert "inflates to more than the limit of 4194304 bytes" in line


def test_a_million_vms_are_refused_before_they_are_built(tmp_path: Path) -> None:
    """About 9 MB of gzip that would be 1,000,000 VMs: counted, refused at the limit."""
    path = tmp_path / "million.json.gz"
    # A valid bundle of one target whose VM list is spliced in: each VM a valid `{"name": ...}`.
    valid = msgspec.json.encode(make_bundle([target([])]))
    head, tail = valid.split(b'"vms":[]', 1)
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    with path.open("wb") as out:
        out.write(comp.compress(head + b'"vms":['))
        for block in range(1000):
            vms = ",".join(f'{{"name":"vm{block * 1000 + i}"}}' for i in range(1000))
            out.write(comp.compress(("," if block else "").encode() + vms.encode()))
        out.write(comp.compress(b"]" + tail))
        out.write(comp.flush())
    assert path.stat().st_size < 12 * 1024 * 1024
    line = evaluate_refused(path)
    assert f"more than {DEFAULT_MAX_VMS} VMs" in line and "HVGUARD_BUNDLE_MAX_VMS" in line


def test_the_target_and_vm_limits_are_configurable(tmp_path: Path) -> None:
    three = tmp_path / "three.json"
    write_bundle(make_bundle([target([good_vm("a"), good_vm("b"), good_vm("c")])]), three)
    assert "more than 2 VMs" in evaluate_refused(three, HVGUARD_BUNDLE_MAX_VMS="2")
    two = tmp_path / "two.json"
    write_bundle(make_bundle([target(tid="qemu:///a"), target(tid="qemu:///b")]), two)
    assert "more than 1 targets" in evaluate_refused(two, HVGUARD_BUNDLE_MAX_TARGETS="1")
    assert "HVGUARD_BUNDLE_MAX_VMS='many'" in evaluate_refused(three, HVGUARD_BUNDLE_MAX_VMS="many")
    # The file size is checked before it is read.
    assert "larger than the limit of 100 bytes" in evaluate_refused(three, HVGUARD_BUNDLE_MAX_BYTES="100")


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "bundle.json"
    os.mkfifo(fifo)
    assert "a FIFO, not a regular file" in evaluate_refused(fifo)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_an_endless_device_is_refused(device: str) -> None:
    assert "a character device, not a regular file" in evaluate_refused(Path(device))


def test_a_bundle_of_empty_objects_is_refused_before_they_are_built(tmp_path: Path) -> None:
    """Each `{}` would decode to a whole struct of defaults (~100x its size): 40 MB of them in one VM."""
    valid = msgspec.json.encode(make_bundle([target([good_vm("a")])]))
    head, tail = valid.split(b'"disks":[', 1)
    path = tmp_path / "empties.json"
    path.write_bytes(head + b'"disks":[' + b"{}," * (13 * 1024 * 1024) + tail)
    line = evaluate_refused(path)
    assert "JSON objects for 1 target(s) and 1 VM(s)" in line
