"""Webhook channel: HTTPS POST of the JSON payload with an HMAC-SHA256 signature.

Headers sent::

    Content-Type: application/json
    X-Hvguard-Event-Id: <payload id>               (repeats after a crash carry the same id)
    X-Hvguard-Timestamp: <unix seconds>
    X-Hvguard-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

A receiver verifies by recomputing the HMAC over the timestamp header, a dot and the raw body, comparing
in constant time, and rejecting timestamps older than a few minutes (replays)::

    expected = hmac.new(secret, f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(f"sha256={expected}", signature) and abs(time.time() - int(ts)) < 300

TLS certificates and host names are always verified (system CAs, or ``ca_file`` for a private CA).
Redirects are not followed (a redirected POST would silently become a GET without the body) and
environment proxies are not used. Only a 2xx answer counts as accepted. A ``user:password@`` in the URL
is sent as HTTP Basic authentication (never as part of the host name); logs and messages name the
channel by scheme, host and port only (:attr:`WebhookChannel.key`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ssl
import time
import urllib.error
import urllib.request
from typing import Any

from hvguard import __version__
from hvguard.services.watch.config import WebhookChannel, url_without_userinfo
from hvguard.services.watch.notify_base import NotifyError, one_line


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError for the 3xx: the POST was not accepted


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Hvguard-Signature`` value for ``body`` sent at ``timestamp``."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookNotifier:
    """POSTs each notification to one HTTPS URL."""

    def __init__(self, channel: WebhookChannel) -> None:
        self.channel = channel
        self.key = channel.key
        self._url, credentials = url_without_userinfo(channel.url)
        self._auth: dict[str, str] = {}
        if credentials is not None:
            token = base64.b64encode(":".join(credentials).encode("utf-8")).decode("ascii")
            self._auth["Authorization"] = f"Basic {token}"
        ctx = ssl.create_default_context(cafile=str(channel.ca_file) if channel.ca_file else None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx), _NoRedirect()
        )

    def send(self, payload: dict[str, Any], body: str) -> None:
        """POST ``body``; raise :class:`NotifyError` unless the answer is 2xx."""
        data = body.encode("utf-8")
        stamp = str(int(time.time()))
        request = urllib.request.Request(  # noqa: S310 (the URL is checked to be https:// in config)
            self._url,
            data=data,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": f"hvguard-watch/{__version__}",
                "X-Hvguard-Event-Id": str(payload.get("id", "")),
                "X-Hvguard-Timestamp": stamp,
                "X-Hvguard-Signature": signature(self.channel.secret.reveal(), stamp, data),
                **self._auth,
            },
        )
        try:
            with self._opener.open(request, timeout=self.channel.timeout_s) as response:
                status = int(response.status)
                response.read(65536)
        except urllib.error.HTTPError as exc:
            raise NotifyError(f"HTTP {exc.code} {exc.reason}") from exc
        except urllib.error.URLError as exc:
            raise NotifyError(
                one_line(exc.reason) if isinstance(exc.reason, BaseException) else str(exc.reason)
            ) from exc
        except (OSError, ValueError) as exc:
            raise NotifyError(one_line(exc)) from exc
        if not 200 <= status < 300:
            raise NotifyError(f"HTTP {status}")
