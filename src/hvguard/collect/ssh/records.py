"""Parse the SSH script's framed answer (see :mod:`hvguard.collect.ssh.script`) into plain data.

The answer comes from the target, so it is untrusted: every record is checked for its type and field
count, numbers are parsed strictly, and anything unexpected raises :class:`ProtocolError` with a
one-line reason (the transport turns that into a target-level error, never a traceback).
"""

from __future__ import annotations

import io
import os
import re
import tarfile
from dataclasses import dataclass, field

from hvguard.collect.interface import CollectError
from hvguard.collect.linux.manifest import COMMANDS
from hvguard.collect.linux.source import CommandResult
from hvguard.collect.ssh.remote_script import PROTOCOL
from hvguard.collect.ssh.script import FILE_CAP

#: Fields before the payload, per record type.
_FIELDS: dict[bytes, int] = {
    b"H": 1,
    b"d": 1,
    b"D": 1,
    b"F": 1,
    b"B": 1,
    b"A": 0,
    b"R": 2,
    b"U": 2,
    b"L": 2,
    b"S": 1,
    b"N": 3,
    b"M": 0,
    b"G": 0,
    b"O": 1,
    b"E": 3,
    b"X": 2,
    b"e": 1,
    b"V": 2,
    b"VD": 2,
    b"Z": 0,
}
# Record types whose payload must be empty.
_NO_PAYLOAD = frozenset({b"d", b"B", b"R", b"U", b"L", b"S", b"N", b"X", b"Z"})
_OCTAL_ESCAPE = re.compile(rb"\\([0-7]{3})")
#: One ``stat`` record: absolute path, NUL, mode (hex), uid, gid, mtime (seconds, up to 9 decimals),
#: size, NUL.
_STAT_RECORD = re.compile(
    rb"(/[^\0]*)\0([0-9a-f]{1,8}) ([0-9]{1,10}) ([0-9]{1,10}) "
    rb"(-?[0-9]{1,12})(?:\.([0-9]{1,9}))? ([0-9]{1,20})\0"
)
#: Members of the script's tar archive at most (a real answer holds a few hundred).
MAX_ARCHIVE_MEMBERS = 100_000


class ProtocolError(CollectError, ValueError):
    """The remote answer is not a complete, well-formed hvguard script answer."""


@dataclass
class Entry:
    """One path on the target, as the script reported it (paths are absolute, as on the target)."""

    kind: str
    """``file``, ``dir``, ``exists`` (stat only), ``lines`` (count only), ``unreadable``,
    ``batched`` (a file whose bytes are in the archive; never left over after parsing)."""
    data: bytes = b""
    reason: str = ""
    listing: list[tuple[str, str]] | None = None
    """For a listed directory: (type ``d``/``f``/``l``, name) of every entry."""
    lines: int = 0
    last_byte: str = ""


@dataclass(frozen=True)
class Meta:
    """``stat`` of one path on the target (symlinks followed)."""

    mode: int
    """The raw ``st_mode``: file type and permission bits."""
    uid: int
    gid: int
    mtime_ns: int
    size: int = 0


@dataclass
class Virsh:
    """virsh's answers: the mode the connection opened in, its stdout sections and stderr texts."""

    mode: str = "none"
    """``rw``, ``ro`` or ``none`` (no connection, or virsh not installed)."""
    installed: bool = True
    host_output: str = ""
    domain_outputs: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    """stderr per attempt: ``rw``, ``ro`` (the first batch) — later batches append to the same key."""


@dataclass
class RemoteAnswer:
    """Everything one run of the script brought back."""

    entries: dict[str, Entry] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    """Paths of ``entries`` in the order the script reported them."""
    links: dict[str, str] = field(default_factory=dict)
    """Symbolic links: path → link text (what the path holds is, if anything, in ``entries``)."""
    modes: dict[str, Meta] = field(default_factory=dict)
    """path → what the script's single ``stat`` call said about it."""
    acls: set[str] | None = None
    """The stat-ed paths that carry a POSIX access ACL; None when the target could not say (no getfacl)."""
    commands: dict[str, CommandResult] = field(default_factory=dict)
    virsh: Virsh = field(default_factory=Virsh)
    euid: int | None = None
    """The effective uid the script ran as (0: root, directly or through sudo); None when not said."""

    def merge(self, later: RemoteAnswer) -> None:
        """Add a follow-up pass's answer (paths this one did not ask for); this answer's virsh and
        commands stand. A bare directory record never replaces what is already known of a path."""
        for path in later.order:
            entry = later.entries[path]
            known = self.entries.get(path)
            if known is not None and entry.kind == "dir" and entry.listing is None:
                continue
            if known is None:
                self.order.append(path)
            self.entries[path] = entry
        for path, text in later.links.items():
            self.links.setdefault(path, text)
        for path, meta in later.modes.items():
            self.modes.setdefault(path, meta)
        if self.acls is not None and later.acls is not None:
            self.acls |= later.acls


def _text(raw: bytes) -> str:
    # Paths are bytes on the target; surrogateescape keeps non-UTF-8 names intact and round-trips.
    return os.fsdecode(raw)


def _path(raw: bytes) -> str:
    path = _text(raw)
    if not path.startswith("/"):
        raise ProtocolError(f"path {path[:80]!r} is not absolute")
    return path


def _int(raw: bytes, what: str) -> int:
    text = raw.decode("ascii", "replace").strip()
    if not text.isdigit():
        raise ProtocolError(f"{what} {text[:20]!r} is not a number")
    return int(text)


def _decoded(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _listing(payload: bytes) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for raw in payload.split(b"\0")[:-1] if payload else []:
        kind, name = raw[:1].decode("ascii", "replace"), _text(raw[1:])
        if kind not in {"d", "f", "l"} or not name or "/" in name or name in {".", ".."}:
            raise ProtocolError(f"bad directory entry {raw[:80]!r}")
        items.append((kind, name))
    if payload and not payload.endswith(b"\0"):
        raise ProtocolError("unterminated directory listing")
    return items


def _modes(payload: bytes, answer: RemoteAnswer) -> None:
    """``stat --printf '%n\\0%f %u %g %.9Y %s\\0'`` records, back to back; anything else is refused."""
    pos, end = 0, len(payload)
    while pos < end:
        found = _STAT_RECORD.match(payload, pos)
        if found is None:
            raise ProtocolError(f"bad stat record {payload[pos : pos + 60]!r}")
        raw_path, mode, uid, gid, seconds, fraction, size = found.groups()
        whole = int(seconds) * 1_000_000_000
        nanos = int(fraction.ljust(9, b"0")) if fraction else 0
        answer.modes[_path(raw_path)] = Meta(
            mode=int(mode, 16),  # %f: the raw st_mode, file type bits included
            uid=int(uid),
            gid=int(gid),
            mtime_ns=whole - nanos if seconds.startswith(b"-") else whole + nanos,
            size=int(size),
        )
        pos = found.end()


def _acl_paths(payload: bytes) -> set[str]:
    """The ``# file:`` headers of ``getfacl --skip-base`` (it lists only paths with an extended ACL and
    writes unprintable bytes and backslashes of a name as ``\\ooo``)."""
    found: set[str] = set()
    for line in payload.split(b"\n"):
        if line.startswith(b"# file: "):
            raw = _OCTAL_ESCAPE.sub(lambda m: bytes([int(m.group(1), 8) & 0xFF]), line[8:])
            found.add(_path(raw))
    return found


def _add(answer: RemoteAnswer, path: str, entry: Entry) -> None:
    if path not in answer.entries:
        answer.order.append(path)
    answer.entries[path] = entry


def _command(name: bytes) -> str:
    text = _text(name)
    if text not in COMMANDS:
        raise ProtocolError(f"answer for unknown command {text[:60]!r}")
    return text


def parse_answer(stream: bytes, boundary: str) -> RemoteAnswer:
    """Split ``stream`` on the boundary and build a :class:`RemoteAnswer`; raise :class:`ProtocolError`."""
    separator = b"\n" + boundary.encode("ascii") + b":"
    chunks = stream.split(separator)
    # chunks[0] is whatever the login shell printed before the script started (ignored).
    if len(chunks) < 2:
        shown = " ".join(stream[:80].decode("utf-8", "replace").split())
        printed = f"it printed {shown!r}" if shown else "it printed nothing"
        raise ProtocolError(f"the target did not run hvguard's collection script ({printed})")
    answer = RemoteAnswer()
    pending: str | None = None  # the command whose stdout came last (O), waiting for its E record
    pending_stdout = b""
    seen_end = False
    archive: bytes | None = None
    for index, chunk in enumerate(chunks[1:]):
        kind, sep, rest = chunk.partition(b"\0")
        if not sep or kind not in _FIELDS:
            raise ProtocolError(f"unknown record {kind[:12]!r}")
        if seen_end:
            raise ProtocolError("records after the end record")
        count = _FIELDS[kind]
        pieces = rest.split(b"\0", count) if count else [rest]
        if len(pieces) != count + 1 and count:
            raise ProtocolError(f"record {kind.decode()} has too few fields")
        fields, payload = pieces[:count], pieces[count] if count else rest
        if kind in _NO_PAYLOAD and payload:
            raise ProtocolError(f"record {kind.decode()} carries unexpected data")
        if pending is not None and kind != b"E":
            raise ProtocolError(f"command {pending} has no exit status")
        if index == 0 and kind != b"H":
            raise ProtocolError("the answer does not start with a header")
        if kind == b"H":
            if index != 0:
                raise ProtocolError("a second header")
            if fields[0] != PROTOCOL.encode():
                raise ProtocolError(f"protocol {fields[0][:10]!r}, expected {PROTOCOL}")
            # The script's effective uid (``id -u``) when it could tell: 0 is root (directly or via sudo).
            uid = payload.removesuffix(b"\0")
            if uid and not uid.isdigit():
                raise ProtocolError("bad header: the effective uid is not a number")
            answer.euid = int(uid) if uid else None
        elif kind == b"d":
            path = _path(fields[0])
            if path not in answer.entries or answer.entries[path].kind != "dir":
                _add(answer, path, Entry("dir"))
        elif kind == b"D":
            _add(answer, _path(fields[0]), Entry("dir", listing=_listing(payload)))
        elif kind == b"F":
            _add(answer, _path(fields[0]), Entry("file", data=payload))
        elif kind == b"B":
            _add(answer, _path(fields[0]), Entry("batched"))
        elif kind == b"A":
            if archive is not None:
                raise ProtocolError("a second archive")
            archive = payload
        elif kind in {b"R", b"U"}:
            _add(answer, _path(fields[0]), Entry("unreadable", reason=_decoded(fields[1]) or "unreadable"))
        elif kind == b"L":
            if fields[1]:  # empty: no longer a link when its text was read
                answer.links[_path(fields[0])] = _text(fields[1])
        elif kind == b"S":
            _add(answer, _path(fields[0]), Entry("exists"))
        elif kind == b"N":
            last = fields[2].decode("ascii", "replace").strip()
            if last and not last.isdigit():
                raise ProtocolError(f"bad last byte {last[:10]!r}")
            _add(
                answer, _path(fields[0]), Entry("lines", lines=_int(fields[1], "line count"), last_byte=last)
            )
        elif kind == b"M":
            _modes(payload, answer)
        elif kind == b"G":
            answer.acls = _acl_paths(payload)
        elif kind == b"O":
            pending, pending_stdout = _command(fields[0]), payload
        elif kind == b"E":
            name = _command(fields[0])
            if pending != name:
                raise ProtocolError(f"exit status for {name} without its output")
            answer.commands[name] = _result(name, fields, pending_stdout, payload)
            pending = None
        elif kind == b"X":
            name = _command(fields[0])
            answer.commands[name] = CommandResult(
                name=name, argv=list(COMMANDS[name].argv), error=_decoded(fields[1])[:200]
            )
        elif kind == b"e":
            mode = _decoded(fields[0])
            if mode not in {"rw", "ro"}:
                raise ProtocolError(f"bad virsh mode {mode[:10]!r}")
            answer.virsh.errors[mode] = answer.virsh.errors.get(mode, "") + _decoded(payload)
        elif kind == b"V":
            mode = _decoded(fields[0])
            if mode not in {"rw", "ro", "none"}:
                raise ProtocolError(f"bad virsh mode {mode[:10]!r}")
            answer.virsh.mode = mode
            answer.virsh.installed = not (mode == "none" and not answer.virsh.errors)
            answer.virsh.host_output = _decoded(payload)
        elif kind == b"VD":
            answer.virsh.domain_outputs.append(_decoded(payload))
        elif kind == b"Z":
            seen_end = True
    if pending is not None:
        raise ProtocolError(f"command {pending} has no exit status")
    if not seen_end:
        raise ProtocolError("the answer stops before its end record (the script did not finish)")
    _fill_batched(answer, _archive_members(archive or b""))
    return answer


def _archive_members(archive: bytes) -> dict[str, bytes]:
    """path → bytes of every regular file in the script's tar archive (read in memory, never extracted)."""
    if not archive:
        return {}
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:", errors="surrogateescape") as tar:
            for count, member in enumerate(tar):
                if count >= MAX_ARCHIVE_MEMBERS:
                    raise ProtocolError(f"more than {MAX_ARCHIVE_MEMBERS} files in the archive")
                name = "/" + member.name.lstrip("/")
                if member.isreg() and not member.issparse():
                    # The archive is already in memory: slice the member's bytes out of it.
                    end = member.offset_data + member.size
                    if end > len(archive):
                        raise ProtocolError(f"the file archive ends inside {name[:80]!r}")
                    members[name] = archive[member.offset_data : end]
                elif member.isreg():
                    handle = tar.extractfile(member)
                    members[name] = handle.read() if handle is not None else b""
                elif member.islnk():
                    # tar stores a second hard link to the same inode as a reference to the first.
                    first = "/" + member.linkname.lstrip("/")
                    if first not in members:
                        raise ProtocolError(f"hard link {name!r} to a file not in the archive")
                    members[name] = members[first]
                else:
                    raise ProtocolError(f"unexpected {member.type!r} member {name[:80]!r} in the archive")
    except (tarfile.TarError, EOFError, ValueError, OSError) as exc:
        raise ProtocolError(f"the file archive is damaged: {exc}") from None
    return members


def _fill_batched(answer: RemoteAnswer, members: dict[str, bytes]) -> None:
    for path, entry in answer.entries.items():
        if entry.kind != "batched":
            continue
        if path in members:
            entry.kind, entry.data = "file", members[path][:FILE_CAP]
        else:
            entry.kind, entry.reason = "unreadable", "Input/output error"


def _result(name: str, fields: list[bytes], stdout: bytes, stderr: bytes) -> CommandResult:
    cmd = COMMANDS[name]
    code = _int(fields[1], "exit status")
    timed = fields[2] == b"1"
    if timed and code == 124:
        # timeout(1)'s status for "the time ran out", the same outcome run_local reports.
        return CommandResult(name=name, argv=list(cmd.argv), error=f"timed out after {cmd.timeout_s:g} s")
    return CommandResult(
        name=name,
        argv=list(cmd.argv),
        returncode=code,
        stdout=_decoded(stdout),
        stderr=_decoded(stderr)[-2000:],
    )
