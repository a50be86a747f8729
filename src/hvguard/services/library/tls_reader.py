"""Read a large request body straight off the TLS connection in a worker thread, away from the event loop.

Why: through asyncio's TLS layer and aiohttp, every 256 KiB of an upload costs the event loop a socket
read, a copy into the TLS memory buffer, sixteen record decryptions, a join, the HTTP parser and a
stream-reader hop, all while holding the GIL. That, not hashing or encryption, capped check-in
throughput. Here the event loop stops reading the connection. Whatever it already decrypted is taken from
the request's stream. A worker thread then reads the socket itself and decrypts with the connection's own
``SSLObject`` straight into the caller's batch buffers; the socket read and the decryption release the
GIL.

While detached, asyncio's TLS protocol must not touch the ``SSLObject``: its reading entry points are
shadowed on the instance and the raw transport is paused; :meth:`Detached.reattach` undoes both. The
HTTP parser never sees the body, so the connection cannot carry another request: the response must
close it (:func:`must_close`). These are private attributes of CPython's ``asyncio.sslproto`` (3.11+);
when they are not there, :func:`detach` returns None and the caller reads the body the ordinary way.
"""

from __future__ import annotations

import os
import select
import ssl
from collections.abc import Callable
from typing import Any

#: Bytes taken from the socket per read (the kernel usually has this much ready during an upload).
SOCKET_READ = 1024 * 1024
#: An upload that sends nothing for this long is abandoned.
IDLE_TIMEOUT_S = 60.0
_CLOSE_KEY = "hvguard.close-connection"


class BodyError(Exception):
    """The body ended early, stalled or did not decrypt (one line)."""


def must_close(request: Any) -> bool:
    """Whether the response to ``request`` must close the connection (its body was read detached)."""
    return bool(request.get(_CLOSE_KEY))


class Detached:
    """A TLS connection whose reading was taken away from the event loop."""

    def __init__(self, proto: Any, raw: Any, fd: int) -> None:
        self.proto = proto
        self.raw = raw
        self.fd = fd
        self.sslobj: ssl.SSLObject = proto._sslobj
        self.incoming: ssl.MemoryBIO = proto._incoming

    def read_into(self, view: memoryview) -> int:
        """Fill ``view`` with decrypted body bytes (blocking; GIL released while waiting). Returns the bytes
        read: less than ``len(view)`` only when the peer closed the connection."""
        filled = 0
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        while filled < len(view):
            try:
                # with a buffer, SSLObject.read returns the byte count (typeshed says bytes)
                n = int(self.sslobj.read(len(view) - filled, view[filled:]))
            except ssl.SSLWantReadError:
                self._pull(poller)
                continue
            except ssl.SSLError as exc:
                raise BodyError(f"TLS error during the upload ({exc.reason or exc})") from None
            if n == 0:
                break  # close_notify
            filled += n
        return filled

    def _pull(self, poller: select.poll) -> None:
        while True:
            try:
                data = os.read(self.fd, SOCKET_READ)
            except BlockingIOError:
                if not poller.poll(IDLE_TIMEOUT_S * 1000):
                    raise BodyError(
                        f"the upload stalled: nothing received for {IDLE_TIMEOUT_S:.0f} s"
                    ) from None
                continue
            except OSError as exc:
                raise BodyError(f"the upload broke off ({exc.strerror or exc})") from None
            if not data:
                raise BodyError("the client closed the connection before the upload ended")
            self.incoming.write(data)
            return

    def reattach(self) -> None:
        """Give reading back to the event loop (so that the TLS shutdown can complete)."""
        for name in ("_do_read", "_control_ssl_reading"):
            self.proto.__dict__.pop(name, None)
        self.proto._ssl_reading_paused = False
        self.raw.resume_reading()


def _noop() -> None:
    return None


def detach(request: Any) -> tuple[Detached, bytes] | None:
    """Take ``request``'s connection's reading from the event loop (call on the loop's thread); the
    :class:`Detached` reader and the body bytes the stream already held. None if the connection is not
    asyncio's TLS transport as expected."""
    transport = request.transport
    proto = getattr(transport, "_ssl_protocol", None)
    raw = getattr(proto, "_transport", None)
    if (
        proto is None
        or raw is None
        or not isinstance(getattr(proto, "_sslobj", None), ssl.SSLObject)
        or not isinstance(getattr(proto, "_incoming", None), ssl.MemoryBIO)
        or not all(hasattr(proto, n) for n in ("_do_read", "_control_ssl_reading", "_ssl_reading_paused"))
    ):
        return None
    sock = raw.get_extra_info("socket")
    if sock is None:
        return None
    shadow: Callable[[], None] = _noop
    proto._do_read = shadow  # the loop no longer decrypts for this connection …
    proto._control_ssl_reading = shadow  # … nor resumes its socket reading
    raw.pause_reading()
    request[_CLOSE_KEY] = True
    head = request.content.read_nowait(-1)
    return Detached(proto, raw, sock.fileno()), bytes(head)
