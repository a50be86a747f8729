"""Which VM class of a baseline governs which VM.

Classes are tried in file order and the first whose ``match`` holds wins (like firewall rules: the
order in the file is the precedence, visible to any reader). Every further class that also matches is
reported as a warning, so an overlap is never silent. A VM no class matches is not governed: hvguard
neither checks nor changes it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from msgspec import UNSET

from hvguard.baseline.schema import VmClass

#: Metadata tags live under this prefix in ``VmFacts.metadata_tags`` (see collect/libvirt/domain_xml.py).
TAG_PREFIX = "hvguard."

_GLOB_CHARS = frozenset("*?[")


def matches(cls: VmClass, name: str, tags: Mapping[str, str]) -> bool:
    """True when ``cls.match`` holds for a VM called ``name`` with metadata ``tags``."""
    m = cls.match
    if isinstance(m.name, str) and not fnmatch.fnmatchcase(name, m.name):
        return False
    if isinstance(m.metadata, dict):
        for key, want in m.metadata.items():
            if tags.get(f"{TAG_PREFIX}{key}") != want:
                return False
    return True


def exact_name(cls: VmClass) -> str | None:
    """The one VM name a class names without a pattern or tags (it must then exist), else None."""
    m = cls.match
    if m.metadata is UNSET and isinstance(m.name, str) and not (_GLOB_CHARS & set(m.name)):
        return m.name
    return None


@dataclass(frozen=True)
class Assignment:
    """The class governing one VM (None: not governed) and the later classes that matched too."""

    vm: str
    vm_class: VmClass | None
    shadowed: tuple[str, ...] = ()

    def warning(self) -> str | None:
        """A one-line lint warning when more than one class matched."""
        if self.vm_class is None or not self.shadowed:
            return None
        return (
            f"vm:{self.vm} matches classes {self.vm_class.name!r} and {', '.join(map(repr, self.shadowed))}: "
            f"the first ({self.vm_class.name!r}) applies"
        )


class Matcher:
    """First-match assignment for many VMs: exact-name classes (what ``capture`` writes) are looked up
    by name instead of being tried one by one, so 1000 VMs × 1000 classes stays linear."""

    def __init__(self, classes: Sequence[VmClass]) -> None:
        self.classes = list(classes)
        self._exact: dict[str, list[int]] = {}
        self._other: list[int] = []
        for i, cls in enumerate(self.classes):
            name = exact_name(cls)
            if name is None:
                self._other.append(i)
            else:
                self._exact.setdefault(name, []).append(i)

    def assign(self, name: str, tags: Mapping[str, str]) -> Assignment:
        """The governing class of one VM: first match in file order."""
        candidates = sorted([*self._exact.get(name, []), *self._other])
        hits = [self.classes[i] for i in candidates if matches(self.classes[i], name, tags)]
        if not hits:
            return Assignment(vm=name, vm_class=None)
        return Assignment(vm=name, vm_class=hits[0], shadowed=tuple(c.name for c in hits[1:]))


def assign(classes: Sequence[VmClass], name: str, tags: Mapping[str, str]) -> Assignment:
    """The governing class of one VM: first match in file order."""
    return Matcher(classes).assign(name, tags)


def exact_pattern(name: str) -> str:
    """A shell pattern matching exactly ``name`` (``*``, ``?`` and ``[`` bracketed)."""
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in name)
