"""``--limit PATTERN`` without Ansible: the subset of Ansible's host patterns hvguard evaluates itself.

Supported, with Ansible's meaning: host names, group names (a group means all hosts below it; ``all``
every host), shell globs (``*``, ``?``) over host and group names, ``a:b`` (union), ``a:!b``
(exclusion), ``a:&b`` (intersection) and ``a,b`` (a comma-separated list: then ``:`` is not a
separator, as in Ansible). As Ansible does, terms are applied union first, then intersections, then
exclusions, and a list of only ``!``/``&`` terms starts from ``all``. Regular expressions (``~re``),
subscripts (``g[0]``, ``g[1:3]``), ``@file`` and anything else are refused (:class:`InventoryError`):
install Ansible for its full syntax.
"""

from __future__ import annotations

import fnmatch

from hvguard.collect.inventory_model import Inventory, InventoryError

_UNSUPPORTED = set("~[]@\\{}()=<>|;$`'\"")


def split_pattern(pattern: str) -> list[str]:
    """The terms of ``pattern``: split on ``,`` when it has one, else on ``:`` (Ansible's rule)."""
    parts = pattern.split(",") if "," in pattern else pattern.split(":")
    return [p.strip() for p in parts if p.strip()]


def check_pattern(pattern: str) -> None:
    """Refuse what hvguard's own evaluator cannot evaluate (one line, :class:`InventoryError`)."""
    if not pattern.strip():
        raise InventoryError("--limit: empty pattern")
    if any(not ch.isprintable() for ch in pattern):
        raise InventoryError("--limit: the pattern contains control characters")
    bad = sorted({ch for ch in pattern if ch in _UNSUPPORTED or ch.isspace()})
    if bad:
        raise InventoryError(
            f"--limit {pattern!r}: {''.join(bad)!r} is not supported without Ansible (names, groups, globs "
            "with * and ?, ':', ':!', ':&' and ','); install ansible-core for the full pattern syntax"
        )
    for term in split_pattern(pattern):
        body = term[1:] if term[0] in "!&" else term
        if not body or body[0] in "!&":
            raise InventoryError(f"--limit {pattern!r}: {term!r} is not a host or group pattern")


def select_hosts(inventory: Inventory, pattern: str) -> set[str]:
    """The hosts of ``inventory`` that ``pattern`` selects (see the module docstring)."""
    check_pattern(pattern)
    terms = split_pattern(pattern)
    regular = [t for t in terms if t[0] not in "!&"]
    intersect = [t[1:] for t in terms if t[0] == "&"]
    exclude = [t[1:] for t in terms if t[0] == "!"]
    chosen: set[str] = set()
    for term in regular or ["all"]:
        chosen |= _match(inventory, term)
    for term in intersect:
        chosen &= _match(inventory, term)
    for term in exclude:
        chosen -= _match(inventory, term)
    return chosen


def _match(inventory: Inventory, term: str) -> set[str]:
    """Hosts one term names: an exact host; else matching groups' hosts, plus matching host names when
    no group matched or the term is a glob (Ansible's ``_enumerate_matches``)."""
    if term in inventory.hostvars:
        return {term}
    groups = [g for g in sorted(inventory.group_names() | {"all"}) if fnmatch.fnmatchcase(g, term)]
    found: set[str] = set()
    for group in groups:
        found |= inventory.members(group)
    if not groups or any(ch in term for ch in ".?*"):
        found |= {h for h in inventory.hostvars if fnmatch.fnmatchcase(h, term)}
    return found
