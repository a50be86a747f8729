"""A small RFC 5424 syslog message formatter (the standard library's SysLogHandler speaks RFC 3164).

``format_message`` builds ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD-ID k="v" …] BOM MSG``:
PRI = facility × 8 + severity; TIMESTAMP in UTC with microseconds (RFC 3339, §6.2.3); header fields
limited to printable US-ASCII and to their maximum lengths (§6), or ``-`` when empty; PARAM-VALUEs
with ``"``, ``\\`` and ``]`` escaped (§6.3.3); MSG in UTF-8 with the BOM (§6.4). ``frame`` adds the
octet-counting framing of RFC 5425/6587 (``LEN SP MSG``) for TCP and TLS.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

BOM = "\ufeff"
SEVERITIES = {"emerg": 0, "alert": 1, "crit": 2, "err": 3, "warning": 4, "notice": 5, "info": 6, "debug": 7}
_MAX = {"hostname": 255, "app_name": 48, "procid": 128, "msgid": 32, "sd_name": 32}


def _header_field(value: str | None, limit: int) -> str:
    """PRINTUSASCII (33–126) only, cut to ``limit``; ``-`` (NILVALUE) when nothing is left."""
    text = "".join(c for c in (value or "") if 33 <= ord(c) <= 126)[:limit]
    return text or "-"


def _sd_name(name: str) -> str:
    cleaned = "".join(c for c in name if 33 <= ord(c) <= 126 and c not in '= ]"')[: _MAX["sd_name"]]
    if not cleaned:
        raise ValueError(f"empty SD name after cleaning {name!r}")
    return cleaned


def _sd_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def timestamp(when: datetime | None = None) -> str:
    """RFC 3339 UTC timestamp with microseconds (``2024-05-01T12:00:00.123456Z``)."""
    moment = (when or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def structured_data(sd_id: str, params: Mapping[str, str]) -> str:
    """One SD-ELEMENT ``[sd_id name="value" …]``; the SD-ID is kept as given (``name@PEN`` form)."""
    items = "".join(f' {_sd_name(k)}="{_sd_value(v)}"' for k, v in params.items())
    return f"[{_sd_name(sd_id)}{items}]"


def format_message(
    *,
    facility: int,
    severity: int,
    hostname: str | None,
    app_name: str,
    procid: str | None,
    msgid: str | None,
    sd: str | None,
    msg: str | None,
    when: datetime | None = None,
) -> bytes:
    """One RFC 5424 message as UTF-8 bytes (no framing)."""
    if not 0 <= facility <= 23 or not 0 <= severity <= 7:
        raise ValueError("facility must be 0..23 and severity 0..7")
    header = " ".join(
        [
            f"<{facility * 8 + severity}>1",
            timestamp(when),
            _header_field(hostname, _MAX["hostname"]),
            _header_field(app_name, _MAX["app_name"]),
            _header_field(procid, _MAX["procid"]),
            _header_field(msgid, _MAX["msgid"]),
            sd or "-",
        ]
    )
    if msg:
        return (header + " " + BOM + msg).encode("utf-8")
    return header.encode("utf-8")


def frame(message: bytes) -> bytes:
    """Octet-counting framing for stream transports: ``LEN SP MSG``."""
    return str(len(message)).encode("ascii") + b" " + message


def truncate_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut so its UTF-8 form fits ``max_bytes`` (never splitting a character)."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[: max(0, max_bytes - 3)].decode("utf-8", "ignore") + "…"
