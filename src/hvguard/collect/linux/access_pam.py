"""PAM stacks of the services that grant administrative access (``sshd``, ``sudo``) and their second
factors.

Linux-PAM syntax (pam.conf(5), pam.d(5)): one rule per line, ``[-]type control module [args…]``; ``#``
comments; a trailing backslash joins the next line; ``control`` is a keyword or a bracketed
``[value=action …]`` list; ``@include FILE`` inlines every rule of FILE; ``include``/``substack`` as a
control pull in the same type's rules of another service file (substack confines ``done``/``die`` and
jumps to itself). A service file is looked up in /etc/pam.d, then the vendor directory /usr/lib/pam.d.

A second factor counts as *mandatory* only when failing it fails the stack (``required``, ``requisite``,
``[… default=die|bad]``) and no earlier rule in the same or an enclosing stack can end it successfully
first (``sufficient``, ``success=done``, a ``success=N`` jump over it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hvguard.collect.linux.access_files import HostFiles
from hvguard.collect.reader import ReadError
from hvguard.facts import PamEntry, PamStack, SecondFactor

PAM_DIRS = ("/etc/pam.d", "/usr/lib/pam.d")
SERVICES = ("sshd", "sudo")
_TYPES = frozenset({"auth", "account", "password", "session"})
_CONTROL_WORDS = frozenset({"required", "requisite", "sufficient", "optional", "include", "substack"})
MAX_DEPTH = 16

#: Module file name → kind of second factor it adds.
SECOND_FACTOR_MODULES = {
    "pam_u2f.so": "fido2-u2f",
    "pam_google_authenticator.so": "totp",
    "pam_oath.so": "oath",
    "pam_yubico.so": "yubikey-otp",
    "pam_duo.so": "duo",
    "pam_pkcs11.so": "smartcard",
    "pam_p11.so": "smartcard",
}
#: pam_sss arguments that make it demand a smartcard / certificate (a second factor).
SSS_CERT_ARGS = frozenset({"require_cert_auth"})
#: Arguments that let a user without an enrolled token pass with one factor.
WEAKENING_ARGS = {
    "nullok": "nullok: users without an enrolled token log in with one factor",
    "nouserok": "nouserok: users without a registered key log in with one factor",
}


@dataclass(frozen=True)
class _Rule:
    entry: PamEntry
    segment: tuple[int, ...]
    """The chain of substack ids containing the rule (the main stack is ``()``)."""


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of each rule with continuations joined and comments removed."""
    out: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        line = raw
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        line = line.split("#", 1)[0].strip()
        if line:
            out.append((start, line))
    if pending.strip():
        out.append((start, pending.split("#", 1)[0].strip()))
    return out


_TOKEN = re.compile(r"\[[^\]]*\]|\S+")


def module_name(path: str) -> str:
    """The module's file name (``/lib/security/pam_u2f.so`` → ``pam_u2f.so``)."""
    return path.rsplit("/", 1)[-1]


class _Reader:
    def __init__(self, files: HostFiles) -> None:
        self.files = files
        self.errors: list[str] = []
        self._substacks = 0

    def find(self, service: str) -> str | None:
        for directory in PAM_DIRS:
            path = f"{directory}/{service}"
            if self.files.is_file(path):
                return path
        return None

    def read(
        self, path: str, want: str | None, segment: tuple[int, ...], via: list[str], depth: int
    ) -> list[_Rule]:
        """The rules of ``path`` of type ``want`` (None: every type), includes expanded."""
        if depth > MAX_DEPTH:
            self.errors.append(f"{path}: includes nested deeper than {MAX_DEPTH} (a loop?)")
            return []
        try:
            text = self.files.read_text(path)
        except ReadError as exc:
            self.errors.append(f"{exc.path}: {exc.message}")
            return []
        if text is None:
            self.errors.append(f"{path}: included file does not exist ({' → '.join(via)})")
            return []
        rules: list[_Rule] = []
        directory = path.rsplit("/", 1)[0]
        for number, line in _logical_lines(text):
            tokens = _TOKEN.findall(line)
            where = f"{path} line {number}"
            if tokens[0] == "@include":
                if len(tokens) != 2:
                    self.errors.append(f"{where}: @include needs exactly one file name")
                    continue
                target = tokens[1] if tokens[1].startswith("/") else f"{directory}/{tokens[1]}"
                rules += self.read(target, want, segment, [*via, f"{path}:{number}"], depth + 1)
                continue
            optional = tokens[0].startswith("-")
            rtype = tokens[0].lstrip("-").lower()
            if rtype not in _TYPES or len(tokens) < 3:
                self.errors.append(f"{where}: not a PAM rule (type control module …): {line[:80]!r}")
                continue
            control = tokens[1]
            low = control.lower()
            if not (low in _CONTROL_WORDS or (control.startswith("[") and control.endswith("]"))):
                self.errors.append(f"{where}: unknown control {control!r}")
                continue
            if want is not None and rtype != want:
                continue
            if low in ("include", "substack"):
                target = self.find(tokens[2]) if not tokens[2].startswith("/") else tokens[2]
                if target is None:
                    self.errors.append(f"{where}: {low} of service {tokens[2]!r}, which has no file")
                    continue
                inner = segment
                if low == "substack":
                    self._substacks += 1
                    inner = (*segment, self._substacks)
                rules += self.read(target, rtype, inner, [*via, f"{path}:{number}"], depth + 1)
                continue
            rules.append(
                _Rule(
                    PamEntry(
                        type=rtype,
                        control=control,
                        module=tokens[2],
                        args=tokens[3:],
                        file=path,
                        line=number,
                        optional=optional,
                        via=via,
                    ),
                    segment,
                )
            )
        return rules


def _bracket(control: str) -> dict[str, str]:
    """``[success=1 default=ignore]`` → {"success": "1", "default": "ignore"}."""
    pairs = {}
    for item in control.strip("[]").split():
        key, _, value = item.partition("=")
        pairs[key.lower()] = value.lower()
    return pairs


def _fatal_on_failure(control: str) -> bool:
    low = control.lower()
    if low in ("required", "requisite"):
        return True
    if control.startswith("["):
        return _bracket(control).get("default") in ("die", "bad")
    return False


def _bypass(rules: list[_Rule], index: int) -> str | None:
    """The earlier rule that can end the stack with success before ``rules[index]`` runs, if any."""
    target = rules[index]
    for i in range(index):
        rule = rules[i]
        # A rule inside a substack the target is not in only ends that substack.
        if rule.segment != target.segment[: len(rule.segment)]:
            continue
        control = rule.entry.control
        where = f"{rule.entry.file}:{rule.entry.line} ({rule.entry.control} {module_name(rule.entry.module)})"
        if control.lower() == "sufficient":
            return where
        if control.startswith("["):
            actions = _bracket(control)
            success = actions.get("success", "")
            if success == "done":
                return where
            if success.isdigit() and i + int(success) >= index and rule.segment == target.segment:
                return where
    return None


def _second_factors(rules: list[_Rule]) -> list[SecondFactor]:
    found: list[SecondFactor] = []
    for index, rule in enumerate(rules):
        entry = rule.entry
        name = module_name(entry.module)
        kind = SECOND_FACTOR_MODULES.get(name)
        if name == "pam_sss.so" and SSS_CERT_ARGS & set(entry.args):
            kind = "sssd-cert"
        if kind is None:
            continue
        caveats = [WEAKENING_ARGS[a] for a in entry.args if a in WEAKENING_ARGS]
        fatal = _fatal_on_failure(entry.control)
        if not fatal:
            caveats.append(f"control {entry.control}: failing this factor does not fail the login")
        if entry.optional:
            caveats.append("'-auth': skipped silently when the module is not installed")
        bypass = _bypass(rules, index)
        if bypass is not None:
            caveats.append(f"can be bypassed: {bypass} may end the stack with success first")
        found.append(
            SecondFactor(
                module=name,
                kind=kind,
                control=entry.control,
                mandatory=fatal and bypass is None and not any(a in WEAKENING_ARGS for a in entry.args),
                file=entry.file,
                line=entry.line,
                caveats=caveats,
            )
        )
    return found


def read_pam_stack(files: HostFiles, service: str) -> PamStack:
    """The auth stack of ``service``; never raises."""
    reader = _Reader(files)
    path = reader.find(service)
    if path is None:
        return PamStack(service=service, file=f"{PAM_DIRS[0]}/{service}", present=False)
    rules = reader.read(path, "auth", (), [], 0)
    return PamStack(
        service=service,
        file=path,
        present=True,
        auth=[r.entry for r in rules],
        second_factors=_second_factors(rules),
        errors=reader.errors,
    )


def collect_pam(files: HostFiles) -> dict[str, PamStack]:
    """The PAM stacks of sshd and sudo."""
    return {service: read_pam_stack(files, service) for service in SERVICES}
