"""What the vSphere collectors call, declared as data, and the one guard that turns a fault into a Problem.

Each collector module lists its :class:`ApiCall` items (method, object, property paths, why);
``hvguard collect --dry-run vsphere://…`` prints them (:mod:`hvguard.collect.vsphere.manifest`), so the
list of what hvguard reads cannot drift from what it calls. Every call is read-only: no method here
changes a host, a VM or a permission.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from hvguard.collect.vsphere.connection import fault_text
from hvguard.facts import Problem

_T = TypeVar("_T")


@dataclass(frozen=True)
class ApiCall:
    """One read-only API call: ``method`` (``RetrievePropertiesEx``, ``QueryOptions``, ``GET /rest/…``),
    the object it is made on, the property paths it reads (PropertyCollector reads) and why."""

    method: str
    on: str
    paths: tuple[str, ...] = ()
    why: str = ""


def guarded_call(
    problems: list[Problem], area: str, source: str, what: str, fn: Callable[[], _T]
) -> tuple[_T | None, str | None]:
    """``fn()``, or None and the fault's one-line text: an API fault (``ManagedObjectNotFound``,
    ``MethodNotFound``, ``NotAuthenticated``, ``NoPermission`` …) or a dropped connection is recorded as
    a Problem under ``area``, never raised."""
    from pyVmomi import vmodl

    try:
        return fn(), None
    except vmodl.MethodFault as exc:
        text = fault_text(exc)
    except (OSError, http.client.HTTPException) as exc:
        text = f"connection lost: {fault_text(exc)}"
    problems.append(Problem(area=area, source=source, message=f"{what}: {text}"))
    return None, text
