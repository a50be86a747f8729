"""iptables: ``iptables-save`` output or the files that restore it at boot (Debian iptables-persistent
``/etc/iptables/rules.v4``/``rules.v6``, RHEL ``/etc/sysconfig/iptables``/``ip6tables``).

The format is line based: ``*table``, ``:CHAIN POLICY [packets:bytes]``, ``-A CHAIN match… -j TARGET``,
``COMMIT``. Only the ``filter`` table's ``INPUT`` chain (netfilter's input hook) and the chains it jumps
to decide what reaches the host. Matches read: ``-p``, ``--dport``/``--dports`` (``a:b`` ranges,
multiport lists), ``-s`` (CIDRs), ``-m set --match-set NAME src`` (``@NAME``), ``-i``,
``--ctstate``/``--state``; a negated (``!``) or other match is kept as "other".
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from hvguard.facts import ConfigIssue, FirewallChain, FirewallRule

_BUILTIN_HOOKS = {"INPUT": "input", "FORWARD": "forward", "OUTPUT": "output", "PREROUTING": "prerouting"}
_IGNORED_OPTS = {"-m", "--comment", "--reject-with", "--log-prefix", "--log-level"}


def _rule(args: list[str], where: str, text: str) -> FirewallRule:
    protocols: list[str] = []
    dports: list[str] = []
    saddrs: list[str] = []
    iifs: list[str] = []
    states: list[str] = []
    other: list[str] = []
    verdict: str | None = None
    jump: str | None = None
    i = 2  # past "-A CHAIN"
    negate = False
    while i < len(args):
        a = args[i]
        val = args[i + 1] if i + 1 < len(args) else ""
        if a == "!":
            negate = True
            i += 1
            continue
        step = 2
        if negate and a not in ("-j", "-g"):
            other.append(f"! {a} {val}")
        elif a in ("-p", "--protocol"):
            protocols.append(val.lower())
        elif a in ("--dport", "--destination-port", "--dports", "--destination-ports"):
            dports += [p.replace(":", "-") for p in val.split(",") if p]
        elif a in ("-s", "--source"):
            saddrs += [s for s in val.split(",") if s]
        elif a == "--match-set":
            direction = args[i + 2] if i + 2 < len(args) else ""
            if direction.split(",")[0] == "src":
                saddrs.append(f"@{val}")
            else:
                other.append(f"--match-set {val} {direction}")
            step = 3
        elif a in ("-i", "--in-interface"):
            iifs.append(val)
        elif a in ("--ctstate", "--state"):
            states += [s.lower() for s in val.split(",")]
        elif a in ("-j", "--jump", "-g", "--goto"):
            target = val
            if target.upper() in ("ACCEPT", "DROP", "REJECT", "RETURN"):
                verdict = target.lower()
            elif target.upper() in ("LOG", "NFLOG", "CT", "MARK", "CONNMARK"):
                pass
            else:
                verdict = "goto" if a in ("-g", "--goto") else "jump"
                jump = target
        elif a in _IGNORED_OPTS:
            pass
        elif a.startswith("-"):
            other.append(f"{a} {val}".strip())
        negate = False
        i += step
    return FirewallRule(
        where=where,
        text=text[:300],
        verdict=verdict,
        jump=jump,
        protocols=protocols,
        dports=dports,
        saddrs=saddrs,
        iifs=iifs,
        ct_states=states,
        other=other,
    )


@dataclass
class _Chain:
    policy: str | None
    line: int
    rules: list[FirewallRule] = field(default_factory=list)


def read_iptables_save(
    text: str, source: str, *, family: str = "ip"
) -> tuple[list[FirewallChain], list[ConfigIssue]]:
    """Chains of the ``filter`` table from iptables-save text; malformed lines become issues."""
    issues: list[ConfigIssue] = []
    chains: dict[str, _Chain] = {}
    order: list[str] = []
    table: str | None = None
    backend = "ip6tables" if family == "ip6" else "iptables"
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            table = line[1:].strip()
            continue
        if line == "COMMIT":
            table = None
            continue
        if table is None:
            issues.append(
                ConfigIssue(path=source, line=n, message=f"outside a *table … COMMIT block: {line[:60]!r}")
            )
            continue
        if table != "filter":
            continue
        if line.startswith(":"):
            parts = line[1:].split()
            if len(parts) < 2:
                issues.append(ConfigIssue(path=source, line=n, message=f"malformed chain line {line[:60]!r}"))
                continue
            name, policy = parts[0], parts[1]
            chains[name] = _Chain(None if policy == "-" else policy.lower(), n)
            order.append(name)
            continue
        try:
            args = shlex.split(line)
        except ValueError as exc:
            issues.append(ConfigIssue(path=source, line=n, message=f"cannot split rule: {exc}"))
            continue
        if len(args) < 2 or args[0] not in ("-A", "--append", "-I", "--insert"):
            issues.append(
                ConfigIssue(path=source, line=n, message=f"expected '-A CHAIN …', found {line[:60]!r}")
            )
            continue
        name = args[1]
        if name not in chains:
            issues.append(ConfigIssue(path=source, line=n, message=f"rule for undeclared chain {name!r}"))
            continue
        chains[name].rules.append(_rule(args, f"{source}:{n}", line))
    out: list[FirewallChain] = []
    for name in order:
        c = chains[name]
        hook = _BUILTIN_HOOKS.get(name)
        out.append(
            FirewallChain(
                backend=backend,
                family=family,
                table="filter",
                name=name,
                hook=hook,
                policy=c.policy if hook else None,
                where=f"{source}:{c.line}",
                rules=c.rules,
            )
        )
    return out, issues
