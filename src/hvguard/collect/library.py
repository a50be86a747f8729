"""Collect the state of an hvguard image library (``scan --library URL --cert --key --ca``).

Reads ``GET /v1/status`` over mutual TLS with the given (reader) certificate and records, besides what
the library states, what this collector observed: the TLS version it negotiated and whether the port
answers a plain-HTTP request. A library that cannot be reached or read is recorded with ``error`` (the
checks then report ``error``, never pass). Standard library only (``ssl``, ``http.client``).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import msgspec

from hvguard.collect.library_disks import LibraryView, Verifier, vm_disks
from hvguard.facts import ImageLibraryFacts, LibraryDiskImage, TargetFacts

_MAX_STATUS = 16 * 1024 * 1024
_TIMEOUT = 30.0


@dataclass(frozen=True)
class LibrarySource:
    """Where the library is and the identity to read it with."""

    url: str
    cert: Path
    key: Path
    ca: Path
    #: Verifies signed manifests for the per-VM disk records (given by the CLI, which may import the
    #: library's cryptography); None: VM disks are not assessed.
    verify: Verifier | None = None


def _context(src: LibrarySource) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(str(src.ca))
    ctx.load_cert_chain(str(src.cert), str(src.key))
    return ctx


def _plaintext_answered(host: str, port: int) -> bool | None:
    """Whether a plain-HTTP request to the port gets an HTTP answer (None: could not tell)."""
    try:
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(b"GET /v1/status HTTP/1.0\r\nHost: probe\r\n\r\n")
            try:
                return s.recv(16).startswith(b"HTTP/")
            except (ConnectionResetError, TimeoutError):
                return False
    except OSError:
        return None


def collect_library(src: LibrarySource) -> ImageLibraryFacts:
    """The library's facts, or facts carrying ``error``."""
    parts = urlsplit(src.url)
    if parts.scheme != "https" or not parts.hostname:
        return ImageLibraryFacts(url=src.url, error="the library URL must be https://HOST:PORT")
    host, port = parts.hostname, parts.port or 443
    try:
        ctx = _context(src)
    except (OSError, ssl.SSLError) as exc:
        return ImageLibraryFacts(url=src.url, error=f"cannot load --cert/--key/--ca: {exc}")
    conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=_TIMEOUT)
    try:
        conn.request("GET", "/v1/status")
        response = conn.getresponse()
        body = response.read(_MAX_STATUS)
        sock: Any = conn.sock
        version = sock.version() if sock is not None else ""
        if response.status != 200:
            return ImageLibraryFacts(
                url=src.url, error=f"library answered HTTP {response.status}: {body[:200]!r}"
            )
        status = json.loads(body)
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        return ImageLibraryFacts(url=src.url, error=f"cannot read the library: {exc or type(exc).__name__}")
    except ValueError:
        return ImageLibraryFacts(url=src.url, error="the library's status is not JSON")
    finally:
        conn.close()
    try:
        return _facts(src.url, status, version, _plaintext_answered(host, port))
    except (KeyError, TypeError, ValueError, msgspec.ValidationError) as exc:
        return ImageLibraryFacts(url=src.url, error=f"the library's status is malformed: {exc}")


def _facts(url: str, s: dict[str, Any], version: str, plaintext: bool | None) -> ImageLibraryFacts:
    tls, enc, sig, gate, imgs = s["tls"], s["encryption"], s["signing"], s["gate"], s["images"]
    raw = {
        "url": url,
        "store_id": s["store_id"],
        "tls_version": version,
        "tls_minimum": tls["minimum"],
        "client_certificates": tls["client_certificates"],
        "plaintext_http_answered": plaintext,
        "totp_for_admin_calls": bool(s["totp_for_admin_calls"]),
        "users": s["users"],
        "keyslots": s["keyslots"],
        "cipher": enc["cipher"],
        "kdf": enc["kdf"],
        "min_passphrase": enc["min_passphrase"],
        "min_zxcvbn_score": enc["min_zxcvbn_score"],
        "signing_algorithm": sig["algorithm"],
        "signing_key_bits": sig["key_bits"],
        "signing_key_id": sig["key_id"],
        "guest_inspection": s["guest_inspection"],
        "gate_profile_sha256": gate["profile_sha256"],
        "images_total": imgs["total"],
        "images_by_status": imgs["by_status"],
        "approved_unsigned": imgs["approved_unsigned"],
        "failing_gate": imgs["failing_gate"],
        "gated_under_other_profile": imgs["gated_under_other_profile"],
    }
    return msgspec.convert(raw, ImageLibraryFacts)


class _ReadError(Exception):
    """A library call failed; the message is one line."""


def _get(src: LibrarySource, path: str, *, missing_ok: bool = False) -> bytes | None:
    """The body of ``GET path`` (None for a 404 when ``missing_ok``)."""
    parts = urlsplit(src.url)
    conn = http.client.HTTPSConnection(
        parts.hostname or "", parts.port or 443, context=_context(src), timeout=_TIMEOUT
    )
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read(_MAX_STATUS)
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        raise _ReadError(f"GET {path}: {exc or type(exc).__name__}") from None
    finally:
        conn.close()
    if response.status == 404 and missing_ok:
        return None
    if response.status != 200:
        raise _ReadError(f"GET {path}: HTTP {response.status}")
    return body


def library_view(src: LibrarySource, verify: Verifier) -> LibraryView:
    """The reader's view of the library's images and key; :class:`_ReadError` when it cannot be read."""
    try:
        rows = json.loads(_get(src, "/v1/images") or b"[]")
        images = {str(r["id"]): r for r in rows if isinstance(r, dict)}
    except (ValueError, KeyError, TypeError):
        raise _ReadError("the library's image list is malformed") from None
    public_key = _get(src, "/v1/public-key") or b""

    def manifest(image_id: str) -> Any:
        body = _get(src, f"/v1/images/{quote(image_id, safe='')}/manifest", missing_ok=True)
        try:
            return json.loads(body) if body is not None else None
        except ValueError:
            return None

    return LibraryView(images=images, public_key_pem=public_key, manifest=manifest, verify=verify)


def _is_local(t: TargetFacts) -> bool:
    """The target's disks are files on this host (a libvirt URI without a host)."""
    return t.hypervisor is not None and not urlsplit(t.hypervisor.uri).hostname


def _target_disks(t: TargetFacts, view: LibraryView | str) -> list[LibraryDiskImage]:
    vms = [vm for vm in (t.hypervisor.vms if t.hypervisor else []) if not vm.error]
    if isinstance(view, str):
        return [LibraryDiskImage(vm=vm.name, disk="*", error=view) for vm in vms if vm.disks]
    if not _is_local(t):
        why = f"disks of {t.hypervisor.uri if t.hypervisor else t.id} are on another host: not read"
        return [LibraryDiskImage(vm=vm.name, disk="*", detail=why) for vm in vms if vm.disks]
    return [record for vm in vms for record in vm_disks(view, vm)]


def attach_library(targets: Sequence[TargetFacts], src: LibrarySource | None) -> list[TargetFacts]:
    """Every target with the library's facts (read once) attached, with a record per VM disk of where its
    image came from; unchanged without a library."""
    if src is None:
        return list(targets)
    facts = collect_library(src)
    if facts.error or src.verify is None:
        return [msgspec.structs.replace(t, image_library=facts) for t in targets]
    view: LibraryView | str
    try:
        view = library_view(src, src.verify)
    except (_ReadError, OSError, ssl.SSLError) as exc:
        view = f"cannot read the library's images: {exc}"
    return [
        msgspec.structs.replace(
            t, image_library=msgspec.structs.replace(facts, vm_disks=_target_disks(t, view))
        )
        for t in targets
    ]
