"""Serve an aiohttp application over HTTPS with client certificates required, and nothing else.

* TLS 1.2 or newer, server certificate and key from files, client certificates verified against the
  CA file the application names (``CERT_REQUIRED``): a client without a valid certificate never reaches
  a handler. There is no plaintext listener: plain HTTP to the port fails the TLS handshake.
* ``--listen HOST:PORT`` (port 0 picks a free port; ``[::1]:PORT`` for IPv6).
* The base URL (``https://HOST:PORT``) is printed as the first line on stdout once the socket accepts.
* SIGTERM or SIGINT stops it cleanly (in-flight requests get a grace period).

The peer certificate of each request is exposed as a :class:`Peer` (SHA-256 of the DER certificate and
its subject common name) by :func:`peer_of`; TOTP codes are checked by :func:`check_totp`, which also
says which 30-second step a code belongs to (:func:`totp_step`), so an application can refuse a code it
accepted before (RFC 6238 §5.2).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import signal
import ssl
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TOTP_HEADER = "X-HVGuard-TOTP"


class WebError(Exception):
    """The server cannot start as configured (one line)."""


@dataclass(frozen=True)
class Peer:
    """The authenticated client of one connection."""

    fingerprint: str
    common_name: str
    subject: str
    issuer: str = ""


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` → (host, port); port 0 allowed."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise WebError(f"--listen {value!r}: expected HOST:PORT (port 0 picks a free one)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def server_context(
    cert: Path, key: Path, client_ca: Path | bytes, extra_ca: Path | None = None
) -> ssl.SSLContext:
    """A TLS ≥ 1.2 server context that requires a client certificate signed by ``client_ca`` (or by
    ``extra_ca``, an enterprise CA whose subjects the application maps)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise WebError(f"--tls-cert/--tls-key: cannot load the server certificate ({exc})") from None
    try:
        if isinstance(client_ca, bytes):
            ctx.load_verify_locations(cadata=client_ca.decode("ascii"))
        else:
            ctx.load_verify_locations(str(client_ca))
        if extra_ca is not None:
            ctx.load_verify_locations(str(extra_ca))
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise WebError(f"cannot load the client CA ({exc})") from None
    return ctx


def peer_of(request: Any) -> Peer:
    """The verified client certificate of ``request``'s connection."""
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    info = ssl_object.getpeercert() if ssl_object is not None else None
    if not der or not info:
        # CERT_REQUIRED makes this unreachable; refuse rather than trust a missing identity.
        from aiohttp import web

        raise web.HTTPUnauthorized(text="client certificate required\n")
    subject = {k: v for rdn in info.get("subject", ()) for k, v in rdn}
    text = ",".join(f"{k}={v}" for rdn in info.get("subject", ()) for k, v in rdn)
    issuer = ",".join(f"{k}={v}" for rdn in info.get("issuer", ()) for k, v in rdn)
    return Peer(hashlib.sha256(der).hexdigest(), str(subject.get("commonName", "")), text, issuer)


def totp_step(secret: str, code: str | None, at: float | None = None) -> int | None:
    """The 30-second step (Unix time // 30) ``code`` is the TOTP of, within one step of clock skew
    either way; ``None`` when it is none of them."""
    import time

    import pyotp

    if not code or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now = time.time() if at is None else at
    current = totp.timecode(datetime.fromtimestamp(now, UTC))
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def check_totp(secret: str, code: str | None) -> bool:
    """Whether ``code`` is the current TOTP of ``secret`` (one 30 s step of clock skew allowed)."""
    return totp_step(secret, code) is not None


_READ_BUFSIZE = 1024 * 1024


def tls_version(request: Any) -> str:
    """The TLS version of the request's connection (e.g. ``TLSv1.3``)."""
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    return str(ssl_object.version()) if ssl_object is not None else ""


async def _serve(
    app: Any, host: str, port: int, ctx: ssl.SSLContext, on_stop: Callable[[], Awaitable[None]] | None
) -> None:
    from aiohttp import web

    # Handlers first: a SIGTERM sent as soon as the URL is read must already stop the server cleanly.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # A 1 MiB read buffer per connection (aiohttp's default is 64 KiB): large uploads stream without
    # pausing and resuming the socket every few TLS records; memory stays bounded (twice this per
    # connection).
    runner = web.AppRunner(app, handle_signals=False, access_log=None, read_bufsize=_READ_BUFSIZE)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ctx, shutdown_timeout=5)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise WebError(f"--listen {host}:{port}: {exc.strerror or exc}") from None
    server: Any = site._server  # asyncio.Server: the socket tells which port 0 became
    sockname = server.sockets[0].getsockname() if server is not None and server.sockets else (host, port)
    shown = f"[{sockname[0]}]" if ":" in sockname[0] else sockname[0]
    sys.stdout.write(f"https://{shown}:{sockname[1]}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        if on_stop is not None:
            await on_stop()
        await runner.cleanup()


def run(
    app: Any,
    listen: str,
    ctx: ssl.SSLContext,
    *,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve ``app`` on ``listen`` until SIGTERM/SIGINT."""
    host, port = parse_listen(listen)
    asyncio.run(_serve(app, host, port, ctx, on_stop))
