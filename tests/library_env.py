"""Helpers for the image library tests: a store, test images built with mkfs.ext4 -d, a running server."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PASSPHRASE = "correct horse battery staple orbit 42"
MARKER = b"HVGUARD-PLAINTEXT-MARKER-7f3a9c"


def hvguard(*args: str | Path, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -m hvguard`` from this checkout; text output."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "hvguard", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"hvguard {args} exited {proc.returncode}: {proc.stderr}")
    return proc


def need(*tools: str) -> None:
    """Skip unless every tool is installed (scripts/setup.sh test installs them)."""
    missing = [t for t in tools if shutil.which(t) is None and not Path("/usr/sbin", t).exists()]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (scripts/setup.sh test)")


def _mkfs() -> str:
    return shutil.which("mkfs.ext4") or "/usr/sbin/mkfs.ext4"


def guest_root(
    tmp: Path,
    *,
    shadow: str = "root:$6$abc$xyz:19000:0:99999:7:::\n",
    sshd: str | None = "PermitRootLogin no\n",
    host_keys: bool = False,
    marker: bool = True,
) -> Path:
    """A small guest root file tree."""
    root = tmp / "root"
    (root / "etc/ssh").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/shadow").write_text(shadow)
    if sshd is not None:
        (root / "etc/ssh/sshd_config").write_text(sshd)
    if host_keys:
        (root / "etc/ssh/ssh_host_ed25519_key").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    if marker:
        (root / "marker.txt").write_bytes(MARKER * 100)
    return root


def ext4_image(
    tmp: Path,
    name: str = "disk",
    *,
    fmt: str = "qcow2",
    size: str = "16M",
    partitioned: bool = False,
    **root_kw: object,
) -> Path:
    """A guest disk with an ext4 file system built from a root tree (no mount, no root needed)."""
    need("qemu-img", "mkfs.ext4")
    work = tmp / f"{name}.d"
    work.mkdir()
    root = guest_root(work, **root_kw)  # type: ignore[arg-type]
    fs = work / "fs.raw"
    subprocess.run(["truncate", "-s", size, str(fs)], check=True)
    subprocess.run([_mkfs(), "-q", "-F", "-d", str(root), str(fs)], check=True)
    raw = fs
    if partitioned:
        raw = work / "part.raw"
        # 1 MiB gap, then the file system as partition 1 (MBR, type 83)
        with open(raw, "wb") as out:
            mbr = bytearray(512)
            start, count = 2048, fs.stat().st_size // 512
            entry = (
                bytes([0, 0, 0, 0, 0x83, 0, 0, 0]) + start.to_bytes(4, "little") + count.to_bytes(4, "little")
            )
            mbr[446:462] = entry
            mbr[510:512] = b"\x55\xaa"
            out.write(mbr)
            out.write(b"\0" * (1024 * 1024 - 512))
            out.write(fs.read_bytes())
    out_path = tmp / f"{name}.{fmt}"
    if fmt == "raw":
        shutil.copyfile(raw, out_path)
    else:
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", fmt, str(raw), str(out_path)], check=True)
    shutil.rmtree(work)
    return out_path


@dataclass
class Library:
    """A store with users and a running ``library serve``."""

    store: Path
    certs: Path
    url: str
    server_ca: Path
    passphrase: Path
    proc: subprocess.Popen[str] | None = None

    def client(self, user: str) -> list[str]:
        """``--cert/--key/--ca`` of a user."""
        return [
            "--cert",
            str(self.certs / f"{user}.crt"),
            "--key",
            str(self.certs / f"{user}.key"),
            "--ca",
            str(self.server_ca),
        ]


def make_store(
    tmp: Path,
    *,
    guest_inspection: str = "required",
    algorithm: str = "ed25519",
    init_extra: tuple[str, ...] = (),
) -> Library:
    """A store with alice (admin), pete (publisher), anna (approver), rita (reader)."""
    pp = tmp / "passphrase"
    pp.write_text(PASSPHRASE + "\n")
    store, certs = tmp / "store", tmp / "certs"
    hvguard(
        "library",
        "init",
        store,
        "--admin",
        "alice",
        "--passphrase-file",
        pp,
        "--cert-out",
        certs,
        "--guest-inspection",
        guest_inspection,
        "--signing-key-type",
        algorithm,
        *init_extra,
        check=True,
    )
    for name, role in (("pete", "publisher"), ("anna", "approver"), ("rita", "reader")):
        hvguard(
            "library",
            "user",
            "add",
            store,
            name,
            "--role",
            role,
            "--cert-out",
            certs,
            "--passphrase-file",
            pp,
            check=True,
        )
        hvguard("library", "grant", store, name, "--group", "*", "--passphrase-file", pp, check=True)
    return Library(store, certs, "", tmp / "server-ca.pem", pp)


def start_server(
    lib: Library, tmp: Path, *, profile: Path | None = None, extra: tuple[str, ...] = ()
) -> Iterator[Library]:
    """Run ``library serve`` on 127.0.0.1 port 0 with a trustme server certificate; stop it by PID."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(lib.server_ca))
    tls_cert, tls_key = tmp / "server.crt", tmp / "server.key"
    cert.cert_chain_pems[0].write_to_path(str(tls_cert))
    cert.private_key_pem.write_to_path(str(tls_key))
    args = [
        "library",
        "serve",
        str(lib.store),
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        str(tls_cert),
        "--tls-key",
        str(tls_key),
        "--passphrase-file",
        str(lib.passphrase),
        "--spool",
        str(tmp / "spool"),
    ]
    if profile is not None:
        args += ["--profile", str(profile)]
    args += list(extra)
    (tmp / "spool").mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hvguard", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("https://"):
        proc.kill()
        raise AssertionError(
            f"serve did not print its URL: {line!r} {proc.stderr.read() if proc.stderr else ''}"
        )
    lib.url, lib.proc = line, proc
    try:
        yield lib
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
