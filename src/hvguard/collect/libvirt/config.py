"""A parser for libvirt's configuration-file syntax (``qemu.conf``, ``libvirtd.conf``, ``virtqemud.conf``).

It accepts exactly what libvirt's own reader (``src/util/virconf.c``, flags 0) accepts, so a file hvguard
reports as valid is one the daemon would load, and a file the daemon would refuse is reported as an error
instead of being half-read. Verified against virconf.c and against libvirt 9.0's compiled parser:

- ``name = value`` statements; a name is an ASCII letter followed by letters, digits and ``_``.
  Statements end at a newline (``\\n`` or ``\\r``) or ``;``; blank lines are skipped.
- ``#`` starts a comment, either on a line of its own or after a value.
- Values: a decimal integer with an optional ``+``/``-`` sign; a string in single or double quotes that
  ends on the same line; a ``\"\"\"…\"\"\"`` string that may span lines; a list ``[ v, v, ]`` whose items
  may sit on several lines, with an optional trailing comma.
- Strings have **no escapes**: a backslash is an ordinary character and a quote always ends the string
  (use the other quote kind, or triple quotes, to embed one).
- A ``#`` comment **inside** a list is a syntax error ("expecting a value" / "expecting a separator in
  list"), as is a file holding only whitespace ("expecting a name") — libvirt refuses both.
- When a name is set twice the **first** assignment is the one libvirt uses (``virConfGetValue`` returns
  the first match), so that is the value kept here.
- Booleans are the integers 0/1 (there are no true/false literals); they stay integers here.
"""

from __future__ import annotations

import bisect
import re
from pathlib import Path

from hvguard.collect.hostfs import HostFS, as_fs
from hvguard.facts import ConfFile, ConfValue

# virConfReadFile refuses anything bigger (MAX_CONFIG_FILE_SIZE in virconf.c).
MAX_CONF_BYTES = 10 * 1024 * 1024

_ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset("0123456789")
_NAME_CHARS = _ASCII_LETTERS | _DIGITS | {"_"}
_BLANKS = frozenset(" \t")
_EOLS = frozenset("\n\r")
_COMMENT_RUN = re.compile(r"#[^\n\r]*(?:[\n\r][ \t\n\r]*#[^\n\r]*)*")
_NEWLINE = re.compile("\n")
_LLONG_MIN = -(2**63)
_LLONG_MAX = 2**63 - 1
# What libvirt's CUR yields past the end of its NUL-terminated buffer.
_END = "\0"

ConfScalar = str | int | list[str]


class ConfSyntaxError(ValueError):
    """A syntax error at a 1-based line, worded as libvirt words it."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


class _Parser:
    """A recursive-descent reader that mirrors virconf.c statement by statement."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.end = len(text)
        self._newlines = [m.start() for m in _NEWLINE.finditer(text)]

    # -- positions -------------------------------------------------------------------------------------

    def line_at(self, pos: int) -> int:
        """1-based line of ``pos``; equal to libvirt's counter, which counts every newline consumed."""
        return bisect.bisect_left(self._newlines, pos) + 1

    def error(self, message: str, pos: int | None = None) -> ConfSyntaxError:
        return ConfSyntaxError(self.line_at(self.pos if pos is None else pos), message)

    @property
    def cur(self) -> str:
        return self.text[self.pos] if self.pos < self.end else _END

    def skip_blanks(self) -> None:
        while self.pos < self.end and self.text[self.pos] in _BLANKS:
            self.pos += 1

    def skip_blanks_and_eol(self) -> None:
        while self.pos < self.end and (self.text[self.pos] in _BLANKS or self.text[self.pos] in _EOLS):
            self.pos += 1

    def skip_to_eol(self) -> None:
        # str.find instead of a character loop: comment lines are most of a shipped qemu.conf.
        ends = [
            i
            for i in (self.text.find("\n", self.pos, self.end), self.text.find("\r", self.pos, self.end))
            if i >= 0
        ]
        self.pos = min(ends) if ends else self.end

    # -- grammar ---------------------------------------------------------------------------------------

    def parse(self) -> dict[str, ConfValue]:
        values: dict[str, ConfValue] = {}
        while self.pos < self.end:
            self.statement(values)
            self.separator()
        return values

    def statement(self, values: dict[str, ConfValue]) -> None:
        self.skip_blanks_and_eol()
        if self.cur == "#":
            # A run of comment lines in one step (most of a shipped qemu.conf): the same as skipping
            # each to its end and the blank lines between them, statement by statement.
            run = _COMMENT_RUN.match(self.text, self.pos)
            self.pos = run.end() if run else self.end
            return
        line = self.line_at(self.pos)
        name = self.name()
        self.skip_blanks()
        if self.cur != "=":
            raise self.error("expecting an assignment")
        self.pos += 1
        self.skip_blanks()
        value_pos = self.pos
        value = self.value()
        self.skip_blanks()
        if self.cur == "#":
            self.skip_to_eol()
        if name in values:
            return  # libvirt reads the first assignment of a name and never sees later ones
        values[name] = ConfValue(value=_as_model_value(name, value, self.line_at(value_pos)), line=line)

    def separator(self) -> None:
        self.skip_blanks()
        if self.pos >= self.end:
            return
        if self.cur in _EOLS:
            self.skip_blanks_and_eol()
        elif self.cur == ";":
            self.pos += 1
            self.skip_blanks_and_eol()
        else:
            raise self.error("expecting a separator")

    def name(self) -> str:
        self.skip_blanks()
        start = self.pos
        if self.cur not in _ASCII_LETTERS:
            raise self.error("expecting a name")
        while self.pos < self.end and self.text[self.pos] in _NAME_CHARS:
            self.pos += 1
        return self.text[start : self.pos]

    def value(self) -> object:
        self.skip_blanks()
        if self.pos >= self.end:
            raise self.error("expecting a value")
        ch = self.cur
        if ch in {'"', "'"}:
            return self.string()
        if ch == "[":
            return self.list_value()
        if ch in _DIGITS or ch in {"-", "+"}:
            return self.number()
        raise self.error("expecting a value")

    def string(self) -> str:
        quote = self.cur
        # virconf.c only looks for triple quotes when more than six characters remain.
        if quote == '"' and self.pos + 6 < self.end and self.text.startswith('"""', self.pos):
            start = self.pos + 3
            close = self.text.find('"""', start)
            if close == -1:
                raise self.error("unterminated string", max(start, self.end - 2))
            self.pos = close + 3
            return self.text[start:close]
        start = self.pos + 1
        self.pos = start
        while self.pos < self.end and self.text[self.pos] != quote and self.text[self.pos] not in _EOLS:
            self.pos += 1
        if self.cur != quote:
            raise self.error("unterminated string")
        self.pos += 1
        return self.text[start : self.pos - 1]

    def list_value(self) -> list[object]:
        self.pos += 1
        items: list[object] = []
        self.skip_blanks_and_eol()
        if self.pos < self.end and self.cur != "]":
            items.append(self.value())
            self.skip_blanks_and_eol()
        while self.pos < self.end and self.cur != "]":
            if self.cur != ",":
                raise self.error("expecting a separator in list")
            self.pos += 1
            self.skip_blanks_and_eol()
            if self.cur == "]":
                break
            items.append(self.value())
            self.skip_blanks_and_eol()
        if self.cur != "]":
            raise self.error("list is not closed with ]")
        self.pos += 1
        return items

    def number(self) -> int:
        start = self.pos
        if self.cur in {"-", "+"}:
            self.pos += 1
        if self.pos >= self.end or self.cur not in _DIGITS:
            raise self.error("unterminated number")
        while self.pos < self.end and self.text[self.pos] in _DIGITS:
            self.pos += 1
        number = int(self.text[start : self.pos])
        if not _LLONG_MIN <= number <= _LLONG_MAX:
            # libvirt accumulates into a long long and silently wraps; the value it would use is garbage.
            raise self.error("number out of range (libvirt would wrap it)", start)
        return number


def _as_model_value(name: str, value: object, line: int) -> ConfScalar:
    """Narrow a parsed value to what the facts model stores (lists of strings only)."""
    if isinstance(value, list):
        if all(isinstance(item, str) for item in value):
            return [item for item in value if isinstance(item, str)]
        # virconf.c parses nested lists and numbers in lists, but every libvirt list setting is read
        # with virConfGetValueStringList, which rejects them; the model has no way to hold them either.
        raise ConfSyntaxError(line, f"'{name}' is a list with non-string items (libvirt expects strings)")
    if isinstance(value, str | int):
        return value
    raise TypeError(f"unexpected parsed value {value!r}")  # pragma: no cover - the parser never builds one


def parse_libvirt_conf(text: str, path: str) -> ConfFile:
    """Parse the text of a libvirt config file; never raises.

    Returns ``ConfFile(present=True, values={name: ConfValue(value, line)})``, or on a syntax error
    ``ConfFile(present=True, error="<path> line N: <reason>")`` with no values, because libvirt refuses
    the whole file in that case.
    """
    try:
        values = _Parser(text).parse()
    except ConfSyntaxError as exc:
        return ConfFile(path=path, present=True, error=f"{path} line {exc.line}: {exc.message}")
    return ConfFile(path=path, present=True, values=values)


def read_libvirt_conf(root: Path | HostFS, relpath: str) -> ConfFile:
    """Read and parse ``relpath`` (e.g. ``etc/libvirt/qemu.conf``) of a host; never raises.

    A missing file gives ``present=False`` (libvirt then uses its built-in defaults). A file that exists
    but cannot be read — permission, a directory in its place, a symlink loop, invalid UTF-8, more than
    libvirt's 10 MiB limit — gives ``present=True`` with ``error`` set.
    """
    fs = as_fs(root)
    shown = fs.shown(relpath)
    try:
        data = fs.read(relpath, MAX_CONF_BYTES + 1)
    except FileNotFoundError:
        return ConfFile(path=shown, present=False)
    except IsADirectoryError:
        return ConfFile(path=shown, present=True, error=f"{shown}: is a directory, not a file")
    except OSError as exc:
        if isinstance(exc, PermissionError):
            fs.note_unreadable(relpath)
        reason = exc.strerror or str(exc)
        return ConfFile(path=shown, present=True, error=f"{shown}: cannot read: {reason}")
    if len(data) > MAX_CONF_BYTES:
        return ConfFile(
            path=shown,
            present=True,
            error=f"{shown}: larger than {MAX_CONF_BYTES} bytes (libvirt refuses it)",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return ConfFile(path=shown, present=True, error=f"{shown} line {line}: not valid UTF-8 text")
    return parse_libvirt_conf(text, shown)
