"""File access for the operations collectors: the host source's files, never anything else.

Reads go through the one reader (:class:`~hvguard.collect.reader.HostReader` over the source's
:class:`~hvguard.collect.hostfs.HostFS`: chroot semantics for an offline root, memory for an SSH answer),
so a host is never mixed with the machine hvguard runs on. A missing file
is an answer (None); a file that exists but cannot be read records a :class:`~hvguard.facts.Problem`.
"""

from __future__ import annotations

import fnmatch
import stat
from collections.abc import Callable

from hvguard.collect.linux.source import CommandResult, HostSource
from hvguard.collect.reader import OPERATIONS_POLICY, HostReader, ReadError
from hvguard.facts import FileStat, Problem


class OpsReader:
    """Reads files under a host source's root, recording a Problem for every failed read."""

    def __init__(self, source: HostSource, problems: list[Problem]) -> None:
        self.source = source
        self.fs = source.fs
        self.reader = HostReader(source.fs, OPERATIONS_POLICY, shown=self.shown)
        self.live = source.live
        self.problems = problems
        self._names: dict[str, dict[int, str]] = {}
        self._meta: dict[str, FileStat] | None = None

    # -- paths ------------------------------------------------------------------------------------------
    def shown(self, rel: str) -> str:
        """How a host path appears in facts: absolute, as on the host (``/etc/rsyslog.conf``)."""
        return "/" + rel.lstrip("/")

    def problem(self, area: str, rel: str, message: str) -> None:
        """Record that ``rel`` could not be read for fact group ``area``."""
        self.problems.append(Problem(area=area, source=self.shown(rel), message=message))

    # -- reads ------------------------------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        """True when ``rel`` exists (any type)."""
        return self.reader.exists(rel)

    def is_dir(self, rel: str) -> bool:
        """True when ``rel`` is a directory."""
        return self.reader.is_dir(rel)

    def text(self, rel: str, area: str) -> str | None:
        """The file's text; None when absent or unreadable (the latter recorded as a problem)."""
        try:
            return self.reader.read_text(rel)
        except ReadError as exc:
            self.problem(area, rel, exc.message)
            return None

    def listdir(self, rel: str, area: str | None = None) -> list[str]:
        """Sorted entries of a directory; [] when absent (unreadable recorded when ``area`` is given)."""
        try:
            return self.reader.listdir(rel) or []
        except ReadError as exc:
            if area is not None:
                self.problem(area, rel, exc.message)
            return []

    def glob(self, pattern: str, area: str | None = None) -> list[str]:
        """Host paths matching ``dir/*.ext`` (one wildcard level, in the last component), sorted."""
        directory, _, name = pattern.lstrip("/").rpartition("/")
        return [f"{directory}/{n}" for n in self.listdir(directory, area) if fnmatch.fnmatchcase(n, name)]

    def readlink(self, rel: str) -> str | None:
        """The target text of a symlink (not followed); None when not a link."""
        return self.reader.readlink(rel)

    def _remote_meta(self, rel: str) -> FileStat | None:
        """For a remote host, owner/mode/mtime as the host itself reported them (``file-meta``, run as
        root): its owner and group *names* come from the host's own name service (LDAP, sssd), which
        the host's passwd and group files alone may lack."""
        if not self.source.copied:
            return None
        if self._meta is None:
            self._meta = {}
            out, _ = command_output(self.run("file-meta"))
            for line in (out or "").splitlines():
                f = line.split("\t")
                if len(f) != 8 or not f[0].isdigit() or not f[1].isdigit() or not f[2].isdigit():
                    continue
                try:
                    mtime = float(f[5])
                except ValueError:
                    continue
                self._meta[f[7]] = FileStat(
                    path=f[7],
                    is_dir=f[6] == "d",
                    mode=int(f[0], 8),
                    uid=int(f[1]),
                    gid=int(f[2]),
                    owner=f[3],
                    group=f[4],
                    mtime=mtime,
                )
        return self._meta.get(self.shown(rel))

    def mtime(self, rel: str) -> float | None:
        """Modification time (POSIX seconds) of ``rel``; None when absent."""
        meta = self._remote_meta(rel)
        if meta is not None:
            return meta.mtime
        st = self.reader.stat_or_none(rel)
        return None if st is None else st.st_mtime

    def stat(self, rel: str, area: str) -> FileStat:
        """Owner, group and mode of ``rel`` (``exists=False`` when absent)."""
        shown = self.shown(rel)
        meta = self._remote_meta(rel)
        if meta is not None:
            return meta
        try:
            st = self.reader.stat(rel)
        except ReadError as exc:
            self.problem(area, rel, exc.message)
            return FileStat(path=shown, exists=False)
        if st is None:
            return FileStat(path=shown, exists=False)
        return FileStat(
            path=shown,
            is_dir=stat.S_ISDIR(st.st_mode),
            mode=stat.S_IMODE(st.st_mode),
            uid=st.st_uid,
            gid=st.st_gid,
            owner=self.name("etc/passwd", st.st_uid),
            group=self.name("etc/group", st.st_gid),
            has_acl=self.fs.has_acl(rel),
            mtime=st.st_mtime,
        )

    def name(self, table: str, number: int) -> str:
        """The account or group name for ``number`` from the root's own passwd/group."""
        if table not in self._names:
            names: dict[int, str] = {}
            for line in (self.text(table, "host.operations") or "").splitlines():
                fields = line.split(":")
                if len(fields) >= 3 and fields[2].isdigit():
                    names.setdefault(int(fields[2]), fields[0])
            self._names[table] = names
        return self._names[table].get(number, str(number))

    # -- commands ---------------------------------------------------------------------------------------
    def run(self, name: str) -> CommandResult | None:
        """A manifest command's result (None when this source runs no commands)."""
        return self.source.run(name)


def command_output(result: CommandResult | None) -> tuple[str | None, str | None]:
    """(stdout, None) when the command ran and succeeded, else (None, why it gave nothing)."""
    if result is None:
        return None, "commands are not run on this source (offline root)"
    if result.error is not None:
        return None, f"{' '.join(result.argv)}: {result.error}"
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["no message"])[-1][:200]
        return None, f"{' '.join(result.argv)} exited {result.returncode}: {tail}"
    return result.stdout, None


def include_expander(r: OpsReader, area: str) -> Callable[[str], list[str]]:
    """Expand an include pattern to host paths: a directory means its files, a glob its matches."""

    def expand(pattern: str) -> list[str]:
        rel = pattern.strip().strip('"').lstrip("/")
        if not rel:
            return []
        if r.is_dir(rel):
            return [r.shown(f"{rel.rstrip('/')}/{n}") for n in r.listdir(rel, area)]
        if any(ch in rel for ch in "*?["):
            return [r.shown(p) for p in r.glob(rel, area)]
        return [r.shown(rel)] if r.exists(rel) else []

    return expand
