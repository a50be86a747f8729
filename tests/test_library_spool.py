"""``library serve --spool-max``: concurrent check-ins share one spool cap; a push that would exceed it is
refused (507, one line, exit 1) before anything is stored. A real ``library serve`` over mutual TLS; one
push is held half-sent by a raw HTTPS client while the other is made with ``hvguard library push``."""

from __future__ import annotations

import http.client
import json
import ssl
import time
from pathlib import Path

import pytest

from library_env import Library, hvguard, make_store, need, start_server

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

MIB = 1024 * 1024


def _status(lib: Library) -> dict[str, int]:
    out = hvguard("library", "status", lib.url, *lib.client("rita"), check=True).stdout
    return dict(json.loads(out)["spool"])


def _stored(lib: Library) -> tuple[list[str], list[Path]]:
    out = hvguard("library", "list", lib.url, "--json", *lib.client("alice"), check=True).stdout
    blobs = sorted(p for p in (lib.store / "blobs").rglob("*") if p.is_file())
    return sorted(f"{r['name']}@{r['version']}" for r in json.loads(out)), blobs


def _push(lib: Library, image: Path, name: str) -> tuple[int, str, str]:
    out = hvguard("library", "push", lib.url, image, "--name", name, "--version", "1", *lib.client("pete"))
    return out.returncode, out.stdout.strip(), out.stderr.strip()


def test_concurrent_pushes_share_the_spool_cap(tmp_path: Path) -> None:
    need("qemu-img")
    lib = make_store(tmp_path, guest_inspection="off")
    small, big = tmp_path / "small.raw", tmp_path / "big.raw"
    small.write_bytes(b"\1" * 2 * MIB)
    big.write_bytes(b"\2" * 4 * MIB)
    gen = start_server(lib, tmp_path, extra=("--spool-max", "3M"))
    next(gen)
    try:
        assert _status(lib) == {"max_bytes": 3 * MIB, "in_use_bytes": 0}
        # push A: headers and half its body sent, then held
        ctx = ssl.create_default_context(cafile=str(lib.server_ca))
        ctx.load_cert_chain(str(lib.certs / "pete.crt"), str(lib.certs / "pete.key"))
        host, port = lib.url.removeprefix("https://").rsplit(":", 1)
        held = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=60)
        held.putrequest("PUT", "/v1/images?name=data/held&version=1")
        held.putheader("Content-Length", str(2 * MIB))
        held.endheaders()
        held.send(b"\3" * MIB)
        deadline = time.monotonic() + 30
        while _status(lib)["in_use_bytes"] != 2 * MIB:
            assert time.monotonic() < deadline, "the held push never reserved its size"
            time.sleep(0.2)

        # push B needs 2 MiB of the 1 MiB left: refused in one line, exit 1, nothing stored
        code, out, err = _push(lib, small, "data/second")
        assert code == 1 and out == ""
        assert err.startswith("hvguard: refused: the gate's spool is full: 2097152 of 3145728 bytes")
        assert "\n" not in err
        # larger than the whole spool: refused the same way, saying so
        code, _, err = _push(lib, big, "data/big")
        assert code == 1 and "larger than the gate's spool (--spool-max 3145728)" in err
        assert _stored(lib) == ([], [])

        # push A completes; its reservation is given back, and B goes through
        held.send(b"\3" * MIB)
        answer = held.getresponse()
        assert answer.status == 201, answer.read()
        held.close()
        assert _status(lib)["in_use_bytes"] == 0
        code, out, err = _push(lib, small, "data/second")
        assert code == 0, err
        names, blobs = _stored(lib)
        assert names == ["data/held@1", "data/second@1"] and len(blobs) == 2
        assert _status(lib)["in_use_bytes"] == 0
    finally:
        next(gen, None)
    records = [json.loads(line) for line in (lib.store / "audit.log").read_text().splitlines()]
    refused = [r for r in records if r["action"] == "push" and r["outcome"] == "refused"]
    assert [r["subject"] for r in refused] == ["data/second@1", "data/big@1"]
    assert all("spool" in r["detail"] for r in refused)


def test_spool_max_must_be_a_size(tmp_path: Path) -> None:
    need("qemu-img")
    lib = make_store(tmp_path, guest_inspection="off")
    with pytest.raises(AssertionError, match="--spool-max 'lots'"):
        next(start_server(lib, tmp_path, extra=("--spool-max", "lots")))
