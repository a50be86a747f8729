"""Read-only file access under a host root for the access-control collectors.

Paths are read through the source's :class:`~hvguard.collect.hostfs.HostFS` (chroot semantics for an
offline root, memory for an SSH answer), so a host is never mixed with the machine hvguard runs on.
Evidence names the *host* path (``/etc/ssh/sshd_config``), which is what an administrator edits,
whatever root it was read from.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from pathlib import Path

from hvguard.collect.hostfs import HostFS, as_fs

#: Configuration files are small; anything bigger is not read (and reported).
MAX_CONFIG_BYTES = 4 * 1024 * 1024
_GLOB_CHARS = frozenset("*?[")


class FileReadError(Exception):
    """A file that exists but could not be read as text (permissions, size, encoding, a directory)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def host_path(rel: str) -> str:
    """The absolute path on the host for a root-relative path."""
    return "/" + rel.strip("/")


def rel_path(path: str) -> str:
    """The root-relative form of a host path (``/etc/x`` → ``etc/x``)."""
    return path.strip("/")


class HostFiles:
    """A host's files, read-only."""

    def __init__(self, files: Path | HostFS) -> None:
        self.fs = as_fs(files)

    def stat(self, rel: str) -> os.stat_result | None:
        """``stat`` of the file (following links inside the root); None when it does not exist or the
        path cannot be resolved."""
        try:
            return self.fs.stat(rel)
        except OSError:
            return None

    def exists(self, rel: str) -> bool:
        """True when something exists at ``rel``."""
        return self.stat(rel) is not None

    def is_dir(self, rel: str) -> bool:
        """True when ``rel`` is a directory."""
        st = self.stat(rel)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def is_file(self, rel: str) -> bool:
        """True when ``rel`` is a regular file."""
        st = self.stat(rel)
        return st is not None and stat.S_ISREG(st.st_mode)

    def read_text(self, rel: str) -> str | None:
        """The file's text; None when it does not exist. Raises :class:`FileReadError` when it exists but
        cannot be read as UTF-8 text of a sane size."""
        shown = host_path(rel)
        try:
            data = self.fs.read(rel, MAX_CONFIG_BYTES + 1)
        except FileNotFoundError:
            return None
        except IsADirectoryError as exc:
            raise FileReadError(shown, "is a directory, not a file") from exc
        except OSError as exc:
            raise FileReadError(shown, f"cannot read: {(exc.strerror or str(exc)).lower()}") from exc
        if len(data) > MAX_CONFIG_BYTES:
            raise FileReadError(shown, f"larger than {MAX_CONFIG_BYTES} bytes; not read")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise FileReadError(shown, f"line {line}: not valid UTF-8 text") from exc

    def listdir(self, rel: str) -> list[str] | None:
        """Sorted entry names of a directory; None when it does not exist or is not a directory."""
        try:
            return sorted(self.fs.listdir(rel))
        except OSError:
            return None

    def glob(self, pattern: str) -> list[str]:
        """Host paths matching a glob pattern (absolute host path), sorted like glob(3) in the C locale.
        Hidden names match only a pattern component that starts with a dot."""
        parts = [p for p in rel_path(pattern).split("/") if p not in ("", ".")]
        # A run of literal components is one step: a path exists only if all its parents do, and one
        # lookup instead of one per level matters where each lookup may cost a round trip (SSH).
        steps: list[str] = []
        for part in parts:
            literal = not (_GLOB_CHARS & set(part)) and part != ".."
            if (
                steps
                and literal
                and not (_GLOB_CHARS & set(steps[-1]))
                and steps[-1].rpartition("/")[2] != ".."
            ):
                steps[-1] = f"{steps[-1]}/{part}"
            else:
                steps.append(part)
        found = [""]
        for part in steps:
            nxt: list[str] = []
            for base in found:
                if not (_GLOB_CHARS & set(part)):
                    candidate = f"{base}/{part}" if base else part
                    if self.exists(candidate):
                        nxt.append(candidate)
                    continue
                for name in self.listdir(base or ".") or []:
                    if name.startswith(".") and not part.startswith("."):
                        continue
                    if fnmatch.fnmatchcase(name, part):
                        nxt.append(f"{base}/{name}" if base else name)
            found = nxt
        return sorted(host_path(p) for p in found if p)
