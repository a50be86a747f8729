"""Administrative calls: a TOTP code is accepted once (RFC 6238 §5.2), across restarts and processes.

A real ``library serve`` over mutual TLS on loopback; the codes come from the administrator's real
``alice.totp`` seed. Data disks with guest inspection off keep the pushes cheap.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from library_env import PASSPHRASE, Library, hvguard, make_store, need, start_server

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture
def lib(tmp_path: Path) -> Iterator[Library]:
    need("qemu-img")
    yield from start_server(make_store(tmp_path, guest_inspection="off"), tmp_path)


def _image(lib: Library, tmp_path: Path, version: str) -> str:
    disk = tmp_path / f"data{version}.raw"
    disk.write_bytes(b"\0" * 65536)
    pushed = hvguard(
        "library", "push", lib.url, disk, "--name", "data/disk", "--version", version, *lib.client("pete")
    )
    assert pushed.returncode == 0, pushed.stderr
    return pushed.stdout.strip()


def _totp(lib: Library) -> Any:
    import pyotp

    return pyotp.TOTP((lib.certs / "alice.totp").read_text().strip())


def _delete(lib: Library, image_id: str, totp_file: Path, *pre: str) -> subprocess.CompletedProcess[str]:
    return hvguard(
        *pre, "library", "delete", lib.url, image_id, *lib.client("alice"), "--totp-file", totp_file
    )


def test_a_typed_code_is_accepted_once_even_after_a_restart(lib: Library, tmp_path: Path) -> None:
    from hvguard.services.library.client import Client, Credentials, RefusedError

    first, second = _image(lib, tmp_path, "1"), _image(lib, tmp_path, "2")
    typed = tmp_path / "typed.totp"
    typed.write_text(_totp(lib).now() + "\n")
    ok = _delete(lib, first, typed)
    assert ok.returncode == 0, ok.stderr
    replay = _delete(lib, second, typed)
    assert replay.returncode == 1
    assert replay.stderr.strip() == "hvguard: refused: TOTP code already used; wait for the next code"
    # the reason is machine-readable, and the status is that of a wrong code
    code = typed.read_text().strip()
    client = Client(lib.url, Credentials(*(Path(a) for a in lib.client("alice")[1::2]), totp=code))
    with pytest.raises(RefusedError) as refused:
        client.json("DELETE", f"/v1/images/{second}", admin=True)
    assert (refused.value.status, refused.value.kind) == (403, "totp-reused")
    wrong = Client(lib.url, Credentials(*(Path(a) for a in lib.client("alice")[1::2]), totp="000000"))
    with pytest.raises(RefusedError) as bad:
        wrong.json("DELETE", f"/v1/images/{second}", admin=True)
    assert (bad.value.status, bad.value.kind) == (403, "totp-invalid")
    # a second server process on the same database (as after a restart) knows the step was used
    gen = start_server(lib, tmp_path)  # (a new server certificate too: the first server is not used again)
    next(gen)
    try:
        again = _delete(lib, second, typed)
        assert again.returncode == 1 and "already used" in again.stderr
        listed = hvguard("library", "list", lib.url, "--json", *lib.client("alice"), check=True).stdout
        assert [r["id"] for r in json.loads(listed)] == [second]  # the replays deleted nothing
    finally:
        next(gen, None)
    records = [json.loads(line) for line in (lib.store / "audit.log").read_text().splitlines()]
    reused = [r for r in records if r["action"] == "delete" and "reused" in r["detail"]]
    assert len(reused) == 3 and all(r["outcome"] == "refused" and r["actor"] == "alice" for r in reused)


def test_two_admin_calls_in_one_step_with_the_secret_both_succeed(lib: Library, tmp_path: Path) -> None:
    first, second = _image(lib, tmp_path, "1"), _image(lib, tmp_path, "2")
    if time.time() % 30 > 10:  # start early in a step so that both calls fall into it
        time.sleep(30 - time.time() % 30 + 0.2)
    secret = lib.certs / "alice.totp"
    one = _delete(lib, first, secret, "-v")
    two = _delete(lib, second, secret, "-v")
    assert one.returncode == 0 and "waiting" not in one.stderr, one.stderr
    assert two.returncode == 0, two.stderr
    assert "TOTP code already used in this 30-second step: waiting" in two.stderr
    listed = hvguard("library", "list", lib.url, "--json", *lib.client("alice"), check=True).stdout
    assert json.loads(listed) == []


def test_one_step_is_accepted_once_under_concurrent_requests(tmp_path: Path) -> None:
    from hvguard.services.library.store import open_store

    need("qemu-img")
    lib = make_store(tmp_path, guest_inspection="off")
    stores = [open_store(lib.store, PASSPHRASE) for _ in range(2)]  # two "server processes"
    step = int(time.time()) // 30
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def race(i: int) -> None:
        barrier.wait()
        results.append(stores[i % 2].accept_totp_step("alice", step))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert not stores[0].accept_totp_step("alice", step - 1)  # an older step is a replay too
    assert stores[1].accept_totp_step("alice", step + 1)
    assert stores[0].accept_totp_step("anna", step)  # per user
