"""The image library end to end: a real ``library serve`` over mutual TLS on loopback, real qemu-img and
debugfs, guest disks built with mkfs.ext4 -d. Every refusal leaves nothing stored."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from library_env import MARKER, PASSPHRASE, Library, ext4_image, hvguard, make_store, need, start_server

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Library]:
    need("qemu-img", "mkfs.ext4", "debugfs")
    tmp = tmp_path_factory.mktemp("lib")
    yield from start_server(make_store(tmp), tmp)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("img")
    return {
        "good": ext4_image(tmp, "good"),
        "good_raw_gpt_less": ext4_image(tmp, "goodpart", fmt="raw", partitioned=True),
        "bad": ext4_image(
            tmp, "bad", shadow="root::19000:0:::::\n", host_keys=True, sshd="PermitRootLogin yes\n"
        ),
    }


def _stored(lib: Library) -> tuple[list[str], list[Path]]:
    """Image names the admin sees, and the blob files on disk."""
    out = hvguard("library", "list", lib.url, "--json", *lib.client("alice"), check=True).stdout
    return sorted(f"{r['name']}@{r['version']}" for r in json.loads(out)), sorted(
        p for p in (lib.store / "blobs").rglob("*") if p.is_file()
    )


def _push(
    lib: Library, image: Path, name: str, version: str, user: str = "pete"
) -> subprocess.CompletedProcess[str]:
    return hvguard("library", "push", lib.url, image, "--name", name, "--version", version, *lib.client(user))


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _approved(lib: Library, image: Path, name: str, version: str = "1") -> str:
    pushed = _push(lib, image, name, version)
    assert pushed.returncode == 0, pushed.stderr
    image_id = pushed.stdout.strip()
    hvguard("library", "approve", lib.url, image_id, *lib.client("anna"), check=True)
    return image_id


def test_push_approve_pull_and_offline_verify(lib: Library, images: dict[str, Path], tmp_path: Path) -> None:
    pushed = _push(lib, images["good"], "linux/debian12", "1.0")
    assert pushed.returncode == 0, pushed.stderr
    image_id = pushed.stdout.strip()
    assert len(pushed.stdout.splitlines()) == 1 and len(image_id) == 36  # the UUID is the only stdout line
    # not approved yet: nothing signed to check out
    out = tmp_path / "disk.qcow2"
    unsigned = hvguard("library", "pull", lib.url, image_id, "--output", out, *lib.client("rita"))
    assert unsigned.returncode == 1 and "no approval signature" in _one_line(unsigned)
    assert not out.exists()
    own = hvguard("library", "approve", lib.url, image_id, *lib.client("pete"))
    assert own.returncode == 1 and "may not approve" in _one_line(own)
    hvguard("library", "approve", lib.url, image_id, *lib.client("anna"), check=True)
    pulled = hvguard("library", "pull", lib.url, image_id, "--output", out, *lib.client("rita"))
    assert pulled.returncode == 0, pulled.stderr
    assert out.read_bytes() == images["good"].read_bytes()
    envelope = json.loads((tmp_path / "disk.qcow2.manifest.json").read_text())
    m = envelope["manifest"]
    assert (m["name"], m["version"], m["publisher"], m["approver"]) == (
        "linux/debian12",
        "1.0",
        "pete",
        "anna",
    )
    assert m["gate"]["passed"] and len(m["gate"]["profile_sha256"]) == 64
    assert {r["rule"] for r in m["gate"]["results"]} >= {
        "no-backing-file",
        "no-empty-password",
        "not-corrupt",
    }
    pub = tmp_path / "library.pub"
    pub.write_text(hvguard("library", "public-key", lib.store, check=True).stdout)
    ok = hvguard(
        "library", "verify", out, "--manifest", tmp_path / "disk.qcow2.manifest.json", "--public-key", pub
    )
    assert ok.returncode == 0, ok.stderr
    # an existing output is not overwritten without --force
    again = hvguard("library", "pull", lib.url, image_id, "--output", out, *lib.client("rita"))
    assert again.returncode == 2 and "not overwritten" in _one_line(again)


def test_store_holds_no_plaintext_and_spool_is_emptied(lib: Library, images: dict[str, Path]) -> None:
    assert MARKER in images["good"].read_bytes()
    _approved(lib, images["good"], "linux/marker")
    for f in lib.store.rglob("*"):
        if f.is_file():
            assert MARKER not in f.read_bytes(), f"plaintext of the image in {f}"
    assert list((lib.store / "tmp").iterdir()) == []
    assert list((lib.store.parent / "spool").iterdir()) == []


def test_gate_refuses_and_names_each_rule_nothing_stored(lib: Library, images: dict[str, Path]) -> None:
    before = _stored(lib)
    refused = _push(lib, images["bad"], "linux/bad", "1")
    assert refused.returncode == 1 and refused.stdout == ""
    line = _one_line(refused)
    for rule in ("no-empty-password", "no-ssh-host-keys", "sshd-permit-root-login-no"):
        assert rule in line
    assert _stored(lib) == before
    assert list((lib.store.parent / "spool").iterdir()) == []


def test_backing_file_pointing_at_etc_shadow_is_refused(lib: Library, tmp_path: Path) -> None:
    evil = tmp_path / "evil.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/shadow", "-F", "raw", str(evil), "1M"],
        check=True,
    )
    before = _stored(lib)
    refused = _push(lib, evil, "linux/evil", "1")
    assert (
        refused.returncode == 1
        and "no-backing-file" in _one_line(refused)
        and "/etc/shadow" in refused.stderr
    )
    assert _stored(lib) == before


def test_other_formats_and_file_systems(lib: Library, images: dict[str, Path], tmp_path: Path) -> None:
    vmdk = tmp_path / "d.vmdk"
    subprocess.run(
        ["qemu-img", "convert", "-f", "qcow2", "-O", "vmdk", str(images["good"]), str(vmdk)], check=True
    )
    refused = _push(lib, vmdk, "linux/vmdk", "1")
    assert refused.returncode == 1 and "allowed-format" in _one_line(refused) and "vmdk" in refused.stderr
    blank = tmp_path / "blank.raw"
    blank.write_bytes(b"\0" * (4 * 1024 * 1024))
    unsupported = _push(lib, blank, "linux/blank", "1")
    assert unsupported.returncode == 1 and "guest-inspection-unsupported" in _one_line(unsupported)
    # an ext4 root inside an MBR partition of a raw disk is found and inspected
    ok = _push(lib, images["good_raw_gpt_less"], "linux/partitioned", "1")
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize("name", ["../../etc/passwd", "linux/../../x"])
def test_path_traversal_names_are_refused(lib: Library, images: dict[str, Path], name: str) -> None:
    before = _stored(lib)
    proc = _push(lib, images["good"], name, "1")
    assert proc.returncode == 2 and "invalid image name" in _one_line(proc)
    # the server refuses it too (a client that skips the check)
    from hvguard.services.library.client import Client, Credentials, RefusedError

    client = Client(lib.url, Credentials(lib.certs / "pete.crt", lib.certs / "pete.key", lib.server_ca))
    with pytest.raises(RefusedError) as err:
        client.push(images["good"], name, "1")
    assert err.value.status == 400 and "invalid image name" in err.value.reason
    assert _stored(lib) == before


def test_roles_and_duplicates(lib: Library, images: dict[str, Path]) -> None:
    before = _stored(lib)
    reader = _push(lib, images["good"], "linux/reader", "1", user="rita")
    assert reader.returncode == 1 and "may not push" in _one_line(reader)
    assert _stored(lib) == before
    first = _push(lib, images["good"], "linux/dup", "1")
    assert first.returncode == 0
    blobs = _stored(lib)[1]
    twice = _push(lib, images["good"], "linux/dup", "1")
    assert twice.returncode == 1 and "already in the library" in _one_line(twice)
    other_version = _push(lib, images["good"], "linux/dup", "2")
    assert other_version.returncode == 0
    assert _stored(lib)[1] == blobs  # the same bytes are stored once


def test_client_without_or_with_foreign_certificate_and_plain_http(lib: Library, tmp_path: Path) -> None:
    import trustme

    host, port = lib.url.removeprefix("https://").rsplit(":", 1)
    # no client certificate: the handshake (TLS 1.3: the first read) fails, no HTTP answer
    ctx = ssl.create_default_context(cafile=str(lib.server_ca))
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as s,
        pytest.raises((ssl.SSLError, ConnectionResetError)),
    ):
        s.sendall(b"GET /v1/images HTTP/1.1\r\nHost: x\r\n\r\n")
        data = s.recv(100)
        if not data:
            raise ConnectionResetError("closed")
    # a certificate from another CA
    foreign = trustme.CA().issue_cert("mallory")
    foreign.cert_chain_pems[0].write_to_path(str(tmp_path / "m.crt"))
    foreign.private_key_pem.write_to_path(str(tmp_path / "m.key"))
    proc = hvguard(
        "library",
        "list",
        lib.url,
        "--cert",
        tmp_path / "m.crt",
        "--key",
        tmp_path / "m.key",
        "--ca",
        lib.server_ca,
    )
    assert proc.returncode == 2 and "TLS" in _one_line(proc)
    # plain HTTP to the port: no HTTP answer at all (no plaintext listener)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"GET /v1/images HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = s.recv(100)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"HTTP/")


def test_tampered_blob_and_wrong_key_are_refused(
    lib: Library, images: dict[str, Path], tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    image_id = _approved(lib, images["good"], "linux/tamper")
    other = tmp_path / "other.pub"
    other.write_bytes(
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    out = tmp_path / "x.qcow2"
    wrong = hvguard(
        "library", "pull", lib.url, image_id, "--output", out, "--public-key", other, *lib.client("rita")
    )
    assert wrong.returncode == 1 and "another key" in _one_line(wrong) and not out.exists()
    # good pull, then offline verify with the wrong key and with a changed image
    hvguard("library", "pull", lib.url, image_id, "--output", out, *lib.client("rita"), check=True)
    manifest = tmp_path / "x.qcow2.manifest.json"
    pub = tmp_path / "lib.pub"
    pub.write_text(hvguard("library", "public-key", lib.store, check=True).stdout)
    assert hvguard("library", "verify", out, "--manifest", manifest, "--public-key", other).returncode == 1
    data = bytearray(out.read_bytes())
    data[-1] ^= 0xFF
    out.write_bytes(bytes(data))
    changed = hvguard("library", "verify", out, "--manifest", manifest, "--public-key", pub)
    assert changed.returncode == 1 and "not the signed image" in _one_line(changed)
    envelope = json.loads(manifest.read_text())
    del envelope["signature"]
    manifest.write_text(json.dumps(envelope))
    unsigned = hvguard("library", "verify", out, "--manifest", manifest, "--public-key", pub)
    assert unsigned.returncode == 1 and "not signed" in _one_line(unsigned)
    # flip one byte of the encrypted blob in the store: the pull is refused and writes nothing
    from hvguard.services.library.store import image_rows, open_store

    store = open_store(lib.store, PASSPHRASE)
    row = next(r for r in image_rows(store) if r["id"] == image_id)
    newest = store.blob_path(row["blob"])
    raw = bytearray(newest.read_bytes())
    raw[100] ^= 1
    newest.write_bytes(bytes(raw))
    out2 = tmp_path / "y.qcow2"
    broken = hvguard("library", "pull", lib.url, image_id, "--output", out2, *lib.client("rita"))
    assert broken.returncode == 1 and not out2.exists() and not list(tmp_path.glob(".y.qcow2*"))
    raw[100] ^= 1
    newest.write_bytes(bytes(raw))


def test_grant_deny_inside_permit_over_the_api(lib: Library, images: dict[str, Path], tmp_path: Path) -> None:
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
    hvguard("library", "grant", lib.store, "dora", "--group", "corp", "--passphrase-file", pp, check=True)
    hvguard(
        "library",
        "grant",
        lib.store,
        "dora",
        "--group",
        "corp/secret",
        "--deny",
        "--passphrase-file",
        pp,
        check=True,
    )
    open_id = _approved(lib, images["good"], "corp/web")
    secret_id = _approved(lib, images["good"], "corp/secret/db")
    seen = json.loads(hvguard("library", "list", lib.url, "--json", *lib.client("dora"), check=True).stdout)
    assert [r["name"] for r in seen] == ["corp/web"]
    assert (
        hvguard(
            "library", "pull", lib.url, open_id, "--output", tmp_path / "a", *lib.client("dora")
        ).returncode
        == 0
    )
    denied = hvguard("library", "pull", lib.url, secret_id, "--output", tmp_path / "b", *lib.client("dora"))
    assert denied.returncode == 1 and "no grant" in _one_line(denied) and not (tmp_path / "b").exists()
    # a removed user's certificate stops working at once
    hvguard("library", "user", "remove", lib.store, "dora", "--passphrase-file", pp, check=True)
    gone = hvguard("library", "list", lib.url, *lib.client("dora"))
    assert gone.returncode == 1 and "not a user" in _one_line(gone)


def test_admin_calls_need_totp(lib: Library, images: dict[str, Path], tmp_path: Path) -> None:
    image_id = _approved(lib, images["good"], "linux/todelete")
    no_totp = hvguard("library", "delete", lib.url, image_id, *lib.client("alice"))
    assert no_totp.returncode == 1 and "TOTP" in _one_line(no_totp)
    wrong = tmp_path / "wrong.totp"
    wrong.write_text("000000\n")
    assert (
        hvguard("library", "delete", lib.url, image_id, *lib.client("alice"), "--totp-file", wrong).returncode
        == 1
    )
    publisher = hvguard(
        "library", "delete", lib.url, image_id, *lib.client("pete"), "--totp-file", lib.certs / "pete.totp"
    )
    assert publisher.returncode == 1 and "may not delete" in _one_line(publisher)
    ok = hvguard(
        "library", "delete", lib.url, image_id, *lib.client("alice"), "--totp-file", lib.certs / "alice.totp"
    )
    assert ok.returncode == 0, ok.stderr
    assert "linux/todelete@1" not in _stored(lib)[0]


def test_audit_trail_records_the_session(lib: Library) -> None:
    records = [json.loads(line) for line in (lib.store / "audit.log").read_text().splitlines()]
    actions = {(r["action"], r["outcome"]) for r in records}
    assert {
        ("push", "ok"),
        ("push", "refused"),
        ("approve", "ok"),
        ("approve", "refused"),
        ("pull", "ok"),
        ("delete", "ok"),
        ("delete", "refused"),
    } <= actions
    assert hvguard("library", "audit", "verify", lib.store).returncode == 0


def test_serve_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    need("qemu-img")
    lib = make_store(tmp_path)
    gen = start_server(lib, tmp_path)
    next(gen)
    with pytest.raises(StopIteration):
        next(gen)
    assert lib.proc is not None and lib.proc.returncode == 0


def test_regate_quarantines_under_a_stricter_profile(tmp_path: Path) -> None:
    need("qemu-img", "mkfs.ext4", "debugfs")
    lib = make_store(tmp_path)
    image = ext4_image(tmp_path, "g")
    gen = start_server(lib, tmp_path)
    next(gen)
    image_id = _approved(lib, image, "linux/app")
    next(gen, None)
    strict = tmp_path / "strict.yaml"
    strict.write_text(
        "library_gate: 1\nfile_rules:\n  - id: no-marker\n    path: /marker.txt\n    must_not_exist: true\n"
    )
    gen = start_server(lib, tmp_path, profile=strict)
    next(gen)
    try:
        out = hvguard(
            "library", "regate", lib.url, *lib.client("alice"), "--totp-file", lib.certs / "alice.totp"
        )
        assert out.returncode == 0, out.stderr
        assert "FAIL\tquarantined" in out.stdout
        pulled = hvguard(
            "library", "pull", lib.url, image_id, "--output", tmp_path / "o", *lib.client("rita")
        )
        assert pulled.returncode == 1 and "quarantined" in _one_line(pulled)
        status = json.loads(hvguard("library", "status", lib.url, *lib.client("rita"), check=True).stdout)
        assert [i["id"] for i in status["images"]["failing_gate"]] == [image_id]
    finally:
        next(gen, None)


def test_guest_inspection_off_accepts_a_data_disk(tmp_path: Path) -> None:
    need("qemu-img")
    lib = make_store(tmp_path, guest_inspection="off")
    blank = tmp_path / "data.raw"
    blank.write_bytes(b"\0" * (1024 * 1024))
    gen = start_server(lib, tmp_path)
    next(gen)
    try:
        assert _push(lib, blank, "data/disk", "1").returncode == 0
        status = json.loads(hvguard("library", "status", lib.url, *lib.client("rita"), check=True).stdout)
        assert status["guest_inspection"] == "off"
    finally:
        next(gen, None)


def test_enterprise_ca_subjects_are_mapped_to_users(tmp_path: Path) -> None:
    import ssl as ssl_module

    import trustme

    need("qemu-img")
    lib = make_store(tmp_path)
    corp = trustme.CA()
    carol = corp.issue_cert("carol.corp.example", common_name="carol")
    carol.cert_chain_pems[0].write_to_path(str(tmp_path / "carol.crt"))
    carol.private_key_pem.write_to_path(str(tmp_path / "carol.key"))
    corp.cert_pem.write_to_path(str(tmp_path / "corp-ca.pem"))
    decoded = ssl_module._ssl._test_decode_cert(str(tmp_path / "carol.crt"))  # type: ignore[attr-defined]
    subject = ",".join(f"{k}={v}" for rdn in decoded["subject"] for k, v in rdn)
    hvguard(
        "library",
        "user",
        "add",
        lib.store,
        "carol",
        "--role",
        "reader",
        "--subject",
        subject,
        "--passphrase-file",
        lib.passphrase,
        check=True,
    )
    hvguard(
        "library",
        "grant",
        lib.store,
        "carol",
        "--group",
        "*",
        "--passphrase-file",
        lib.passphrase,
        check=True,
    )
    carol_args = [
        "--cert",
        str(tmp_path / "carol.crt"),
        "--key",
        str(tmp_path / "carol.key"),
        "--ca",
        str(lib.server_ca),
    ]
    gen = start_server(lib, tmp_path, extra=("--enterprise-ca", str(tmp_path / "corp-ca.pem")))
    next(gen)
    try:
        assert hvguard("library", "list", lib.url, *carol_args).returncode == 0
        # another certificate of the same enterprise CA is not a user
        dave = corp.issue_cert("dave.corp.example", common_name="dave")
        dave.cert_chain_pems[0].write_to_path(str(tmp_path / "dave.crt"))
        dave.private_key_pem.write_to_path(str(tmp_path / "dave.key"))
        other = hvguard(
            "library",
            "list",
            lib.url,
            "--cert",
            tmp_path / "dave.crt",
            "--key",
            tmp_path / "dave.key",
            "--ca",
            lib.server_ca,
        )
        assert other.returncode == 1 and "not a user" in _one_line(other)
    finally:
        next(gen, None)


def test_connection_and_input_errors_are_one_line_exit_2(
    lib: Library, images: dict[str, Path], tmp_path: Path
) -> None:
    refused = hvguard(
        "library",
        "push",
        "https://127.0.0.1:9",
        images["good"],
        "--name",
        "a/b",
        "--version",
        "1",
        *lib.client("pete"),
    )
    assert refused.returncode == 2 and "127.0.0.1:9" in _one_line(refused)
    plain = hvguard("library", "list", lib.url.replace("https://", "http://"), *lib.client("rita"))
    assert plain.returncode == 2 and "https:// only" in _one_line(plain)
    missing = hvguard(
        "library",
        "verify",
        images["good"],
        "--manifest",
        tmp_path / "none.json",
        "--public-key",
        tmp_path / "none.pub",
    )
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
