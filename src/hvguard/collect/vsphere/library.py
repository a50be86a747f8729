"""Content libraries through vCenter's vAPI REST interface, with a plain HTTPS client (the standard
library's), the same verified TLS context as the SOAP session, and a session of its own.

The older ``/rest/com/vmware/content/…`` paths answer on every vCenter since 6.5; vCenter 7.0U2+ also
(and 8.0 U-later only) serves ``/api/content/…``. hvguard tries ``/rest`` first and falls back to ``/api``
when ``/rest`` answers 404. Read-only: the session is created and deleted, libraries and items are read.
"""

from __future__ import annotations

import base64
import contextlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hvguard.collect.vsphere.api import ApiCall
from hvguard.collect.vsphere.connection import REQUEST_TIMEOUT_S, Connection
from hvguard.collect.vsphere.values import boolean, integer, mapping, text
from hvguard.facts import ContentLibrary, LibraryItem, Problem

AREA = "vsphere.content_libraries"
#: A REST answer larger than this is refused (a hostile or broken server cannot exhaust memory).
MAX_ANSWER_BYTES = 64 * 1024 * 1024
#: Libraries and items read at most (each one is a request).
MAX_OBJECTS = 10_000
CALLS = (
    ApiCall(
        "POST /rest/com/vmware/cis/session",
        "vAPI (or POST /api/session)",
        why="a REST session (deleted after)",
    ),
    ApiCall(
        "GET /rest/com/vmware/content/library[/id:ID]",
        "vAPI (or /api/content/library[/ID])",
        why="libraries: type, publishing and its authentication, subscription URL and thumbprint",
    ),
    ApiCall(
        "GET /rest/com/vmware/content/library/item?library_id=ID[/id:ITEM]",
        "vAPI (or /api/content/library/item?library_id=ID)",
        why="each library's items",
    ),
)


class RestError(Exception):
    """A REST call that failed: ``status`` (HTTP status or 0) and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class _Rest:
    conn: Connection
    base: str
    token: str = ""
    modern: bool = False

    def request(self, method: str, path: str, *, auth: bool = False) -> Any:
        headers = {"Accept": "application/json"}
        if auth:
            login = f"{self.conn.target.user}:{self.conn.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(login).decode()
        elif self.token:
            headers["vmware-api-session-id"] = self.token
        # Always https://HOST:PORT built from the parsed target: no file: or other scheme can reach here.
        req = urllib.request.Request(self.base + path, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(  # noqa: S310
                req, context=self.conn.context, timeout=REQUEST_TIMEOUT_S
            ) as answer:
                body = answer.read(MAX_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise RestError(exc.code, f"{method} {path}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise RestError(0, f"{method} {path}: {getattr(exc, 'reason', exc)}") from None
        if len(body) > MAX_ANSWER_BYTES:
            raise RestError(0, f"{method} {path}: answer larger than {MAX_ANSWER_BYTES} bytes")
        if not body:
            return None
        try:
            data = json.loads(body)
        except ValueError:
            raise RestError(0, f"{method} {path}: not JSON") from None
        # /rest wraps every answer in {"value": …}; /api does not.
        return data if self.modern else mapping(data).get("value")

    def login(self) -> None:
        try:
            self.token = str(self.request("POST", "/rest/com/vmware/cis/session", auth=True))
        except RestError as exc:
            if exc.status != 404:
                raise
            self.modern = True
            self.token = str(self.request("POST", "/api/session", auth=True))

    def logout(self) -> None:
        with contextlib.suppress(RestError):  # the session expires on its own
            self.request("DELETE", "/api/session" if self.modern else "/rest/com/vmware/cis/session")


def read_libraries(conn: Connection, problems: list[Problem]) -> list[ContentLibrary] | None:
    """Every content library with its items (vCenter only; None on ESXi). A failure is a problem under
    ``vsphere.content_libraries`` and gives None."""
    if not conn.is_vcenter:
        return None
    rest = _Rest(conn, f"https://{_host(conn.target.host)}:{conn.target.port}")
    try:
        rest.login()
        try:
            return _libraries(rest, problems)
        finally:
            rest.logout()
    except RestError as exc:
        problems.append(Problem(area=AREA, source=conn.target.text, message=f"content libraries: {exc}"))
        return None


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _ids(value: Any) -> list[str]:
    return [str(v) for v in value][:MAX_OBJECTS] if isinstance(value, list) else []


def _libraries(rest: _Rest, problems: list[Problem]) -> list[ContentLibrary]:
    prefix = "/api/content/library" if rest.modern else "/rest/com/vmware/content/library"
    out = []
    for lib_id in _ids(rest.request("GET", prefix)):
        one = f"{prefix}/{quote(lib_id, safe='')}" if rest.modern else f"{prefix}/id:{quote(lib_id, safe='')}"
        lib = mapping(rest.request("GET", one))
        items = None
        try:
            items = _items(rest, prefix, lib_id)
        except RestError as exc:
            problems.append(
                Problem(
                    area=AREA,
                    source=rest.conn.target.text,
                    message=f"library {lib.get('name') or lib_id} items: {exc}",
                )
            )
        publish = mapping(lib.get("publish_info"))
        subscription = mapping(lib.get("subscription_info"))
        out.append(
            ContentLibrary(
                id=lib_id,
                name=str(lib.get("name") or lib_id),
                type=text(lib.get("type")),
                published=boolean(publish.get("published")),
                authentication_method=text(publish.get("authentication_method")),
                publish_url=text(publish.get("publish_url")),
                subscription_url=text(subscription.get("subscription_url")),
                ssl_thumbprint=text(subscription.get("ssl_thumbprint")),
                security_policy_id=text(lib.get("security_policy_id")),
                items=items,
            )
        )
    return out


def _items(rest: _Rest, prefix: str, lib_id: str) -> list[LibraryItem]:
    base = f"{prefix}/item"
    out = []
    for item_id in _ids(rest.request("GET", f"{base}?library_id={quote(lib_id, safe='')}")):
        one = f"{base}/{quote(item_id, safe='')}" if rest.modern else f"{base}/id:{quote(item_id, safe='')}"
        item = mapping(rest.request("GET", one))
        out.append(
            LibraryItem(
                id=item_id,
                name=str(item.get("name") or item_id),
                type=text(item.get("type")),
                size=integer(item.get("size")),
                security_compliance=boolean(item.get("security_compliance")),
            )
        )
    return out
