"""Listening sockets from /proc/net/{tcp,tcp6,udp,udp6}, mapped to processes through /proc/PID/fd.

proc(5): ``local_address`` is ``ADDR:PORT`` in hex; IPv4 ``ADDR`` is the 32-bit address as the host
stores it (little-endian on x86: ``0100007F`` = 127.0.0.1), IPv6 is four such 32-bit words; ``PORT`` is
big-endian hex. TCP state ``0A`` is LISTEN. A UDP socket with no remote address is bound and receives
from anyone, so it counts as listening. The ``inode`` column matches ``socket:[INODE]`` links in
``/proc/PID/fd`` (readable for every process only as root).
"""

from __future__ import annotations

import ipaddress
import sys

from hvguard.collect.linux.ops_files import OpsReader
from hvguard.facts import ConfigIssue, ListeningSocket

AREA = "host.operations.firewall"
TCP_LISTEN = "0A"
_FILES = (
    ("tcp", "proc/net/tcp"),
    ("tcp", "proc/net/tcp6"),
    ("udp", "proc/net/udp"),
    ("udp", "proc/net/udp6"),
)


def decode_address(hexaddr: str, byteorder: str = sys.byteorder) -> str:
    """An address from /proc/net as text (``0100007F`` → ``127.0.0.1``); words are host byte order."""
    raw = bytes.fromhex(hexaddr)
    if byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    if len(raw) == 16:
        return str(ipaddress.IPv6Address(raw))
    raise ValueError(f"address of {len(raw)} bytes")


def parse_proc_net(text: str, proto: str, path: str) -> tuple[list[ListeningSocket], list[ConfigIssue]]:
    """Listening/bound sockets of one /proc/net table."""
    out: list[ListeningSocket] = []
    issues: list[ConfigIssue] = []
    for n, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if n == 1 or not fields:
            continue
        try:
            local, remote, state = fields[1], fields[2], fields[3]
            inode = int(fields[9])
            addr_hex, port_hex = local.split(":")
            remote_port = int(remote.split(":")[1], 16)
            if proto == "tcp" and state != TCP_LISTEN:
                continue
            if proto == "udp" and remote_port != 0:
                continue
            out.append(
                ListeningSocket(
                    proto=proto, address=decode_address(addr_hex), port=int(port_hex, 16), inode=inode
                )
            )
        except (IndexError, ValueError) as exc:
            issues.append(ConfigIssue(path=path, line=n, message=f"unexpected line: {exc}"))
    return out, issues


def _inode_owners(r: OpsReader) -> dict[int, tuple[int, str]]:
    """socket inode → (pid, comm), from /proc/PID/fd links (only what this user may read)."""
    owners: dict[int, tuple[int, str]] = {}
    for pid in r.listdir("proc"):
        if not pid.isdigit():
            continue
        fds = r.listdir(f"proc/{pid}/fd")
        if not fds:
            continue
        comm: str | None = None
        for fd in fds:
            link = r.readlink(f"proc/{pid}/fd/{fd}")
            if link and link.startswith("socket:["):
                try:
                    inode = int(link[8:-1])
                except ValueError:
                    continue
                if comm is None:
                    comm = (r.text(f"proc/{pid}/comm", AREA) or "?").strip()
                owners.setdefault(inode, (int(pid), comm))
    return owners


def collect_listening(r: OpsReader) -> tuple[list[ListeningSocket] | None, list[ConfigIssue]]:
    """Every listening socket (None when /proc/net is not available: an offline root)."""
    found = False
    sockets: list[ListeningSocket] = []
    issues: list[ConfigIssue] = []
    for proto, rel in _FILES:
        text = r.text(rel, AREA)
        if text is None:
            continue
        found = True
        socks, iss = parse_proc_net(text, proto, r.shown(rel))
        sockets += socks
        issues += iss
    if not found:
        return None, issues
    owners = _inode_owners(r) if r.live else {}
    out = []
    seen: set[tuple[str, str, int]] = set()
    for s in sockets:
        key = (s.proto, s.address, s.port)
        if key in seen:
            continue
        seen.add(key)
        owner = owners.get(s.inode or -1)
        out.append(
            ListeningSocket(
                proto=s.proto,
                address=s.address,
                port=s.port,
                inode=s.inode,
                pid=owner[0] if owner else None,
                process=owner[1] if owner else None,
            )
        )
    return sorted(out, key=lambda s: (s.proto, s.port, s.address)), issues
