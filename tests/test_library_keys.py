"""Signing algorithms of the image library (Ed25519, ECDSA P-384, RSA-PSS 3072) and the export of
Glance-compatible signature properties, verified the way Glance (cursive) verifies them."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest

from library_env import ext4_image, hvguard, make_store, need, start_server


@pytest.mark.parametrize("algorithm", ["ecdsa-p384", "rsa-pss-3072", "ed25519"])
def test_signed_pull_and_glance_export(algorithm: str, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    need("qemu-img", "mkfs.ext4", "debugfs")
    lib = make_store(tmp_path, algorithm=algorithm)
    image = ext4_image(tmp_path, "g")
    gen = start_server(lib, tmp_path)
    next(gen)
    try:
        image_id = hvguard(
            "library",
            "push",
            lib.url,
            image,
            "--name",
            "linux/g",
            "--version",
            "1",
            *lib.client("pete"),
            check=True,
        ).stdout.strip()
        hvguard("library", "approve", lib.url, image_id, *lib.client("anna"), check=True)
        out = tmp_path / "o.qcow2"
        hvguard("library", "pull", lib.url, image_id, "--output", out, *lib.client("rita"), check=True)
        envelope = json.loads((tmp_path / "o.qcow2.manifest.json").read_text())
        assert envelope["signature"]["algorithm"] == algorithm
        pem = hvguard("library", "public-key", lib.store, check=True).stdout.encode()
        export = hvguard(
            "library",
            "glance-properties",
            lib.url,
            image_id,
            "--certificate-uuid",
            "3a1c2f5e-0000-4000-8000-000000000001",
            "--hash-method",
            "SHA-384",
            *lib.client("rita"),
        )
        if algorithm == "ed25519":
            assert export.returncode == 1
            assert len(export.stderr.strip().splitlines()) == 1 and "Ed25519" in export.stderr
            return
        assert export.returncode == 0, export.stderr
        props = json.loads(export.stdout)
        assert props["img_signature_hash_method"] == "SHA-384"
        assert props["img_signature_certificate_uuid"] == "3a1c2f5e-0000-4000-8000-000000000001"
        public = serialization.load_pem_public_key(pem)
        signature = base64.b64decode(props["img_signature"])
        data = image.read_bytes()
        # cursive's verifier: RSA-PSS with MGF1(hash) and maximum salt length, or ECDSA(hash)
        if isinstance(public, rsa.RSAPublicKey):
            assert props["img_signature_key_type"] == "RSA-PSS"
            public.verify(
                signature,
                data,
                padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=padding.PSS.MAX_LENGTH),
                hashes.SHA384(),
            )
        else:
            assert isinstance(public, ec.EllipticCurvePublicKey)
            assert props["img_signature_key_type"] == "ECC_SECP384R1"
            public.verify(signature, data, ec.ECDSA(hashes.SHA384()))
        assert hashlib.sha256(data).hexdigest() == envelope["manifest"]["sha256"]
    finally:
        next(gen, None)


@pytest.fixture
def softhsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private SoftHSM2 token ``hvg`` (user PIN in the returned file); the machine's tokens untouched."""
    import shutil
    import subprocess

    if shutil.which("softhsm2-util") is None:
        pytest.skip("needs softhsm2 (scripts/setup.sh test)")
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            "hvg",
            "--pin",
            "246810",
            "--so-pin",
            "13579111",
        ],
        check=True,
        capture_output=True,
    )
    pin = tmp_path / "pin"
    pin.write_text("246810\n")
    return pin


def test_pkcs11_signing_key_in_softhsm(softhsm: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    need("qemu-img", "mkfs.ext4", "debugfs")
    wrong = tmp_path / "wrongpin"
    wrong.write_text("000000\n")
    pp = tmp_path / "pp"
    pp.write_text("correct horse battery staple orbit 42\n")
    bad = hvguard(
        "library",
        "init",
        tmp_path / "bad",
        "--admin",
        "alice",
        "--passphrase-file",
        pp,
        "--cert-out",
        tmp_path / "c0",
        "--signing-key",
        "pkcs11:token=hvg;object=sign",
        "--pin-file",
        wrong,
        "--signing-key-type",
        "ecdsa-p384",
    )
    assert bad.returncode == 2 and "wrong PIN" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad" / "store.json").exists()
    lib = make_store(
        tmp_path,
        algorithm="ecdsa-p384",
        init_extra=("--signing-key", "pkcs11:token=hvg;object=sign", "--pin-file", str(softhsm)),
    )
    assert not (lib.store / "signing.key.sealed").exists()  # the private key never leaves the token
    image = ext4_image(tmp_path, "g")
    gen = start_server(lib, tmp_path)
    next(gen)
    try:
        image_id = hvguard(
            "library",
            "push",
            lib.url,
            image,
            "--name",
            "linux/g",
            "--version",
            "1",
            *lib.client("pete"),
            check=True,
        ).stdout.strip()
        hvguard("library", "approve", lib.url, image_id, *lib.client("anna"), check=True)
        out = tmp_path / "o.qcow2"
        hvguard("library", "pull", lib.url, image_id, "--output", out, *lib.client("rita"), check=True)
        pub = tmp_path / "lib.pub"
        pub.write_text(hvguard("library", "public-key", lib.store, check=True).stdout)
        verified = hvguard(
            "library", "verify", out, "--manifest", tmp_path / "o.qcow2.manifest.json", "--public-key", pub
        )
        assert verified.returncode == 0, verified.stderr
        export = hvguard(
            "library",
            "glance-properties",
            lib.url,
            image_id,
            "--certificate-uuid",
            "u-1",
            "--hash-method",
            "SHA-512",
            *lib.client("rita"),
            check=True,
        )
        props = json.loads(export.stdout)
        public = serialization.load_pem_public_key(pub.read_bytes())
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(base64.b64decode(props["img_signature"]), image.read_bytes(), ec.ECDSA(hashes.SHA512()))
    finally:
        next(gen, None)


def test_a_special_or_missing_input_file_is_named_in_words(tmp_path: Path) -> None:
    """`library verify --manifest /dev/zero` says what the file is, not the reader's internal code."""
    fifo = tmp_path / "manifest.fifo"
    os.mkfifo(fifo)
    for path, words in ((fifo, "not a regular file (a FIFO)"), (tmp_path / "absent", "no such file")):
        out = hvguard(
            "library", "verify", "/etc/hostname", "--manifest", str(path), "--public-key", "/etc/hostname"
        )
        assert out.returncode == 2
        assert out.stderr.strip() == f"hvguard: error: --manifest {path}: {words}"
