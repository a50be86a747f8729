"""The items a drift report is made of: one differing value, one subject that could not be read.

Their own module so the platform modules that compute drift (:mod:`hvguard.baseline.vsphere`) and
:mod:`hvguard.baseline.drift`, which calls them, need not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DriftItem:
    """One value that differs: ``expected`` is the baseline's (None: must be unset), ``actual`` the
    target's (None: unset or absent)."""

    subject: str
    path: str
    expected: Any
    actual: Any
    vm_class: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of the contract (``class`` only for VMs)."""
        out: dict[str, Any] = {
            "subject": self.subject,
            "path": self.path,
            "expected": self.expected,
            "actual": self.actual,
        }
        if self.vm_class is not None:
            out["class"] = self.vm_class
        return out


@dataclass(frozen=True)
class DriftError:
    """A subject the baseline governs but whose settings could not be read (never counted as no drift)."""

    subject: str
    message: str
