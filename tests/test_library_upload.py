"""Check-in data path, both ways a ``library serve`` reads an upload: off the TLS connection in a worker
thread (the default) and through aiohttp's stream (``HVGUARD_LIBRARY_DETACHED_UPLOADS=0``). A real
server over mutual TLS on loopback; images of several batches with a partial tail."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from library_env import Library, hvguard, make_store, need, start_server

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

MIB = 1024 * 1024


@pytest.fixture(params=["detached", "stream"])
def lib(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Library]:
    need("qemu-img")
    monkeypatch.setenv("HVGUARD_LIBRARY_DETACHED_UPLOADS", "1" if request.param == "detached" else "0")
    yield from start_server(make_store(tmp_path, guest_inspection="off"), tmp_path)


def _connection(lib: Library) -> http.client.HTTPSConnection:
    ctx = ssl.create_default_context(cafile=str(lib.server_ca))
    ctx.load_cert_chain(str(lib.certs / "pete.crt"), str(lib.certs / "pete.key"))
    host, port = lib.url.removeprefix("https://").rsplit(":", 1)
    return http.client.HTTPSConnection(host, int(port), context=ctx, timeout=60)


def _leftovers(lib: Library, tmp_path: Path) -> list[Path]:
    return [p for d in (lib.store / "tmp", lib.store / "blobs", tmp_path / "spool") for p in d.rglob("*")]


def test_an_image_of_several_batches_round_trips(lib: Library, tmp_path: Path) -> None:
    image = tmp_path / "data.raw"
    image.write_bytes(os.urandom(19 * MIB + 12345))  # two 8 MiB batches and a partial third
    pushed = hvguard(
        "library", "push", lib.url, image, "--name", "data/disk", "--version", "1", *lib.client("pete")
    )
    assert pushed.returncode == 0, pushed.stderr
    image_id = pushed.stdout.strip()
    listed = json.loads(hvguard("library", "list", lib.url, "--json", *lib.client("pete"), check=True).stdout)
    assert [(r["sha256"], r["size"]) for r in listed] == [
        (hashlib.sha256(image.read_bytes()).hexdigest(), image.stat().st_size)
    ]
    hvguard("library", "approve", lib.url, image_id, *lib.client("anna"), check=True)
    out = tmp_path / "pulled.raw"
    hvguard("library", "pull", lib.url, image_id, "--output", out, *lib.client("rita"), check=True)
    assert out.read_bytes() == image.read_bytes()
    assert any(p.is_file() for p in (lib.store / "blobs").rglob("*"))
    assert not list((tmp_path / "spool").iterdir())


def test_an_upload_cut_short_stores_nothing(lib: Library, tmp_path: Path) -> None:
    conn = _connection(lib)
    conn.putrequest("PUT", "/v1/images?name=data/cut&version=1")
    conn.putheader("Content-Length", str(20 * MIB))
    conn.endheaders()
    conn.send(os.urandom(9 * MIB))
    conn.close()  # the client goes away mid-upload
    deadline = time.monotonic() + 30  # the server notices when it reads the end of the connection
    while _leftovers(lib, tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    listed = json.loads(hvguard("library", "list", lib.url, "--json", *lib.client("pete"), check=True).stdout)
    assert listed == [] and _leftovers(lib, tmp_path) == []
    status = json.loads(hvguard("library", "status", lib.url, *lib.client("rita"), check=True).stdout)
    assert status["spool"]["in_use_bytes"] == 0


def test_the_server_keeps_serving_after_a_push(lib: Library, tmp_path: Path) -> None:
    conn = _connection(lib)
    body = os.urandom(3 * MIB)
    conn.request("PUT", "/v1/images?name=data/one&version=1", body=body)
    answer = conn.getresponse()
    assert answer.status == 201, answer.read()
    assert json.loads(answer.read())["sha256"] == hashlib.sha256(body).hexdigest()
    # a further request works: on the same connection if the server kept it, else on a new one
    if answer.getheader("Connection", "").lower() == "close":
        conn.close()
        conn = _connection(lib)
    conn.request("GET", "/v1/images")
    again = conn.getresponse()
    assert again.status == 200 and [r["name"] for r in json.loads(again.read())] == ["data/one"]
    conn.close()
