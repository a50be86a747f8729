"""``library regate`` under changing gate profiles: quarantine, return from quarantine with a new signed
manifest, re-signing when the manifest names an older profile, the old manifests kept. A real ``library
serve`` (restarted with each profile), real qemu-img and debugfs, a guest disk built with mkfs.ext4 -d."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from library_env import Library, ext4_image, hvguard, make_store, need, start_server

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

LENIENT = (
    "library_gate: 1\nfile_rules:\n  - id: no-backdoor\n    path: /backdoor.sh\n    must_not_exist: true\n"
)
STRICT = "library_gate: 1\nfile_rules:\n  - id: no-marker\n    path: /marker.txt\n    must_not_exist: true\n"


@contextmanager
def _serving(lib: Library, tmp: Path, profile: Path | None) -> Iterator[Library]:
    gen = start_server(lib, tmp, profile=profile)
    next(gen)
    try:
        yield lib
    finally:
        next(gen, None)


def _regate(lib: Library, admin: str) -> dict[str, list[str]]:
    """``regate`` as ``admin`` (each call by another administrator: a TOTP code is good once per step)."""
    out = hvguard(
        "library", "regate", lib.url, *lib.client(admin), "--totp-file", lib.certs / f"{admin}.totp"
    )
    assert out.returncode == 0, out.stderr
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    return {r[0]: r[3:] for r in rows}


def _pull(lib: Library, image_id: str, out: Path) -> dict[str, object]:
    pulled = hvguard("library", "pull", lib.url, image_id, "--output", out, "--force", *lib.client("rita"))
    assert pulled.returncode == 0, pulled.stderr
    envelope = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    pub = out.with_name("signing.pub")
    pub.write_bytes(hvguard("library", "public-key", lib.store, check=True).stdout.encode())
    verified = hvguard(
        "library",
        "verify",
        out,
        "--manifest",
        out.with_name(out.name + ".manifest.json"),
        "--public-key",
        pub,
    )
    assert verified.returncode == 0, verified.stderr
    return dict(envelope)


def test_regate_restores_and_resigns_under_the_current_profile(tmp_path: Path) -> None:
    need("qemu-img", "mkfs.ext4", "debugfs")
    lib = make_store(tmp_path)
    for admin in ("bob", "carl", "dora"):
        hvguard(
            "library", "user", "add", lib.store, admin, "--role", "admin", "--cert-out", lib.certs,
            "--passphrase-file", lib.passphrase, check=True,
        )  # fmt: skip
    lenient, strict = tmp_path / "lenient.yaml", tmp_path / "strict.yaml"
    lenient.write_text(LENIENT)
    strict.write_text(STRICT)
    lenient_sha = hashlib.sha256(LENIENT.encode()).hexdigest()
    image = ext4_image(tmp_path, "g")
    with _serving(lib, tmp_path, None):
        pushed = [
            hvguard(
                "library", "push", lib.url, image, "--name", "linux/app", "--version", v, *lib.client("pete")
            )
            for v in ("1", "2")
        ]
        approved, pending = (p.stdout.strip() for p in pushed)
        hvguard("library", "approve", lib.url, approved, *lib.client("anna"), check=True)
        original = _pull(lib, approved, tmp_path / "first.img")

    # still passes, but the manifest names the built-in profile: re-signed under the new one
    with _serving(lib, tmp_path, lenient):
        rows = _regate(lib, "alice")
        assert rows[approved] == ["pass", "approved", "re-signed"]
        assert rows[pending] == ["pass", "pending", "-"]  # nothing signed yet: nothing to re-sign
        resigned = _pull(lib, approved, tmp_path / "second.img")
        assert _regate(lib, "bob")[approved] == ["pass", "approved", "-"]  # already under this profile
    m0, m1 = original["manifest"], resigned["manifest"]
    assert isinstance(m0, dict) and isinstance(m1, dict)
    assert m1["gate"]["profile_sha256"] == lenient_sha != m0["gate"]["profile_sha256"]
    assert (m1["approver"], m1["approved_at"], m1["sha256"]) == (
        m0["approver"],
        m0["approved_at"],
        m0["sha256"],
    )
    assert m1["resigned_by"] == "alice" and "resigned_by" not in m0

    # fails under the strict profile: quarantined, no check-out
    with _serving(lib, tmp_path, strict):
        rows = _regate(lib, "carl")
        assert rows[approved] == ["FAIL", "quarantined", "-"] and rows[pending] == [
            "FAIL",
            "quarantined",
            "-",
        ]
        refused = hvguard(
            "library", "pull", lib.url, approved, "--output", tmp_path / "x", *lib.client("rita")
        )
        assert refused.returncode == 1 and "quarantined" in refused.stderr

    # passes again: each returns to its status; the approved one with a new signed manifest
    with _serving(lib, tmp_path, lenient):
        rows = _regate(lib, "dora")
        assert rows[approved] == ["pass", "approved", "re-signed"]
        assert rows[pending] == ["pass", "pending", "-"]
        back = _pull(lib, approved, tmp_path / "third.img")
        status = json.loads(hvguard("library", "status", lib.url, *lib.client("rita"), check=True).stdout)
        assert status["images"]["failing_gate"] == [] and status["images"]["by_status"] == {
            "approved": 1,
            "pending": 1,
        }
    m2 = back["manifest"]
    assert isinstance(m2, dict)
    assert m2["gate"]["profile_sha256"] == lenient_sha and m2["resigned_by"] == "dora"
    assert back["signature"] != resigned["signature"]

    # the replaced manifests are kept as they were, and every step is in the audit trail
    with sqlite3.connect(lib.store / "library.sqlite3") as db:
        kept = db.execute(
            "SELECT image_id, manifest, reason FROM library_superseded_manifests ORDER BY id"
        ).fetchall()
    assert [(i, json.loads(m), r.split(" ")[0]) for i, m, r in kept] == [
        (approved, original, "gate"),
        (approved, resigned, "back"),
    ]
    records = [json.loads(line) for line in (lib.store / "audit.log").read_text().splitlines()]
    trail = [
        (r["actor"], r["action"], r["outcome"])
        for r in records
        if r["subject"] == approved and r["action"] != "pull"
    ]
    assert trail[-6:] == [
        ("alice", "regate", "ok"),
        ("alice", "resign", "ok"),
        ("bob", "regate", "ok"),
        ("carl", "regate", "quarantined"),
        ("dora", "regate", "restored"),
        ("dora", "resign", "ok"),
    ]
    assert hvguard("library", "audit", "verify", lib.store).returncode == 0
