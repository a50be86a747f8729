"""The one file reader of the host collectors: a host's files through its :class:`HostFS`, read-only.

Every host collector (base host facts, access control, operations) reads through a :class:`HostReader`:
one implementation of the size cap, the text decoding, what counts as "absent" and the wording of a
failure. A missing path is an answer (``None``) — a dangling symbolic link is not missing but a read
error; a path that exists but cannot be read as asked raises
:class:`ReadError`, which each collector family records as a problem in its own way.

Every family reads up to one size cap (:data:`FILE_LIMIT`, 16 MiB). Each passes a :class:`ReadPolicy`
for what it kept of its own reading when they were merged onto this reader (so that every report stays
byte-identical): the host facts and access control read strict UTF-8 (an undecodable byte is a read
error naming the line), operations replaces undecodable bytes; the wording for a directory where a
file was expected differs slightly.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hvguard.collect.hostfs import HostFS, as_fs
from hvguard.collect.interface import CollectError

_MIB = 1024 * 1024


class ReadError(CollectError):
    """A path that exists but could not be read as asked (permissions, size, encoding, a directory)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class ReadPolicy:
    """How one collector family reads: its size cap, its decoding and what counts as absent."""

    limit: int
    """Bytes read at most; a larger file is refused ("larger than N bytes; not read")."""
    strict_utf8: bool
    """True: undecodable bytes are an error naming the line; False: they become U+FFFD."""
    absent: tuple[type[OSError], ...]
    """Errors that mean the path is not there (an answer, not a failure)."""
    directory: str
    """The message for a directory where a file was expected."""


#: The one size cap of every host file hvguard reads: a larger file is refused (an ``error`` on the
#: measures it feeds), never read in part.
FILE_LIMIT = 16 * _MIB

#: Base host facts: proc/sys pseudo-files (a process may exit between open and read: ESRCH).
HOST_POLICY = ReadPolicy(
    limit=FILE_LIMIT,
    strict_utf8=True,
    absent=(FileNotFoundError, ProcessLookupError),
    directory="cannot read: is a directory, not a file",
)
#: Access-control configuration files (sshd, PAM, sudoers, polkit, accounts).
ACCESS_POLICY = ReadPolicy(
    limit=FILE_LIMIT, strict_utf8=True, absent=(FileNotFoundError,), directory="is a directory, not a file"
)
#: Operations configuration and state files (logging, firewall, patches, network, storage).
OPERATIONS_POLICY = ReadPolicy(
    limit=FILE_LIMIT,
    strict_utf8=False,
    absent=(FileNotFoundError, NotADirectoryError, ProcessLookupError),
    directory="is a directory, not a file",
)


def reason(exc: OSError) -> str:
    """The operating system's reason, as a phrase starting in lower case ("permission denied")."""
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def host_path(rel: str) -> str:
    """The absolute path on the host for a root-relative path."""
    return "/" + rel.strip("/")


class HostReader:
    """A host's files, read-only, with one :class:`ReadPolicy`. ``shown`` names a path in errors."""

    def __init__(
        self, files: Path | HostFS, policy: ReadPolicy, *, shown: Callable[[str], str] = host_path
    ) -> None:
        self.fs = as_fs(files)
        self.policy = policy
        self.shown = shown

    def _error(self, rel: str, message: str) -> ReadError:
        return ReadError(self.shown(rel), message)

    def _failed(self, rel: str, doing: str, exc: OSError) -> ReadError:
        """The :class:`ReadError` for an operation that failed; a path the permissions keep from this
        user is also recorded on the file system (the scan's list of unreadable paths)."""
        if isinstance(exc, PermissionError):
            self.fs.note_unreadable(rel)
        return self._error(rel, f"{doing}: {reason(exc)}")

    def stat_or_none(self, rel: str) -> os.stat_result | None:
        """``stat`` of the path (links followed inside the root); None when it cannot be had at all."""
        try:
            return self.fs.stat(rel)
        except OSError:
            return None

    def exists(self, rel: str) -> bool:
        """True when something exists at ``rel``."""
        return self.stat_or_none(rel) is not None

    def lexists(self, rel: str) -> bool:
        """True when something exists at ``rel``, a dangling symbolic link included (``lexists``): a
        configuration file that is a broken link is there and unreadable, not absent."""
        return self.exists(rel) or self.readlink(rel) is not None

    def _absent_or_dangling(self, rel: str, exc: OSError) -> None:
        """Returns when ``rel`` is really absent; raises :class:`ReadError` when it is a symbolic link
        whose target is missing (a dangling link is a broken file, not an absent one)."""
        if isinstance(exc, FileNotFoundError) and (target := self.readlink(rel)) is not None:
            raise self._error(rel, f"cannot read: dangling link to {target}") from exc

    def is_dir(self, rel: str) -> bool:
        """True when ``rel`` is a directory."""
        st = self.stat_or_none(rel)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def is_file(self, rel: str) -> bool:
        """True when ``rel`` is a regular file."""
        st = self.stat_or_none(rel)
        return st is not None and stat.S_ISREG(st.st_mode)

    def stat(self, rel: str) -> os.stat_result | None:
        """``stat`` of the path; None when it does not exist, :class:`ReadError` when it cannot be had."""
        try:
            return self.fs.stat(rel)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._failed(rel, "cannot stat", exc) from exc

    def read_bytes(self, rel: str) -> bytes | None:
        """The file's bytes; None when absent. Never one large request: proc sysctl files allocate a
        kernel buffer as big as the request (HostFS reads in 64 KiB requests)."""
        limit = self.policy.limit
        try:
            data = self.fs.read(rel, limit + 1)
        except self.policy.absent as exc:
            self._absent_or_dangling(rel, exc)
            return None
        except IsADirectoryError as exc:
            raise self._error(rel, self.policy.directory) from exc
        except OSError as exc:
            raise self._failed(rel, "cannot read", exc) from exc
        if len(data) > limit:
            raise self._error(rel, f"larger than {limit} bytes; not read")
        return data

    def read_text(self, rel: str) -> str | None:
        """The file's text (decoded by the policy); None when absent."""
        data = self.read_bytes(rel)
        if data is None:
            return None
        if not self.policy.strict_utf8:
            return data.decode("utf-8", "replace")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise self._error(rel, f"line {line}: not valid UTF-8 text") from exc

    def listdir(self, rel: str) -> list[str] | None:
        """Sorted entry names of a directory; None when absent."""
        try:
            return sorted(self.fs.listdir(rel))
        except self.policy.absent:
            return None
        except OSError as exc:
            raise self._failed(rel, "cannot list", exc) from exc

    def readlink(self, rel: str) -> str | None:
        """The text of the symbolic link at ``rel`` (not followed); None when it is not a link or absent."""
        try:
            return self.fs.readlink(rel)
        except OSError:
            return None

    def count_lines(self, rel: str) -> int | None:
        """Lines in the file without holding it in memory (IMA logs grow without bound); None when absent."""
        try:
            return self.fs.count_lines(rel)
        except self.policy.absent as exc:
            self._absent_or_dangling(rel, exc)
            return None
        except OSError as exc:
            raise self._failed(rel, "cannot read", exc) from exc
