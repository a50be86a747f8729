"""Which findings a register entry covers: a measure plus target, subject and check globs, and optionally
inventory groups (``groups: [GLOB, …]``, matching when any group of the finding's target matches any)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from fnmatch import translate
from functools import cache
from typing import Any, Generic, TypeVar

import msgspec

from hvguard.findings import Finding
from hvguard.workflow.registerfile import Entry, Problem

#: The keys of a ``scope:`` mapping and what each matches (the JSON Schemas are generated from this).
SCOPE_FIELDS: dict[str, str] = {
    "target": "Glob of the target id as given on the command line, or of its collected host name (any "
    "case); default `*`.",
    "subject": "`host`, `vm:NAME` (globs allowed: `vm:db-*`) or `*` (the default).",
    "check": "Glob of the check id within the measure, e.g. `kvm.vcpu-below-cores`; default `*`.",
    "groups": "List of globs of inventory groups (`scan --inventory`): the entry covers a target when any "
    "of its groups matches any of them (case-sensitive, as Ansible's group names are); a target in no "
    "group is not covered. Default: any target, grouped or not.",
}
#: The scope keys whose value is a list of globs (the others are one glob each).
LIST_SCOPE_KEYS = frozenset({"groups"})
SCOPE_KEYS = tuple(SCOPE_FIELDS)
#: Subjects without a ``:`` that a scope may name; any other subject is ``KIND:NAME``.
PLAIN_SUBJECTS = ("*", "host")
_WILDCARDS = re.compile(r"[*?\[]")
T = TypeVar("T")


@cache
def _glob(pattern: str, *, fold: bool = False) -> re.Pattern[str]:
    """A compiled glob (``*``, ``?``, ``[…]``; ``*`` also matches ``/``), case-folded when asked."""
    return re.compile(translate(pattern), re.IGNORECASE if fold else 0)


def literal_prefix(pattern: str) -> str:
    """The part of a glob before its first wildcard."""
    hit = _WILDCARDS.search(pattern)
    return pattern if hit is None else pattern[: hit.start()]


class Scope(msgspec.Struct, frozen=True):
    """Glob patterns (``*``, ``?``, ``[…]``) a finding must match, all three.

    ``target`` is matched against the target id as given on the command line (``qemu:///system``,
    ``ssh://root@hv01``, ``local`` …) and, case-insensitively, against the host name collected from it,
    so a register can name hosts either way. ``subject`` is ``host``, ``vm:NAME-GLOB`` or ``*``.
    ``check`` narrows an entry to one check of the measure (``kvm.vcpu-below-cores``); default ``*``.
    ``groups`` (empty: no condition) narrows it to targets with an inventory group matching any glob.
    """

    target: str = "*"
    subject: str = "*"
    check: str = "*"
    groups: tuple[str, ...] = ()

    def matches(
        self, finding: Finding, target_names: frozenset[str], target_groups: Sequence[str] = ()
    ) -> bool:
        """True when ``finding`` (of a target also known by ``target_names``, in ``target_groups``) is
        within this scope."""
        if not _glob(self.subject).match(finding.subject) or not _glob(self.check).match(finding.check):
            return False
        if self.groups and not any(_glob(g).match(name) for g in self.groups for name in target_groups):
            return False
        if _glob(self.target).match(finding.target):
            return True
        folded = _glob(self.target, fold=True)
        return any(folded.match(name) for name in target_names)

    def to_json(self) -> dict[str, Any]:
        """The scope as plain data (``groups`` only when the entry names groups)."""
        data: dict[str, Any] = {"target": self.target, "subject": self.subject, "check": self.check}
        if self.groups:
            data["groups"] = list(self.groups)
        return data

    def __str__(self) -> str:
        parts = [f"target {self.target}", f"subject {self.subject}"]
        if self.check != "*":
            parts.append(f"check {self.check}")
        if self.groups:
            parts.append(f"groups {', '.join(self.groups)}")
        return ", ".join(parts)


def parse_scope(entry: Entry, raw: Any, problems: list[Problem]) -> Scope | None:
    """The entry's ``scope:`` mapping as a :class:`Scope`; problems are appended, None when unusable."""
    line = entry.line_of("scope")
    if raw is None:
        problems.append(
            Problem(entry.label, "scope is missing (e.g. scope: {target: '*', subject: 'vm:db-*'})", line)
        )
        return None
    if not isinstance(raw, dict):
        problems.append(Problem(entry.label, "scope must be a mapping with target/subject/check", line))
        return None
    unknown = sorted(str(k) for k in raw if k not in SCOPE_KEYS)
    if unknown:
        names = ", ".join(unknown)
        message = f"scope: unknown key(s) {names}; use target, subject, check, groups"
        problems.append(Problem(entry.label, message, line))
    if not raw:
        problems.append(Problem(entry.label, "scope is empty; give at least target or subject", line))
        return None
    values: dict[str, str] = {}
    ok = True
    groups = _groups(entry, raw.get("groups"), problems, line)
    if groups is None:
        ok = False
    for key in SCOPE_KEYS:
        if key in LIST_SCOPE_KEYS:
            continue
        value = raw.get(key, "*")
        if not isinstance(value, str) or not value.strip():
            problems.append(Problem(entry.label, f"scope.{key} must be a non-empty glob text", line))
            ok = False
            continue
        values[key] = value.strip()
    subject = values.get("subject", "*")
    if ok and subject not in PLAIN_SUBJECTS and ":" not in subject:
        problems.append(
            Problem(
                entry.label,
                f"scope.subject {subject!r} must be 'host', 'vm:NAME' (globs allowed: 'vm:db-*') or '*'",
                line,
            )
        )
        ok = False
    return Scope(**values, groups=groups or ()) if ok else None


def _groups(entry: Entry, raw: Any, problems: list[Problem], line: int | None) -> tuple[str, ...] | None:
    """``scope.groups``: a non-empty list of non-empty glob texts (absent: ``()``); None when unusable."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw or not all(isinstance(g, str) and g.strip() for g in raw):
        problems.append(
            Problem(entry.label, "scope.groups must be a non-empty list of group globs (e.g. [site-a])", line)
        )
        return None
    return tuple(g.strip() for g in raw)


class ScopeIndex(msgspec.Struct, Generic[T]):
    """Register entries of one measure indexed by the literal prefix of their subject glob, so a
    finding is compared only with entries whose prefix its subject starts with — a register of
    hundreds of per-VM entries costs a few dictionary look-ups per finding, not hundreds of matches."""

    by_prefix: dict[str, list[tuple[int, T]]] = msgspec.field(default_factory=lambda: defaultdict(list))
    lengths: list[int] = msgspec.field(default_factory=list)

    @classmethod
    def build(cls, items: Sequence[T], scope_of: Any) -> ScopeIndex[T]:
        """Index ``items`` (in order) by ``scope_of(item).subject``."""
        index: ScopeIndex[T] = cls()
        for position, item in enumerate(items):
            index.by_prefix[literal_prefix(scope_of(item).subject)].append((position, item))
        index.lengths = sorted({len(p) for p in index.by_prefix})
        return index

    def candidates(self, subject: str) -> list[T]:
        """Entries whose subject prefix ``subject`` starts with, in their original order."""
        found: list[tuple[int, T]] = []
        for n in self.lengths:
            if n > len(subject):
                break
            found.extend(self.by_prefix.get(subject[:n], ()))
        found.sort(key=lambda pair: pair[0])
        return [item for _, item in found]
