"""pyVmomi values → plain data (dicts, lists, strings, numbers) for facts and bundles.

A data object becomes a dict of its set fields plus ``_typeName`` (its WSDL type, e.g. ``VirtualDisk``,
the shape :mod:`hvguard.collect.vsphere.resources` reads); a managed object reference becomes
``"Type:moid"`` (``"HostSystem:host-21"``); times become ISO 8601 text; binary values become hex. Nothing
here talks to the server: a reference is never followed.
"""

from __future__ import annotations

import datetime
from typing import Any


def moref(obj: Any) -> str:
    """``Type:moid`` of a managed object reference (``VirtualMachine:vm-42``)."""
    return f"{obj._wsdlName}:{obj._moId}"


def plain(value: Any) -> Any:
    """``value`` as plain data (see the module docstring)."""
    from pyVmomi.VmomiSupport import DataObject, ManagedObject

    if value is None or isinstance(value, bool | str | float):
        return value
    if isinstance(value, int):
        return int(value)  # pyVmomi's long/short/byte are int subclasses
    if isinstance(value, ManagedObject):
        return moref(value)
    if isinstance(value, DataObject):
        out: dict[str, Any] = {"_typeName": value._wsdlName}
        for prop in value._GetPropertyList():
            field = getattr(value, prop.name, None)
            if field is None or (isinstance(field, list) and not field):
                continue
            out[prop.name] = plain(field)
        return out
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, type):  # vmodl.TypeName / a type
        return getattr(value, "_wsdlName", value.__name__)
    return str(value)
