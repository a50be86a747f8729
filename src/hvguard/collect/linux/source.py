"""Where host facts come from: the files under a root, and the manifest's commands.

A collector takes a :class:`HostSource` and reads files through ``source.fs`` (a
:class:`~hvguard.collect.hostfs.HostFS`) and command results from ``source.run(name)``. The same
collectors then work on the live host (``LocalSource``), on an offline copy of a host (``RootSource``:
files only, no commands) and on a remote host fetched over SSH (``PrefetchedSource``: the files and
command outputs the SSH transport brought back, held in memory).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from hvguard.collect.hostfs import DiskFS, HostFS, as_fs
from hvguard.collect.interface import Command
from hvguard.collect.linux.manifest import COMMANDS
from hvguard.collect.timing import timed
from hvguard.facts import Model

#: Where sbin tools live; a non-login PATH often lacks them.
_SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
)


class CommandResult(Model, frozen=True, kw_only=True):
    """The outcome of one manifest command. ``error`` is set when it could not run at all (not
    installed, timed out); a command that ran and failed has ``returncode`` != 0 and its stderr."""

    name: str
    argv: list[str]
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    error: str | None = None


class HostSource:
    """A host's files plus manifest commands. Base class: no commands available.

    ``live`` says whether the files are a running system's (proc, sys and dev mean something);
    ``copied`` whether they are a partial copy of a remote one (only the manifest's paths, with the
    target's own metadata), where a path's absence says nothing about the host.
    """

    copied = False

    def __init__(self, fs: HostFS, *, live: bool, label: str | None = None) -> None:
        self.fs = fs
        self.live = live
        self.label = label or fs.label

    def run(self, name: str) -> CommandResult | None:
        """The result of manifest command ``name``; None when this source cannot run commands."""
        if name not in COMMANDS:
            raise KeyError(f"{name} is not in the command manifest")
        return None


class RootSource(HostSource):
    """An offline copy of a host: files only."""

    def __init__(self, root: Path) -> None:
        super().__init__(DiskFS(root), live=False)


class LocalSource(HostSource):
    """The running host: files under ``/`` and manifest commands run locally (no shell, with a timeout).
    Results are cached: each command runs at most once per collection."""

    def __init__(self) -> None:
        super().__init__(DiskFS(Path("/")), live=True, label="local")
        self._cache: dict[str, CommandResult] = {}
        # Slow commands start now, so their seconds overlap with the file reading that follows.
        slow = [c for c in COMMANDS.values() if c.slow and shutil.which(c.argv[0], path=_SEARCH_PATH)]
        self._pending: dict[str, Future[CommandResult]] = {}
        if slow:
            pool = ThreadPoolExecutor(max_workers=len(slow), thread_name_prefix="hvguard-cmd")
            self._pending = {c.name: pool.submit(run_local, c) for c in slow}
            pool.shutdown(wait=False)

    def run(self, name: str) -> CommandResult | None:
        """Run manifest command ``name`` once (or collect its background run) and return its result."""
        super().run(name)
        if name not in self._cache:
            started = self._pending.pop(name, None)
            self._cache[name] = started.result() if started is not None else run_local(COMMANDS[name])
        return self._cache[name]


class PrefetchedSource(HostSource):
    """A remote host's files and command results, already gathered (the SSH transport; tests give a
    directory standing in for the files)."""

    copied = True

    def __init__(self, files: Path | HostFS, results: dict[str, CommandResult], *, label: str) -> None:
        super().__init__(as_fs(files), live=True, label=label)
        self._results = results

    def run(self, name: str) -> CommandResult | None:
        """The gathered result of ``name`` (None when it was not gathered)."""
        super().run(name)
        return self._results.get(name)


def command_env() -> dict[str, str]:
    """The environment of a local manifest command: the caller's, in the C locale. ``LC_ALL=C`` makes
    every program print untranslated, parseable output (apt, find, ip …); ``LANGUAGE`` goes too, since
    GNU gettext lets it override the message language of any locale but C. The SSH script does the same
    on a remote host."""
    env = {k: v for k, v in os.environ.items() if k != "LANGUAGE" and not k.startswith("LC_")}
    env["LC_ALL"] = "C"
    return env


def run_local(cmd: Command) -> CommandResult:
    """Run one manifest command on this machine: argument vector, no shell, C locale, bounded time
    (its duration logged for ``hvguard -v``)."""
    with timed(f"command {cmd.name}: {' '.join(cmd.argv)}"):
        return _run_local(cmd)


def _run_local(cmd: Command) -> CommandResult:
    exe = shutil.which(cmd.argv[0], path=_SEARCH_PATH)
    if exe is None:
        return CommandResult(name=cmd.name, argv=list(cmd.argv), error=f"{cmd.argv[0]} is not installed")
    try:
        done = subprocess.run(  # noqa: S603 (fixed argv from the manifest, no shell)
            [exe, *cmd.argv[1:]],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            env=command_env(),
            timeout=cmd.timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return CommandResult(name=cmd.name, argv=list(cmd.argv), error=f"timed out after {cmd.timeout_s:g} s")
    except OSError as exc:
        return CommandResult(name=cmd.name, argv=list(cmd.argv), error=f"cannot run: {exc.strerror or exc}")
    return CommandResult(
        name=cmd.name,
        argv=list(cmd.argv),
        returncode=done.returncode,
        stdout=done.stdout.decode("utf-8", "replace"),
        stderr=done.stderr.decode("utf-8", "replace")[-2000:],
    )
