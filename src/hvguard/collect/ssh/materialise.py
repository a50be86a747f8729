"""Recreate what the SSH script read as a private directory tree, so the host collectors run unchanged.

The tree mirrors the target's paths under a fresh temporary root: files with their bytes, directories,
listed directories with placeholder entries, symlinks, and — from the script's one ``stat`` call — the
target's mode bits, owners and modification times. Everything the target sent is untrusted, so:

- every path is placed with chroot semantics (:func:`resolve`, the same rules as
  :func:`~hvguard.collect.libvirt.config.resolve_in_root`: ``..`` stops at the root, absolute link
  texts restart at it) and written with ``O_NOFOLLOW``;
- symlinks are recreated with *relative* texts computed inside the root, so even code that followed
  them with plain ``open()`` could never reach this machine's own files (the link's last component, the
  part collectors use, is kept);
- a file the target could not read becomes a node that cannot be read here either: a character device
  with no driver (``open`` fails with ENXIO) when hvguard runs as root, else a mode-000 file. Messages
  about it are then reworded to the target's own reason (see :func:`reword_unreadable`).

Ownership can only be reproduced when hvguard runs as root; otherwise files belong to the local user
(mode bits still match, plus owner read so the collectors can read what the target could) and a
``transport`` problem says so.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections import deque
from pathlib import Path

from hvguard.collect.ssh.records import Entry, Meta, RemoteAnswer
from hvguard.facts import Problem

#: Symlink hops allowed while resolving (the kernel's limit, and resolve_in_root's).
MAX_SYMLINK_HOPS = 40
#: strerror texts the local unreadable markers produce, reworded to the target's reason afterwards.
MARKER_ERRORS = ("No such device or address", "Not a directory", "Permission denied")


class Materialised:
    """The tree's root and what the collectors' messages need to be reworded with."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.unreadable: dict[str, str] = {}
        """target path → the reason the target gave for not reading it."""
        self.problems: list[Problem] = []
        self.privileged = os.geteuid() == 0


def resolve(root: str, rel: str) -> str:
    """:func:`~hvguard.collect.libvirt.config.resolve_in_root` on plain strings (the same chroot
    semantics; a test holds the two together), because this runs a few hundred times per target."""
    pending = deque(part for part in rel.split("/") if part not in {"", "."})
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.popleft()
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = "/".join((root, *resolved, part))
        try:
            target = os.readlink(candidate)
        except OSError:
            resolved.append(part)
            continue
        hops += 1
        if hops > MAX_SYMLINK_HOPS:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", f"{root}/{rel}")
        if target.startswith("/"):
            resolved = []
        pending.extendleft(reversed([p for p in target.split("/") if p not in {"", "."}]))
    return "/".join((root, *resolved))


def _link_text(root: str, parent: str, target: str) -> str:
    """A relative link text that points, from directory ``parent``, where ``target`` points inside
    ``root`` (``..`` stops at the root, an absolute text restarts at it)."""
    base = [part for part in parent[len(root) :].split("/") if part]
    parts: list[str] = [] if target.startswith("/") else list(base)
    for part in target.split("/"):
        if part in {"", "."}:
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return posixpath.relpath("/" + "/".join(parts), "/" + "/".join(base))


def _placeholder(path: str) -> bool:
    """True for what a directory listing created (an empty regular file or directory), or nothing."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True
    if stat.S_ISDIR(st.st_mode):
        return not os.listdir(path)
    return stat.S_ISREG(st.st_mode) and st.st_size == 0


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        os.rmdir(path)
    else:
        os.unlink(path)


def _write(path: str, data: bytes) -> None:
    """Create or replace a regular file; never through a symlink, never over a directory."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


class _Builder:
    """Places the answer's entries; paths are plain strings (this runs for every target)."""

    def __init__(self, answer: RemoteAnswer, out: Materialised) -> None:
        self.answer = answer
        self.out = out
        self.root = str(out.root)
        # Resolved directories by target path; cleared whenever a link is created (links change
        # where paths resolve).
        self._dirs: dict[str, str] = {"": self.root}
        self._made: set[str] = {self.root}

    def resolve_dir(self, rel_dir: str) -> str:
        """Where directory ``rel_dir`` (relative, no leading slash) lives in the tree."""
        found = self._dirs.get(rel_dir)
        if found is None:
            found = resolve(self.root, rel_dir)
            self._dirs[rel_dir] = found
        return found

    def local(self, path: str) -> str | None:
        """Where a target path lives in the tree; None for the root itself."""
        rel = path.strip("/")
        if not rel:
            return None
        parent, _, name = rel.rpartition("/")
        if name in {".", ".."}:
            placed = resolve(self.root, rel)
            return None if placed == self.root else placed
        candidate = f"{self.resolve_dir(parent)}/{name}"
        if os.path.islink(candidate):
            candidate = resolve(self.root, rel)
        return None if candidate == self.root else candidate

    def makedirs(self, directory: str) -> None:
        """``mkdir -p`` once per directory."""
        if directory not in self._made:
            os.makedirs(directory, exist_ok=True)
            self._made.add(directory)

    def problem(self, path: str, message: str) -> None:
        """Record that ``path`` could not be recreated (area ``transport``)."""
        self.out.problems.append(Problem(area="transport", source=path, message=message))

    def build(self) -> None:
        """Links, then every entry in the script's order, then owners, modes and times."""
        # Links first, shallowest first: every other path is then placed where the target's own
        # links lead (a file read through /etc/os-release lands where that link points).
        for path in sorted(self.answer.links, key=lambda p: (p.count("/"), p)):
            try:
                self.link(path, self.answer.links[path])
            except OSError as exc:
                self.problem(path, f"cannot recreate the target's link locally: {exc.strerror or exc}")
        for path in self.answer.order:
            entry = self.answer.entries[path]
            try:
                self.place(path, entry)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                self.problem(path, f"cannot recreate the target's {entry.kind} locally: {reason}")
        self.apply_metadata()

    def place(self, path: str, entry: Entry) -> None:
        """Create one entry (a directory and its listed names, a file, a stand-in)."""
        local = self.local(path)
        if local is None:
            return
        if entry.kind == "dir":
            self.makedirs(local)
            for kind, name in entry.listing or []:
                child = f"{local}/{name}"
                if os.path.lexists(child):
                    continue
                if kind == "d":
                    os.mkdir(child)
                    self._made.add(child)
                else:
                    _write(child, b"")
            return
        self.makedirs(os.path.dirname(local))
        if entry.kind == "file":
            _write(local, entry.data)
        elif entry.kind == "exists":
            if not os.path.lexists(local):
                _write(local, b"")
        elif entry.kind == "lines":
            # Only the count crosses the wire: newlines, plus one unterminated line if the file has one.
            tail = b"" if entry.last_byte in {"", "012"} else b"x"
            _write(local, b"\n" * entry.lines + tail)
        elif entry.kind == "unreadable":
            self.marker(path, local)

    def link(self, path: str, text: str) -> None:
        """Recreate a symbolic link with a relative text that stays inside the copy."""
        rel = path.strip("/")
        parent_rel, _, name = rel.rpartition("/")
        if not name or name in {".", ".."}:
            return
        parent = self.resolve_dir(parent_rel)
        self.makedirs(parent)
        where = f"{parent}/{name}"
        if os.path.islink(where):
            return  # already recreated (the script may report a link twice)
        if not _placeholder(where):
            self.problem(path, "a file and a link at the same path; the link was not recreated")
            return
        _remove(where)
        self._made.discard(where)
        os.symlink(_link_text(self.root, parent, text), where)
        # The new link changes where paths at or below it resolve; nothing else moves.
        self._dirs = {k: v for k, v in self._dirs.items() if k != rel and not k.startswith(rel + "/")}

    def marker(self, path: str, local: str) -> None:
        """A node that cannot be read here, whoever hvguard runs as."""
        self.out.unreadable[path] = self.answer.entries[path].reason
        if not _placeholder(local):
            return
        _remove(local)
        self._made.discard(local)
        if self.out.privileged:
            os.mknod(local, 0o000 | stat.S_IFCHR, os.makedev(0, 0))
        else:
            meta = self.answer.modes.get(path)
            if meta is not None and stat.S_ISDIR(meta.mode):
                os.mkdir(local, 0o000)
            else:
                _write(local, b"")
                os.chmod(local, 0o000)

    def apply_metadata(self) -> None:
        """Give every stat-ed path the target's owner, mode and modification time."""
        for path, meta in self.answer.modes.items():
            local = self.local(path)
            if local is None:
                continue
            try:
                st = os.lstat(local)
            except FileNotFoundError:
                continue
            self.apply(path, local, meta, stat.S_ISDIR(st.st_mode))

    def apply(self, path: str, local: str, meta: Meta, is_dir: bool) -> None:
        """Owner (only as root), mode and mtime of one path."""
        perms = stat.S_IMODE(meta.mode)
        try:
            if self.out.privileged:
                os.chown(local, meta.uid, meta.gid, follow_symlinks=False)
            elif path in self.out.unreadable:
                perms = 0
            else:
                # The local user owns the copy: keep it readable by its owner so the collectors can
                # read what the target let the SSH account read.
                perms |= 0o700 if is_dir else 0o400
            os.chmod(local, perms)  # never a link: local() resolved it
            os.utime(local, ns=(meta.mtime_ns, meta.mtime_ns), follow_symlinks=False)
        except OSError as exc:
            self.problem(path, f"cannot apply the target's owner or mode locally: {exc.strerror or exc}")


def materialise(answer: RemoteAnswer, root: Path) -> Materialised:
    """Build the tree for ``answer`` under ``root`` (an empty private directory)."""
    out = Materialised(root)
    _Builder(answer, out).build()
    if not out.privileged and answer.modes:
        out.problems.append(
            Problem(
                area="transport",
                source=str(root),
                message="hvguard is not running as root here, so the copied files belong to the local user: "
                "owner and group facts of files read over SSH are this account's, not the target's, and "
                "each copy keeps owner read access (/dev/kvm's group is corrected from the target's stat)",
            )
        )
    return out


def open_for_removal(root: Path) -> None:
    """Give the owner access to every directory under ``root`` (mode-000 stand-ins) so it can be deleted."""
    for current, dirs, _files in os.walk(root):
        for name in dirs:
            path = Path(current) / name
            if not path.is_symlink():
                try:
                    os.chmod(path, 0o700)
                except OSError:
                    continue


def reword_unreadable(text: str, reason: str) -> str:
    """Replace the local marker's strerror in ``text`` with the target's own ``reason``."""
    for local_error in MARKER_ERRORS:
        text = text.replace(local_error, reason).replace(local_error.lower(), reason.lower())
    return text
