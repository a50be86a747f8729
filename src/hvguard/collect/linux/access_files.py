"""The access-control collectors' view of the host's files: the one reader, read-only.

Paths are read through the source's :class:`~hvguard.collect.hostfs.HostFS` (chroot semantics for an
offline root, memory for an SSH answer) by :class:`~hvguard.collect.reader.HostReader`, so a host is never
mixed with the machine hvguard runs on. Evidence names the *host* path (``/etc/ssh/sshd_config``), which
is what an administrator edits, whatever root it was read from.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from hvguard.collect.hostfs import HostFS
from hvguard.collect.reader import ACCESS_POLICY, HostReader, ReadError, host_path

_GLOB_CHARS = frozenset("*?[")


def rel_path(path: str) -> str:
    """The root-relative form of a host path (``/etc/x`` → ``etc/x``)."""
    return path.strip("/")


class HostFiles(HostReader):
    """A host's files as the access collectors read them (:data:`~hvguard.collect.reader.ACCESS_POLICY`):
    a file that cannot be read raises :class:`~hvguard.collect.reader.ReadError`; a directory that cannot
    be listed reads as absent."""

    def __init__(self, files: Path | HostFS) -> None:
        super().__init__(files, ACCESS_POLICY)

    def listdir(self, rel: str) -> list[str] | None:
        """Sorted entry names of a directory; None when it does not exist or cannot be listed."""
        try:
            return super().listdir(rel)
        except ReadError:
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
