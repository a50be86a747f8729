"""How host collectors read a root: :class:`HostRoot`, over the one reader (:mod:`hvguard.collect.reader`).

A read gives the data, :data:`MISSING` (the path is absent: itself a fact) or :data:`FAILED` (it exists
but could not be read; a :class:`~hvguard.facts.Problem` was recorded under the caller's area).
"""

from __future__ import annotations

import enum
import os
from typing import TypeVar

from hvguard.collect.hostfs import HostFS
from hvguard.collect.reader import HOST_POLICY, HostReader, ReadError
from hvguard.facts import (
    Problem,
)

_TRUE_WORDS = frozenset({"Y", "y", "1"})
_FALSE_WORDS = frozenset({"N", "n", "0"})

_T = TypeVar("_T")


class Gap(enum.Enum):
    """Why a read produced no data: the file is absent (a fact) or it failed (a Problem was recorded)."""

    MISSING = "missing"
    FAILED = "failed"


MISSING = Gap.MISSING
FAILED = Gap.FAILED


class HostRoot:
    """File access under a root, recording a Problem for every failed read."""

    def __init__(self, fs: HostFS, *, live: bool, problems: list[Problem]) -> None:
        self.fs = fs
        self.reader = HostReader(fs, HOST_POLICY, shown=fs.shown)
        self.live = live
        self.problems = problems
        self._flagged: set[str] = set()
        self.has_proc = self.is_dir("proc")
        self.has_sys = self.is_dir("sys")

    # -- paths and problems ----------------------------------------------------------------------------

    def shown(self, rel: str) -> str:
        """The path as reported in facts and problems: where it lives under the root, unresolved."""
        return self.fs.shown(rel)

    def problem(self, area: str, rel: str, message: str) -> None:
        """Record that ``rel`` could not be used for fact group ``area``."""
        self.problems.append(Problem(area=area, source=self.shown(rel), message=message))
        self._flagged.add(area)

    def flagged(self, area: str) -> bool:
        """True when a problem has already been recorded for ``area``."""
        return area in self._flagged

    def runtime_missing(self, area: str, fs: str) -> None:
        """Record, once per area, that a runtime filesystem (proc/sys/dev) is absent under the root."""
        key = f"{area}\0{fs}"
        if key in self._flagged:
            return
        self._flagged.add(key)
        self.problem(area, fs, f"no {fs}/ under the root: this fact needs the running system")

    # -- reads (through the one reader; a failure becomes a problem and FAILED) ------------------------

    def exists(self, rel: str) -> bool:
        """True when something exists at ``rel``."""
        return self.reader.exists(rel)

    def is_dir(self, rel: str) -> bool:
        """True when ``rel`` is a directory."""
        return self.reader.is_dir(rel)

    def _failed(self, area: str, exc: ReadError) -> Gap:
        self.problems.append(Problem(area=area, source=exc.path, message=exc.message))
        self._flagged.add(area)
        return FAILED

    def stat(self, rel: str, area: str) -> os.stat_result | Gap:
        """``stat`` of the path (links followed inside the root)."""
        try:
            st = self.reader.stat(rel)
        except ReadError as exc:
            return self._failed(area, exc)
        return MISSING if st is None else st

    def read_bytes(self, rel: str, area: str) -> bytes | Gap:
        """The file's bytes."""
        try:
            data = self.reader.read_bytes(rel)
        except ReadError as exc:
            return self._failed(area, exc)
        return MISSING if data is None else data

    def read_text(self, rel: str, area: str) -> str | Gap:
        """The file's text (strict UTF-8)."""
        try:
            text = self.reader.read_text(rel)
        except ReadError as exc:
            return self._failed(area, exc)
        return MISSING if text is None else text

    def read_word(self, rel: str, area: str) -> str | Gap:
        """A one-value pseudo-file (sysfs attribute), stripped."""
        text = self.read_text(rel, area)
        return text.strip() if isinstance(text, str) else text

    def read_int(self, rel: str, area: str) -> int | Gap:
        """A one-value pseudo-file holding an integer."""
        word = self.read_word(rel, area)
        if isinstance(word, Gap):
            return word
        try:
            return int(word)
        except ValueError:
            self.problem(area, rel, f"expected an integer, found {word[:40]!r}")
            return FAILED

    def read_flag(self, rel: str, area: str) -> bool | Gap:
        """A kernel boolean parameter: Y/N (bool params) or 1/0 (int params)."""
        word = self.read_word(rel, area)
        if isinstance(word, Gap):
            return word
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        self.problem(area, rel, f"expected Y/N or 1/0, found {word[:40]!r}")
        return FAILED

    def listdir(self, rel: str, area: str) -> list[str] | Gap:
        """Sorted entry names of a directory."""
        try:
            names = self.reader.listdir(rel)
        except ReadError as exc:
            return self._failed(area, exc)
        return MISSING if names is None else names

    def readlink(self, rel: str) -> str | None:
        """The text of the symlink at ``rel`` (not followed); None when it is not a link or is absent."""
        return self.reader.readlink(rel)

    def count_lines(self, rel: str, area: str) -> int | Gap:
        """Count lines without reading the whole file (IMA logs grow without bound)."""
        try:
            count = self.reader.count_lines(rel)
        except ReadError as exc:
            return self._failed(area, exc)
        return MISSING if count is None else count


def value_of(result: _T | Gap) -> _T | None:
    """The data of a read, None for either gap."""
    return None if isinstance(result, Gap) else result


# --------------------------------------------------------------------------------------------------------
# Accounts (the root's own passwd/group: an offline root's ids mean nothing on this machine)


class Accounts:
    """uid/gid → name from the root's ``etc/passwd`` and ``etc/group``, read once."""

    def __init__(self, r: HostRoot) -> None:
        self._r = r
        self._tables: dict[str, dict[int, str]] = {}

    def _table(self, rel: str, area: str) -> dict[int, str]:
        if rel not in self._tables:
            table: dict[int, str] = {}
            text = self._r.read_text(rel, area)
            if isinstance(text, str):
                for line in text.splitlines():
                    fields = line.split(":")
                    if len(fields) >= 3 and fields[2].isdigit():
                        table.setdefault(int(fields[2]), fields[0])
            self._tables[rel] = table
        return self._tables[rel]

    def user(self, uid: int, area: str) -> str:
        """The account name, or the number as text when the root has no such account."""
        return self._table("etc/passwd", area).get(uid, str(uid))

    def group(self, gid: int, area: str) -> str:
        """The group name, or the number as text when the root has no such group."""
        return self._table("etc/group", area).get(gid, str(gid))


# --------------------------------------------------------------------------------------------------------


def populated(r: HostRoot, rel: str, area: str) -> bool:
    """True when the directory exists and has entries."""
    entries = r.listdir(rel, area)
    return isinstance(entries, list) and bool(entries)


def securityfs_mounted(r: HostRoot) -> bool:
    """securityfs mounted at sys/kernel/security: the sysfs mount point alone is an empty directory."""
    return populated(r, "sys/kernel/security", "host.kernel")
