"""Which target paths an SSH request answers for, and what a follow-up pass asks for.

The first run asks for the whole manifest (:func:`~hvguard.collect.linux.manifest.manifest_fetch`, assembled
from the collectors' declarations); a path a collector then looks for outside it (named by the target's
own configuration) is fetched by exact path in a follow-up run (:func:`follow_up_fetch`).
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Iterable

from hvguard.collect.interface import Fetch
from hvguard.collect.linux.manifest import FALLBACK_READS, NEVER_COPIED, manifest_fetch

_GLOB_CHARS = frozenset("*?[")


class FetchIndex:
    """Which target paths a request answers for.

    A covered path the answer does not hold is absent on the target (or unreadable, which the answer
    says); any other path was simply not asked for, and the transport fetches it in a follow-up pass
    (:func:`follow_up_fetch`). Covered: what the items name (globs per path component), every directory
    above them and every directory a glob looks in, the names in a listed directory, the top-level
    entries (``T``), the QEMU processes' files (``P``) and the socket descriptors (``K``).
    """

    def __init__(self, items: Iterable[Fetch]) -> None:
        self._exact: set[str] = {"/"}
        self._listed: set[str] = set()
        self._searched: set[str] = set()
        self._searched_globs: dict[int, list[tuple[str, ...]]] = {}
        self._globs: dict[int, list[tuple[str, ...]]] = {}
        self._top = self._processes = self._sockets = False
        for item in items:
            if item.op == "T":
                self._top = True
            elif item.op == "P":
                self._processes = True
            elif item.op == "K":
                self._sockets = True
            else:
                self._add(item)

    def _add(self, item: Fetch) -> None:
        parts = [part for part in item.pattern.split("/") if part]
        if parts and _GLOB_CHARS & set(parts[-1]):
            parent = parts[:-1]
            if any(_GLOB_CHARS & set(part) for part in parent):
                self._searched_globs.setdefault(len(parent), []).append(tuple(parent))
            else:
                self._searched.add("/" + "/".join(parent))
        for depth in range(1, len(parts) + 1):
            prefix = parts[:depth]
            if any(_GLOB_CHARS & set(part) for part in prefix):
                self._globs.setdefault(depth, []).append(tuple(prefix))
                if item.op == "D" and depth == len(parts):
                    self._globs.setdefault(depth + 1, []).append((*prefix, "*"))
            else:
                self._exact.add("/" + "/".join(prefix))
                if item.op == "D" and depth == len(parts):
                    self._listed.add("/" + "/".join(prefix))

    def lists(self, path: str) -> bool:
        """True when the answer names every entry of directory ``path`` the collectors may look for: it
        was listed (``D``), or a glob looked in it."""
        parts = [part for part in path.split("/") if part]
        normal = "/" + "/".join(parts)
        if normal in self._listed or normal in self._searched or (normal == "/" and self._top):
            return True
        if parts[:1] == ["proc"] and (len(parts) == 1 or (len(parts) == 3 and parts[2] == "fd")):
            # The script chose the processes that matter (QEMU's, socket owners) and their descriptors.
            return (self._processes or self._sockets) if len(parts) == 1 else self._sockets
        return _matches(parts, self._searched_globs)

    def covers(self, path: str) -> bool:
        """True when the answer to this request says everything about ``path`` (absolute)."""
        parts = [part for part in path.split("/") if part]
        if not parts:
            return True
        if "/" + "/".join(parts) in self._exact:
            return True
        if len(parts) == 1:
            return self._top
        if parts[0] == "proc" and parts[1].isdigit():
            rest = parts[2:]
            by_p = self._processes and rest in ([], ["comm"], ["cmdline"], ["status"], ["exe"])
            by_k = self._sockets and (rest in ([], ["fd"], ["comm"]) or (len(rest) == 2 and rest[0] == "fd"))
            return by_p or by_k
        if "/" + "/".join(parts[:-1]) in self._listed:
            return True
        return _matches(parts, self._globs)


def _matches(parts: list[str], patterns: dict[int, list[tuple[str, ...]]]) -> bool:
    """True when ``parts`` matches, component by component, one of the patterns of its length."""
    return any(
        all(fnmatch.fnmatchcase(name, pattern) for name, pattern in zip(parts, globbed, strict=True))
        for globbed in patterns.get(len(parts), ())
    )


@functools.cache
def manifest_index() -> FetchIndex:
    """The :class:`FetchIndex` of a first run (the manifest, and the stored definitions the script reads
    when virsh gives none), built once: every target's first pass shares it."""
    return FetchIndex((*manifest_fetch(), *FALLBACK_READS))


def never_copied(path: str) -> bool:
    """True for a path whose bytes are never fetched (see ``manifest.NEVER_COPIED``)."""
    rel = path.strip("/")
    return any(fnmatch.fnmatchcase(rel, pattern) for pattern in NEVER_COPIED)


def follow_up_fetch(unfetched: dict[str, set[str]]) -> tuple[Fetch, ...]:
    """Items for paths the collectors looked for outside the request (named by the target's own
    configuration: an ``Include`` elsewhere, a storage pool's directory): the same read-only ops, by
    exact path; never the bytes of a :func:`never_copied` path. Paths holding glob characters are not
    asked for (the script would expand them)."""
    items: list[Fetch] = []
    for path, ops in sorted(unfetched.items()):
        if _GLOB_CHARS & set(path) or "\n" in path or "\r" in path or not path.startswith("/"):
            continue
        why = "named by the target's own configuration"
        if never_copied(path):
            items.append(Fetch("S", path, why))
            continue
        wanted = ops & {"F", "D", "S", "N"}
        if "S" in wanted:
            wanted.add("D")  # a directory is usually listed next: its names come in the same pass
        items += [Fetch(op, path, why) for op in sorted(wanted)]
        if "D" in wanted:
            # ... and the owner and mode of each of its entries (nothing, when it is not a directory).
            items += [Fetch("S", f"{path.rstrip('/')}/{glob}", why) for glob in ("*", ".[!.]*")]
    return tuple(items)
