"""The image library's store: encryption at rest, key slots, passphrase strength, users, grants, audit."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import pytest

from hvguard.services.library import crypto
from hvguard.services.library.store import StoreError, check_image_name, open_store
from library_env import PASSPHRASE, hvguard, make_store


def test_blob_round_trip_over_several_chunks() -> None:
    key = crypto.new_key()
    data = os.urandom(crypto.CHUNK * 2 + 123)
    out = io.BytesIO()
    w = crypto.BlobWriter(key, out)
    for i in range(0, len(data), 70_000):
        w.write(data[i : i + 70_000])
    w.close()
    assert data not in out.getvalue()
    assert b"".join(crypto.read_blob(key, io.BytesIO(out.getvalue()))) == data


@pytest.mark.parametrize(
    "pieces",
    [
        [crypto.CHUNK],
        [crypto.CHUNK, crypto.CHUNK],
        [crypto.CHUNK - 1, 1, crypto.CHUNK],
        [5, crypto.CHUNK * 3, 0, crypto.CHUNK - 5],
        [crypto.CHUNK * 8],
        [crypto.CHUNK + 1, crypto.CHUNK * 2 - 1],
    ],
)
def test_blob_chunking_is_the_same_whatever_the_write_sizes(pieces: list[int]) -> None:
    # Whole chunks are encrypted straight from the caller's buffer and only tails are buffered: the blob
    # must still be full chunks with the final (possibly full) chunk last, as one write would give.
    key = crypto.new_key()
    data = os.urandom(sum(pieces))
    out = io.BytesIO()
    w = crypto.BlobWriter(key, out)
    at = 0
    for n in pieces:
        w.write(data[at : at + n])
        at += n
    w.close()
    blob = out.getvalue()
    full, tail = divmod(len(data), crypto.CHUNK)
    n_chunks = full + (1 if tail or not full else 0)
    assert len(blob) == crypto.HEADER_BYTES + len(data) + n_chunks * crypto.TAG_BYTES
    assert _read(key, blob) == data


def _blob(key: bytes, data: bytes) -> bytes:
    out = io.BytesIO()
    w = crypto.BlobWriter(key, out)
    w.write(data)
    w.close()
    return out.getvalue()


def _read(key: bytes, blob: bytes) -> bytes:
    return b"".join(crypto.read_blob(key, io.BytesIO(blob)))


def test_blob_refuses_tamper_truncation_reorder_and_wrong_key() -> None:
    key = crypto.new_key()
    data = os.urandom(crypto.CHUNK * 3)  # exactly three full chunks: the last one is the final one
    blob = _blob(key, data)
    size = crypto.CHUNK + crypto.TAG_BYTES
    h = crypto.HEADER_BYTES
    flipped = bytearray(blob)
    flipped[h + 5000] ^= 1
    with pytest.raises(crypto.CryptoError, match="chunk 0"):
        _read(key, bytes(flipped))
    # cut after a whole chunk: chunk 1 is not marked final, so it does not authenticate as the last
    with pytest.raises(crypto.CryptoError, match="chunk 1"):
        _read(key, blob[: h + 2 * size])
    chunks = [blob[h + i * size : h + (i + 1) * size] for i in range(3)]
    with pytest.raises(crypto.CryptoError):
        _read(key, blob[:h] + chunks[1] + chunks[0] + chunks[2])
    with pytest.raises(crypto.CryptoError, match="wrong key"):
        _read(crypto.new_key(), blob)
    assert _read(key, _blob(key, b"")) == b""


def test_weak_passphrases_are_refused() -> None:
    with pytest.raises(crypto.CryptoError, match="too short"):
        crypto.check_passphrase_strength("Tr0ub4dor&3")
    with pytest.raises(crypto.CryptoError, match="too weak"):
        crypto.check_passphrase_strength("passwordpassword1")
    crypto.check_passphrase_strength(PASSPHRASE)


def test_init_writes_owner_only_files_and_refuses_weak_passphrase(tmp_path: Path) -> None:
    weak = tmp_path / "weak"
    weak.write_text("password1234\n")
    proc = hvguard(
        "library",
        "init",
        tmp_path / "s",
        "--admin",
        "alice",
        "--passphrase-file",
        weak,
        "--cert-out",
        tmp_path / "c",
    )
    assert proc.returncode == 2 and "too weak" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert not (tmp_path / "s" / "store.json").exists()
    lib = make_store(tmp_path)
    for f in [*lib.store.rglob("*"), *lib.certs.iterdir()]:
        mode = stat.S_IMODE(f.stat().st_mode)
        assert mode & 0o077 == 0, f"{f} is {oct(mode)}"
    for ext in (".crt", ".key", ".totp"):
        assert (lib.certs / f"alice{ext}").is_file()
    assert b"PRIVATE KEY" not in (lib.store / "signing.key.sealed").read_bytes()
    assert b"PRIVATE KEY" not in (lib.store / "ca.key.sealed").read_bytes()
    # the same store twice: nothing overwritten
    again = hvguard(
        "library",
        "init",
        lib.store,
        "--admin",
        "alice",
        "--passphrase-file",
        lib.passphrase,
        "--cert-out",
        tmp_path / "c2",
    )
    assert again.returncode == 2 and "not overwritten" in again.stderr


def test_keyslots_wrong_passphrase_lost_slot_and_last_slot(tmp_path: Path) -> None:
    lib = make_store(tmp_path)
    second = tmp_path / "second"
    second.write_text("violet thunder kettle marmalade 1987\n")
    wrong = tmp_path / "wrong"
    wrong.write_text("not the right passphrase at all\n")
    hvguard(
        "library",
        "keyslot",
        "add",
        lib.store,
        "bob",
        "--passphrase-file",
        lib.passphrase,
        "--new-passphrase-file",
        second,
        check=True,
    )
    listed = json.loads(hvguard("library", "keyslot", "list", lib.store, "--json", check=True).stdout)
    assert [s["name"] for s in listed] == ["alice", "bob"] and listed[0]["kdf"] == "argon2id"
    assert open_store(lib.store, "violet thunder kettle marmalade 1987").id
    proc = hvguard("library", "user", "list", lib.store, "--passphrase-file", wrong)
    assert proc.returncode == 2 and "wrong passphrase" in proc.stderr and len(proc.stderr.splitlines()) == 1
    hvguard("library", "keyslot", "remove", lib.store, "bob", "--passphrase-file", lib.passphrase, check=True)
    with pytest.raises(StoreError, match="wrong passphrase"):
        open_store(lib.store, "violet thunder kettle marmalade 1987")
    last = hvguard("library", "keyslot", "remove", lib.store, "alice", "--passphrase-file", lib.passphrase)
    assert last.returncode == 2 and "last key slot" in last.stderr
    (lib.store / "keyslots" / "alice.json").unlink()  # a lost slot file
    lost = hvguard("library", "user", "list", lib.store, "--passphrase-file", lib.passphrase)
    assert lost.returncode == 2 and "no key slot left" in lost.stderr


def test_grants_deny_inside_permit(tmp_path: Path) -> None:
    lib = make_store(tmp_path)
    pp = lib.passphrase
    hvguard(
        "library",
        "user",
        "add",
        lib.store,
        "dora",
        "--role",
        "reader",
        "--cert-out",
        lib.certs,
        "--passphrase-file",
        pp,
        check=True,
    )
    hvguard("library", "grant", lib.store, "dora", "--group", "linux", "--passphrase-file", pp, check=True)
    hvguard(
        "library",
        "grant",
        lib.store,
        "dora",
        "--group",
        "linux/secret",
        "--deny",
        "--passphrase-file",
        pp,
        check=True,
    )
    store = open_store(lib.store, PASSPHRASE)
    assert store.may_access("dora", "reader", "linux/debian12")
    assert store.may_access("dora", "reader", "linux/web/nginx")
    assert not store.may_access("dora", "reader", "linux/secret/db")
    assert not store.may_access("dora", "reader", "windows/2022")
    assert store.may_access("alice", "admin", "linux/secret/db")
    users = json.loads(
        hvguard("library", "user", "list", lib.store, "--passphrase-file", pp, "--json", check=True).stdout
    )
    dora = next(u for u in users if u["name"] == "dora")
    assert dora["grants"] == [{"group": "linux", "deny": False}, {"group": "linux/secret", "deny": True}]
    hvguard("library", "user", "remove", lib.store, "dora", "--passphrase-file", pp, check=True)
    assert not store.may_access("dora", "reader", "linux/debian12")


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/../b", "/abs", "a//b", "", "x/.", "a b"])
def test_image_names_with_path_tricks_are_refused(name: str) -> None:
    with pytest.raises(StoreError, match="invalid image name"):
        check_image_name(name)


def test_audit_verify_detects_edit_delete_reorder_and_truncation(tmp_path: Path) -> None:
    lib = make_store(tmp_path)
    log = lib.store / "audit.log"
    assert hvguard("library", "audit", "verify", lib.store).returncode == 0
    original = log.read_bytes()
    lines = original.splitlines(keepends=True)
    assert len(lines) >= 8
    edited = lines[2].replace(b'"outcome":"ok"', b'"outcome":"no"')
    cases = {
        "edited": b"".join([*lines[:2], edited, *lines[3:]]),
        "deleted": b"".join([*lines[:3], *lines[4:]]),
        "reordered": b"".join([*lines[:2], lines[3], lines[2], *lines[4:]]),
        "truncated": b"".join(lines[:-1]),
    }
    for what, content in cases.items():
        log.write_bytes(content)
        proc = hvguard("library", "audit", "verify", lib.store)
        assert proc.returncode == 1, what
        assert "audit log tampered" in proc.stderr, what
    log.write_bytes(original)
    assert hvguard("library", "audit", "verify", lib.store).returncode == 0
