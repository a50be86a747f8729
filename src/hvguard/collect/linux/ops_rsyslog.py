"""rsyslog configuration: every remote forward, with its transport security, from both syntaxes.

rsyslog reads two syntaxes in one file, and real configurations mix them:

- legacy: ``$Directive value`` lines and ``selector action`` lines (``*.* @@loghost:6514`` = TCP,
  ``@host`` = UDP), where ``$ActionSendStreamDriver*`` directives set up the *following* actions and
  ``$DefaultNetstreamDriver*`` set global defaults;
- RainerScript: objects with parameter lists — ``action(type="omfwd" target="…" port="6514"
  protocol="tcp" StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
  StreamDriverPermittedPeers="…")``, ``global(DefaultNetstreamDriverCAFile="…")``,
  ``include(file="…")``, ``ruleset(name="…") { … }``, ``if … then { … }`` — spread over lines, with
  ``#`` and ``/* */`` comments and quoted strings that may contain any of those characters.

So this is a small scanner over the whole text (strings and comments first), not a line regex. Names of
parameters and directives are case-insensitive, as in rsyslog. Structural errors (unterminated string,
comment or parameter list; a parameter without ``=``) become :class:`~hvguard.facts.ConfigIssue` with
the file and line, and the rest of the file is still read.

Semantics (rsyslog docs: omfwd, ns_gtls, ns_ossl, omrelp): a forward is TLS only with a TLS stream
driver (``gtls``, ``ossl``, ``mbedtls``) in driver mode 1; mode 0 is plain TCP even with ``gtls``. UDP
can never be TLS. The authentication mode says how the *server* is verified: ``x509/name`` (CA + name
in the permitted peers), ``x509/fingerprint``, ``x509/certvalid`` (CA only, no name), ``anon`` (none).
With ``x509/name`` and no permitted peers, nsd_gtls matches the certificate's names against the forward's
target host name (tests/test_ops_rsyslog_real.py shows it refusing a target the certificate does not name).

A forward that sets no stream driver uses the global default (``global(defaultNetstreamDriver=…)`` or
``$DefaultNetstreamDriver``); rsyslog applies global settings to the whole configuration, so the value
that counts is the last one set anywhere (before or after the forward, in any included file), and the
same holds for ``DefaultNetstreamDriverCAFile``. The driver mode is never inherited: it is the action's
``StreamDriverMode`` / the ``$ActionSendStreamDriverMode`` in force, default 0 (plain TCP).

Files rsyslog writes (omfile: ``action(type="omfile" file=…)``, legacy ``/path`` and ``-/path``) and the
mode it creates them with, as rsyslogd 8.2302 really does it (tests/test_logging_semantics.py runs it):
a RainerScript action uses its own ``fileCreateMode``, else ``module(load="builtin:omfile"
fileCreateMode=…)``, else 0644 — the legacy ``$FileCreateMode`` does not reach it; a legacy action uses
the ``$FileCreateMode`` in force where it stands (0644 before any), never the module parameter. The
umask (``$Umask`` or ``global(umask=…)``, last one set) is applied to both. Dynamic files (``?tpl``,
``dynaFile=``) have no fixed path and are not listed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from hvguard.facts import ConfigIssue, LogFileTarget, LogForward

#: Stream drivers that implement TLS (rsyslog ``ns_gtls``, ``ns_ossl``, ``ns_mbedtls``).
TLS_DRIVERS = frozenset({"gtls", "ossl", "mbedtls"})

#: RainerScript objects written ``name( params )``.
OBJECTS = frozenset(
    {
        "module",
        "input",
        "action",
        "global",
        "template",
        "include",
        "main_queue",
        "parser",
        "timezone",
        "lookup_table",
        "dyn_stats",
        "percentile_stats",
        "ratelimit",
        "ruleset",
        "property",
        "constant",
    }
)
_SIMPLE_STATEMENTS = frozenset({"stop", "continue", "call", "call_indirect", "set", "unset", "reset"})
_MAX_INCLUDE_DEPTH = 16


class RsyslogSyntaxError(ValueError):
    """A structural error at a line of an rsyslog configuration file."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class Param:
    """A parameter value and the line it is on."""

    value: str | list[str]
    line: int

    def text(self) -> str:
        """The value as one string (arrays joined with commas)."""
        return ",".join(self.value) if isinstance(self.value, list) else self.value

    def items(self) -> list[str]:
        """The value as a list (a comma-separated string is split, as rsyslog does for peers)."""
        if isinstance(self.value, list):
            return [v.strip() for v in self.value if v.strip()]
        return [v.strip() for v in self.value.split(",") if v.strip()]


@dataclass
class RsyslogResult:
    """What the rsyslog reader found across the main file and its includes."""

    files: list[str] = field(default_factory=list)
    forwards: list[LogForward] = field(default_factory=list)
    files_written: list[LogFileTarget] = field(default_factory=list)
    imfile: list[str] = field(default_factory=list)
    issues: list[ConfigIssue] = field(default_factory=list)


@dataclass
class _Legacy:
    """Legacy ``$Action…`` directive state, applied to the actions that follow."""

    action_driver: str | None = None
    action_mode: str | None = None
    action_auth: str | None = None
    action_peers: list[str] = field(default_factory=list)
    file_create_mode: tuple[str, str] | None = None  # ($FileCreateMode value, path:line)


class _Scanner:
    """Character scanner over one file's text that knows rsyslog's strings and comments."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.n = len(text)

    def line_at(self, pos: int | None = None) -> int:
        return self.text.count("\n", 0, self.pos if pos is None else pos) + 1

    def error(self, message: str, pos: int | None = None) -> RsyslogSyntaxError:
        return RsyslogSyntaxError(self.line_at(pos), message)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < self.n else ""

    def skip_space(self, newlines: bool = True) -> None:
        """Skip blanks and comments (``#`` to end of line, ``/* … */``); newlines too unless told."""
        while self.pos < self.n:
            c = self.text[self.pos]
            if c == "\n" and not newlines:
                return
            if c in " \t\r\n":
                self.pos += 1
            elif c == "#":
                end = self.text.find("\n", self.pos)
                self.pos = self.n if end < 0 else end
            elif self.text.startswith("/*", self.pos):
                end = self.text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error("unterminated /* comment")
                self.pos = end + 2
            else:
                return

    def rest_of_line(self) -> str:
        end = self.text.find("\n", self.pos)
        end = self.n if end < 0 else end
        out = self.text[self.pos : end]
        self.pos = end
        return out

    def word(self) -> str:
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*").match(self.text, self.pos)
        if not m:
            return ""
        self.pos = m.end()
        return m.group(0)

    def string(self) -> str:
        """A quoted string at pos (``"…"`` or ``'…'``) with backslash escapes."""
        quote = self.text[self.pos]
        start = self.pos
        self.pos += 1
        out: list[str] = []
        while self.pos < self.n:
            c = self.text[self.pos]
            if c == "\\" and self.pos + 1 < self.n:
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if c == quote:
                self.pos += 1
                return "".join(out)
            out.append(c)
            self.pos += 1
        raise self.error("unterminated string", start)

    def skip_balanced(self, open_c: str, close_c: str) -> None:
        """Skip a bracketed region (strings and comments inside are honoured)."""
        start = self.pos
        depth = 0
        while self.pos < self.n:
            c = self.text[self.pos]
            if c in "\"'":
                self.string()
                continue
            if c == "#" or self.text.startswith("/*", self.pos):
                self.skip_space()
                continue
            self.pos += 1
            if c == open_c:
                depth += 1
            elif c == close_c:
                depth -= 1
                if depth == 0:
                    return
        raise self.error(f"unbalanced '{open_c}': no closing '{close_c}'", start)

    def params(self) -> dict[str, Param]:
        """A parameter list ``( name="value" name2=["a","b"] … )`` at pos, names lower-cased."""
        start = self.pos
        if self.peek() != "(":
            raise self.error("expected '('")
        self.pos += 1
        out: dict[str, Param] = {}
        while True:
            self.skip_space()
            if self.pos >= self.n:
                raise self.error("unterminated parameter list: no closing ')'", start)
            if self.peek() == ")":
                self.pos += 1
                return out
            line = self.line_at()
            name = self.word()
            if not name:
                raise self.error(f"expected a parameter name, found {self.peek()!r}")
            self.skip_space()
            if self.peek() != "=":
                raise self.error(f"parameter {name!r} has no '=' and value")
            self.pos += 1
            self.skip_space()
            out[name.lower()] = Param(self.value(), line)

    def value(self) -> str | list[str]:
        c = self.peek()
        if c in "\"'":
            return self.string()
        if c == "[":
            start = self.pos
            self.pos += 1
            items: list[str] = []
            while True:
                self.skip_space()
                if self.pos >= self.n:
                    raise self.error("unterminated array: no closing ']'", start)
                c = self.peek()
                if c == "]":
                    self.pos += 1
                    return items
                if c == ",":
                    self.pos += 1
                elif c in "\"'":
                    items.append(self.string())
                else:
                    m = re.compile(r"[^\s,\]]+").match(self.text, self.pos)
                    if not m:
                        raise self.error("malformed array")
                    items.append(m.group(0))
                    self.pos = m.end()
        m = re.compile(r"[^\s)\"']+").match(self.text, self.pos)
        if not m:
            raise self.error("a parameter has no value")
        self.pos = m.end()
        return m.group(0)


def _port(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _short(text: str, limit: int = 240) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


# Legacy forward: @[(opts)]host[:port][;template] or @@…; IPv6 in brackets.
_LEGACY_FWD = re.compile(r"^(@@?)(?:\(([^)]*)\))?(\[[^\]]+\]|[^:;\s]+)(?::(\d+))?")


class RsyslogReader:
    """Reads rsyslog.conf and everything it includes (files come from ``read``/``expand``)."""

    def __init__(
        self,
        read: Callable[[str], str | None],
        expand: Callable[[str], list[str]],
    ) -> None:
        """``read(path)`` returns a host file's text (None if absent); ``expand(pattern)`` lists the
        host paths an include pattern (a glob or a directory) names, sorted."""
        self._read = read
        self._expand = expand
        self.result = RsyslogResult()
        self._legacy = _Legacy()
        # Global settings (RainerScript global() and legacy $Default…): the last value set anywhere.
        self._global_ca: str | None = None
        self._global_driver: str | None = None
        # Forwards whose driver (index, mode) or CA file (index) come from those global defaults.
        self._default_driver: list[tuple[int, str]] = []
        self._default_ca: list[int] = []
        # (value, path, line) of module(load="builtin:omfile" fileCreateMode=…) and of the umask.
        self._module_file_mode: tuple[str, str, int] | None = None
        self._umask: tuple[str, str, int] | None = None
        # RainerScript omfile actions without their own fileCreateMode: (index, path, line).
        self._rainer_files: list[int] = []
        self._seen: set[str] = set()

    def finish(self) -> RsyslogResult:
        """Resolve every forward that relies on the global defaults, once the whole configuration has
        been read (rsyslog applies them wherever they are set)."""
        fwds = self.result.forwards
        for i in self._default_ca:
            fwds[i] = msgspec.structs.replace(fwds[i], ca_file=self._global_ca)
        driver = self._global_driver or "ptcp"
        for i, mode in self._default_driver:
            tls = driver in TLS_DRIVERS and mode.strip() == "1"
            fwds[i] = msgspec.structs.replace(fwds[i], driver=driver, tls=tls)
        self._default_ca = []
        self._default_driver = []
        files = self.result.files_written
        if self._module_file_mode is not None:
            value, at, n = self._module_file_mode
            module_mode = self._octal(value, at, n)
            for i in self._rainer_files:
                files[i] = msgspec.structs.replace(
                    files[i],
                    create_mode=module_mode,
                    create_mode_from=f"module(load=builtin:omfile) at {at}:{n}",
                )
        self._rainer_files = []
        if self._umask is not None:
            value, at, n = self._umask
            mask = self._octal(value, at, n)
            if mask is not None:
                for i, t in enumerate(files):
                    files[i] = msgspec.structs.replace(t, umask=mask, umask_from=f"{at}:{n}")
        return self.result

    def _octal(self, value: str, path: str, line: int) -> int | None:
        """An rsyslog mode or umask value (octal, e.g. ``0640``); a malformed one is an issue."""
        text = value.strip().strip('"')
        if re.fullmatch(r"0?[0-7]{1,4}", text):
            return int(text, 8) & 0o7777
        self.result.issues.append(ConfigIssue(path=path, line=line, message=f"not an octal mode: {value!r}"))
        return None

    def _file_target(self, path: str, line: int, file: str, mode: tuple[str, str] | None, text: str) -> None:
        """Record a file omfile writes, with the create mode that applies (None value: the default)."""
        value = self._octal(mode[0], path, line) if mode is not None else None
        self.result.files_written.append(
            LogFileTarget(
                daemon="rsyslog",
                path=path,
                line=line,
                text=_short(text),
                file=file,
                create_mode=value if mode is not None else 0o644,
                create_mode_from=mode[1] if mode is not None else "rsyslog default (0644)",
            )
        )

    # -- files ------------------------------------------------------------------------------------------
    def read_file(self, path: str, depth: int = 0) -> None:
        """Parse ``path`` (a host path) and, in place, every file it includes."""
        if path in self._seen or depth > _MAX_INCLUDE_DEPTH:
            return
        text = self._read(path)
        if text is None:
            return
        self._seen.add(path)
        self.result.files.append(path)
        sc = _Scanner(text)
        try:
            self._statements(sc, path, depth, until=None)
        except RsyslogSyntaxError as exc:
            self.result.issues.append(ConfigIssue(path=path, line=exc.line, message=str(exc)))

    def _include(self, pattern: str, depth: int) -> None:
        for p in self._expand(pattern):
            self.read_file(p, depth + 1)

    # -- statements -------------------------------------------------------------------------------------
    def _statements(self, sc: _Scanner, path: str, depth: int, until: str | None) -> None:
        while True:
            sc.skip_space()
            if sc.pos >= sc.n:
                if until is not None:
                    raise sc.error(f"unterminated block: no closing '{until}'")
                return
            if until is not None and sc.peek() == until:
                sc.pos += 1
                return
            self._statement(sc, path, depth)

    def _statement(self, sc: _Scanner, path: str, depth: int) -> None:
        c = sc.peek()
        line = sc.line_at()
        if c == "$":
            self._legacy_directive(sc.rest_of_line(), path, line, depth)
            return
        if c == "&":  # legacy: another action for the previous selector
            sc.pos += 1
            sc.skip_space(newlines=False)
            self._action_text(sc, path, depth)
            return
        if c == "{":
            sc.pos += 1
            self._statements(sc, path, depth, until="}")
            return
        if c == ";":
            sc.pos += 1
            return
        save = sc.pos
        word = sc.word()
        lower = word.lower()
        if word and lower in OBJECTS:
            sc.skip_space()
            if sc.peek() == "(":
                params = sc.params()
                self._object(lower, params, path, line, depth)
                sc.skip_space()
                if sc.peek() == "{" and lower in ("ruleset", "template"):
                    if lower == "ruleset":
                        sc.pos += 1
                        self._statements(sc, path, depth, until="}")
                    else:
                        sc.skip_balanced("{", "}")
                return
            sc.pos = save
        if lower == "if":
            self._if(sc, path, depth)
            return
        if lower == "foreach":
            sc.skip_space()
            sc.skip_balanced("(", ")")
            sc.skip_space()
            if sc.word().lower() != "do":
                raise sc.error("foreach without 'do'")
            sc.skip_space()
            self._statement(sc, path, depth)
            return
        if lower in _SIMPLE_STATEMENTS:
            self._skip_simple(sc)
            return
        sc.pos = save
        # A selector (facility.priority[;…]) followed by an action on the same line, or a filter
        # (":property, op, value" or "if"-less expression-based filters are not used here).
        sel = re.compile(r"[^\s]+").match(sc.text, sc.pos)
        if sel is None:
            raise sc.error(f"unexpected {c!r}")
        token = sel.group(0)
        if token.startswith(":") or "." in token or token.startswith("*"):
            if token.startswith(":"):
                # property-based filter ":msg, contains, \"x\"  action": the action follows the value.
                m = re.compile(r':[^,]+,\s*!?[A-Za-z_-]+,\s*"(?:[^"\\]|\\.)*"').match(sc.text, sc.pos)
                if not m:
                    raise sc.error("malformed property-based filter")
                sc.pos = m.end()
            else:
                sc.pos = sel.end()
            sc.skip_space(newlines=False)
            if sc.peek() in ("\n", ""):
                # RainerScript is free-form: "*.*" may be followed by action(...) on the next line.
                sc.skip_space()
                if not re.compile(r"action\s*\(", re.IGNORECASE).match(sc.text, sc.pos):
                    raise sc.error(f"selector {token!r} has no action", sel.start())
            self._action_text(sc, path, depth)
            return
        raise sc.error(f"unexpected {token[:40]!r}")

    def _skip_simple(self, sc: _Scanner) -> None:
        """``set …;``, ``call x``, ``stop`` …: up to ``;`` or end of line (strings honoured)."""
        while sc.pos < sc.n:
            c = sc.peek()
            if c in "\"'":
                sc.string()
            elif c in ";\n":
                sc.pos += 1
                return
            elif c == "}":
                return
            else:
                sc.pos += 1

    def _if(self, sc: _Scanner, path: str, depth: int) -> None:
        """``if EXPR then STATEMENT|{ … } [else STATEMENT|{ … }]``."""
        start = sc.pos
        while True:
            sc.skip_space()
            if sc.pos >= sc.n:
                raise sc.error("'if' without 'then'", start)
            c = sc.peek()
            if c in "\"'":
                sc.string()
                continue
            if c == "(":
                sc.skip_balanced("(", ")")
                continue
            if c == "[":
                sc.skip_balanced("[", "]")
                continue
            w = sc.word()
            if w.lower() == "then":
                break
            if not w:
                sc.pos += 1
        sc.skip_space()
        self._statement(sc, path, depth)
        save = sc.pos
        sc.skip_space()
        if sc.word().lower() == "else":
            sc.skip_space()
            self._statement(sc, path, depth)
        else:
            sc.pos = save

    # -- legacy -----------------------------------------------------------------------------------------
    def _legacy_directive(self, text: str, path: str, line: int, depth: int) -> None:
        body = text.split(" #", 1)[0].strip()
        parts = body[1:].split(None, 1)
        if not parts:
            raise RsyslogSyntaxError(line, "empty $ directive")
        name = parts[0].lower()
        arg = parts[1].strip() if len(parts) > 1 else ""
        st = self._legacy
        if name == "includeconfig":
            self._include(arg, depth)
        elif name == "defaultnetstreamdriver":
            self._global_driver = arg.lower()
        elif name == "defaultnetstreamdrivercafile":
            self._global_ca = arg
        elif name == "actionsendstreamdriver":
            st.action_driver = arg.lower()
        elif name == "actionsendstreamdrivermode":
            st.action_mode = arg
        elif name == "actionsendstreamdriverauthmode":
            st.action_auth = arg.lower()
        elif name == "actionsendstreamdriverpermittedpeer":
            st.action_peers = [p.strip() for p in arg.split(",") if p.strip()]
        elif name == "resetconfigvariables":
            st.action_driver = st.action_mode = st.action_auth = None
            st.action_peers = []
        elif name == "inputfilename":
            self.result.imfile.append(arg)
        elif name == "filecreatemode":
            st.file_create_mode = (arg, f"{path}:{line}")
        elif name == "umask":
            self._umask = (arg, path, line)

    def _action_text(self, sc: _Scanner, path: str, depth: int) -> None:
        """One action after a selector: ``action(…)`` or a legacy action to end of line."""
        line = sc.line_at()
        save = sc.pos
        if sc.word().lower() == "action":
            sc.skip_space()
            if sc.peek() == "(":
                self._object("action", sc.params(), path, line, depth)
                return
        sc.pos = save
        text = sc.rest_of_line().split(" #", 1)[0].strip()
        m = _LEGACY_FWD.match(text)
        if not m:
            file = text.lstrip("-").split(";", 1)[0].strip()
            if file.startswith("/"):  # a file action (-: no sync); ?template = dynamic file, | = pipe
                self._file_target(path, line, file, self._legacy.file_create_mode, text)
            return  # a file, pipe, user or discard action: stays on the host
        tcp = m.group(1) == "@@"
        host = m.group(3).strip("[]")
        st = self._legacy
        driver = st.action_driver if tcp else None
        mode = st.action_mode or "0"
        tls = tcp and driver in TLS_DRIVERS and mode.strip() == "1"
        if tcp and driver is None:
            self._default_driver.append((len(self.result.forwards), mode))
        self._default_ca.append(len(self.result.forwards))
        self.result.forwards.append(
            LogForward(
                daemon="rsyslog",
                path=path,
                line=line,
                text=_short(text),
                target=host,
                port=_port(m.group(4)) or 514,
                protocol="tcp" if tcp else "udp",
                tls=tls,
                driver=driver,
                auth_mode=st.action_auth if tcp else None,
                permitted_peers=list(st.action_peers) if tcp else [],
            )
        )

    # -- RainerScript objects ---------------------------------------------------------------------------
    def _object(self, kind: str, params: dict[str, Param], path: str, line: int, depth: int) -> None:
        def get(name: str) -> str | None:
            p = params.get(name)
            return p.text() if p is not None else None

        if kind == "include":
            f = get("file")
            if f:
                self._include(f, depth)
        elif kind == "global":
            if get("defaultnetstreamdrivercafile"):
                self._global_ca = get("defaultnetstreamdrivercafile")
            if get("defaultnetstreamdriver"):
                self._global_driver = (get("defaultnetstreamdriver") or "").lower()
            if get("umask"):
                self._umask = (get("umask") or "", path, params["umask"].line)
        elif kind == "module" and (get("load") or "").lower() in ("builtin:omfile", "omfile"):
            if get("filecreatemode"):
                self._module_file_mode = (get("filecreatemode") or "", path, params["filecreatemode"].line)
        elif kind == "input" and (get("type") or "").lower() == "imfile" and get("file"):
            self.result.imfile.append(get("file") or "")
        elif kind == "action":
            typ = (get("type") or "").lower()
            if typ == "omfwd":
                self._omfwd(params, get, path, line)
            elif typ == "omrelp":
                self._omrelp(get, params, path, line)
            elif typ == "omfile" and get("file"):
                own = params.get("filecreatemode")
                mode = (own.text(), f"{path}:{own.line}") if own is not None else None
                if own is None:
                    self._rainer_files.append(len(self.result.files_written))
                text = "action(" + " ".join(f'{k}="{p.text()}"' for k, p in params.items()) + ")"
                self._file_target(path, line, get("file") or "", mode, text)

    def _omfwd(
        self, params: dict[str, Param], get: Callable[[str], str | None], path: str, line: int
    ) -> None:
        protocol = (get("protocol") or "udp").lower()
        driver = (get("streamdriver") or get("streamdriver.name") or "").lower() or None
        mode = (get("streamdrivermode") or "0").strip()
        tls = protocol == "tcp" and driver in TLS_DRIVERS and mode == "1"
        peers = params.get("streamdriverpermittedpeers")
        auth = get("streamdriverauthmode")
        ca = get("streamdriver.cafile")
        if protocol == "tcp" and driver is None:
            self._default_driver.append((len(self.result.forwards), mode))
        if ca is None:
            self._default_ca.append(len(self.result.forwards))
        self.result.forwards.append(
            LogForward(
                daemon="rsyslog",
                path=path,
                line=line,
                text=_short(
                    "action("
                    + " ".join(f'{k}="{p.text()}"' for k, p in params.items() if "key" not in k)
                    + ")"
                ),
                target=get("target"),
                port=_port(get("port")) or 514,
                protocol=protocol,
                tls=tls,
                driver=driver if protocol == "tcp" else None,
                auth_mode=auth.lower() if auth else None,
                permitted_peers=peers.items() if peers else [],
                ca_file=ca,
            )
        )

    def _omrelp(
        self, get: Callable[[str], str | None], params: dict[str, Param], path: str, line: int
    ) -> None:
        tls = (get("tls") or "off").lower() in ("on", "yes", "1")
        auth = get("tls.authmode")
        peers = params.get("tls.permittedpeer")
        self.result.forwards.append(
            LogForward(
                daemon="rsyslog",
                path=path,
                line=line,
                text=_short(
                    "action("
                    + " ".join(f'{k}="{p.text()}"' for k, p in params.items() if "key" not in k)
                    + ")"
                ),
                target=get("target"),
                port=_port(get("port")),
                protocol="relp",
                tls=tls,
                driver="relp-tls" if tls else None,
                # omrelp names the modes "name"/"fingerprint"/"certvalid"; map to the omfwd spelling.
                auth_mode=f"x509/{auth.lower()}" if (tls and auth) else ("anon" if tls else None),
                permitted_peers=peers.items() if peers else [],
                ca_file=get("tls.cacert"),
            )
        )


def read_rsyslog(
    read: Callable[[str], str | None], expand: Callable[[str], list[str]], main: str = "/etc/rsyslog.conf"
) -> RsyslogResult:
    """Parse rsyslog's main configuration and its includes; see :class:`RsyslogReader`."""
    reader = RsyslogReader(read, expand)
    reader.read_file(main)
    return reader.finish()
