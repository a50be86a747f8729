"""The collector contract: what every collector declares and how it is run.

A collector names its fact area (``host``, ``host.access``, ``host.operations``, ``hypervisor``), declares
the paths it reads (:class:`Fetch` items: globs, each with the operation it needs) and the read-only
commands it runs (:class:`Command`), and turns a source into facts with ``collect(source, problems)``.
The declarations are data: the command manifest (``hvguard collect --dry-run``) and the SSH transport's
fetch list are assembled from them (:mod:`hvguard.collect.linux.manifest`), so what a collector reads and what
a remote host is asked for cannot drift apart.

A collector never raises for a host's state: a gap is a :class:`~hvguard.facts.Problem`. Errors that do
cross the collect seam (a target that cannot be used or reached, a bundle or an answer that cannot be
read) derive from :class:`CollectError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from hvguard.collect.errors import CollectError as CollectError  # re-exported: the seam's base error
from hvguard.facts import Problem

SourceT = TypeVar("SourceT", contravariant=True)
FactsT = TypeVar("FactsT", covariant=True)
_T = TypeVar("_T")


@dataclass(frozen=True)
class Fetch:
    """One path a collector reads, and how.

    ``op``: ``F`` read (files: bytes; directories: existence; links: their text, and what they point
    at, read through them), ``W`` a one-line
    pseudo-file read with the shell's builtin ``read`` (no process), ``S`` existence and mode only,
    ``D`` directory listing (names and types), ``N`` line count (logs that grow without bound),
    ``T`` the top-level directories and links of ``/`` (merged-/usr links), ``P`` the QEMU processes,
    ``K`` the socket file descriptors of every process (``find -lname 'socket:*'``) and their ``comm``.
    ``pattern`` is an absolute path, possibly with shell glob characters.
    """

    op: str
    pattern: str
    why: str


@dataclass(frozen=True)
class Command:
    """A read-only command: its manifest name, argument vector, why hvguard runs it."""

    name: str
    argv: tuple[str, ...]
    purpose: str
    needs_root: bool = False
    """True when the command only gives full answers as root (sshd -T reads the host keys)."""
    timeout_s: float = 20.0
    slow: bool = False
    """True for commands that take seconds (package-cache readers): a live collection starts them first,
    in the background, so they overlap with reading files."""


def fetches(op: str, why: str, *patterns: str) -> tuple[Fetch, ...]:
    """One :class:`Fetch` per pattern, all with the same operation and reason."""
    return tuple(Fetch(op, pattern, why) for pattern in patterns)


def read_files(*globs: str) -> tuple[Fetch, ...]:
    """Files read whole (globs relative to the host root), listed as the manifest's ``FILES``."""
    return fetches("F", "manifest FILES", *("/" + glob.lstrip("/") for glob in globs))


def stat_files(*globs: str) -> tuple[Fetch, ...]:
    """Paths whose existence, owner, group and mode are judged, never their bytes (``STAT_FILES``)."""
    return fetches("S", "manifest STAT_FILES", *("/" + glob.lstrip("/") for glob in globs))


def list_dirs(*globs: str) -> tuple[Fetch, ...]:
    """Directories whose entry names (not contents) are read (``LIST_DIRS``)."""
    return fetches("D", "manifest LIST_DIRS", *("/" + glob.lstrip("/") for glob in globs))


class Collector(ABC, Generic[SourceT, FactsT]):
    """One collector: its area, the paths it reads and the commands it runs, and ``collect``."""

    area: ClassVar[str]
    """The fact area its problems are filed under (``host``, ``host.access``, ``hypervisor``)."""
    reads: ClassVar[tuple[Fetch, ...]]
    """Every path it may read, with the operation it needs."""
    commands: ClassVar[tuple[Command, ...]] = ()
    """Every read-only command it may ask its source to run, by name."""

    @abstractmethod
    def collect(self, source: SourceT, problems: list[Problem]) -> FactsT:
        """The facts read from ``source``; every gap is appended to ``problems``, nothing is raised."""


def guarded(
    problems: list[Problem],
    area: str,
    source: str,
    default: _T,
    collect: Callable[[], _T],
    *,
    doing: str = "",
) -> _T:
    """Run one group's collector; a bug in it becomes a Problem (``internal error``) and ``default``,
    never a crash of the whole collection."""
    try:
        return collect()
    except Exception as exc:  # a collector promises never to raise; a bug must cost one group only
        problems.append(
            Problem(area=area, source=source, message=f"internal error{doing}: {type(exc).__name__}: {exc}")
        )
        return default
