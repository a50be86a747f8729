"""E-mail channel: SMTP with TLS required — STARTTLS (port 587) or implicit TLS (port 465).

A server that does not offer STARTTLS is refused before anything is sent: the notification (VM names,
settings) and the SMTP password never travel in clear. Certificates and the host name are verified
(system CAs, or ``ca_file``). The message is plain text — summary, changes, findings, XML diff — with
the JSON payload attached as ``hvguard-event.json``. "Accepted" means the server took the message
for every recipient.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from hvguard.services.watch.config import EmailChannel
from hvguard.services.watch.notify_base import NotifyError, one_line
from hvguard.services.watch.payload import change_text, summary


def render_email(channel: EmailChannel, payload: dict[str, Any], body: str) -> EmailMessage:
    """The message for ``payload``."""
    msg = EmailMessage()
    msg["From"] = channel.sender
    msg["To"] = ", ".join(channel.to)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain="hvguard.invalid")
    msg["Subject"] = f"[hvguard] VM {payload['vm']} {payload['event']} on {payload['uri']}"
    msg["X-Hvguard-Event-Id"] = str(payload.get("id", ""))
    lines = [summary(payload), "", f"Detected: {payload['time']} (trigger: {payload['trigger']})", ""]
    changes = payload.get("changes") or []
    if changes:
        lines.append("Changes:")
        lines += [f"  {change_text(c)}" for c in changes]
        lines.append("")
    findings = payload.get("findings") or []
    if findings:
        lines.append("SS-009 re-evaluation:")
        for f in findings:
            lines.append(f"  {f['measure']} {f['status'].upper()} {f['subject']}: {f['message']}")
            if f.get("remediation"):
                lines.append(f"      fix: {f['remediation']}")
        lines.append("")
    if payload.get("xml_diff"):
        lines += ["XML diff:", payload["xml_diff"]]
    msg.set_content("\n".join(lines))
    msg.add_attachment(
        body.encode("utf-8"), maintype="application", subtype="json", filename="hvguard-event.json"
    )
    return msg


class EmailNotifier:
    """Sends each notification as one e-mail."""

    def __init__(self, channel: EmailChannel) -> None:
        self.channel = channel
        self.key = channel.key
        ctx = ssl.create_default_context(cafile=str(channel.ca_file) if channel.ca_file else None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._ctx = ctx

    def _connect(self) -> smtplib.SMTP:
        ch = self.channel
        if ch.tls == "implicit":
            return smtplib.SMTP_SSL(ch.host, ch.port, timeout=ch.timeout_s, context=self._ctx)
        smtp = smtplib.SMTP(ch.host, ch.port, timeout=ch.timeout_s)
        try:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise NotifyError(f"{ch.host}:{ch.port} does not offer STARTTLS: refusing to send in clear")
            smtp.starttls(context=self._ctx)
            smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, payload: dict[str, Any], body: str) -> None:
        """Send one e-mail; raise :class:`NotifyError` unless every recipient was accepted."""
        ch = self.channel
        message = render_email(ch, payload, body)
        try:
            smtp = self._connect()
            try:
                if ch.username is not None and ch.password is not None:
                    smtp.login(ch.username, ch.password.reveal().decode("utf-8"))
                refused = smtp.send_message(message)
            finally:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        except NotifyError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise NotifyError(f"{ch.host}:{ch.port}: authentication refused ({exc.smtp_code})") from exc
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise NotifyError(f"{ch.host}:{ch.port}: {one_line(exc)}") from exc
        if refused:
            raise NotifyError(f"{ch.host}:{ch.port}: recipients refused: {', '.join(sorted(refused))}")
