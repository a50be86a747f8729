"""Syslog channel: one RFC 5424 message per notification, local or remote.

Transports: ``local`` (a Unix datagram socket, ``/dev/log`` by default; the local daemon must parse
RFC 5424 — rsyslog does with ``SysSock.UseSpecialParser="off"``), ``udp``, ``tcp`` (octet-counting
framing) and ``tls`` (RFC 5425: TLS ≥ 1.2 with certificate and host name verification, optional client
certificate; the session must stay open for 0.3 s after the message, see ``_confirm``). Each
notification opens a fresh connection and closes it after sending: syslog has no
acknowledgement, and a long-lived connection that the server has dropped swallows the first message
written to it, so a fresh connection whose write succeeds is the best "accepted" signal there is.

Message: MSGID ``vm-change``; severity ``warning`` when the re-evaluation has a fail/error/warn
finding, ``notice`` otherwise; one SD-ELEMENT (``sd_id``, default ``hvguard@32473`` — 32473 is the
documentation enterprise number of RFC 5612; set your own) with the event, VM, UUID, URI, payload id
and counts; MSG is the one-line summary. Length is capped at 2048 bytes for UDP and 8192 otherwise.
"""

from __future__ import annotations

import os
import socket
import ssl
from typing import Any

from hvguard.services.watch.config import SyslogChannel
from hvguard.services.watch.notify_base import NotifyError, one_line
from hvguard.services.watch.payload import bad_findings, summary
from hvguard.services.watch.rfc5424 import SEVERITIES, format_message, frame, structured_data, truncate_utf8

#: How long a TLS session must stay open after sending for the message to count as accepted.
TLS_CONFIRM_S = 0.3
MAX_UDP = 2048
MAX_STREAM = 8192


class SyslogNotifier:
    """Sends each notification as one RFC 5424 message."""

    def __init__(self, channel: SyslogChannel) -> None:
        self.channel = channel
        self.key = channel.key
        self._hostname = socket.getfqdn() or socket.gethostname()
        self._ctx: ssl.SSLContext | None = None
        if channel.transport == "tls":
            ctx = ssl.create_default_context(cafile=str(channel.ca_file) if channel.ca_file else None)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            if channel.cert_file is not None and channel.key_file is not None:
                ctx.load_cert_chain(str(channel.cert_file), str(channel.key_file))
            self._ctx = ctx

    def render(self, payload: dict[str, Any]) -> bytes:
        """The RFC 5424 message for ``payload`` (no framing)."""
        ch = self.channel
        limit = MAX_UDP if ch.transport == "udp" else MAX_STREAM
        bad = bad_findings(payload)
        params = {
            "event": str(payload["event"]),
            "scope": str(payload["scope"]),
            "vm": str(payload["vm"]),
            "uuid": str(payload["uuid"]),
            "uri": str(payload["uri"]),
            "id": str(payload["id"]),
            "missed": "true" if payload.get("missed") else "false",
            "changes": str(len(payload.get("changes") or [])),
            "findings_attention": str(len(bad)),
        }
        sd = structured_data(ch.sd_id, params)
        severity = SEVERITIES["warning"] if bad else SEVERITIES["notice"]
        head = format_message(
            facility=ch.facility,
            severity=severity,
            hostname=self._hostname,
            app_name=ch.app_name,
            procid=str(os.getpid()),
            msgid="vm-change",
            sd=sd,
            msg=None,
        )
        room = limit - len(head) - 4  # space + BOM (3 bytes)
        return format_message(
            facility=ch.facility,
            severity=severity,
            hostname=self._hostname,
            app_name=ch.app_name,
            procid=str(os.getpid()),
            msgid="vm-change",
            sd=sd,
            msg=truncate_utf8(summary(payload), max(room, 0)),
        )

    @staticmethod
    def _confirm(tls: ssl.SSLSocket) -> None:
        """Make sure the server kept the session open after our message.

        With TLS 1.3 the client finishes its handshake before the server has checked the client
        certificate, so a server that refuses the certificate (rsyslog: ``authMode x509/certvalid``)
        just closes the connection after the handshake — and ``sendall`` has already succeeded. A
        receiver that accepted the session keeps reading and sends nothing, so: wait briefly for the
        connection to be closed on us, and count an immediate close as a refusal.
        """
        tls.settimeout(TLS_CONFIRM_S)
        try:
            data = tls.recv(1)
        except TimeoutError:
            return  # still open: accepted
        except (ssl.SSLError, OSError) as exc:
            raise NotifyError(
                f"the server closed the TLS session after the handshake ({one_line(exc)}): "
                "client certificate refused?"
            ) from exc
        if not data:
            raise NotifyError(
                "the server closed the TLS session after the handshake: client certificate refused?"
            )

    def send(self, payload: dict[str, Any], body: str) -> None:
        """Send one message; raise :class:`NotifyError` when it could not be written."""
        message = self.render(payload)
        ch = self.channel
        try:
            if ch.transport == "local":
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                    sock.settimeout(ch.timeout_s)
                    sock.connect(ch.address)
                    sock.send(message)
            elif ch.transport == "udp":
                family = socket.getaddrinfo(ch.address, ch.port, type=socket.SOCK_DGRAM)[0]
                with socket.socket(family[0], socket.SOCK_DGRAM) as sock:
                    sock.settimeout(ch.timeout_s)
                    sock.sendto(message, family[4])
            else:
                with socket.create_connection((ch.address, ch.port), timeout=ch.timeout_s) as raw:
                    if self._ctx is not None:
                        with self._ctx.wrap_socket(raw, server_hostname=ch.address) as tls:
                            tls.sendall(frame(message))
                            self._confirm(tls)
                    else:
                        raw.sendall(frame(message))
        except (OSError, ssl.SSLError) as exc:
            raise NotifyError(f"{ch.key}: {one_line(exc)}") from exc
