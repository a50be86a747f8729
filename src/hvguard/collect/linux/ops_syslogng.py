"""syslog-ng configuration: remote destinations that a log path uses, with their transport security.

syslog-ng's grammar is blocks of driver calls: ``destination d_net { network("loghost" port(6514)
transport("tls") tls(ca-dir("/etc/syslog-ng/ca.d") peer-verify(required-trusted))); };`` and
``log { source(s_src); destination(d_net); };``. This reader tokenizes (quoted strings, ``#`` comments,
``@include`` lines), builds the nested call tree, and reports a destination only when a ``log`` path
uses it. Drivers: ``network()``/``syslog()`` (transport ``tcp`` by default, ``tls`` when set),
``tcp()``/``tcp6()``/``udp()``/``udp6()`` (legacy, never TLS), ``http()`` (TLS with an https URL).
With TLS, ``peer-verify`` defaults to ``required-trusted`` (syslog-ng documentation).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from hvguard.facts import ConfigIssue, LogForward

_TOKEN = re.compile(
    r"""(?P<ws>[ \t\r]+)|(?P<nl>\n)|(?P<comment>\#[^\n]*)|(?P<str>"(?:[^"\\]|\\.)*"|'[^']*')"""
    r"""|(?P<punct>[(){};,])|(?P<word>[^\s(){};,"'#]+)"""
)
_NETWORK_DRIVERS = {"network", "syslog", "tcp", "tcp6", "udp", "udp6", "http"}
_MAX_INCLUDE_DEPTH = 16


class SyslogNgSyntaxError(ValueError):
    """A structural error at a line of a syslog-ng configuration file."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class Call:
    """``name(args)``: positional values (strings/words) and nested option calls."""

    name: str
    line: int
    values: list[str] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    def option(self, name: str) -> Call | None:
        """The first nested call named ``name`` (``-`` and ``_`` are the same in syslog-ng)."""
        want = name.replace("_", "-")
        for c in self.calls:
            if c.name.replace("_", "-") == want:
                return c
        return None

    def value(self, name: str) -> str | None:
        """The first positional value of option ``name``."""
        opt = self.option(name)
        return opt.values[0] if opt and opt.values else None


@dataclass
class Block:
    """A top-level statement: ``kind [name] { calls };``."""

    kind: str
    name: str | None
    line: int
    calls: list[Call] = field(default_factory=list)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    line = 1
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() != pos:
            raise SyslogNgSyntaxError(line, f"unexpected {text[pos : m.start()][:20]!r}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind == "nl":
            line += 1
        elif kind in ("ws", "comment"):
            continue
        elif kind == "str":
            raw = m.group(0)
            out.append(("str", raw[1:-1].replace('\\"', '"'), line))
            line += raw.count("\n")
        else:
            out.append((kind, m.group(0), line))
    if pos != len(text):
        tail = text[pos:]
        if tail.lstrip().startswith(('"', "'")):
            raise SyslogNgSyntaxError(line, "unterminated string")
        raise SyslogNgSyntaxError(line, f"unexpected {tail[:20]!r}")
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str, int]]) -> None:
        self.t = tokens
        self.i = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def line(self) -> int:
        tok = self.peek()
        return tok[2] if tok else (self.t[-1][2] if self.t else 1)

    def expect(self, value: str) -> None:
        tok = self.peek()
        if tok is None or tok[1] != value:
            found = "end of file" if tok is None else repr(tok[1])
            raise SyslogNgSyntaxError(self.line(), f"expected '{value}', found {found}")
        self.i += 1

    def call_args(self, call: Call) -> None:
        """Inside ``(`` … ``)``: values and nested calls, until the matching ``)``."""
        start = self.line()
        while True:
            tok = self.peek()
            if tok is None:
                raise SyslogNgSyntaxError(start, f"unterminated {call.name}( … ): no closing ')'")
            kind, val, line = tok
            if val == ")":
                self.i += 1
                return
            if val in (",", ";"):
                self.i += 1
                continue
            if val in ("{", "}"):
                raise SyslogNgSyntaxError(line, f"unexpected '{val}' inside {call.name}( … )")
            self.i += 1
            nxt = self.peek()
            if kind == "word" and nxt is not None and nxt[1] == "(":
                self.i += 1
                sub = Call(name=val, line=line)
                self.call_args(sub)
                call.calls.append(sub)
            else:
                call.values.append(val)

    def body(self) -> list[Call]:
        """Inside ``{`` … ``}``: ``name(args);`` statements (nested ``{}`` blocks flattened)."""
        start = self.line()
        calls: list[Call] = []
        while True:
            tok = self.peek()
            if tok is None:
                raise SyslogNgSyntaxError(start, "unterminated block: no closing '}'")
            kind, val, line = tok
            self.i += 1
            if val == "}":
                return calls
            if val in (";", ","):
                continue
            if val == "{":
                calls += self.body()
                continue
            nxt = self.peek()
            if kind == "word" and nxt is not None and nxt[1] == "(":
                self.i += 1
                call = Call(name=val, line=line)
                self.call_args(call)
                calls.append(call)
                nxt = self.peek()
                if nxt is not None and nxt[1] == "{":  # junction/if bodies: flatten
                    self.i += 1
                    calls += self.body()
            elif kind == "word" and nxt is not None and nxt[1] == "{":
                continue  # channel { … } / if { … }: the body follows as a block
            # anything else (flags words, else) is ignored

    def blocks(self) -> list[Block]:
        out: list[Block] = []
        while self.peek() is not None:
            kind, val, line = self.t[self.i]
            if val == ";":
                self.i += 1
                continue
            if kind != "word":
                raise SyslogNgSyntaxError(line, f"unexpected {val!r} at top level")
            self.i += 1
            name: str | None = None
            tok = self.peek()
            if tok is not None and tok[0] in ("word", "str") and tok[1] != "{":
                name = tok[1]
                self.i += 1
                tok = self.peek()
            if tok is not None and tok[1] == "(":  # block NAME(params) { … } definitions
                self.i += 1
                self.call_args(Call(name=val, line=line))
                tok = self.peek()
            self.expect("{")
            out.append(Block(kind=val, name=name, line=line, calls=self.body()))
            tok = self.peek()
            if tok is not None and tok[1] == ";":
                self.i += 1
        return out


@dataclass
class SyslogNgResult:
    """What the syslog-ng reader found."""

    files: list[str] = field(default_factory=list)
    forwards: list[LogForward] = field(default_factory=list)
    issues: list[ConfigIssue] = field(default_factory=list)


def _port(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _forward(call: Call, path: str) -> LogForward | None:
    driver = call.name
    target = call.values[0] if call.values else None
    if driver == "http":
        url = call.value("url") or target or ""
        tls = url.lower().startswith("https://")
        verify = call.option("tls")
        pv = verify.value("peer-verify") if verify else None
        return LogForward(
            daemon="syslog-ng",
            path=path,
            line=call.line,
            text=f"http({url})",
            target=url,
            protocol="https" if tls else "http",
            tls=tls,
            auth_mode=f"peer-verify({pv or 'yes'})" if tls else None,
        )
    if driver in ("udp", "udp6"):
        transport = "udp"
    elif driver in ("tcp", "tcp6"):
        transport = "tcp"
    else:
        transport = (call.value("transport") or "tcp").lower()
    tls = transport == "tls"
    tls_opt = call.option("tls")
    pv = tls_opt.value("peer-verify") if tls_opt else None
    ca = None
    if tls_opt is not None:
        ca = tls_opt.value("ca-file") or tls_opt.value("ca-dir")
    return LogForward(
        daemon="syslog-ng",
        path=path,
        line=call.line,
        text=f'{driver}("{target}" transport("{transport}"))',
        target=target,
        port=_port(call.value("port")) or (6514 if tls else 514),
        protocol="udp" if transport == "udp" else "tcp",
        tls=tls,
        driver="tls" if tls else None,
        auth_mode=f"peer-verify({pv or 'required-trusted'})" if tls else None,
        ca_file=ca,
    )


def read_syslog_ng(
    read: Callable[[str], str | None],
    expand: Callable[[str], list[str]],
    main: str = "/etc/syslog-ng/syslog-ng.conf",
) -> SyslogNgResult:
    """Parse syslog-ng's configuration and its ``@include`` files; report used network destinations."""
    result = SyslogNgResult()
    blocks: list[tuple[str, Block]] = []
    seen: set[str] = set()

    def load(path: str, depth: int) -> None:
        if path in seen or depth > _MAX_INCLUDE_DEPTH:
            return
        text = read(path)
        if text is None:
            return
        seen.add(path)
        result.files.append(path)
        body_lines: list[str] = []
        includes: list[str] = []
        for raw in text.splitlines():
            stripped = raw.strip()
            if stripped.startswith("@"):
                m = re.match(r'@include\s+"([^"]+)"', stripped)
                if m:
                    includes.append(m.group(1))
                body_lines.append("")  # keep line numbers
            else:
                body_lines.append(raw)
        try:
            blocks.extend((path, b) for b in _Parser(_tokens("\n".join(body_lines))).blocks())
        except SyslogNgSyntaxError as exc:
            result.issues.append(ConfigIssue(path=path, line=exc.line, message=str(exc)))
        base = path.rsplit("/", 1)[0]
        for inc in includes:
            pattern = inc if inc.startswith("/") else f"{base}/{inc}"
            for p in expand(pattern):
                load(p, depth + 1)

    load(main, 0)
    used: set[str] = set()
    for _, b in blocks:
        if b.kind == "log":
            used.update(c.values[0] for c in b.calls if c.name == "destination" and c.values)
    for path, b in blocks:
        if b.kind != "destination" or b.name not in used:
            continue
        for call in b.calls:
            if call.name in _NETWORK_DRIVERS:
                fwd = _forward(call, path)
                if fwd is not None:
                    result.forwards.append(fwd)
    return result
