"""Evidence bundles an auditor can trust: nothing-collected and repeated entries refused, provenance in
the report, and detached Ed25519 signatures (real openssl keys) that expose any edit."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from factories import good_vm, target
from hvguard.collect.bundle import make_bundle, write_bundle
from hvguard.engine import evaluate
from hvguard.profile import default_profile
from hvguard.report.build import report_dict

DATA = Path(__file__).parent / "data"
NODE = DATA / "testdriver" / "node.xml"
GOOD_ROOT = DATA / "roots" / "kvm-good"


def hv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hvguard", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def refused(r: subprocess.CompletedProcess[str]) -> str:
    """The one line of a refused command (exit 2, nothing on stdout)."""
    assert r.returncode == 2, (r.returncode, r.stdout[:300], r.stderr)
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def evaluate_json(bundle: Path, *extra: str) -> dict[str, Any]:
    r = hv("evaluate", str(bundle), "--format", "json", "--no-history", *extra)
    assert r.returncode in (0, 1), r.stderr
    data: dict[str, Any] = json.loads(r.stdout)
    return data


# --- nothing collected, repeated entries -------------------------------------------------------------


def test_a_bundle_with_no_targets_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    write_bundle(make_bundle([]), empty)
    line = refused(hv("evaluate", str(empty), "--no-history"))
    assert "no targets" in line and str(empty) in line


def test_a_bundle_naming_a_vm_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.json"
    write_bundle(make_bundle([target([good_vm("web"), good_vm("db"), good_vm("web")])]), path)
    line = refused(hv("evaluate", str(path), "--no-history"))
    assert "'web' twice" in line and "qemu:///system" in line


def test_a_bundle_naming_a_target_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.json.gz"
    write_bundle(make_bundle([target([good_vm("a")]), target([good_vm("b")])]), path)
    line = refused(hv("evaluate", str(path), "--no-history"))
    assert "target 'qemu:///system' appears twice" in line


# --- provenance ---------------------------------------------------------------------------------------


def test_the_report_records_where_the_facts_came_from(tmp_path: Path) -> None:
    bundle = tmp_path / "b.json.gz"
    made = make_bundle([target([good_vm("a")])])
    write_bundle(made, bundle)
    source = evaluate_json(bundle)["source"]
    one = {
        "path": str(bundle),
        "sha256": hashlib.sha256(bundle.read_bytes()).hexdigest(),
        "created_at": made.created_at,
        "tool_version": made.tool_version,
        "signed_by": None,
        "targets": ["qemu:///system"],
    }
    # One bundle: `bundle` names it, and `bundles` (every bundle of an estate) holds just it.
    assert source == {"bundle": one, "bundles": [one]}
    # A live evaluation has no source block.
    assert report_dict(evaluate([target([good_vm("a")])], default_profile()))["source"] is None


# --- signatures ---------------------------------------------------------------------------------------


def keypair(folder: Path, name: str) -> tuple[Path, Path]:
    key, pub = folder / f"{name}.pem", folder / f"{name}.pub"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True)
    return key, pub


def spki_sha256(pub: Path) -> str:
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-in", str(pub), "-outform", "DER"], capture_output=True, check=True
    ).stdout
    return hashlib.sha256(der).hexdigest()


def test_collect_signs_and_evaluate_verifies(tmp_path: Path) -> None:
    key, pub = keypair(tmp_path, "auditor")
    bundle = tmp_path / "estate.json.gz"
    r = hv("collect", f"test://{NODE}", "--root", str(GOOD_ROOT), "--output", str(bundle), "--sign", str(key))
    assert r.returncode == 0, r.stderr
    sig = tmp_path / "estate.json.gz.sig"
    assert len(sig.read_bytes()) == 64
    # The signature is a plain Ed25519 signature over the file's bytes: openssl checks it too.
    check = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pub), "-rawin",
         "-in", str(bundle), "-sigfile", str(sig)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr

    source = evaluate_json(bundle, "--verify", str(pub))["source"]["bundle"]
    assert source["signed_by"] == spki_sha256(pub)
    assert source["sha256"] == hashlib.sha256(bundle.read_bytes()).hexdigest()

    # Another key's signature does not verify.
    _, other = keypair(tmp_path, "someone-else")
    assert "does not match" in refused(hv("evaluate", str(bundle), "--no-history", "--verify", str(other)))

    # An edited bundle (a failing VM turned good, recompressed) is refused.
    doc = json.loads(gzip.decompress(bundle.read_bytes()))
    doc["targets"][0]["hypervisor"]["vms"] = doc["targets"][0]["hypervisor"]["vms"][:1]
    bundle.write_bytes(gzip.compress(json.dumps(doc).encode()))
    line = refused(hv("evaluate", str(bundle), "--no-history", "--verify", str(pub)))
    assert "does not match" in line and "changed after signing" in line

    # No signature beside it: refused, not evaluated as if unsigned.
    sig.unlink()
    assert "no such file" in refused(hv("evaluate", str(bundle), "--no-history", "--verify", str(pub)))


def test_bad_keys_are_refused_before_collecting(tmp_path: Path) -> None:
    key, pub = keypair(tmp_path, "k")
    bundle = tmp_path / "b.json"
    # A public key where a private one belongs, a missing file, an RSA key, a pkcs11 URI.
    rsa = tmp_path / "rsa.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "rsa", "-pkeyopt", "rsa_keygen_bits:1024", "-out", str(rsa)],
        check=True, capture_output=True,
    )  # fmt: skip
    for bad, words in (
        (pub, "not a PEM PKCS#8 private key"),
        (tmp_path / "nope.pem", "no such file"),
        (rsa, "not an Ed25519 key"),
        ("pkcs11:token=x", "not supported"),
    ):
        line = refused(
            hv(
                "collect",
                f"test://{NODE}",
                "--root",
                str(GOOD_ROOT),
                "--output",
                str(bundle),
                "--sign",
                str(bad),
            )
        )
        assert words in line, line
        assert not bundle.exists()
    write_bundle(make_bundle([target([good_vm("a")])]), bundle)
    assert "not an SPKI PEM public key" in refused(
        hv("evaluate", str(bundle), "--no-history", "--verify", str(key))
    )


def test_the_table_says_the_facts_came_from_an_unsigned_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "b.json"
    write_bundle(make_bundle([target([good_vm("a")])]), bundle)
    r = hv("evaluate", str(bundle), "--no-history")
    assert r.returncode in (0, 1), r.stderr
    assert f"facts from bundle {bundle}" in r.stdout and "UNSIGNED" in r.stdout
