"""Every check, in the order the engine runs them.

Importing a measure module registers its checks (:func:`hvguard.checks.base.check`); this module
imports them, and nothing the measure modules import ever imports this one.
"""

from __future__ import annotations

import importlib

from hvguard.checks.base import Check, defined_checks

_MODULES = ("s11_1", "s11_2", "s11_3", "s11_4")


def registered_checks() -> list[Check]:
    """Every check, after importing the modules that define them."""
    for name in _MODULES:
        importlib.import_module(f"hvguard.checks.{name}")
    return list(defined_checks().values())
