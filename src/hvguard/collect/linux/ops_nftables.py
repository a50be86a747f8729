"""nftables: the ruleset from the running kernel (``nft -j list ruleset``) or from its configuration
(``/etc/nftables.conf`` and what it ``include``\\ s), reduced to chains, sets and what each rule admits.

Both readers produce the same :class:`~hvguard.facts.FirewallChain`/:class:`~hvguard.facts.FirewallRule`
shape, so the checks never care where the ruleset came from. The text reader understands the parts of
nft's syntax that decide admission — ``table``/``chain``/``set`` blocks and their ``add …`` forms,
``type filter hook input priority 0; policy drop;``, ``define`` variables, ``include`` (globs), matches on
``tcp|udp|th dport``, ``meta l4proto``, ``ip|ip6 saddr`` (values, anonymous sets ``{ … }``, ranges,
``@set`` references), ``iif``/``iifname``, ``ct state`` (including ``vmap``), and verdicts — and keeps
any other match as "other", which makes the rule conditional rather than admit-everything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from hvguard.facts import ConfigIssue, FirewallChain, FirewallRule, FirewallSet

#: Service names nft accepts for ports (inet_service), the ones a hypervisor ruleset uses.
SERVICES = {
    "ssh": "22",
    "domain": "53",
    "bootps": "67",
    "bootpc": "68",
    "http": "80",
    "ntp": "123",
    "snmp": "161",
    "https": "443",
    "syslog": "514",
    "dhcpv6-server": "547",
    "nfs": "2049",
    "syslog-tls": "6514",
}
VERDICTS = frozenset({"accept", "drop", "reject", "return", "continue", "queue"})
_PROTO_WORDS = {"tcp", "udp", "sctp", "dccp", "udplite"}
_MAX_INCLUDE_DEPTH = 16
#: Words after which ``{`` opens a block (table/chain/set bodies), not an anonymous set.
_BLOCK_WORDS = frozenset({"table", "chain", "set", "map", "flowtable", "counter", "quota", "element"})


class NftSyntaxError(ValueError):
    """A structural error at a line of an nftables file."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class NftResult:
    """Chains, sets and problems from either reader."""

    files: list[str] = field(default_factory=list)
    chains: list[FirewallChain] = field(default_factory=list)
    sets: list[FirewallSet] = field(default_factory=list)
    issues: list[ConfigIssue] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------------
# Rule interpretation shared by both readers


@dataclass
class _RuleBuilder:
    protocols: list[str] = field(default_factory=list)
    dports: list[str] = field(default_factory=list)
    saddrs: list[str] = field(default_factory=list)
    iifs: list[str] = field(default_factory=list)
    ct_states: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    verdict: str | None = None
    jump: str | None = None

    def build(self, where: str, text: str) -> FirewallRule:
        return FirewallRule(
            where=where,
            text=text,
            verdict=self.verdict,
            jump=self.jump,
            protocols=self.protocols,
            dports=[SERVICES.get(p, p) for p in self.dports],
            saddrs=self.saddrs,
            iifs=self.iifs,
            ct_states=self.ct_states,
            other=self.other,
        )

    def summary(self) -> str:
        parts = []
        if self.iifs:
            parts.append("iif " + ",".join(self.iifs))
        if self.saddrs:
            parts.append("saddr " + ",".join(self.saddrs))
        if self.ct_states:
            parts.append("ct state " + ",".join(self.ct_states))
        if self.protocols:
            parts.append("/".join(self.protocols))
        if self.dports:
            parts.append("dport " + ",".join(SERVICES.get(p, p) for p in self.dports))
        parts += self.other
        parts.append(self.verdict or "no verdict")
        if self.jump:
            parts.append(self.jump)
        return " ".join(parts)


# --------------------------------------------------------------------------------------------------------
# Text syntax

_TOKEN = re.compile(
    r"""(?P<ws>[ \t\r]+|\\\n)|(?P<nl>\n)|(?P<comment>\#[^\n]*)|(?P<str>"[^"\n]*")|(?P<punct>[{};,])"""
    r"""|(?P<word>[^\s{};,"#]+)"""
)


@dataclass
class _Tok:
    kind: str
    value: str
    line: int


def _tokenize(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    line = 1
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() != pos:
            bad = text[pos : m.start()]
            raise NftSyntaxError(
                line, "unterminated string" if bad.startswith('"') else f"unexpected {bad[:20]!r}"
            )
        pos = m.end()
        kind = m.lastgroup or ""
        if kind == "ws":
            line += m.group(0).count("\n")
            continue
        if kind == "comment":
            continue
        if kind == "nl":
            out.append(_Tok("nl", "\n", line))
            line += 1
            continue
        value = m.group(0)[1:-1] if kind == "str" else m.group(0)
        out.append(_Tok(kind, value, line))
    if pos != len(text):
        raise NftSyntaxError(line, "unterminated string" if text[pos] == '"' else f"unexpected {text[pos]!r}")
    return out


class _TextReader:
    def __init__(self, read: Callable[[str], str | None], expand: Callable[[str], list[str]]) -> None:
        self.read = read
        self.expand = expand
        self.result = NftResult()
        self.defines: dict[str, list[str]] = {}
        self.chains: dict[tuple[str, str, str], FirewallChain] = {}
        self.sets: dict[tuple[str, str, str], FirewallSet] = {}
        self.seen: set[str] = set()

    # -- files ------------------------------------------------------------------------------------------
    def load(self, path: str, depth: int = 0) -> None:
        if path in self.seen or depth > _MAX_INCLUDE_DEPTH:
            return
        text = self.read(path)
        if text is None:
            if depth == 0:
                return
            self.result.issues.append(ConfigIssue(path=path, message="included file is missing"))
            return
        self.seen.add(path)
        self.result.files.append(path)
        try:
            toks = _tokenize(text)
            self._top(toks, path, depth)
        except NftSyntaxError as exc:
            self.result.issues.append(ConfigIssue(path=path, line=exc.line, message=str(exc)))

    # -- token helpers ----------------------------------------------------------------------------------
    @staticmethod
    def _statement(toks: list[_Tok], i: int) -> tuple[list[_Tok], int]:
        """Tokens up to the end of the statement (newline or ``;`` outside braces), and the next index."""
        out: list[_Tok] = []
        depth = 0
        while i < len(toks):
            t = toks[i]
            if t.value == "{":
                depth += 1
            elif t.value == "}":
                if depth == 0:
                    return out, i
                depth -= 1
            elif depth == 0 and (t.kind == "nl" or t.value == ";"):
                return out, i + 1
            if t.kind != "nl":
                out.append(t)
            i += 1
        if depth:
            raise NftSyntaxError(out[0].line if out else 1, "unbalanced '{': no closing '}'")
        return out, i

    def _block(self, toks: list[_Tok], i: int, line: int) -> tuple[list[_Tok], int]:
        """The tokens inside ``{ … }`` starting at index i (which must be ``{``)."""
        if i >= len(toks) or toks[i].value != "{":
            raise NftSyntaxError(line, "expected '{'")
        opened: list[int] = []  # lines of the braces still open, innermost last
        start = i
        while i < len(toks):
            if toks[i].value == "{":
                opened.append(toks[i].line)
            elif toks[i].value == "}":
                opened.pop()
                if not opened:
                    return toks[start + 1 : i], i + 1
            i += 1
        raise self._unbalanced(toks[start:], opened[-1] if opened else line)

    @staticmethod
    def _unbalanced(toks: list[_Tok], line: int) -> NftSyntaxError:
        """Where an unclosed brace most likely is: a set ``{`` inside a rule that runs into a verdict (as
        nft reports it), else the innermost brace left open."""
        stack: list[bool] = []  # True for an anonymous set / map opened inside a rule
        stmt: list[str] = []  # the words of the current statement so far
        prev: _Tok | None = None
        for t in toks:
            if t.value == "{":
                head = (
                    stmt[1]
                    if stmt and stmt[0] in ("add", "create", "insert", "replace") and len(stmt) > 1
                    else (stmt[0] if stmt else "")
                )
                stack.append(bool(stmt) and head not in _BLOCK_WORDS)
                stmt = []
            elif t.value == "}":
                if stack:
                    stack.pop()
                stmt = []
            elif t.kind == "nl" or t.value == ";":
                if not (stack and stack[-1]):
                    stmt = []
            elif stack and stack[-1] and t.value in VERDICTS and (prev is None or prev.value != ":"):
                return NftSyntaxError(
                    t.line, f"unexpected {t.value!r} inside a set: no closing '}}' before it"
                )
            else:
                stmt.append(t.value)
            if t.kind != "nl":
                prev = t
        return NftSyntaxError(line, "unbalanced '{': no closing '}'")

    def _values(self, toks: list[_Tok], i: int) -> tuple[list[str], int]:
        """One match value at i: a word, ``$var``, ``@set`` or an anonymous set ``{ a, b }``."""
        if i >= len(toks):
            raise NftSyntaxError(toks[-1].line if toks else 1, "a match has no value")
        t = toks[i]
        if t.value == "{":
            inner, j = self._block(toks, i, t.line)
            vals: list[str] = []
            for x in inner:
                if x.kind in ("word", "str"):
                    vals += self._expand_word(x)
            return vals, j
        if t.kind in ("word", "str"):
            # "established,related" arrives as words separated by commas
            vals = self._expand_word(t)
            j = i + 1
            while j + 1 < len(toks) and toks[j].value == "," and toks[j + 1].kind == "word":
                vals += self._expand_word(toks[j + 1])
                j += 2
            return vals, j
        raise NftSyntaxError(t.line, f"unexpected {t.value!r} where a value was expected")

    def _expand_word(self, t: _Tok) -> list[str]:
        if t.value.startswith("$"):
            name = t.value[1:]
            if name not in self.defines:
                raise NftSyntaxError(t.line, f"undefined variable ${name}")
            return list(self.defines[name])
        return [t.value]

    # -- statements -------------------------------------------------------------------------------------
    def _top(self, toks: list[_Tok], path: str, depth: int) -> None:
        i = 0
        while i < len(toks):
            t = toks[i]
            if t.kind == "nl" or t.value == ";":
                i += 1
                continue
            words = t.value
            if words == "include":
                if i + 1 >= len(toks) or toks[i + 1].kind != "str":
                    raise NftSyntaxError(t.line, 'include needs a quoted path: include "FILE"')
                for p in self.expand(toks[i + 1].value):
                    self.load(p, depth + 1)
                i += 2
                continue
            if words == "define":
                stmt, i = self._statement(toks, i)
                if len(stmt) < 4 or stmt[2].value != "=":
                    raise NftSyntaxError(t.line, "define needs: define NAME = VALUE")
                vals, _ = self._values(stmt, 3)
                self.defines[stmt[1].value] = vals
                continue
            verb = words
            j = i
            if verb in ("add", "create", "insert", "replace"):
                j += 1
                verb = toks[j].value if j < len(toks) else ""
            if verb == "table":
                i = self._table(toks, j, path)
                continue
            if verb == "chain":
                fam, table, name, k = self._names(toks, j + 1, 3)
                i = self._chain(toks, k, path, fam, table, name, t.line)
                continue
            if verb == "rule":
                fam, table, chain, k = self._names(toks, j + 1, 3)
                stmt, i = self._statement(toks, k)
                self._rule(stmt, path, fam, table, chain, t.line)
                continue
            if verb in ("set", "element"):
                fam, table, name, k = self._names(toks, j + 1, 3)
                if k < len(toks) and toks[k].value == "{":
                    inner, i = self._block(toks, k, t.line)
                    self._set(inner, fam, table, name, element_only=verb == "element")
                else:
                    _, i = self._statement(toks, k)
                continue
            # flush/delete/destroy/list/reset and other commands: not part of the loaded state.
            _, i = self._statement(toks, i)
            if i < len(toks) and toks[i].value == "{":
                _, i = self._block(toks, i, t.line)

    def _names(self, toks: list[_Tok], i: int, count: int) -> tuple[str, str, str, int]:
        """``[family] table name`` (family defaults to ip)."""
        words: list[str] = []
        while i < len(toks) and toks[i].kind in ("word", "str") and len(words) < count:
            words.append(toks[i].value)
            i += 1
        if len(words) == count - 1:
            words.insert(0, "ip")
        if len(words) != count:
            raise NftSyntaxError(toks[min(i, len(toks) - 1)].line, "expected [family] table name")
        return words[0], words[1], words[2], i

    def _table(self, toks: list[_Tok], i: int, path: str) -> int:
        line = toks[i].line
        words: list[str] = []
        i += 1
        while i < len(toks) and toks[i].kind in ("word", "str"):
            words.append(toks[i].value)
            i += 1
        if not words:
            raise NftSyntaxError(line, "table needs a name")
        family, table = (words[0], words[1]) if len(words) >= 2 else ("ip", words[0])
        if i >= len(toks) or toks[i].value != "{":
            _, i = self._statement(toks, i)
            return i
        inner, i = self._block(toks, i, line)
        k = 0
        while k < len(inner):
            t = inner[k]
            if t.kind == "nl" or t.value == ";":
                k += 1
                continue
            if t.value in ("chain", "set", "map", "flowtable", "counter", "quota", "ct", "limit", "secmark"):
                kind = t.value
                m = k + 1
                while m < len(inner) and inner[m].value != "{" and inner[m].kind != "nl":
                    m += 1
                name = inner[k + 1].value if k + 1 < len(inner) else ""
                if m < len(inner) and inner[m].value == "{":
                    body, k = self._block(inner, m, t.line)
                    if kind == "chain":
                        self._chain_body(body, path, family, table, name, t.line)
                    elif kind == "set":
                        self._set(body, family, table, name, element_only=False)
                else:
                    k = m
                continue
            if t.value in ("flags", "comment"):
                _, k = self._statement(inner, k)
                continue
            raise NftSyntaxError(t.line, f"unexpected {t.value!r} in table {family} {table}")
        return i

    def _chain(
        self, toks: list[_Tok], i: int, path: str, family: str, table: str, name: str, line: int
    ) -> int:
        if i < len(toks) and toks[i].value == "{":
            body, i = self._block(toks, i, line)
            self._chain_body(body, path, family, table, name, line)
            return i
        self._get_chain(family, table, name, path, line)
        _, i = self._statement(toks, i)
        return i

    def _get_chain(self, family: str, table: str, name: str, path: str, line: int) -> FirewallChain:
        key = (family, table, name)
        if key not in self.chains:
            chain = FirewallChain(
                backend="nftables", family=family, table=table, name=name, where=f"{path}:{line}"
            )
            self.chains[key] = chain
            self.result.chains.append(chain)
        return self.chains[key]

    def _replace_chain(self, old: FirewallChain, new: FirewallChain) -> None:
        self.chains[(old.family, old.table, old.name)] = new
        idx = next(i for i, c in enumerate(self.result.chains) if c is old)
        self.result.chains[idx] = new

    def _chain_body(self, body: list[_Tok], path: str, family: str, table: str, name: str, line: int) -> None:
        chain = self._get_chain(family, table, name, path, line)
        k = 0
        while k < len(body):
            t = body[k]
            if t.kind == "nl" or t.value == ";":
                k += 1
                continue
            stmt, k = self._statement(body, k)
            if not stmt:
                continue
            head = stmt[0].value
            if head == "type":
                words = [s.value for s in stmt]
                hook = words[words.index("hook") + 1] if "hook" in words[:-1] else None
                new = msgspec.structs.replace(chain, hook=hook, where=f"{path}:{stmt[0].line}")
                self._replace_chain(chain, new)
                chain = new
            elif head == "policy":
                if len(stmt) < 2 or stmt[1].value not in ("accept", "drop"):
                    raise NftSyntaxError(stmt[0].line, "policy must be accept or drop")
                new = msgspec.structs.replace(chain, policy=stmt[1].value)
                self._replace_chain(chain, new)
                chain = new
            elif head in ("comment", "devices", "device"):
                continue
            else:
                self._rule(stmt, path, family, table, name, stmt[0].line)
                chain = self.chains[(family, table, name)]

    def _set(self, body: list[_Tok], family: str, table: str, name: str, *, element_only: bool) -> None:
        elements: list[str] = []
        if element_only:
            elements = [t.value for t in body if t.kind in ("word", "str")]
        else:
            k = 0
            while k < len(body):
                t = body[k]
                if t.value == "elements":
                    if k + 2 >= len(body) or body[k + 1].value != "=":
                        raise NftSyntaxError(t.line, "elements needs: elements = { … }")
                    vals, k = self._values(body, k + 2)
                    elements += vals
                    continue
                k += 1
        key = (family, table, name)
        if key in self.sets:
            old = self.sets[key]
            new = msgspec.structs.replace(old, elements=[*old.elements, *elements])
            self.sets[key] = new
            self.result.sets = [new if s is old else s for s in self.result.sets]
        else:
            s = FirewallSet(family=family, table=table, name=name, elements=elements)
            self.sets[key] = s
            self.result.sets.append(s)

    def _rule(self, stmt: list[_Tok], path: str, family: str, table: str, chain: str, line: int) -> None:
        b = _RuleBuilder()
        k = 0
        n = len(stmt)
        while k < n:
            w = stmt[k].value
            nxt = stmt[k + 1].value if k + 1 < n else ""
            if w in _PROTO_WORDS | {"th"} and nxt in ("dport", "sport"):
                vals, k = self._op_values(stmt, k + 2)
                if nxt == "sport" or vals is None:
                    b.other.append(f"{w} {nxt}")
                    continue
                if w != "th":
                    b.protocols.append(w)
                b.dports += vals
                continue
            if (
                (w == "meta" and nxt == "l4proto")
                or (w == "ip" and nxt == "protocol")
                or (w == "ip6" and nxt == "nexthdr")
            ):
                vals, k = self._op_values(stmt, k + 2)
                if vals is None:
                    b.other.append(f"{w} {nxt} !=")
                else:
                    b.protocols += vals
                continue
            if w == "l4proto":
                vals, k = self._op_values(stmt, k + 1)
                b.protocols += vals or []
                continue
            if w in ("ip", "ip6") and nxt == "saddr":
                vals, k = self._op_values(stmt, k + 2)
                if vals is None:
                    b.other.append(f"{w} saddr !=")
                else:
                    b.saddrs += vals
                continue
            if w in ("iif", "iifname") or (w == "meta" and nxt in ("iif", "iifname")):
                k += 2 if w == "meta" else 1
                vals, k = self._op_values(stmt, k)
                if vals is None:
                    b.other.append("iif !=")
                else:
                    b.iifs += vals
                continue
            if w == "ct" and nxt == "state":
                if k + 2 < n and stmt[k + 2].value == "vmap":
                    k = self._ct_vmap(stmt, k + 3, b)
                    continue
                vals, k = self._op_values(stmt, k + 2)
                if vals is None:
                    b.other.append("ct state !=")
                else:
                    b.ct_states += vals
                continue
            if w in ("icmp", "icmpv6") and nxt == "type":
                _, k = self._op_values(stmt, k + 2)
                b.protocols.append("ipv6-icmp" if w == "icmpv6" else "icmp")
                continue
            if w in VERDICTS:
                b.verdict = w
                k += 1
                if w == "reject":
                    while k < n and stmt[k].value not in ("comment",):
                        k += 1
                continue
            if w in ("jump", "goto"):
                b.verdict = w
                b.jump = nxt
                k += 2
                continue
            if w == "counter":
                k += 1
                while k + 1 < n and stmt[k].value in ("packets", "bytes"):
                    k += 2
                continue
            if w == "log":
                k += 1
                while k + 1 < n and stmt[k].value in ("prefix", "level", "flags", "group", "snaplen"):
                    k += 2
                continue
            if w == "comment":
                k += 2
                continue
            if w == "vmap" or nxt == "vmap":
                b.other.append(" ".join(s.value for s in stmt[k : k + 2]) + " vmap")
                b.verdict = "vmap"
                # skip to and over the map body
                while k < n and stmt[k].value != "{":
                    k += 1
                if k < n:
                    _, k = self._block(stmt, k, stmt[k].line)
                continue
            # Anything else: keep the whole match (word + its value) as "other".
            other = [w]
            k += 1
            while k < n and stmt[k].value not in VERDICTS | {"jump", "goto", "counter", "log", "comment"}:
                if stmt[k].value == "{":
                    _, k = self._block(stmt, k, stmt[k].line)
                    other.append("{…}")
                    continue
                if stmt[k].value in ("meta", "ip", "ip6", "tcp", "udp", "th", "ct", "iif", "iifname"):
                    break
                other.append(stmt[k].value)
                k += 1
            b.other.append(" ".join(other))
        text = " ".join(t.value if t.kind != "str" else f'"{t.value}"' for t in stmt)
        chain_obj = self._get_chain(family, table, chain, path, line)
        rule = b.build(f"{path}:{line}", text[:300])
        new = msgspec.structs.replace(chain_obj, rules=[*chain_obj.rules, rule])
        self._replace_chain(chain_obj, new)

    def _op_values(self, stmt: list[_Tok], k: int) -> tuple[list[str] | None, int]:
        """Values after an optional operator; None when negated (``!=``)."""
        negated = False
        if k < len(stmt) and stmt[k].value in ("==", "!=", "eq", "ne"):
            negated = stmt[k].value in ("!=", "ne")
            k += 1
        vals, k = self._values(stmt, k)
        return (None if negated else vals), k

    def _ct_vmap(self, stmt: list[_Tok], k: int, b: _RuleBuilder) -> int:
        body, k = self._block(stmt, k, stmt[k].line if k < len(stmt) else 1)
        # "established : accept, related : accept" (spaced or not): pair each key with its verdict
        flat = " ".join(t.value for t in body if t.kind == "word").replace(" : ", ":").replace(": ", ":")
        pairs = [p.split(":", 1) for p in flat.replace(" :", ":").split() if ":" in p]
        accepted = [key for key, verdict in pairs if verdict == "accept"]
        b.ct_states += accepted
        b.verdict = "accept" if accepted else "vmap"
        return k


def read_nft_text(
    read: Callable[[str], str | None], expand: Callable[[str], list[str]], main: str
) -> NftResult:
    """Parse an nftables configuration file and its includes."""
    reader = _TextReader(read, expand)
    reader.load(main)
    return reader.result


# --------------------------------------------------------------------------------------------------------
# JSON (``nft -j list ruleset``)


def _json_values(right: Any) -> list[str]:
    if isinstance(right, bool):
        return [str(right).lower()]
    if isinstance(right, int | str):
        return [str(right)]
    if isinstance(right, list):
        return [v for item in right for v in _json_values(item)]
    if isinstance(right, dict):
        if "set" in right:
            return _json_values(right["set"])
        if "range" in right and isinstance(right["range"], list) and len(right["range"]) == 2:
            return [f"{right['range'][0]}-{right['range'][1]}"]
        if "prefix" in right and isinstance(right["prefix"], dict):
            return [f"{right['prefix'].get('addr')}/{right['prefix'].get('len')}"]
        if "elem" in right and isinstance(right["elem"], dict):
            return _json_values(right["elem"].get("val"))
    return [json.dumps(right, sort_keys=True)[:80]]


def _json_rule(rule: dict[str, Any]) -> FirewallRule:
    b = _RuleBuilder()
    for expr in rule.get("expr") or []:
        if not isinstance(expr, dict) or len(expr) != 1:
            b.other.append("?")
            continue
        ((op, body),) = expr.items()
        if op == "match" and isinstance(body, dict):
            left = body.get("left") or {}
            negated = body.get("op") == "!="
            vals = _json_values(body.get("right"))
            if isinstance(left, dict) and "payload" in left:
                proto = left["payload"].get("protocol")
                fld = left["payload"].get("field")
                if fld == "dport" and not negated:
                    if proto in _PROTO_WORDS:
                        b.protocols.append(proto)
                    b.dports += vals
                elif fld == "saddr" and proto in ("ip", "ip6") and not negated:
                    b.saddrs += vals
                elif (fld, proto) in (("protocol", "ip"), ("nexthdr", "ip6")) and not negated:
                    b.protocols += vals
                elif fld == "type" and proto in ("icmp", "icmpv6"):
                    b.protocols.append("ipv6-icmp" if proto == "icmpv6" else "icmp")
                else:
                    b.other.append(f"{proto} {fld} {'!=' if negated else '=='} {','.join(vals)}")
            elif isinstance(left, dict) and "meta" in left:
                key = left["meta"].get("key")
                if key in ("iif", "iifname") and not negated:
                    b.iifs += vals
                elif key == "l4proto" and not negated:
                    b.protocols += vals
                else:
                    b.other.append(f"meta {key} {'!=' if negated else '=='} {','.join(vals)}")
            elif isinstance(left, dict) and "ct" in left and left["ct"].get("key") == "state" and not negated:
                b.ct_states += vals
            else:
                b.other.append(json.dumps(body, sort_keys=True)[:80])
        elif op in VERDICTS:
            b.verdict = op
        elif op in ("jump", "goto") and isinstance(body, dict):
            b.verdict = op
            b.jump = str(body.get("target"))
        elif op in ("counter", "log", "comment", "xt"):
            # xt: an iptables-nft match/target nft cannot show; keep it as a condition
            if op == "xt":
                b.other.append(f"xt {body.get('type') if isinstance(body, dict) else ''}")
        elif op == "vmap" and isinstance(body, dict):
            key = body.get("key") or {}
            pairs = (body.get("data") or {}).get("set") or []
            if isinstance(key, dict) and "ct" in key and key["ct"].get("key") == "state":
                accepted = [
                    str(p[0])
                    for p in pairs
                    if isinstance(p, list) and len(p) == 2 and "accept" in (p[1] or {})
                ]
                b.ct_states += accepted
                b.verdict = "accept" if accepted else "vmap"
            else:
                b.other.append("vmap")
                b.verdict = "vmap"
        else:
            b.other.append(op)
    where = f"nft handle {rule.get('handle')} ({rule.get('family')} {rule.get('table')} {rule.get('chain')})"
    return b.build(where, b.summary())


def read_nft_json(text: str, source: str) -> NftResult:
    """Interpret ``nft -j list ruleset`` output."""
    result = NftResult(files=[source])
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        result.issues.append(ConfigIssue(path=source, line=exc.lineno, message=f"not JSON: {exc.msg}"))
        return result
    items = doc.get("nftables") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        result.issues.append(ConfigIssue(path=source, message="no 'nftables' array in the output"))
        return result
    chains: dict[tuple[str, str, str], FirewallChain] = {}
    rules: dict[tuple[str, str, str], list[FirewallRule]] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("chain"), dict):
            c = item["chain"]
            key = (str(c.get("family")), str(c.get("table")), str(c.get("name")))
            chains[key] = FirewallChain(
                backend="nftables",
                family=key[0],
                table=key[1],
                name=key[2],
                hook=c.get("hook"),
                policy=c.get("policy") if c.get("hook") else None,
                where=f"nft chain {key[0]} {key[1]} {key[2]}",
            )
        elif isinstance(item.get("rule"), dict):
            r = item["rule"]
            key = (str(r.get("family")), str(r.get("table")), str(r.get("chain")))
            rules.setdefault(key, []).append(_json_rule(r))
        elif isinstance(item.get("set"), dict):
            s = item["set"]
            result.sets.append(
                FirewallSet(
                    family=str(s.get("family")),
                    table=str(s.get("table")),
                    name=str(s.get("name")),
                    elements=_json_values(s.get("elem") or []),
                )
            )
    for key, chain in chains.items():
        result.chains.append(msgspec.structs.replace(chain, rules=rules.get(key, [])))
    return result
