"""Signed image manifests (SS-009 11.3.9): what the library vouches for when an image is approved.

A manifest file (``IMAGE.manifest.json``) is ``{"manifest": {...}, "signature": {"algorithm",
"key_id", "value"}}``; the signature (base64) is over the manifest's canonical JSON (sorted keys, no
spaces, ASCII). The manifest names the image's SHA-256 and size, name, version, publisher, approver,
the gate results (with the gate profile's SHA-256) and the time of approval.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from hvguard.services.library import pki

MANIFEST_SCHEMA = "hvguard.image-manifest/1"
_READ = 1024 * 1024


def canonical(manifest: dict[str, Any]) -> bytes:
    """The bytes that are signed."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def manifest_body(
    library: str, row: dict[str, Any], *, approver: str, approved_at: str, gate: dict[str, Any]
) -> dict[str, Any]:
    """The manifest of an image row (``library_images``) approved by ``approver`` with gate results
    ``gate`` (they name the gate profile's SHA-256)."""
    return {
        "schema": MANIFEST_SCHEMA,
        "library": library,
        "id": row["id"],
        "name": row["name"],
        "version": row["version"],
        "sha256": row["sha256"],
        "size": row["size"],
        "format": row["format"],
        "publisher": row["publisher"],
        "approver": approver,
        "pushed_at": row["pushed_at"],
        "approved_at": approved_at,
        "gate": gate,
    }


def sign_manifest(key: Any, manifest: dict[str, Any]) -> dict[str, Any]:
    """The signed envelope of ``manifest``."""
    pub = pki.public_pem(key)
    return {
        "manifest": manifest,
        "signature": {
            "algorithm": pki.algorithm_of(key),
            "key_id": pki.key_id(pub),
            "value": base64.b64encode(pki.sign(key, canonical(manifest))).decode("ascii"),
        },
    }


def verify_envelope(envelope: Any, public_key_pem: bytes) -> dict[str, Any]:
    """The manifest inside a signed envelope, after its signature verified; :class:`pki.PkiError` else."""
    if not isinstance(envelope, dict) or not isinstance(envelope.get("manifest"), dict):
        raise pki.PkiError("not an hvguard image manifest")
    signature = envelope.get("signature")
    if not isinstance(signature, dict) or not signature.get("value"):
        raise pki.PkiError("the manifest is not signed")
    manifest: dict[str, Any] = envelope["manifest"]
    if manifest.get("schema") != MANIFEST_SCHEMA:
        raise pki.PkiError(f"manifest schema {manifest.get('schema')!r} is not {MANIFEST_SCHEMA}")
    public_key = pki.load_public_key(public_key_pem)
    if signature.get("key_id") != pki.key_id(public_key_pem):
        raise pki.PkiError("the manifest was signed with another key than the one given")
    try:
        value = base64.b64decode(str(signature["value"]), validate=True)
    except ValueError:
        raise pki.PkiError("the manifest's signature is not base64") from None
    pki.verify(public_key, value, canonical(manifest))
    return manifest


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, streamed."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_READ):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def verify_file(path: Path, envelope: Any, public_key_pem: bytes) -> dict[str, Any]:
    """Verify the signature and that ``path`` is the image it names (hash and size)."""
    manifest = verify_envelope(envelope, public_key_pem)
    digest, size = file_digest(path)
    if digest != manifest.get("sha256") or size != manifest.get("size"):
        raise pki.PkiError(
            f"{path} is not the signed image: sha256 {digest} size {size}, manifest says "
            f"{manifest.get('sha256')} size {manifest.get('size')}"
        )
    return manifest
