"""Pure evaluations of access-control facts shared by the 11.2 and 11.4 checks (no I/O).

Who has direct access to the host (accounts, groups, sudo grants), whether an SSH or sudo login needs two
factors, what polkit rules and ACL probes say about per-VM libvirt permissions, and whether the host
firewall admits a management port from everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hvguard.checks.base import HOST, CheckContext
from hvguard.checks.support.ops import Opening, analyse_input, is_wide_source, port_range, resolve_sources
from hvguard.checks.support.shell import shell_word
from hvguard.facts import (
    AccessFacts,
    AccountsFacts,
    AclProbe,
    FirewallFacts,
    PamStack,
    PolkitFile,
    PolkitRule,
    SshdFacts,
    SshdSetting,
    SudoFacts,
    SudoRule,
)
from hvguard.findings import Finding

# --------------------------------------------------------------------------------------------------------
# Locations


def loc(file: str | None, line: int | None) -> str:
    """``FILE:LINE`` (or the file, or "default")."""
    if file is None:
        return "default"
    return f"{file}:{line}" if line else file


def setting_source(setting: SshdSetting | None) -> str:
    """Where an sshd setting comes from."""
    if setting is None or setting.file is None:
        return "sshd default"
    return loc(setting.file, setting.line)


def sshd_fix(sshd: SshdFacts, keyword: str, line: str) -> str:
    """Where to write an sshd directive: the line that sets it now, else the main file before any Match."""
    current = sshd.effective.get(keyword)
    if current is not None and current.file is not None:
        return f"{current.file} line {current.line}: {line}"
    return (
        f"{sshd.config_file} (add near the top, before any Include that sets it and any Match block): {line}"
    )


def sshd_values(sshd: SshdFacts, keyword: str) -> list[str]:
    """The effective values of ``keyword`` (empty when unset)."""
    setting = sshd.effective.get(keyword)
    return list(setting.values) if setting is not None else []


def sshd_value(sshd: SshdFacts, keyword: str, default: str) -> str:
    """The effective single value of ``keyword``, lower-cased for choices."""
    values = sshd_values(sshd, keyword)
    return values[0] if values else default


# --------------------------------------------------------------------------------------------------------
# Accounts, groups and sudo


@dataclass
class Principal:
    """An account with direct access, why (with file:line), and the commands that would remove it."""

    name: str
    local: bool
    reasons: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)

    def evidence(self) -> dict[str, Any]:
        """As evidence."""
        return {"local_account": self.local, "access": self.reasons}


def group_members(accounts: AccountsFacts) -> dict[str, set[str]]:
    """Group name → every member (explicit and by primary group)."""
    return {g.name: {*g.members, *g.primary_members} for g in accounts.groups}


def _sudo_user_matches(principal: str, name: str, uid: int | None, groups: set[str]) -> bool:
    p = principal
    if p == "ALL":
        return True
    if p.startswith("%#"):
        return False  # gid match needs the group's gid; resolved through the group name below
    if p.startswith(("%:", "%")):
        return p.lstrip("%:") in groups
    if p.startswith("#"):
        return uid is not None and p[1:] == str(uid)
    if p.startswith("+"):
        return False  # netgroups live in the directory
    return p == name


def sudo_grants_for(sudo: SudoFacts | None, name: str, uid: int | None, groups: set[str]) -> list[SudoRule]:
    """The sudo rules that apply to a user (a ``!`` exclusion after a match removes it)."""
    if sudo is None:
        return []
    out: list[SudoRule] = []
    for rule in sudo.rules:
        matched = False
        for principal in rule.principals:
            negated = principal.startswith("!")
            if _sudo_user_matches(principal.lstrip("!"), name, uid, groups):
                matched = not negated
        if matched:
            out.append(rule)
    return out


def unresolved_sudo_groups(sudo: SudoFacts | None, accounts: AccountsFacts) -> list[str]:
    """Group and netgroup principals of sudo rules that /etc/group cannot enumerate (directory groups)."""
    if sudo is None:
        return []
    local = {g.name for g in accounts.groups}
    gids = {f"%#{g.gid}" for g in accounts.groups}
    out: set[str] = set()
    for rule in sudo.rules:
        for principal in rule.principals:
            p = principal.lstrip("!")
            netgroup = p.startswith("+")
            unknown_gid = p.startswith("%#") and p not in gids
            unknown_group = p.startswith("%") and not p.startswith("%#") and p.lstrip("%:") not in local
            if netgroup or unknown_gid or unknown_group:
                out.add(p)
    return sorted(out)


def direct_access(access: AccessFacts) -> dict[str, Principal]:
    """Every account that can reach the host directly: local accounts with a login shell, members of the
    privileged groups and users named in sudo rules — each with the reasons (file:line)."""
    accounts = access.accounts or AccountsFacts()
    members = group_members(accounts)
    users = {u.name: u for u in accounts.users}
    out: dict[str, Principal] = {}

    def add(name: str, reason: str, fix: str) -> None:
        principal = out.setdefault(name, Principal(name=name, local=name in users))
        principal.reasons.append(reason)
        if fix not in principal.fixes:
            principal.fixes.append(fix)

    for u in accounts.users:
        if u.login_shell:
            fix = (
                "root stays (console, break-glass): deny it over SSH (PermitRootLogin no, 11.4.6) and list "
                "it in approved_host_accounts"
                if u.uid == 0
                else f"usermod -s /usr/sbin/nologin {u.name}   (or: userdel {u.name})"
            )
            add(u.name, f"login shell {u.shell or '/bin/sh'} ({loc(accounts.passwd_file, u.line)})", fix)
    for g in accounts.groups:
        if not g.privileged:
            continue
        for name in sorted(g.members):
            user = users.get(name)
            if user is not None and not user.login_shell and name not in out:
                continue  # a service account (libvirt-qemu in kvm): it cannot log in
            add(
                name,
                f"member of {g.name} ({loc(accounts.group_file, g.line)})",
                f"gpasswd -d {shell_word(name)} {shell_word(g.name)}",
            )
        for name in sorted(set(g.primary_members) - set(g.members)):
            user = users.get(name)
            if user is not None and user.login_shell:
                add(
                    name,
                    f"primary group {g.name} ({loc(accounts.passwd_file, user.line)})",
                    f"usermod -g {shell_word(name)} {shell_word(name)}   (a private primary group)",
                )
    if access.sudo is not None:
        for rule in access.sudo.rules:
            for principal in rule.principals:
                if principal[:1] in ("%", "+", "!", "#") or principal == "ALL":
                    continue
                if principal in users and not users[principal].login_shell:
                    continue  # a service account cannot log in to use it
                add(
                    principal,
                    f"sudo {', '.join(rule.commands[:3])} ({loc(rule.file, rule.line)})",
                    f"visudo -f {shell_word(rule.file)}: remove {principal} from line {rule.line}",
                )
        for name, user in users.items():
            if not user.login_shell:
                continue
            groups = {g for g, m in members.items() if name in m}
            for rule in sudo_grants_for(access.sudo, name, user.uid, groups):
                if any(p.lstrip("!") == name for p in rule.principals):
                    continue  # already listed by name
                add(
                    name,
                    f"sudo via {rule.written} ({loc(rule.file, rule.line)})",
                    f"take {name} out of {rule.written} "
                    f"(visudo -f {shell_word(rule.file)}, line {rule.line})",
                )
    return out


def sudo_read_failures(sudo: SudoFacts) -> list[str]:
    """Why each sudoers file or include directory that exists could not be read (``PATH: reason``)."""
    unread = set(sudo.unreadable)
    return [e for e in sudo.errors if e.split(": ", 1)[0] in unread] or list(sudo.unreadable)


def sudo_unreadable_error(ctx: CheckContext, what: str) -> Finding | None:
    """The ``error`` finding for ``what`` when sudoers could not be read whole, else None.

    The grants of a file hvguard could not read are unknown, not absent: a check that reads sudo grants
    reports this error and never a pass or not_applicable beside it (a fail it established from the
    files it did read still stands)."""
    access = ctx.host.access if ctx.host is not None else None
    sudo = access.sudo if access is not None else None
    if sudo is None or not sudo.unreadable:
        return None
    reasons = sudo_read_failures(sudo)
    return ctx.error(
        HOST,
        f"{what}: sudoers could not be read whole ({'; '.join(reasons[:5])})",
        evidence={"unreadable": sudo.unreadable, "reasons": reasons},
    )


def full_root_rules(sudo: SudoFacts) -> list[SudoRule]:
    """Rules granting every command (``ALL``)."""
    return [r for r in sudo.rules if r.all_commands]


# --------------------------------------------------------------------------------------------------------
# Multi-factor authentication


def method_lists(sshd: SshdFacts, setting: SshdSetting | None = None) -> list[list[str]] | None:
    """AuthenticationMethods as lists of method names (None for ``any``)."""
    setting = setting or sshd.effective.get("authenticationmethods")
    if setting is None:
        return None
    text = " ".join(setting.values).strip()
    if not text or text == "any":
        return None
    return [[m.split(":", 1)[0] for m in item.split(",") if m] for item in text.split()]


def pam_second_factor(stack: PamStack | None) -> tuple[bool, list[str]]:
    """(a mandatory second factor is in the stack, descriptions with file:line)."""
    if stack is None or not stack.present:
        return False, []
    notes = [
        f"{f.module} ({f.kind}, {f.control}) at {loc(f.file, f.line)}"
        + (f" — {'; '.join(f.caveats)}" if f.caveats else "")
        for f in stack.second_factors
    ]
    return any(f.mandatory for f in stack.second_factors), notes


def list_is_mfa(methods: list[str], pam_mfa: bool, use_pam: bool) -> bool:
    """True when one AuthenticationMethods list needs two factors."""
    distinct = set(methods) - {"none"}
    if len(distinct) >= 2:
        return True
    return distinct <= {"keyboard-interactive", "password"} and bool(distinct) and pam_mfa and use_pam


@dataclass
class SshMfa:
    """The SSH MFA verdict: ``gaps`` empty means every login needs two factors."""

    gaps: list[str]
    evidence: dict[str, Any]


def ssh_mfa(sshd: SshdFacts, pam: PamStack | None) -> SshMfa:
    """Whether every SSH login (global settings and each Match block) requires two factors."""
    use_pam = sshd_value(sshd, "usepam", "no") == "yes"
    pam_mfa, pam_notes = pam_second_factor(pam)
    gaps: list[str] = []
    methods_setting = sshd.effective.get("authenticationmethods")
    lists = method_lists(sshd)
    evidence: dict[str, Any] = {
        "authenticationmethods": {
            "value": " ".join(methods_setting.values) if methods_setting else "any",
            "source": setting_source(methods_setting),
        },
        "usepam": sshd_value(sshd, "usepam", "no"),
        "pam_sshd_second_factors": pam_notes or "none",
        "sshd_source": sshd.source,
    }
    if lists is None:
        enabled = [
            m
            for m, kw in (
                ("publickey", "pubkeyauthentication"),
                ("password", "passwordauthentication"),
                ("keyboard-interactive", "kbdinteractiveauthentication"),
                ("gssapi-with-mic", "gssapiauthentication"),
                ("hostbased", "hostbasedauthentication"),
            )
            if sshd_value(sshd, kw, "no") == "yes"
        ]
        evidence["single_methods_enabled"] = enabled
        single = [m for m in enabled if not list_is_mfa([m], pam_mfa, use_pam)]
        if single:
            gaps.append(
                f"AuthenticationMethods is 'any' ({setting_source(methods_setting)}), so one method "
                "suffices: " + ", ".join(single)
            )
    else:
        weak = [",".join(m) for m in lists if not list_is_mfa(m, pam_mfa, use_pam)]
        if weak:
            gaps.append(
                f"AuthenticationMethods ({setting_source(methods_setting)}) accepts single-factor "
                f"list(s): {' '.join(weak)}"
            )
    for block in sshd.matches:
        setting = block.settings.get("authenticationmethods")
        if setting is None:
            continue
        block_lists = method_lists(sshd, setting)
        if block_lists is None or any(not list_is_mfa(m, pam_mfa, use_pam) for m in block_lists):
            gaps.append(
                f"Match {block.text} ({loc(block.file, block.line)}) sets AuthenticationMethods "
                f"{' '.join(setting.values)}: single factor for those connections"
            )
    return SshMfa(gaps=gaps, evidence=evidence)


# --------------------------------------------------------------------------------------------------------
# polkit and probes


def active_files(access: AccessFacts) -> list[PolkitFile]:
    """polkit files polkitd loads (not shadowed), in load order."""
    if access.polkit is None:
        return []
    return [f for f in access.polkit.files if f.shadowed_by is None]


def libvirt_rules(access: AccessFacts) -> list[tuple[PolkitFile, PolkitRule]]:
    """Rules (of parsable, active files) that reference libvirt API actions or lookup keys."""
    return [(f, r) for f in active_files(access) if f.error is None for r in f.rules if r.libvirt_api]


def rule_summary(file: PolkitFile, rule: PolkitRule) -> dict[str, Any]:
    """A rule as evidence."""
    return {
        "where": loc(file.path, rule.line),
        "actions": sorted({a.value for a in rule.actions})[:20],
        "lookups": sorted({lk.value for lk in rule.lookups}),
        "groups": sorted({g.value for g in rule.groups}),
        "users": sorted({u.value for u in rule.users}),
        "domain_denies": [loc(file.path, n) for n in rule.domain_denies],
        "domain_allows": [loc(file.path, n) for n in rule.domain_allows],
    }


def probe_evidence(probes: Iterable[AclProbe]) -> list[dict[str, Any]]:
    """Probes as evidence."""
    return [
        {"user": p.user, "vm": p.vm, "outcome": p.outcome, "reason": p.reason, "command": " ".join(p.argv)}
        for p in probes
    ]


def differentiated_users(probes: Iterable[AclProbe]) -> dict[str, tuple[list[str], list[str]]]:
    """Users that the probes show allowed on some VMs and denied on others: user → (allowed, denied)."""
    seen: dict[str, tuple[list[str], list[str]]] = {}
    for p in probes:
        allowed, denied = seen.setdefault(p.user, ([], []))
        if p.outcome == "allowed":
            allowed.append(p.vm)
        elif p.outcome == "denied":
            denied.append(p.vm)
    return {u: v for u, v in seen.items() if v[0] and v[1]}


def is_specific_action(action: str) -> bool:
    """An action id naming one permission (``org.libvirt.api.domain.start``), not a family prefix."""
    return action.startswith("org.libvirt.api.") and action.count(".") >= 4 and not action.endswith(".")


# --------------------------------------------------------------------------------------------------------
# Firewall exposure of a management port (built on the operations checks' input-chain analysis)


@dataclass
class Exposure:
    """How the host firewall treats new TCP connections to a port: ``open`` to everyone, ``restricted``
    to ``sources``, ``closed``, or ``unknown`` (a rule hvguard cannot interpret could decide)."""

    state: str
    sources: list[str] = field(default_factory=list)
    basis: list[str] = field(default_factory=list)


def _covers(opening: Opening, port: int) -> bool | None:
    if opening.protos and "tcp" not in opening.protos:
        return False
    if opening.all_ports:
        return True
    hits = [port_range(p) for p in opening.ports]
    if any(h is None for h in hits):
        return None
    return any(lo <= port <= hi for lo, hi in (h for h in hits if h is not None))


def port_exposure(firewall: FirewallFacts, port: int) -> Exposure:
    """Whether new TCP connections to ``port`` pass every input base chain, and from where."""
    chains = analyse_input(firewall)
    if not chains:
        return Exposure("open", basis=["no input filter chain: nothing filters incoming connections"])
    results: list[Exposure] = []
    for chain in chains:
        if not chain.default_drop:
            results.append(
                Exposure("open", basis=[f"{chain.label}: accepts by default ({chain.default_where})"])
            )
            continue
        sources: list[str] = []
        verdict: Exposure | None = None
        for opening in chain.openings:
            covered = _covers(opening, port)
            if covered is None:
                verdict = verdict or Exposure("unknown", basis=[f"{opening.where}: port set not resolvable"])
                continue
            if not covered:
                continue
            wide = not opening.sources or any(is_wide_source(x) for x in opening.sources)
            if wide and not opening.iifs:
                verdict = Exposure("open", basis=[f"{chain.label}: {opening.describe()}"])
                break
            sources += resolve_sources(firewall, chain.chain, opening.sources) if not wide else []
            sources += [f"iif {i}" for i in opening.iifs]
        if verdict is not None and verdict.state == "open":
            results.append(verdict)
        elif chain.unclear or verdict is not None:
            basis = [*chain.unclear[:3], *(verdict.basis if verdict else [])]
            results.append(Exposure("unknown", sources, basis))
        elif sources:
            results.append(
                Exposure(
                    "restricted", sources, [f"{chain.label}: port {port} only from {', '.join(sources)}"]
                )
            )
        else:
            results.append(
                Exposure("closed", basis=[f"{chain.label}: drops port {port} ({chain.default_where})"])
            )
    for state in ("closed", "restricted", "unknown"):
        hit = [r for r in results if r.state == state]
        if hit:
            return Exposure(state, [x for r in hit for x in r.sources], [b for r in results for b in r.basis])
    return Exposure("open", basis=[b for r in results for b in r.basis])


# --------------------------------------------------------------------------------------------------------
# Network restriction of sshd


_WILDCARDS = frozenset({"0.0.0.0", "::", "*", ""})  # noqa: S104 (recognising wildcards, not binding)


def listen_addresses(sshd: SshdFacts) -> list[str]:
    """ListenAddress values without their port (``[::]:22`` → ``::``); empty means the wildcard."""
    out: list[str] = []
    for value in sshd_values(sshd, "listenaddress"):
        addr = value.split()[0] if value.split() else ""
        if addr.startswith("["):
            addr = addr[1 : addr.find("]")] if "]" in addr else addr[1:]
        elif addr.count(":") == 1:
            addr = addr.split(":", 1)[0]
        out.append(addr)
    return out


def sshd_network_restriction(sshd: SshdFacts) -> str | None:
    """How sshd's own configuration limits logins to defined networks (None when it does not)."""
    allow = sshd_values(sshd, "allowusers")
    if allow and all("@" in a for a in allow):
        where = setting_source(sshd.effective.get("allowusers"))
        return f"every AllowUsers entry names its source network ({where}: {' '.join(allow[:6])})"
    for block in sshd.matches:
        addresses = [c[1] for c in block.criteria if c[0] == "address" and len(c) > 1]
        if not any("!" in a for a in addresses):
            continue
        s = block.settings
        denies = any("*" in (s[k].values if k in s else []) for k in ("denyusers", "denygroups")) or (
            s["refuseconnection"].values == ["yes"] if "refuseconnection" in s else False
        )
        if denies:
            return (
                f"Match Address {' '.join(addresses)} ({loc(block.file, block.line)}) refuses other networks"
            )
    listen = listen_addresses(sshd)
    if listen and not (_WILDCARDS & set(listen)):
        return f"sshd listens only on {', '.join(listen)} (ListenAddress)"
    return None
