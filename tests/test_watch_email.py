"""The e-mail channel against a real SMTP server on loopback (aiosmtpd, started and stopped here):
STARTTLS is required and verified, a server without it gets nothing — not even the password."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword

from hvguard.services.watch.config import EmailChannel, Secret
from hvguard.services.watch.notify_base import NotifyError
from hvguard.services.watch.notify_email import EmailNotifier
from hvguard.services.watch.payload import encode, make_payload
from test_watch_support import Pki, make_pki

PASSWORD = "smtp-secret-pw"


class Sink:
    """Collects the messages the server accepted and the AUTH attempts it saw."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        # (not "auth_…": aiosmtpd takes handler attributes named auth_* for AUTH mechanisms)
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 OK"

    def authenticator(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        user, password = data.login.decode(), data.password.decode()
        self.logins.append((user, password))
        return AuthResult(success=user == "hvguard" and password == PASSWORD, handled=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


def start_server(sink: Sink, **kwargs: Any) -> Controller:
    options: dict[str, Any] = {"auth_require_tls": True, **kwargs}
    controller = Controller(
        sink, hostname="127.0.0.1", port=free_port(), authenticator=sink.authenticator, **options
    )
    controller.start()
    return controller


@pytest.fixture
def payload() -> dict[str, Any]:
    return make_payload(
        event="config-changed", scope="config", trigger="config-file", missed=False, uri="qemu:///system",
        host="hv1", vm="web1", uuid="u-1", time="2024-01-01T00:00:00.000Z",
        changes=[{"path": "cputune.shares", "old": 1024, "new": 2048, "kind": "changed"}],
        xml_diff="-    <shares>1024</shares>\n+    <shares>2048</shares>\n",
        findings=[
            {"measure": "11.3.4", "status": "pass", "subject": "vm:web1", "message": "ok", "remediation": ""}
        ],
    )  # fmt: skip


def channel(port: int, ca: Path | None, tls: str = "starttls") -> EmailChannel:
    return EmailChannel(
        host="127.0.0.1", port=port, tls=tls, sender="hvguard@example.org",  # type: ignore[arg-type]
        to=("admins@example.org", "sec@example.org"), username="hvguard",
        password=Secret(PASSWORD.encode(), "t"), ca_file=ca, timeout_s=10,
    )  # fmt: skip


@pytest.fixture
def sink() -> Iterator[Sink]:
    yield Sink()


def test_starttls_auth_and_message_content(pki: Pki, sink: Sink, payload: dict[str, Any]) -> None:
    server = start_server(sink, tls_context=pki.server_context(), require_starttls=True)
    try:
        body = encode(payload)
        EmailNotifier(channel(server.port, pki.ca_file)).send(payload, body)
    finally:
        server.stop()
    assert sink.logins == [("hvguard", PASSWORD)]
    [(rcpts, msg)] = sink.messages
    assert rcpts == ["admins@example.org", "sec@example.org"]
    assert msg["Subject"] == "[hvguard] VM web1 config-changed on qemu:///system"
    assert msg["X-Hvguard-Event-Id"] == payload["id"]
    text = msg.get_body(("plain",))
    assert text is not None
    content = text.get_content()
    assert "  cputune.shares: 1024 → 2048" in content and "11.3.4 PASS vm:web1: ok" in content
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "hvguard-event.json"
    assert json.loads(attachment.get_content()) == payload


def test_server_without_starttls_gets_nothing(sink: Sink, pki: Pki, payload: dict[str, Any]) -> None:
    server = start_server(sink)  # plain SMTP only
    try:
        with pytest.raises(NotifyError, match="does not offer STARTTLS: refusing to send in clear"):
            EmailNotifier(channel(server.port, pki.ca_file)).send(payload, encode(payload))
    finally:
        server.stop()
    assert sink.messages == [] and sink.logins == []


def test_untrusted_server_certificate_is_refused(tmp_path: Path, sink: Sink, payload: dict[str, Any]) -> None:
    rogue = make_pki(tmp_path, "rogue")
    trusted = make_pki(tmp_path, "trusted")
    server = start_server(sink, tls_context=rogue.server_context(), require_starttls=True)
    try:
        with pytest.raises(NotifyError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            EmailNotifier(channel(server.port, trusted.ca_file)).send(payload, encode(payload))
    finally:
        server.stop()
    assert sink.messages == [] and sink.logins == []


def test_implicit_tls(pki: Pki, sink: Sink, payload: dict[str, Any]) -> None:
    # aiosmtpd only counts STARTTLS as TLS for auth_require_tls; the whole session is TLS here.
    server = start_server(sink, ssl_context=pki.server_context(), auth_require_tls=False)
    try:
        EmailNotifier(channel(server.port, pki.ca_file, tls="implicit")).send(payload, encode(payload))
    finally:
        server.stop()
    assert len(sink.messages) == 1 and sink.logins == [("hvguard", PASSWORD)]


def test_wrong_password_is_a_failure_without_the_password_in_it(
    pki: Pki, sink: Sink, payload: dict[str, Any]
) -> None:
    server = start_server(sink, tls_context=pki.server_context(), require_starttls=True)
    bad = channel(server.port, pki.ca_file)
    bad = EmailChannel(**{**bad.__dict__, "password": Secret(b"wrong-one", "t")})
    try:
        with pytest.raises(NotifyError, match="authentication refused") as err:
            EmailNotifier(bad).send(payload, encode(payload))
    finally:
        server.stop()
    assert "wrong-one" not in str(err.value) and sink.messages == []
