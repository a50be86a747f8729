"""The one writer behind every ``--output`` (reports, bundles, baselines, playbooks, register exports).

What happens depends on what the path names now:

* nothing, or ``-``: standard output;
* no file yet: a new file, written to a private temporary file in the same folder (``mkstemp``: created
  with ``O_EXCL``, mode 0600, never through a symbolic link planted under its name), given the mode the
  caller asks for, then renamed into place — a reader never sees half a file;
* a regular file: refused unless ``--force``; with it replaced the same way (never rewritten in place);
* a character device or FIFO, or a symbolic link to one (``/dev/null``, ``/dev/stdout`` on a terminal or
  a pipe, a shell's ``>(…)``): written in place and never replaced, with or without ``--force``;
* a symbolic link to anything else, a folder, or any other kind of file: refused in one line.

Every refusal and write failure is a :class:`~hvguard.cli.errors.UserError` (one line, exit 2).

Report commands take several outputs (``-o FORMAT:PATH``, repeatable): :func:`parse_outputs` reads them
by the contract, and :func:`check_destinations` classifies every one before anything is written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from hvguard.cli.errors import UserError

#: Final modes callers ask for. Reports and bundles hold a host's configuration: owner only.
OWNER_ONLY = 0o600
#: Baselines and playbooks are configuration meant to be shared and committed.
WORLD_READABLE = 0o644
#: The mode a new file gets from the process umask (``0o666 & ~umask``), as a shell redirection would.
FROM_UMASK = None

#: Errors of ``os.link`` that mean "this file system has no hard links", not "the name is taken".
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EXDEV}


class Destination(Enum):
    """What an ``--output`` path names, as far as the writer is concerned."""

    STDOUT = "stdout"
    NEW = "new"
    REGULAR = "regular"
    STREAM = "stream"  # a character device or FIFO (possibly through a symbolic link)


def to_stdout(output: Path | None) -> bool:
    """True when ``output`` means standard output (no ``--output``, or ``--output -``)."""
    return output is None or str(output) == "-"


def describe(output: Path | None) -> str:
    """``output`` as messages name it."""
    return "standard output" if to_stdout(output) else str(output)


def _is_stream(mode: int) -> bool:
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def destination(output: Path | None, *, force: bool) -> Destination:
    """Classify ``output`` and refuse (:class:`UserError`) what must not be written.

    Commands call this before collecting, so a refusal costs nothing; :func:`write_output` calls it
    again, because the path may have changed meanwhile.
    """
    if output is None or to_stdout(output):
        return Destination.STDOUT
    try:
        st = os.lstat(output)
    except FileNotFoundError:
        return Destination.NEW
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror or exc}") from exc
    if stat.S_ISLNK(st.st_mode):
        try:
            points_to = os.stat(output)
        except OSError:
            points_to = None
        if points_to is not None and _is_stream(points_to.st_mode):
            return Destination.STREAM
        raise UserError(f"{output} is a symbolic link; not written through (name the file itself)")
    if stat.S_ISREG(st.st_mode):
        if not force:
            raise UserError(f"{output} exists; pass --force to replace it")
        return Destination.REGULAR
    if _is_stream(st.st_mode):
        return Destination.STREAM
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"cannot write {output}: it is a directory")
    raise UserError(f"cannot write {output}: not a regular file, character device or FIFO")


def write_output(data: str | bytes, output: Path | None, *, force: bool, mode: int | None) -> None:
    """Write ``data`` (text is UTF-8) to ``output`` by the rules of this module; a new or replaced file
    ends with ``mode`` (:data:`OWNER_ONLY`, :data:`WORLD_READABLE`, or :data:`FROM_UMASK`)."""
    where = destination(output, force=force)
    if where is Destination.STDOUT or output is None:
        _to_stdout(data)
        return
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        if where is Destination.STREAM:
            _in_place(raw, output)
        else:
            _replace(raw, output, force=force, mode=_umask_mode() if mode is None else mode)
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror or exc}") from exc


def _to_stdout(data: str | bytes) -> None:
    if isinstance(data, str):
        sys.stdout.write(data)
        return
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _in_place(raw: bytes, output: Path) -> None:
    # No O_CREAT: a path that vanished since it was classified is not created here. O_NOCTTY: writing to
    # a terminal must not make it this process's controlling terminal.
    fd = os.open(output, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
    with os.fdopen(fd, "wb") as out:
        # Swapped for a regular file since it was classified: that one would be overwritten in place.
        if not _is_stream(os.fstat(out.fileno()).st_mode):
            raise UserError(f"{output} changed while being written; not written")
        out.write(raw)


def _replace(raw: bytes, output: Path, *, force: bool, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
            out.flush()
            if mode != OWNER_ONLY:
                os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        if force:
            os.replace(tmp, output)
        else:
            _link_new(tmp, output)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _link_new(tmp: str, output: Path) -> None:
    """Give ``tmp`` the name ``output`` only if nothing has taken it meanwhile (a hard link fails when
    the name exists, where a rename would silently replace it)."""
    try:
        os.link(tmp, output)
    except FileExistsError as exc:
        raise UserError(f"{output} exists; pass --force to replace it") from exc
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        os.replace(tmp, output)


def _umask_mode() -> int:
    # The umask can only be read by setting it; 0o077 meanwhile errs on the private side for any other
    # thread creating a file at this instant.
    mask = os.umask(0o077)
    os.umask(mask)
    return 0o666 & ~mask


# -- several outputs (report commands) ----------------------------------------------------------------


@dataclass(frozen=True)
class OutputSpec:
    """One output of a report command: a format and where it goes."""

    fmt: str
    """The report format (``json``, ``html`` …)."""
    path: Path | None
    """The file, device or FIFO; None for standard output (``-``)."""

    def describe(self) -> str:
        """``FORMAT:PATH`` as the user would write it."""
        return f"{self.fmt}:{'-' if self.path is None else self.path}"


def parse_outputs(
    values: Sequence[str], formats: Sequence[str], known: Collection[str], *, default_format: str = "table"
) -> tuple[OutputSpec, ...]:
    """The outputs named by ``-o/--output`` ``values`` and ``--format`` ``formats``, by the contract.

    A value is ``FORMAT:PATH`` when the part before its first ``:`` is a format name in ``known``, else a
    PATH in the ``--format`` format. ``--format`` given twice, ``--format`` or a plain PATH mixed with
    ``FORMAT:PATH`` values, two plain PATHs, two outputs to ``-`` or one path named twice are
    :class:`UserError`. No value at all is one output in ``--format`` (default ``default_format``) to
    standard output.
    """
    if len(formats) > 1:
        raise UserError("--format given more than once; name each output as -o FORMAT:PATH")
    typed: list[OutputSpec] = []
    plain: list[str] = []
    for value in values:
        head, sep, tail = value.partition(":")
        if sep and head in known:
            if not tail:
                raise UserError(f"-o {value}: missing PATH after '{head}:' (- for standard output)")
            typed.append(OutputSpec(head, None if tail == "-" else Path(tail)))
        else:
            plain.append(value)
    if typed and formats:
        raise UserError("--format cannot be combined with -o FORMAT:PATH; name the format of every output")
    if typed and plain:
        raise UserError(
            f"-o {plain[0]} has no format while other outputs do; write it as -o FORMAT:{plain[0]}"
        )
    if len(plain) > 1:
        raise UserError("-o PATH given more than once; name each output as -o FORMAT:PATH")
    path = Path(plain[0]) if plain and not to_stdout(Path(plain[0])) else None
    specs = typed or [OutputSpec(formats[0] if formats else default_format, path)]
    if sum(1 for s in specs if s.path is None) > 1:
        raise UserError("more than one output to standard output (-)")
    seen: dict[str, OutputSpec] = {}
    for spec in specs:
        if spec.path is None:
            continue
        key = os.path.abspath(spec.path)
        if key in seen:
            both = f"{seen[key].describe()}, {spec.describe()}"
            raise UserError(f"{spec.path} is named by two outputs ({both})")
        seen[key] = spec
    return tuple(specs)


def check_destinations(specs: Sequence[OutputSpec], *, force: bool) -> None:
    """Classify every output's destination (:func:`destination`): the first one that must not be written
    raises :class:`UserError` before any is written."""
    for spec in specs:
        destination(spec.path, force=force)
