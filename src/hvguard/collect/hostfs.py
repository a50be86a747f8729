"""A host's files, read-only, wherever they are: the running system, an offline root, or a remote answer.

Every host collector reads files through a :class:`HostFS`, never through ``open()`` on a path of its
own: the same collectors then work on ``/`` (:class:`DiskFS` over the live root), on an offline copy of a
host (:class:`DiskFS` over that directory, with chroot semantics) and on the files an SSH target sent
back (:class:`~hvguard.collect.ssh.answer_fs.AnswerFS`, in memory — nothing the target sent is written to
this machine's disk).

Paths are host paths relative to the root (``etc/ssh/sshd_config``; a leading ``/`` is ignored). Failures
are the operating system's own exceptions (``FileNotFoundError``, ``PermissionError``,
``IsADirectoryError``, …) so collectors handle every kind of host the same way.
"""

from __future__ import annotations

import errno
import os
import stat
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from pathlib import Path

from hvguard.filekind import kind_of

#: Read in requests of this size: a large single read() would allocate its whole size up front.
_CHUNK = 64 * 1024
#: Bytes :meth:`HostFS.count_lines` reads at most: a real IMA log of millions of measurements is far
#: smaller; a larger (or sparse, or endless) file is refused rather than read for minutes.
COUNT_LIMIT = 1024 * 1024 * 1024
#: Symlink hops allowed while resolving a path (the kernel's own limit).
MAX_SYMLINK_HOPS = 40


def chroot_walk(relpath: str, link_text: Callable[[str], str | None], *, follow_last: bool = True) -> str:
    """Where ``relpath`` leads inside a root, the way a chroot would resolve it: ``..`` never climbs
    above the root and an absolute link text restarts at it.

    ``link_text(path)`` gives the text of the symbolic link at root-relative ``path`` (None when it is
    not a link). Returns the root-relative result (``""`` for the root itself); with ``follow_last``
    False a link in the last component is kept, not followed. Raises ``OSError(ELOOP)`` after
    :data:`MAX_SYMLINK_HOPS` links; a missing component just ends as it is (the caller's read then
    reports it). The one implementation of these rules, for a directory of this machine and for an
    SSH target's answer alike.
    """
    pending = deque(part for part in relpath.split("/") if part not in {"", "."})
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.popleft()
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = "/".join((*resolved, part))
        text = link_text(candidate) if pending or follow_last else None
        if text is None:
            resolved.append(part)
            continue
        hops += 1
        if hops > MAX_SYMLINK_HOPS:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", relpath)
        if text.startswith("/"):
            resolved = []
        pending.extendleft(reversed([p for p in text.split("/") if p not in {"", "."}]))
    return "/".join(resolved)


def resolve_in_root(root: Path, relpath: str) -> Path:
    """Resolve ``relpath`` inside directory ``root`` with :func:`chroot_walk`'s rules, without leaving it.

    An offline root (a mounted disk image, a test fixture) is thereby never mixed with the running
    machine's files. For ``root == /`` the path is returned unchanged: the kernel's own resolution is
    the same thing.
    """
    if root == Path("/"):
        return Path("/", relpath.lstrip("/"))
    base = os.fspath(root).rstrip("/")

    def link_text(rel: str) -> str | None:
        try:
            return os.readlink(f"{base}/{rel}")
        except OSError:
            return None  # not a link (EINVAL) or not there (ENOENT): the component stays as it is

    inside = chroot_walk(relpath, link_text)
    return Path(f"{base}/{inside}" if inside else base)


class HostFS(ABC):
    """Read-only access to one host's files. ``label`` is how the root is shown in facts and problems."""

    label: str

    def note_unreadable(self, rel: str) -> None:
        """Record that host path ``rel`` exists but could not be read (permission denied): the scan then
        says which paths it could not read (``CollectionInfo.unreadable``)."""
        self.__dict__.setdefault("_unreadable", set()).add("/" + rel.strip("/"))

    @property
    def unreadable(self) -> list[str]:
        """Host paths recorded by :meth:`note_unreadable`, sorted."""
        return sorted(self.__dict__.get("_unreadable", ()))

    def shown(self, rel: str) -> str:
        """How host path ``rel`` appears in facts and problems: under the root's label, unresolved."""
        return str(Path(self.label, rel.lstrip("/")))

    @abstractmethod
    def read(self, rel: str, limit: int) -> bytes:
        """At most ``limit`` bytes of the file (pass one more than you accept to detect a larger file)."""

    @abstractmethod
    def stat(self, rel: str) -> os.stat_result:
        """``stat`` of the path, symbolic links followed inside the root."""

    @abstractmethod
    def listdir(self, rel: str) -> list[str]:
        """Entry names of a directory, in no particular order."""

    @abstractmethod
    def readlink(self, rel: str) -> str:
        """The text of the symbolic link at ``rel`` (its last component is not followed)."""

    @abstractmethod
    def count_lines(self, rel: str) -> int:
        """Lines in the file, a last unterminated line included, without holding the file in memory."""

    @abstractmethod
    def has_acl(self, rel: str) -> bool | None:
        """True when the path carries a POSIX access ACL; None when that cannot be known."""


class DiskFS(HostFS):
    """Files under a directory of this machine (``/`` for the running system), with chroot semantics:
    absolute link texts restart at the root and ``..`` never climbs above it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = str(root)

    def path(self, rel: str) -> Path:
        """The local path of host path ``rel``, resolved inside the root."""
        return resolve_in_root(self.root, rel.lstrip("/"))

    def open_regular(self, rel: str) -> int:
        """A descriptor of the regular file at ``rel``, or ``OSError`` naming what else is there.

        Opened with ``O_NONBLOCK`` and checked with ``fstat`` before any read: a FIFO, a device or a
        socket planted in a root (or configured as a host file) would otherwise block forever or never
        end, so it is refused by its type, never read."""
        fd = os.open(self.path(rel), os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(mode):
                raise IsADirectoryError(errno.EISDIR, "Is a directory", self.shown(rel))
            if not stat.S_ISREG(mode):
                raise OSError(errno.EINVAL, f"not a regular file ({kind_of(mode)})", self.shown(rel))
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def read(self, rel: str, limit: int) -> bytes:
        """At most ``limit`` bytes of the regular file (:meth:`open_regular`)."""
        chunks: list[bytes] = []
        total = 0
        with os.fdopen(self.open_regular(rel), "rb", buffering=0) as handle:
            while total < limit and (chunk := handle.read(min(_CHUNK, limit - total))):
                chunks.append(chunk)
                total += len(chunk)
        return b"".join(chunks)

    def stat(self, rel: str) -> os.stat_result:
        """``stat`` of the path (links followed inside the root)."""
        return self.path(rel).stat()

    def listdir(self, rel: str) -> list[str]:
        """Entry names of a directory."""
        return os.listdir(self.path(rel))

    def readlink(self, rel: str) -> str:
        """The link text at ``rel`` (the parent resolved inside the root, the last component not)."""
        parent, _, name = rel.strip("/").rpartition("/")
        if not name:
            raise OSError(errno.EINVAL, "Invalid argument", self.label)
        return os.readlink((self.path(parent) if parent else self.root) / name)

    def count_lines(self, rel: str) -> int:
        """Lines in the regular file, read in chunks (IMA measurement logs grow without bound), up to
        :data:`COUNT_LIMIT` bytes."""
        count = 0
        total = 0
        last = b""
        with os.fdopen(self.open_regular(rel), "rb", buffering=0) as handle:
            while chunk := handle.read(_CHUNK):
                total += len(chunk)
                if total > COUNT_LIMIT:
                    message = f"larger than {COUNT_LIMIT} bytes; not counted"
                    raise OSError(errno.EFBIG, message, self.shown(rel))
                count += chunk.count(b"\n")
                last = chunk
        return count + 1 if last and not last.endswith(b"\n") else count

    def has_acl(self, rel: str) -> bool | None:
        """From the file's extended attributes; None when they cannot be listed."""
        try:
            return "system.posix_acl_access" in os.listxattr(self.path(rel))
        except OSError:
            return None


def as_fs(root: Path | HostFS) -> HostFS:
    """A :class:`HostFS` for either a directory of this machine or an existing file system view."""
    return root if isinstance(root, HostFS) else DiskFS(root)
