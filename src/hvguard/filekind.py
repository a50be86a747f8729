"""Input files hvguard was given (bundles, YAML inputs, keys, secrets): read only when they are regular
files, up to a limit (:func:`read_regular_file`), and what a file that is not a regular file is, in words
(:func:`kind_of`, also for host files in offline roots)."""

from __future__ import annotations

import os
import stat


def kind_of(mode: int) -> str:
    """``a FIFO``, ``a character device``, ``a block device``, ``a socket``, ``a directory`` or ``a
    special file``, for the ``st_mode`` of a file that is not a regular file."""
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "a special file"


class InputFileError(Exception):
    """An input file that :func:`read_regular_file` would not read; each caller words it its own way.

    ``problem`` is ``missing``, ``unreadable`` (``cause`` holds the operating system's error),
    ``special`` (``mode`` is the file's type) or ``too_large`` (``size`` is the size ``fstat`` gave
    before reading, or None when the file grew past the limit while it was read).
    """

    def __init__(
        self,
        problem: str,
        *,
        cause: OSError | None = None,
        mode: int = 0,
        size: int | None = None,
    ) -> None:
        super().__init__(problem)
        self.problem = problem
        self.cause = cause
        self.mode = mode
        self.size = size

    @property
    def reason(self) -> str:
        """The operating system's reason for ``unreadable`` (its strerror), else ``problem``."""
        if self.cause is not None:
            return self.cause.strerror or str(self.cause)
        return self.problem

    @property
    def text(self) -> str:
        """The problem in words, for a caller without wording of its own: ``no such file``, ``not a
        regular file (a FIFO)``, ``too large (N bytes); not read`` or ``cannot read: REASON``."""
        if self.problem == "missing":
            return "no such file"
        if self.problem == "special":
            return f"not a regular file ({kind_of(self.mode)})"
        if self.problem == "too_large":
            return f"too large{f' ({self.size} bytes)' if self.size is not None else ''}; not read"
        return f"cannot read: {self.reason}"


def read_regular_file(path: str | os.PathLike[str], limit: int, *, chunk: int = 1024 * 1024) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them.

    Opened non-blocking (a FIFO cannot hang the open) and its type checked on the open descriptor (no race
    with a rename), so a FIFO or a device such as ``/dev/zero`` is refused by its type and never read; a
    file larger than ``limit``, or one that grows past it while being read, is refused too. Raises
    :class:`InputFileError`.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise InputFileError("missing", cause=exc) from exc
    except OSError as exc:
        raise InputFileError("unreadable", cause=exc) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputFileError("special", mode=st.st_mode)
        if st.st_size > limit:
            raise InputFileError("too_large", size=st.st_size)
        os.set_blocking(fd, True)
        parts: list[bytes] = []
        size = 0
        while part := os.read(fd, min(chunk, limit + 1 - size)):
            parts.append(part)
            size += len(part)
            if size > limit:
                raise InputFileError("too_large")
        return b"".join(parts)
    except OSError as exc:
        raise InputFileError("unreadable", cause=exc) from exc
    finally:
        os.close(fd)
