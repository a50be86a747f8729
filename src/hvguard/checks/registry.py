"""Every check, in the order the engine runs them.

Which modules define checks, and the order of the checks, is data: ``hvguard/catalog/checks.yaml``
(:func:`hvguard.catalog.checks.load_check_map`). Importing a measure module registers its checks
(:func:`hvguard.checks.base.check`); this module imports them, and no measure module imports it.
"""

from __future__ import annotations

import importlib

import msgspec

from hvguard.catalog.checks import load_check_map
from hvguard.checks.base import Check, defined_checks


def registered_checks() -> list[Check]:
    """Every check, in the order of the check map, after importing the modules that define them.

    Raises ValueError when the modules register a check the map does not list, or the map lists one
    no module registers."""
    entries = load_check_map().checks
    for module in dict.fromkeys(e.module for e in entries):
        importlib.import_module(f"hvguard.checks.{module}")
    defined = defined_checks()
    listed = {e.id for e in entries}
    missing = sorted(listed - defined.keys())
    unlisted = sorted(defined.keys() - listed)
    if missing or unlisted:
        raise ValueError(f"check map and registry disagree: unregistered {missing}, unmapped {unlisted}")
    return [msgspec.structs.replace(defined[e.id], platforms=e.platforms) for e in entries]
