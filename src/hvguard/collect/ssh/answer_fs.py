"""What an SSH target sent back, served to the host collectors as a read-only file system in memory.

The script's answer (:class:`~hvguard.collect.ssh.records.RemoteAnswer`) holds files with their bytes,
directories with their listings, symbolic links with their texts, paths known only to exist, line
counts, paths the target could not read, and the target's own ``stat`` (mode, owner, group, mtime) of
each. :class:`AnswerFS` arranges them into one tree under the target's own paths, so the collectors read
a remote host exactly as they read a local one — and nothing the target sent is ever written to this
machine's disk or resolved against its files.

Everything in the answer is untrusted. Paths are placed with chroot semantics (the same rules as
:func:`~hvguard.collect.hostfs.resolve_in_root`: ``..`` stops at the root, an absolute link text restarts
at it, at most 40 links per lookup), so a hostile answer can only ever name other entries of itself. A
path the target could not read raises the target's own reason (``PermissionError: Permission denied``),
so collectors report it in the target's words.
"""

from __future__ import annotations

import errno
import os
import stat

from hvguard.collect.hostfs import HostFS, chroot_walk
from hvguard.collect.ssh.fetch import FetchIndex
from hvguard.collect.ssh.records import Entry, Meta, RemoteAnswer
from hvguard.facts import Problem

_DIR, _FILE, _LINES, _UNREADABLE = "dir", "file", "lines", "unreadable"
#: strerror text → errno, so a target's reason becomes the matching OSError subclass.
_ERRNO_BY_TEXT = {os.strerror(code): code for code in sorted(errno.errorcode, reverse=True)}


class _Node:
    """One path of the tree. ``placeholder`` marks what only a listing or a bare ``stat`` created."""

    __slots__ = (
        "children",
        "complete",
        "data",
        "denied",
        "ino",
        "kind",
        "lines",
        "listed",
        "meta",
        "placeholder",
        "tail",
    )

    def __init__(self, kind: str, ino: int, *, data: bytes = b"", placeholder: bool = False) -> None:
        self.kind = kind
        self.ino = ino
        self.data = data
        self.placeholder = placeholder
        self.children: dict[str, None] | None = {} if kind == _DIR else None
        self.denied: str | None = None
        """For an unreadable node, or a directory the target could enter but not list: its reason."""
        self.lines = 0
        self.tail = b""
        self.meta: Meta | None = None
        self.listed = False
        """Created from a directory listing: its name is known, its owner, mode and times are not."""
        self.complete = False
        """A directory the target listed: ``children`` names every entry."""


def _error(code: int, text: str | None = None) -> OSError:
    return OSError(code, text or os.strerror(code))


def _denied(reason: str) -> OSError:
    return OSError(_ERRNO_BY_TEXT.get(reason, errno.EIO), reason)


class AnswerFS(HostFS):
    """The target's files as the answer describes them; ``problems`` lists what could not be placed."""

    label = "/"

    def __init__(self, answer: RemoteAnswer, index: FetchIndex | None = None) -> None:
        self._index = index
        self.unfetched: dict[str, set[str]] = {}
        """Paths the collectors looked for that the request did not cover (so their absence here says
        nothing), with the fetch ops that would answer them: ``F`` read, ``D`` list, ``S`` stat,
        ``N`` count lines."""
        self._nodes: dict[str, _Node] = {"": _Node(_DIR, 1)}
        self._last_ino = 1
        self._links: dict[str, str] = {}
        self._resolved: dict[str, str] = {}
        self._listed: dict[str, str] = {}
        """Names a directory listing gave (key → ``d``/``f``/``l``) that have no node yet."""
        self._acls: set[int] | None = None
        """Nodes (by inode number) that carry an ACL; None when the target could not say."""
        self.problems: list[Problem] = []
        self._build(answer)

    # -- resolution -------------------------------------------------------------------------------------

    def _resolve(self, rel: str, *, follow_last: bool = True) -> str:
        """The tree key (no leading slash, ``""`` for the root) that ``rel`` leads to."""
        if not follow_last:
            return chroot_walk(rel, self._links.get, follow_last=False)
        key = self._resolved.get(rel)
        if key is None:
            # The parent's key (cached: a few dozen directories hold every path) plus the last name;
            # the full walk only when that name is a link, "." or "..".
            parent, _, name = rel.rpartition("/")
            if name in {"", ".", ".."}:
                key = chroot_walk(rel, self._links.get)
            else:
                base = self._resolve(parent) if parent.strip("/") else ""
                key = f"{base}/{name}" if base else name
                if key in self._links:
                    key = chroot_walk(rel, self._links.get)
            self._resolved[rel] = key
        return key

    def _lookup(self, rel: str, op: str) -> _Node:
        key = self._resolve(rel)
        node = self._node(key)
        if node is not None:
            return node
        raise self._absent(rel, key, op)

    def _absent(self, rel: str, key: str, op: str) -> OSError:
        """The error for a path not in the tree; notes it when the request did not cover it."""
        error = self._missing(key)
        index = self._index
        outside = index is not None and not (index.covers("/" + key) or index.covers("/" + rel.strip("/")))
        if error.errno == errno.ENOENT and outside:
            self._want(key, op)
        return error

    def _want(self, key: str, op: str) -> None:
        """Note that a follow-up pass should fetch ``key`` with ``op`` (only when passes are possible)."""
        if self._index is not None:
            self.unfetched.setdefault("/" + key, set()).add(op)

    def _node(self, key: str) -> _Node | None:
        """The node at ``key``; a name only listed so far becomes its placeholder when first asked for
        (most of a listing — /proc, /sys/module — is never looked at)."""
        node = self._nodes.get(key)
        if node is None and key in self._listed:
            kind = self._listed.pop(key)
            node = self._new(key, _DIR) if kind == "d" else self._new(key, _FILE, placeholder=True)
            node.listed = True
        return node

    def _missing(self, key: str) -> OSError:
        """Why ``key`` is not in the tree, as the kernel would say it."""
        parts = key.split("/")
        for depth in range(1, len(parts)):
            above = self._node("/".join(parts[:depth]))
            if above is None:
                break
            if above.kind == _UNREADABLE:
                return _denied(above.denied or "Permission denied")
            if above.kind != _DIR:
                return _error(errno.ENOTDIR)
        return _error(errno.ENOENT)

    # -- HostFS -----------------------------------------------------------------------------------------

    def read(self, rel: str, limit: int) -> bytes:
        """The bytes the target sent (a counted-only file reads as its newlines)."""
        node = self._lookup(rel, "F")
        if node.kind == _DIR:
            raise _error(errno.EISDIR)
        if node.kind == _UNREADABLE:
            raise _denied(node.denied or "Permission denied")
        if node.placeholder:
            self._want(self._resolve(rel), "F")  # only its name or its stat was asked for, not its bytes
        if node.kind == _LINES:
            return (b"\n" * node.lines + node.tail)[:limit]
        return node.data[:limit]

    def stat(self, rel: str) -> os.stat_result:
        """The target's own ``stat`` of the path (links followed inside the answer)."""
        node = self._lookup(rel, "S")
        meta = node.meta
        if meta is not None:
            # The target's own; its size too (a fetched copy may be capped).
            mode, uid, gid, mtime_ns, size = meta.mode, meta.uid, meta.gid, meta.mtime_ns, meta.size
        else:
            if node.listed:
                self._want(self._resolve(rel), "S")  # only its name was listed
            if node.kind == _DIR:
                mode = stat.S_IFDIR | 0o755
            else:
                mode = stat.S_IFREG | (0 if node.kind == _UNREADABLE else 0o644)
            uid = gid = mtime_ns = 0
            size = node.lines + len(node.tail) if node.kind == _LINES else len(node.data)
        seconds, nanos = divmod(mtime_ns, 1_000_000_000)
        return os.stat_result(
            (mode, node.ino, 0, 1, uid, gid, size, seconds, seconds, seconds),
            # The float the kernel's (tv_sec, tv_nsec) gives in os.stat, to the last bit.
            {"st_mtime": seconds + nanos * 1e-9, "st_mtime_ns": mtime_ns},
        )

    def listdir(self, rel: str) -> list[str]:
        """The names the target listed (plus every path fetched below the directory)."""
        node = self._lookup(rel, "D")
        if node.denied is not None:
            raise _denied(node.denied)
        is_dir = node.children is not None or (node.meta is not None and stat.S_ISDIR(node.meta.mode))
        if not is_dir:
            raise _error(errno.ENOTDIR)
        key = self._resolve(rel)
        if not node.complete and self._index is not None and not self._index.lists("/" + key):
            # Known to be a directory, but its entries were never asked for: only what was fetched below
            # it is here.
            self._want(key, "D")
        return list(node.children or {})

    def readlink(self, rel: str) -> str:
        """The link text exactly as the target holds it."""
        key = self._resolve(rel, follow_last=False)
        text = self._links.get(key)
        if text is not None:
            return text
        if self._node(key) is not None:
            raise _error(errno.EINVAL)
        raise self._absent(rel, key, "F")

    def count_lines(self, rel: str) -> int:
        """The line count the target sent (or the fetched file's own)."""
        node = self._lookup(rel, "N")
        if node.kind == _LINES:
            return node.lines + (1 if node.tail else 0)
        data = self.read(rel, len(node.data))
        return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)

    def has_acl(self, rel: str) -> bool | None:
        """From the target's getfacl, for the paths the script stat-ed; else unknown."""
        node = self._lookup(rel, "S")
        if self._acls is None or node.meta is None:
            return None
        return node.ino in self._acls

    # -- building ---------------------------------------------------------------------------------------

    def _new(self, key: str, kind: str, *, data: bytes = b"", placeholder: bool = False) -> _Node:
        self._last_ino += 1  # distinct per node, as (st_dev, st_ino) identifies a file
        node = _Node(kind, self._last_ino, data=data, placeholder=placeholder)
        self._nodes[key] = node
        parent, _, name = key.rpartition("/")
        children = self._dir(parent).children
        if children is not None:
            children[name] = None
        return node

    def _dir(self, key: str) -> _Node:
        """The directory at ``key`` (created with its parents, like ``mkdir -p``)."""
        node = self._node(key)
        if node is None:
            return self._new(key, _DIR)
        if node.kind == _DIR:
            return node
        if node.placeholder:
            del self._nodes[key]
            return self._new(key, _DIR)
        raise _error(errno.ENOTDIR)

    def _replaceable(self, key: str) -> bool:
        """True when nothing but a placeholder (or an empty directory) is at ``key``."""
        node = self._node(key)
        return node is None or node.placeholder or (node.kind == _DIR and not node.children)

    def _problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(area="transport", source=path, message=message))

    def _build(self, answer: RemoteAnswer) -> None:
        # Links first, shallowest first: every other path is then placed where the target's own links
        # lead (bytes read through /etc/os-release belong where that link points).
        for path in sorted(answer.links, key=lambda p: (p.count("/"), p)):
            try:
                self._link(path, answer.links[path])
            except OSError as exc:
                self._problem(path, f"cannot place the target's link: {exc.strerror or exc}")
        unreadable: dict[str, str] = {}
        for path in answer.order:
            entry = answer.entries[path]
            try:
                self._place(path, entry, unreadable)
            except OSError as exc:
                self._problem(path, f"cannot place the target's {entry.kind}: {exc.strerror or exc}")
        for path, meta in answer.modes.items():
            try:
                node = self._node(self._resolve(path))
            except OSError:
                continue
            if node is not None:
                node.meta = meta
        if answer.acls is not None:
            self._acls = set()
            for path in answer.acls:
                try:
                    node = self._node(self._resolve(path))
                except OSError:
                    continue
                if node is not None:
                    self._acls.add(node.ino)
        for key, reason in unreadable.items():
            node = self._nodes[key]
            if node.kind == _DIR and node.children:
                node.denied = reason  # entered (files below were read) but not listed
            else:
                replaced = _Node(_UNREADABLE, node.ino)
                replaced.meta, replaced.denied = node.meta, reason
                self._nodes[key] = replaced

    def _link(self, path: str, text: str) -> None:
        parent_rel, _, name = path.strip("/").rpartition("/")
        if not name or name in {".", ".."}:
            return
        parent = self._resolve(parent_rel)
        key = f"{parent}/{name}" if parent else name
        if key in self._links:
            return  # the script may report a link twice
        if not self._replaceable(key):
            self._problem(path, "a file and a link at the same path; the link was not kept")
            return
        self._nodes.pop(key, None)
        self._links[key] = text
        children = self._dir(parent).children
        if children is not None:
            children[name] = None
        self._resolved.clear()  # the new link changes where paths at or below it resolve

    def _place(self, path: str, entry: Entry, unreadable: dict[str, str]) -> None:
        key = self._resolve(path)
        if not key:
            return
        if entry.kind == "dir":
            node = self._dir(key)
            node.complete = node.complete or entry.listing is not None
            children = node.children if node.children is not None else {}
            for kind, name in entry.listing or []:
                child = f"{key}/{name}"
                if child in self._nodes or child in self._links:
                    continue
                self._listed[child] = kind
                children[name] = None
            return
        self._dir(key.rpartition("/")[0])
        existing = self._node(key)
        if existing is not None and existing.kind == _DIR and entry.kind in {"file", "lines"}:
            raise _error(errno.EISDIR)
        if entry.kind == "file":
            self._nodes.pop(key, None)
            self._new(key, _FILE, data=entry.data)
        elif entry.kind == "exists":
            if existing is None:
                self._new(key, _FILE, placeholder=True)
        elif entry.kind == "lines":
            self._nodes.pop(key, None)
            node = self._new(key, _LINES)
            # Only the count crosses the wire: newlines, plus one unterminated line if the file has one.
            node.lines, node.tail = entry.lines, b"" if entry.last_byte in {"", "012"} else b"x"
        elif entry.kind == "unreadable":
            if existing is None:
                self._new(key, _FILE, placeholder=True)
            if self._replaceable(key) or self._nodes[key].kind == _DIR:
                unreadable[key] = entry.reason
