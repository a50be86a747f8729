"""Bring facts written by an older hvguard up to this one's model (``FACTS_VERSION``).

One place for every reader of stored facts — offline bundles (``collect.bundle``) and the scan history
(``history.store``) — so a migrated target is exactly what a fresh collection would have produced from
the same source.

Version 2 → 3 only adds platform-neutral facts derived from version-2 fields (``VmFacts.resources``,
``HypervisorFacts.controls_offered``; every version-2 hypervisor is a libvirt connection), so a
version-2 document decodes into the version-3 structs as-is and the derived parts are computed with the
collector's own pure functions. Versions before 2 lack whole fact groups and cannot be migrated.
"""

from __future__ import annotations

import msgspec

from hvguard.collect.libvirt.resources import with_neutral_facts
from hvguard.facts import FACTS_VERSION, OLDEST_READABLE_FACTS_VERSION, TargetFacts


def can_migrate(version: int | None) -> bool:
    """True when facts of model ``version`` can be read by this hvguard (directly or migrated)."""
    return version is not None and OLDEST_READABLE_FACTS_VERSION <= version <= FACTS_VERSION


def readable_versions() -> str:
    """The versions this hvguard reads, for messages: ``versions 2 and 3``, or ``version 3``."""
    versions = [str(v) for v in range(OLDEST_READABLE_FACTS_VERSION, FACTS_VERSION + 1)]
    if len(versions) == 1:
        return f"version {versions[0]}"
    return "versions " + ", ".join(versions[:-1]) + " and " + versions[-1]


def migrate_target(target: TargetFacts, version: int) -> TargetFacts:
    """``target``, decoded from facts model ``version``, as this hvguard's model would have it.

    :raises ValueError: when ``version`` cannot be migrated (see :func:`can_migrate`).
    """
    if not can_migrate(version):
        raise ValueError(f"facts model version {version} cannot be migrated to {FACTS_VERSION}")
    if version < 3:
        target = msgspec.structs.replace(target, hypervisor=with_neutral_facts(target.hypervisor))
    return target
