"""A client of ``library serve`` over mutual TLS (standard library ``http.client``, streamed both ways).

Errors: :class:`ConnectError` — the connection or TLS handshake failed (a client command exits 2);
:class:`RefusedError` — the server authenticated the caller and refused (exit 1), with its reason and
the gate rules broken.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from hvguard.services.library import manifest, pki

_BLOCK = 1024 * 1024
_LOG = logging.getLogger("hvguard.library")
TOTP_HEADER = "X-HVGuard-TOTP"


class ConnectError(Exception):
    """No usable connection: refused, unreachable, TLS handshake or certificate failure (one line)."""


@dataclass
class RefusedError(Exception):
    """The library refused the request."""

    status: int
    reason: str
    rules: list[dict[str, str]] = field(default_factory=list)
    #: the server's machine-readable ``reason`` (e.g. ``totp-reused``), when it gave one
    kind: str = ""

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class Credentials:
    """The client certificate, its key and the CA that signed the server's certificate."""

    cert: Path
    key: Path
    ca: Path
    totp: str | None = None
    #: the base32 TOTP seed, when ``--totp-file`` held one (not a typed code): a new code can be made
    totp_secret: str | None = None


def _context(creds: Credentials) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_verify_locations(str(creds.ca))
    except (OSError, ssl.SSLError) as exc:
        raise ConnectError(f"--ca {creds.ca}: cannot load ({exc})") from None
    try:
        ctx.load_cert_chain(str(creds.cert), str(creds.key))
    except (OSError, ssl.SSLError) as exc:
        raise ConnectError(f"--cert/--key: cannot load the client certificate ({exc})") from None
    return ctx


def next_totp(secret: str) -> str:
    """Wait for the next 30-second TOTP step to begin, then its code (the current one was used)."""
    import pyotp

    totp = pyotp.TOTP(secret)
    wait = totp.interval - time.time() % totp.interval + 0.5  # half a second past the boundary
    _LOG.info("TOTP code already used in this 30-second step: waiting %.0f s for the next one", wait)
    time.sleep(wait)
    return str(totp.now())


class Client:
    """One library URL with one identity."""

    def __init__(self, url: str, creds: Credentials, *, timeout: float = 300) -> None:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ConnectError(f"{url}: the library is served over https:// only")
        self.host = parts.hostname
        self.port = parts.port or 443
        self.creds = creds
        self.ctx = _context(creds)
        self.timeout = timeout
        self.url = url

    def _connection(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            self.host, self.port, context=self.ctx, timeout=self.timeout, blocksize=_BLOCK
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        admin: bool = False,
    ) -> tuple[http.client.HTTPSConnection, http.client.HTTPResponse]:
        """Send a request; returns the open connection and its response (status already checked).

        An administrative call whose code the server already accepted (``totp-reused``: two calls in one
        30-second step) is sent once more with the next step's code when the client holds the TOTP
        secret and the request has no body to resend."""
        try:
            return self._send(method, path, body, headers, self.creds.totp if admin else None)
        except RefusedError as exc:
            if exc.kind != "totp-reused" or not self.creds.totp_secret or body is not None:
                raise
        code = next_totp(self.creds.totp_secret)
        return self._send(method, path, body, headers, code)

    def _send(
        self, method: str, path: str, body: Any, headers: dict[str, str] | None, totp: str | None
    ) -> tuple[http.client.HTTPSConnection, http.client.HTTPResponse]:
        hdrs = dict(headers or {})
        if totp:
            hdrs[TOTP_HEADER] = totp
        conn = self._connection()
        try:
            conn.request(method, path, body=body, headers=hdrs)
            response = conn.getresponse()
        except ssl.SSLError as exc:
            conn.close()
            raise ConnectError(f"{self.url}: TLS failed ({exc.reason or exc})") from None
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            conn.close()
            # TLS 1.3 sends the server's verdict on the client certificate after the handshake.
            raise ConnectError(
                f"{self.url}: TLS: the server closed the connection without answering "
                "(client certificate missing or not accepted?)"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise ConnectError(
                f"{self.url}: {getattr(exc, 'strerror', None) or exc or type(exc).__name__}"
            ) from None
        if response.status >= 400:
            kind = ""
            try:
                data = json.loads(response.read(1024 * 1024))
                reason, rules = str(data.get("error")), list(data.get("rules") or [])
                kind = str(data.get("reason") or "")
            except (ValueError, OSError, http.client.HTTPException, AttributeError):
                reason, rules = f"HTTP {response.status} {response.reason}", []
            conn.close()
            raise RefusedError(response.status, reason, rules, kind)
        return conn, response

    def json(self, method: str, path: str, *, admin: bool = False) -> Any:
        """A JSON call."""
        conn, response = self.request(method, path, admin=admin)
        try:
            return json.loads(response.read())
        except (ValueError, OSError, http.client.HTTPException) as exc:
            raise ConnectError(f"{self.url}: bad answer ({exc})") from None
        finally:
            conn.close()

    def push(self, image: Path, name: str, version: str) -> dict[str, Any]:
        """Upload an image (streamed); the server's answer (id, sha256, gate)."""
        size = image.stat().st_size
        with open(image, "rb") as f:
            conn, response = self.request(
                "PUT",
                f"/v1/images?name={quote(name, safe='')}&version={quote(version, safe='')}",
                body=f,
                headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
            )
        try:
            return dict(json.loads(response.read()))
        finally:
            conn.close()

    def public_key(self) -> bytes:
        """The library's signing public key (PEM)."""
        conn, response = self.request("GET", "/v1/public-key")
        try:
            return response.read(64 * 1024)
        finally:
            conn.close()

    def pull(
        self, image_id: str, output: Path, public_key_pem: bytes | None, *, force: bool
    ) -> dict[str, Any]:
        """Check an image out: verify the signed manifest, stream the image into a private temporary file
        beside ``output`` while hashing it, and only when the hash and size match rename it into place
        and write ``output.manifest.json``."""
        manifest_out = output.with_name(output.name + ".manifest.json")
        for target in (output, manifest_out):
            if (target.exists() or target.is_symlink()) and not force:
                raise ConnectError(f"{target} exists: not overwritten (--force replaces it)")
            if target.is_symlink() or (target.exists() and not target.is_file()):
                raise ConnectError(f"{target} is not a regular file: refused")
        envelope = self.json("GET", f"/v1/images/{quote(image_id, safe='')}/manifest")
        pub = public_key_pem if public_key_pem is not None else self.public_key()
        try:
            signed = manifest.verify_envelope(envelope, pub)
        except pki.PkiError as exc:
            raise RefusedError(0, f"{exc}") from None
        if signed.get("id") != image_id:
            raise RefusedError(0, "the manifest names another image")
        import hashlib

        fd, tmp_name = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent or Path("."))
        tmp = Path(tmp_name)
        try:
            h = hashlib.sha256()
            size = 0
            conn, response = self.request("GET", f"/v1/images/{quote(image_id, safe='')}/data")
            try:
                with os.fdopen(fd, "wb") as out:
                    while chunk := response.read(_BLOCK):
                        h.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
            except (OSError, http.client.HTTPException) as exc:
                raise RefusedError(
                    0, f"refused: the image transfer broke off ({exc or type(exc).__name__})"
                ) from None
            finally:
                conn.close()
            if h.hexdigest() != signed["sha256"] or size != signed["size"]:
                got = f"sha256 {h.hexdigest()}, {size} bytes"
                raise RefusedError(0, f"the image received ({got}) is not the signed one")
            os.chmod(tmp, 0o600)
            os.replace(tmp, output)
        finally:
            tmp.unlink(missing_ok=True)
        mfd, mtmp = tempfile.mkstemp(prefix=f".{manifest_out.name}.", dir=output.parent or Path("."))
        with os.fdopen(mfd, "w", encoding="utf-8") as f:
            json.dump(envelope, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(mtmp, manifest_out)
        return signed
