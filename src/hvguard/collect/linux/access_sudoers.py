"""A sudoers parser for the syntax people write, resolving aliases into (principal → commands) grants.

Follows sudo's lexer and grammar (``plugins/sudoers/toke.l`` and ``gram.y``, sudoers(5)):

- A backslash at the end of a line continues it. ``#`` starts a comment unless it introduces a uid
  (``#1000``, ``%#27``) or an include at the start of a line (``#include``, ``#includedir``);
  ``@include``/``@includedir`` are the modern spellings. Include paths may be quoted, are relative to
  the including file's directory, and ``%h`` is the short host name. ``includedir`` reads regular files
  whose names neither end in ``~`` nor contain a ``.``, in sorted order; a missing directory is ignored.
- ``User_Alias``, ``Runas_Alias``, ``Host_Alias`` and ``Cmnd_Alias`` (``Cmd_Alias``) define one or more
  aliases separated by ``:``; alias names are upper case. ``Defaults`` lines (any ``:@>!`` variant) are
  kept as written and not interpreted.
- A user specification is ``users hosts = cmndspec, … [: hosts = cmndspec, …]``; a cmndspec is
  ``[(runas[:group])] [OPTION=value …] [TAG: …] [!]command``. Run-as and tags carry over to the next
  commands of the same list until changed. Commands are ``ALL``, a Cmnd alias, a path with arguments
  (``\\,``, ``\\:``, ``\\=``, ``\\#`` and ``\\ `` escape), a directory ending in ``/``, ``sudoedit …``, a
  ``^regex$``, optionally after a ``sha256:DIGEST``.
- ``!`` negates (an even run of ``!`` cancels out). Users are names, ``%group``, ``%:nonunixgroup``,
  ``#uid``, ``%#gid``, ``+netgroup``, ``ALL`` or User aliases.

A line sudo would reject is recorded as ``FILE line N: reason`` (sudo reports a parse error and, with its
default ``sudoers_recovery``, skips it) and parsing goes on with the next line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hvguard.collect.linux.access_files import HostFiles
from hvguard.collect.reader import ReadError
from hvguard.facts import SudoDefault, SudoFacts, SudoRule

SUDOERS = "/etc/sudoers"
MAX_DEPTH = 128  # sudo's MAX_SUDOERS_DEPTH

TAGS = frozenset(
    {"NOPASSWD", "PASSWD", "NOEXEC", "EXEC", "SETENV", "NOSETENV", "LOG_INPUT", "NOLOG_INPUT",
     "LOG_OUTPUT", "NOLOG_OUTPUT", "MAIL", "NOMAIL", "FOLLOW", "NOFOLLOW", "INTERCEPT", "NOINTERCEPT"}
)  # fmt: skip
OPTIONS = frozenset(
    {"TIMEOUT", "NOTBEFORE", "NOTAFTER", "CWD", "CHROOT", "ROLE", "TYPE", "APPARMOR_PROFILE", "PRIVS",
     "LIMITPRIVS"}
)  # fmt: skip
DIGESTS = frozenset({"sha224", "sha256", "sha384", "sha512"})
ALIAS_KINDS = {"User_Alias": "user", "Runas_Alias": "runas", "Host_Alias": "host", "Cmnd_Alias": "cmnd",
               "Cmd_Alias": "cmnd"}  # fmt: skip
_ALIAS_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_WORD_STOP = frozenset('#>!=:,() \t\r\n"')
_CMD_STOP = frozenset("#:,=\r\n")
_ALIAS_LINE = re.compile(r"^\s*(User_Alias|Runas_Alias|Host_Alias|Cmnd_Alias|Cmd_Alias)\s+")
_DEFAULTS_LINE = re.compile(r"^\s*Defaults(?:[:@>!]|\s|$)")
# ``#include`` only counts at the very start of a line (sudo's ``^#include``); ``@include`` after blanks too.
_INCLUDE_LINE = re.compile(r"^(?:#include(dir)?|[ \t]*@include(dir)?)(?:[ \t]+|$)(.*)$")


class SudoersSyntaxError(ValueError):
    """A line sudo's grammar rejects."""


@dataclass(frozen=True)
class _Item:
    """One list item: its text and whether it is negated."""

    value: str
    negated: bool = False

    def text(self) -> str:
        return ("!" if self.negated else "") + self.value


@dataclass
class _Spec:
    """One cmndspec, before alias resolution."""

    runas: str
    tags: frozenset[str]
    command: _Item


@dataclass
class _Privilege:
    hosts: list[_Item]
    specs: list[_Spec]


@dataclass
class _UserSpec:
    users: list[_Item]
    written: str
    privileges: list[_Privilege]
    file: str
    line: int


@dataclass
class _Alias:
    kind: str
    items: list[_Item]
    file: str
    line: int


@dataclass
class _Parsed:
    specs: list[_UserSpec] = field(default_factory=list)
    aliases: dict[tuple[str, str], _Alias] = field(default_factory=dict)
    defaults: list[SudoDefault] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


class _Line:
    """A cursor over one logical line (continuations joined)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def peek(self) -> str:
        self.ws()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def at_end(self) -> bool:
        ch = self.peek()
        return ch == "" or (ch == "#" and not self._is_id())

    def _is_id(self) -> bool:
        rest = self.text[self.pos + 1 :]
        return bool(re.match(r"-?[0-9]", rest))

    def expect(self, ch: str) -> None:
        if self.peek() != ch:
            got = self.peek() or "end of line"
            raise SudoersSyntaxError(f"expected {ch!r}, found {got!r}")
        self.pos += 1

    def bangs(self) -> bool:
        """Consume a run of ``!``; True when it negates (odd count)."""
        count = 0
        while self.peek() == "!":
            self.pos += 1
            count += 1
        return count % 2 == 1

    def word(self) -> str:
        """A name, group, uid, netgroup, host or alias; quoted strings allowed."""
        self.ws()
        if self.peek() == '"':
            return self._quoted()
        start = self.pos
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if ch == "#" and (self.pos == start or out in (["%"], ["%", ":"])):
                out.append(ch)  # #uid, %#gid
                self.pos += 1
                continue
            if ch in _WORD_STOP:
                break
            out.append(ch)
            self.pos += 1
        if not out:
            got = self.text[self.pos] if self.pos < len(self.text) else "end of line"
            raise SudoersSyntaxError(f"expected a name, found {got!r}")
        return "".join(out)

    def _quoted(self) -> str:
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos : self.pos + 2] if self.text[self.pos + 1] != '"' else '"')
                self.pos += 2
                continue
            if ch == '"':
                self.pos += 1
                if not out:
                    raise SudoersSyntaxError("empty string")
                return "".join(out)
            out.append(ch)
            self.pos += 1
        raise SudoersSyntaxError("unterminated string")

    def items(self) -> list[_Item]:
        """A comma-separated list of (possibly negated) words; the caller checks what follows."""
        found = [self._item()]
        while self.peek() == ",":
            self.pos += 1
            found.append(self._item())
        return found

    def _item(self) -> _Item:
        negated = self.bangs()
        return _Item(self.word(), negated)

    def command(self) -> str:
        """A command with its arguments, up to an unescaped ``, : = #`` or the end of the line."""
        self.ws()
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                nxt = self.text[self.pos + 1]
                out.append(nxt if nxt in ":\\,= \t#" else ch + nxt)
                self.pos += 2
                continue
            if ch in _CMD_STOP:
                break
            out.append(ch)
            self.pos += 1
        text = " ".join("".join(out).split())
        if not text:
            raise SudoersSyntaxError("expected a command")
        return text


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) with backslash continuations joined; comment lines do not continue."""
    out: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        if not pending:
            start = number
            stripped = line.lstrip()
            comment = stripped.startswith("#") and not re.match(r"#-?\d", stripped)
            if comment and not _INCLUDE_LINE.match(line):
                continue  # a comment line (a trailing backslash does not continue it)
        m = re.search(r"\\[ \t]*$", line)
        if m:
            pending += line[: m.start()] + " "
            continue
        out.append((start, pending + line))
        pending = ""
    if pending.strip():
        out.append((start, pending))
    return out


def _runas(cur: _Line) -> str:
    """``(users[:groups])`` as written, normalised."""
    cur.expect("(")
    users: list[_Item] = []
    groups: list[_Item] = []
    if cur.peek() not in (":", ")"):
        users = cur.items()
    if cur.peek() == ":":
        cur.pos += 1
        if cur.peek() != ")":
            groups = cur.items()
    cur.expect(")")
    text = ",".join(i.text() for i in users)
    if groups:
        text += ":" + ",".join(i.text() for i in groups)
    return text or "root"


def _cmndspec(cur: _Line, runas: str, tags: frozenset[str]) -> _Spec:
    if cur.peek() == "(":
        runas = _runas(cur)
    new_tags = set(tags)
    while True:
        cur.ws()
        m = re.match(r"([A-Z_]+)\s*([:=])", cur.text[cur.pos :])
        if not m:
            break
        name, sep = m.group(1), m.group(2)
        if sep == ":" and name in TAGS:
            cur.pos += m.end()
            opposite = name[2:] if name.startswith("NO") else "NO" + name
            new_tags.discard(opposite)
            new_tags.add(name)
            continue
        if sep == "=" and name in OPTIONS:
            cur.pos += m.end()
            cur.word()  # the option's value; not interpreted
            continue
        break
    negated = cur.bangs()
    cur.ws()
    m = re.match(r"(sha224|sha256|sha384|sha512)\s*:\s*[A-Za-z0-9+/=]+\s*", cur.text[cur.pos :])
    if m:
        cur.pos += m.end()
    rest = cur.text[cur.pos :]
    alias = _ALIAS_NAME.match(rest)
    if alias and (len(rest) == alias.end() or rest[alias.end()] in " \t,:#"):
        cur.pos += alias.end()
        value = alias.group(0)
    elif rest.startswith(("/", "^", "sudoedit", "list")):
        value = cur.command()
    else:
        raise SudoersSyntaxError(f"expected a command, found {rest[:20]!r}")
    return _Spec(runas=runas, tags=frozenset(new_tags), command=_Item(value, negated))


def _cmndspecs(cur: _Line) -> list[_Spec]:
    runas = "root"
    tags: frozenset[str] = frozenset()
    specs = [_cmndspec(cur, runas, tags)]
    while cur.peek() == ",":
        cur.pos += 1
        prev = specs[-1]
        specs.append(_cmndspec(cur, prev.runas, prev.tags))
    return specs


def _user_spec(cur: _Line, path: str, number: int) -> _UserSpec:
    start = cur.pos
    users = cur.items()
    written = cur.text[start : cur.pos].strip()
    privileges: list[_Privilege] = []
    while True:
        hosts = cur.items()
        cur.expect("=")
        privileges.append(_Privilege(hosts=hosts, specs=_cmndspecs(cur)))
        if cur.peek() == ":":
            cur.pos += 1
            continue
        if not cur.at_end():
            raise SudoersSyntaxError(f"unexpected {cur.peek()!r} after the command list")
        return _UserSpec(users=users, written=written, privileges=privileges, file=path, line=number)


def _alias_defs(cur: _Line, kind: str, path: str, number: int, parsed: _Parsed) -> None:
    while True:
        cur.ws()
        m = _ALIAS_NAME.match(cur.text[cur.pos :])
        if not m:
            raise SudoersSyntaxError("expected an upper-case alias name")
        name = m.group(0)
        cur.pos += m.end()
        cur.expect("=")
        items = [spec.command for spec in _cmndspecs(cur)] if kind == "cmnd" else cur.items()
        key = (kind, name)
        if key in parsed.aliases:
            first = parsed.aliases[key]
            parsed.errors.append(
                f"{path} line {number}: {kind} alias {name} redefined "
                f"(first at {first.file} line {first.line})"
            )
        else:
            parsed.aliases[key] = _Alias(kind=kind, items=items, file=path, line=number)
        if cur.peek() == ":":
            cur.pos += 1
            continue
        if not cur.at_end():
            raise SudoersSyntaxError(f"unexpected {cur.peek()!r}")
        return


class _Reader:
    def __init__(self, files: HostFiles, hostname: str) -> None:
        self.files = files
        self.hostname = hostname
        self.parsed = _Parsed()

    def include_path(self, current: str, written: str) -> str:
        path = written.strip()
        if len(path) > 1 and path.startswith('"') and path.endswith('"'):
            path = path[1:-1]
        path = path.replace("%h", self.hostname)
        if not path.startswith("/"):
            path = current.rsplit("/", 1)[0] + "/" + path
        return path

    def read(self, path: str, depth: int, required: bool) -> None:
        parsed = self.parsed
        if depth > MAX_DEPTH:
            parsed.errors.append(f"{path}: too many levels of includes")
            return
        try:
            text = self.files.read_text(path)
        except ReadError as exc:
            # sudo reads it (as root); hvguard could not: the grants it holds are unknown, not absent.
            parsed.errors.append(f"{exc.path}: {exc.message}")
            parsed.unreadable.append(path)
            return
        if text is None:
            if required:
                parsed.errors.append(f"{path}: included file does not exist")
            return
        parsed.files.append(path)
        for number, line in _logical_lines(text):
            try:
                self.entry(path, number, line, depth)
            except SudoersSyntaxError as exc:
                parsed.errors.append(f"{path} line {number}: syntax error: {exc}")

    def entry(self, path: str, number: int, line: str, depth: int) -> None:
        inc = _INCLUDE_LINE.match(line)
        if inc:
            target = inc.group(3).strip()
            if not target:
                raise SudoersSyntaxError("include without a path")
            resolved = self.include_path(path, target)
            if inc.group(1) or inc.group(2):
                names = self.files.listdir(resolved)
                if names is None and self.files.is_dir(resolved):
                    self.parsed.errors.append(f"{resolved}: cannot list the include directory")
                    self.parsed.unreadable.append(resolved)
                for name in names or []:
                    full = f"{resolved}/{name}"
                    if name.endswith("~") or "." in name or not self.files.is_file(full):
                        continue
                    self.read(full, depth + 1, required=False)
            else:
                self.read(resolved, depth + 1, required=True)
            return
        if _DEFAULTS_LINE.match(line):
            self.parsed.defaults.append(SudoDefault(text=line.strip(), file=path, line=number))
            return
        cur = _Line(line)
        if cur.at_end():
            return
        alias = _ALIAS_LINE.match(line)
        if alias:
            cur.pos = alias.end()
            _alias_defs(cur, ALIAS_KINDS[alias.group(1)], path, number, self.parsed)
            return
        self.parsed.specs.append(_user_spec(cur, path, number))


class _Resolver:
    def __init__(self, parsed: _Parsed) -> None:
        self.parsed = parsed

    def expand(self, kind: str, items: list[_Item], where: str, seen: tuple[str, ...] = ()) -> list[_Item]:
        out: list[_Item] = []
        for item in items:
            alias = self.parsed.aliases.get((kind, item.value))
            if alias is None:
                if _ALIAS_NAME.fullmatch(item.value) and item.value != "ALL":
                    self.parsed.errors.append(f"{where}: {kind} alias {item.value} is used but not defined")
                out.append(item)
                continue
            if item.value in seen:
                self.parsed.errors.append(f"{where}: {kind} alias {item.value} refers to itself")
                continue
            for inner in self.expand(kind, alias.items, where, (*seen, item.value)):
                out.append(_Item(inner.value, inner.negated != item.negated))
        return out


def _rules(parsed: _Parsed) -> list[SudoRule]:
    resolver = _Resolver(parsed)
    rules: list[SudoRule] = []
    for spec in parsed.specs:
        where = f"{spec.file} line {spec.line}"
        principals = [i.text() for i in resolver.expand("user", spec.users, where)]
        for privilege in spec.privileges:
            hosts = [i.text() for i in resolver.expand("host", privilege.hosts, where)]
            groups: list[tuple[str, frozenset[str], list[str]]] = []
            for cmnd in privilege.specs:
                written_runas = cmnd.runas.split(":")[0].split(",")
                runas_items = [_Item(v.lstrip("!"), v.startswith("!")) for v in written_runas]
                runas_users = ",".join(i.text() for i in resolver.expand("runas", runas_items, where))
                runas = runas_users + (":" + cmnd.runas.split(":", 1)[1] if ":" in cmnd.runas else "")
                commands = [i.text() for i in resolver.expand("cmnd", [cmnd.command], where)]
                if groups and groups[-1][0] == runas and groups[-1][1] == cmnd.tags:
                    groups[-1][2].extend(commands)
                else:
                    groups.append((runas, cmnd.tags, commands))
            for runas, tags, commands in groups:
                rules.append(
                    SudoRule(
                        principals=principals,
                        written=spec.written,
                        hosts=hosts,
                        runas=runas,
                        commands=commands,
                        all_commands="ALL" in commands,
                        nopasswd="NOPASSWD" in tags,
                        tags=sorted(tags),
                        file=spec.file,
                        line=spec.line,
                    )
                )
    return rules


def parse_sudoers(files: HostFiles, hostname: str = "", path: str = SUDOERS) -> SudoFacts:
    """Read ``path`` and everything it includes; never raises."""
    reader = _Reader(files, hostname.split(".", 1)[0])
    present = files.lexists(path)  # a dangling link is a broken sudoers, not none
    if present:
        reader.read(path, 0, required=True)
    parsed = reader.parsed
    rules = _rules(parsed)
    return SudoFacts(
        present=present,
        files=parsed.files,
        rules=rules,
        defaults=parsed.defaults,
        errors=parsed.errors,
        unreadable=parsed.unreadable,
    )
