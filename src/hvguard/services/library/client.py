"""A client of ``library serve`` over mutual TLS (standard library ``http.client``, streamed both ways).

Errors: :class:`ConnectError` — the connection or TLS handshake failed (a client command exits 2);
:class:`RefusedError` — the server authenticated the caller and refused (exit 1), with its reason and
the gate rules broken.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import os
import select
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


def _refusal(response: http.client.HTTPResponse) -> RefusedError:
    """The server's error answer as a :class:`RefusedError`."""
    kind = ""
    try:
        data = json.loads(response.read(1024 * 1024))
        reason, rules = str(data.get("error")), list(data.get("rules") or [])
        kind = str(data.get("reason") or "")
    except (ValueError, OSError, http.client.HTTPException, AttributeError):
        reason, rules = f"HTTP {response.status} {response.reason}", []
    return RefusedError(response.status, reason, rules, kind)


class _Prefixed(io.RawIOBase):
    """A socket's byte stream with bytes already read from it put back in front."""

    def __init__(self, sock: ssl.SSLSocket, head: bytes) -> None:
        self.sock, self.head = sock, head

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n], self.head = self.head[:n], self.head[n:]
            return n
        return self.sock.recv_into(buffer)


class _Answered:
    """What :class:`http.client.HTTPResponse` reads an early answer from (it calls ``makefile``)."""

    def __init__(self, sock: ssl.SSLSocket, head: bytes) -> None:
        self.raw = _Prefixed(sock, head)

    def makefile(self, _mode: str) -> io.BufferedReader:
        return io.BufferedReader(self.raw)


def _early_answer(sock: Any, timeout: float) -> bytes | None:
    """The first bytes of an answer the server sent before the upload ended (it refused the upload
    early: spool full, too large …), or None while it is still reading. Only TLS records that carry
    application data count: TLS 1.3 session tickets also make the socket readable."""
    if not select.select([sock], [], [], 0)[0]:
        return None
    sock.setblocking(False)
    try:
        return bytes(sock.recv(64 * 1024))
    except (ssl.SSLWantReadError, BlockingIOError):
        return None
    finally:
        sock.settimeout(timeout)


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
            refused = _refusal(response)  # read before the connection closes
            conn.close()
            raise refused
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
        """Upload an image (streamed); the server's answer (id, sha256, gate). An answer that arrives
        while the image is still being sent (a refusal before the server read it all) ends the upload
        at once and is reported as such, instead of a broken connection."""
        size = image.stat().st_size
        path = f"/v1/images?name={quote(name, safe='')}&version={quote(version, safe='')}"
        conn = self._connection()
        try:
            try:
                conn.putrequest("PUT", path, skip_accept_encoding=True)
                conn.putheader("Content-Length", str(size))
                conn.putheader("Content-Type", "application/octet-stream")
                conn.endheaders()
                early = None
                with open(image, "rb") as f:
                    while block := f.read(_BLOCK):
                        early = _early_answer(conn.sock, self.timeout)
                        if early is not None:
                            break
                        conn.sock.sendall(block)
                if early:
                    response = http.client.HTTPResponse(_Answered(conn.sock, early), method="PUT")  # type: ignore[arg-type]
                    response.begin()
                else:
                    response = conn.getresponse()
            except ssl.SSLError as exc:
                raise ConnectError(f"{self.url}: TLS failed ({exc.reason or exc})") from None
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                raise ConnectError(
                    f"{self.url}: TLS: the server closed the connection without answering "
                    "(client certificate missing or not accepted?)"
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                raise ConnectError(
                    f"{self.url}: {getattr(exc, 'strerror', None) or exc or type(exc).__name__}"
                ) from None
            if response.status >= 400:
                raise _refusal(response)
            try:
                return dict(json.loads(response.read()))
            except (ValueError, OSError, http.client.HTTPException) as exc:
                raise ConnectError(f"{self.url}: bad answer ({exc})") from None
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
