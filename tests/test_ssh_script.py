"""The ssh:// transport without SSH: the remote script, its request, the answer parser and the facts
built from it. (The in-memory file system: tests/test_ssh_answer_fs.py; the same pipeline over a real
sshd: tests/test_ssh_transport.py.)"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import pkgutil
import random
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import msgspec
import pytest

import hvguard.collect as collect_pkg
from hvguard.collect import hostfs
from hvguard.collect.interface import Fetch
from hvguard.collect.linux import host as linux_host
from hvguard.collect.linux import (
    host_cpu,
    host_files,
    host_firmware,
    host_identity,
    host_kernel,
    host_kvm,
    host_qemu,
)
from hvguard.collect.linux.host_reads import HOST_READS as HOST_FETCH
from hvguard.collect.linux.manifest import manifest_fetch
from hvguard.collect.linux.source import LocalSource
from hvguard.collect.ssh.fetch import FetchIndex
from hvguard.collect.ssh.records import ProtocolError, parse_answer
from hvguard.collect.ssh.remote_script import REMOTE_SCRIPT
from hvguard.collect.ssh.script import FILE_CAP, build_request, build_script, new_boundary
from hvguard.collect.ssh.target import SshTargetError, parse_ssh_target
from hvguard.collect.ssh.transport import build_target_facts
from hvguard.collect.ssh.virsh import parse_nodeinfo, sections
from hvguard.collect.targets import collect_host_facts, collect_target

# --------------------------------------------------------------------------------------------------------
# The script itself


def test_script_is_plain_posix_sh() -> None:
    """dash (Debian's /bin/sh, strictly POSIX) parses it; bash-only syntax would be a syntax error."""
    done = subprocess.run(["dash", "-n"], input=REMOTE_SCRIPT.encode(), capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    for bashism in ("[[", "local ", " $'", "=$'", "function ", "<<<", "${!", "pipefail"):
        assert bashism not in REMOTE_SCRIPT, bashism


def test_script_holds_no_request_data() -> None:
    """Paths, arguments and the boundary travel as here-document data, never as shell code."""
    boundary = new_boundary()
    sent = build_script(boundary).decode()
    code, _, data = sent.partition("main <<'HVG_REQUEST_END' | blocks\n")
    assert code == REMOTE_SCRIPT
    assert boundary not in code
    assert data.startswith(boundary + "\n")
    assert data.endswith("HVG_REQUEST_END\n")


@pytest.mark.parametrize(
    "bad", ["/etc/a\nrm -rf /", "HVG_REQUEST_END", "/x\r", "/nul\0"], ids=["newline", "delim", "cr", "nul"]
)
def test_request_refuses_items_that_are_not_one_line(bad: str) -> None:
    with pytest.raises(ValueError, match="one line"):
        build_request(new_boundary(), [Fetch("F", bad, "test")], [])


def test_request_refuses_a_boundary_that_could_be_code() -> None:
    with pytest.raises(ValueError, match="hex"):
        build_request("$(reboot)" + "0" * 23, [], [])


def test_script_rejects_a_tampered_boundary(tmp_path: Path) -> None:
    """The script checks its own input too: a boundary that is not hex stops it before any read."""
    text = build_script(new_boundary()).decode()
    code, _, data = text.partition("main <<'HVG_REQUEST_END' | blocks\n")
    tampered = code + "main <<'HVG_REQUEST_END' | blocks\n" + "$(touch " + str(tmp_path / "x") + ")\n" + data
    done = subprocess.run(["sh", "-s"], input=tampered.encode(), capture_output=True, check=False)
    assert done.stdout == b""  # not even the header: the script stopped at the boundary check
    assert not (tmp_path / "x").exists()


def test_script_runs_everything_in_the_c_locale() -> None:
    """LC_ALL=C, and no LANGUAGE: GNU gettext lets LANGUAGE pick the message language over any locale
    but C, so a German login's apt, find or ip output must not reach the parsers translated."""
    text = build_script(new_boundary()).decode()
    prologue = text.split("\nNL=", 1)[0]
    env = {"PATH": "/usr/bin:/bin", "LANGUAGE": "de", "LANG": "de_DE.UTF-8", "LC_MESSAGES": "de_DE.UTF-8"}
    done = subprocess.run(
        ["sh", "-c", prologue + "\nenv"], env=env, capture_output=True, text=True, check=True
    )
    seen = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert seen.get("LC_ALL") == "C" and "LANGUAGE" not in seen, seen


# --------------------------------------------------------------------------------------------------------
# The fetch list stays in step with the collectors


def _trace_paths() -> set[str]:
    """Every host path the collectors ask for on this machine (they all read through DiskFS, which
    resolves every path with resolve_in_root)."""
    seen: set[str] = set()
    original = hostfs.resolve_in_root

    def traced(root: Path, rel: str) -> Path:
        seen.add("/" + rel.lstrip("/"))
        return original(root, rel)

    patched: list[Any] = []
    for info in pkgutil.walk_packages(collect_pkg.__path__, prefix="hvguard.collect."):
        module = importlib.import_module(info.name)
        if getattr(module, "resolve_in_root", None) is original:
            module.resolve_in_root = traced  # type: ignore[attr-defined]
            patched.append(module)
    try:
        collect_host_facts(LocalSource(), problems=[])
    finally:
        for module in patched:
            module.resolve_in_root = original
    return seen


#: The Linux host collector's modules (``collect/linux/host*.py``, its reads declaration aside).
LINUX_HOST_MODULES = (
    linux_host,
    host_cpu,
    host_files,
    host_firmware,
    host_identity,
    host_kernel,
    host_kvm,
    host_qemu,
)


def _covered(path: str, items: tuple[Fetch, ...]) -> bool:
    return FetchIndex(items).covers(path)


@pytest.fixture(scope="module")
def traced_paths() -> set[str]:
    return _trace_paths()


def test_host_fetch_covers_every_path_the_linux_host_collector_reads(traced_paths: set[str]) -> None:
    """HOST_FETCH must list every path linux_host (and the stored-definition reader) uses: a path the
    collector reads but the script does not fetch would silently read as 'absent' over SSH."""
    literals = set(
        re.findall(
            r'"((?:proc|sys|dev|etc|usr|run|lib|boot)/[^"{}]*)"',
            "".join(Path(module.__file__ or "").read_text() for module in LINUX_HOST_MODULES),
        )
    )
    uncovered = sorted(p for p in ("/" + lit for lit in literals) if not _covered(p, HOST_FETCH))
    assert uncovered == [], f"linux_host reads paths HOST_FETCH lacks: {uncovered}"
    host_paths = {p for p in traced_paths if _covered(p, HOST_FETCH)}
    assert {"/proc/cpuinfo", "/etc/passwd", "/etc/libvirt/qemu.conf", "/dev/kvm"} <= host_paths


#: Paths a collector may look at locally that the SSH transport must never copy.
DELIBERATELY_NOT_FETCHED = {
    "/etc/krb5.keytab": "key material; the krb5-keytab-stat command reports whether it exists",
}


def test_manifest_covers_every_path_any_host_collector_reads(traced_paths: set[str]) -> None:
    """The same for every host collector: each path they ask for must be in the manifest (FILES or
    HOST_FETCH), or SSH scans would report it as absent."""
    uncovered = sorted(
        p for p in traced_paths if not _covered(p, manifest_fetch()) and p not in DELIBERATELY_NOT_FETCHED
    )
    shown = sorted({re.sub(r"/proc/\d+/fd(/\d+)?", "/proc/PID/fd...", p) for p in uncovered})
    assert shown == [], (
        "host collectors read paths the manifest lacks (add them to manifest.FILES): " + ", ".join(shown)
    )


# --------------------------------------------------------------------------------------------------------
# The whole pipeline through a local `sh -s` (the SSH session replaced by a pipe)


def _run_script(boundary: str, fetch: tuple[Fetch, ...] | None = None) -> bytes:
    done = subprocess.run(["sh", "-s"], input=build_script(boundary, fetch), capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def piped() -> tuple[str, bytes]:
    boundary = new_boundary()
    return boundary, _run_script(boundary)


def test_answer_parses_and_holds_the_host_files(piped: tuple[str, bytes]) -> None:
    boundary, stream = piped
    answer = parse_answer(stream, boundary)
    assert answer.entries["/etc/passwd"].kind == "file"
    assert answer.entries["/etc/passwd"].data == Path("/etc/passwd").read_bytes()
    assert answer.entries["/proc/cpuinfo"].data.startswith(b"processor")
    assert answer.entries["/sys/module"].listing
    assert answer.links["/lib"] == "usr/lib"  # merged /usr on Debian 12
    assert answer.links["/etc/os-release"] == "../usr/lib/os-release"
    assert answer.entries["/etc/os-release"].data == Path("/usr/lib/os-release").read_bytes()
    assert answer.modes["/etc/passwd"].mode & 0o777 == os.stat("/etc/passwd").st_mode & 0o777
    assert "sshd-effective-config" in answer.commands


def test_piped_host_facts_equal_local_host_facts(piped: tuple[str, bytes]) -> None:
    """linux_host over the script's answer gives exactly the local scan's host facts (``root`` and the
    paths in facts and problems are shown as on the host)."""
    boundary, stream = piped
    answer = parse_answer(stream, boundary)
    local = collect_target("local")
    remote = build_target_facts(
        parse_ssh_target("ssh://root@127.0.0.1"), answer, boundary, collected_at="-", started=0.0
    )
    assert remote.host is not None and local.host is not None
    # access/operations belong to their own collectors and manifests; the SSH equality test covers
    # them end to end. Here: everything linux_host produces, field by field, and its problems.
    for field in msgspec.structs.fields(local.host):
        if field.name not in {"access", "operations"}:
            assert getattr(remote.host, field.name) == getattr(local.host, field.name), field.name

    def linux_host_problems(problems: list[Any]) -> list[Any]:
        return [p for p in problems if p.area in LINUX_HOST_AREAS]

    assert linux_host_problems(remote.problems) == linux_host_problems(local.problems)


LINUX_HOST_AREAS = {
    f"host.{group}"
    for group in (
        *("hostname", "os", "default_target", "cpu", "memory", "kvm", "iommu", "tpm", "secure_boot"),
        *("kernel", "qemu_conf", "libvirtd_conf", "qemu_processes"),
    )
}


# --------------------------------------------------------------------------------------------------------
# Hostile answers


def test_garbage_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="did not run hvguard's collection script"):
        parse_answer(b"Welcome to my shell!\n", new_boundary())


def test_truncated_answer_is_a_protocol_error(piped: tuple[str, bytes]) -> None:
    boundary, stream = piped
    with pytest.raises(ProtocolError):
        parse_answer(stream[: len(stream) // 2], boundary)


def test_mutated_answers_never_raise_anything_but_protocol_errors(piped: tuple[str, bytes]) -> None:
    """Random damage anywhere in a real answer: parsed or refused with a ProtocolError, never a crash."""
    boundary, stream = piped
    rng = random.Random(9)  # noqa: S311 (reproducible damage, not crypto)
    marker = b"\n" + boundary.encode() + b":"
    starts = [m.start() for m in re.finditer(re.escape(marker), stream)]
    for _ in range(400):
        data = bytearray(stream)
        where = rng.choice(starts) + rng.randrange(len(marker), len(marker) + 40)
        where = min(where, len(data) - 1)
        action = rng.randrange(3)
        if action == 0:
            data[where] = rng.randrange(256)
        elif action == 1:
            del data[where : where + rng.randrange(1, 30)]
        else:
            data[where:where] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 10)))
        with contextlib.suppress(ProtocolError):
            parse_answer(bytes(data), boundary)


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([b"H\x001\x00", b"Q\x00"], "unknown record"),
        ([b"H\x002\x00", b"Z\x00"], "protocol"),
        ([b"F\x00/x\x00data", b"Z\x00"], "header"),
        ([b"H\x001\x00", b"F\x00relative\x00data", b"Z\x00"], "not absolute"),
        ([b"H\x001\x00", b"O\x00sshd-effective-config\x00out", b"Z\x00"], "no exit status"),
        ([b"H\x001\x00", b"O\x00rm-rf\x00", b"Z\x00"], "unknown command"),
        ([b"H\x001\x00", b"D\x00/d\x00f../x\x00", b"Z\x00"], "directory entry"),
        ([b"H\x001\x00", b"M\x00/x\x00zz 0 0 0\x00", b"Z\x00"], "bad stat record"),
        ([b"H\x001\x00", b"M\x00/x\x0081a4 0 0\x00", b"Z\x00"], "bad stat record"),
        ([b"H\x001\x00", b"M\x00/x\x0081a4 0 0 1.0000000001\x00", b"Z\x00"], "bad stat record"),
        ([b"H\x001\x00", b"M\x00x\x0081a4 0 0 1\x00", b"Z\x00"], "bad stat record"),
        ([b"H\x001\x00", b"B\x00/x\x00", b"A\x00not a tar", b"Z\x00"], "archive"),
        ([b"H\x001\x00", b"Z\x00", b"F\x00/x\x00"], "after the end"),
    ],
)
def test_malformed_records_are_refused(records: list[bytes], message: str) -> None:
    boundary = new_boundary()
    stream = b"".join(b"\n" + boundary.encode() + b":" + record for record in records)
    with pytest.raises(ProtocolError, match=message):
        parse_answer(stream, boundary)


# --------------------------------------------------------------------------------------------------------
# Small parsers


def test_nodeinfo_in_the_c_locale_and_rounded_like_the_api() -> None:
    text = (
        "CPU model:           x86_64\nCPU(s):              2\nCPU frequency:       2445 MHz\n"
        "CPU socket(s):       1\nCore(s) per socket:  2\nThread(s) per core:  1\nNUMA cell(s):        1\n"
        "Memory size:         8148872 KiB\n"
    )
    node = parse_nodeinfo(text)
    assert (node.model, node.cpus, node.mhz, node.sockets, node.cores, node.threads) == (
        "x86_64",
        2,
        2445,
        1,
        2,
        1,
    )
    assert node.memory_kib == 8148872 // 1024 * 1024


def test_virsh_sections_drop_only_the_blank_line_virsh_adds() -> None:
    marker = "HVGM" + "a" * 32
    out = f"{marker} dom 1\n<domain/>\n\n{marker} dom 2\n\n{marker} end\n"
    assert sections(out, "a" * 32) == [("dom 1", "<domain/>\n"), ("dom 2", ""), ("end", "")]


@pytest.mark.parametrize(
    ("text", "host", "port", "user"),
    [
        ("ssh://h", "h", 22, None),
        ("ssh://root@127.0.0.1:2222", "127.0.0.1", 2222, "root"),
        ("ssh://ops@[::1]:22/", "::1", 22, "ops"),
    ],
)
def test_ssh_targets_parse(text: str, host: str, port: int, user: str | None) -> None:
    target = parse_ssh_target(text)
    assert (target.host, target.port, target.user) == (host, port, user)


@pytest.mark.parametrize(
    "text",
    [
        "ssh://",
        "ssh://u:pw@h",
        "ssh://h:99999",
        "ssh://h:0",
        "ssh://h/path",
        "ssh://h?x=1",
        "ssh://b@d user@h",
    ],
)
def test_bad_ssh_targets_are_usage_errors(text: str) -> None:
    with pytest.raises(SshTargetError):
        parse_ssh_target(text)


def test_a_huge_file_is_capped_not_copied_whole(tmp_path: Path) -> None:
    """tar would copy any size; files over the cap go through head -c instead, so the answer stays
    small and the collectors still see 'larger than the limit'."""
    big = tmp_path / "huge.conf"
    with big.open("wb") as handle:
        handle.truncate(40 * 1024 * 1024)  # sparse: costs no disk
    small = tmp_path / "small.conf"
    small.write_text("ok\n")
    boundary = new_boundary()
    stream = _run_script(boundary, (Fetch("F", str(big), "test"), Fetch("F", str(small), "test")))
    assert len(stream) < 20 * 1024 * 1024
    answer = parse_answer(stream, boundary)
    assert len(answer.entries[str(big)].data) == FILE_CAP
    assert answer.entries[str(small)].data == b"ok\n"


def test_an_archive_that_ends_inside_a_file_is_a_protocol_error() -> None:
    """The archive's members are sliced out of the answer: a member longer than what arrived is refused,
    never returned short."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        data = b"x" * 5000
        info = tarfile.TarInfo("etc/big.conf")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    whole = buffer.getvalue()
    boundary = new_boundary()

    def stream(archive: bytes) -> bytes:
        records = [b"H\x001\x00", b"B\x00/etc/big.conf\x00", b"A\x00" + archive, b"Z\x00"]
        return b"".join(b"\n" + boundary.encode() + b":" + r for r in records)

    assert parse_answer(stream(whole), boundary).entries["/etc/big.conf"].data == data
    with pytest.raises(ProtocolError, match="archive"):
        parse_answer(stream(whole[: 512 + 3000]), boundary)
