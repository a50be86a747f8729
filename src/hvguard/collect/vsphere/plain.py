"""pyVmomi values → plain data (dicts, lists, strings, numbers) for facts and bundles.

A data object becomes a dict of its set fields plus ``_typeName`` (its WSDL type, e.g. ``VirtualDisk``,
the shape :mod:`hvguard.collect.vsphere.resources` reads); a managed object reference becomes its
managed-object id (``"host-21"``: unique within one server, the form the facts' areas use); times
become ISO 8601 text; binary values become hex. Nothing here talks to the server: a reference is never
followed.
"""

from __future__ import annotations

import datetime
from typing import Any


def moref(obj: Any) -> str:
    """The managed-object id of a reference (``vm-42``)."""
    return str(obj._moId)


#: Field names per data-object class: pyVmomi builds the property list on every call, and a 1,000-VM
#: read converts about 180,000 values.
_FIELDS: dict[type, tuple[str, ...]] = {}
_PRIMITIVE = frozenset({str, int, float, bool, type(None)})


def _fields(kind: type, value: Any) -> tuple[str, ...]:
    names = _FIELDS.get(kind)
    if names is None:
        names = _FIELDS[kind] = tuple(prop.name for prop in value._GetPropertyList())
    return names


def plain(value: Any) -> Any:
    """``value`` as plain data (see the module docstring)."""
    from pyVmomi.VmomiSupport import DataObject, ManagedObject

    kind = type(value)
    if kind in _PRIMITIVE:
        return value  # exact built-in types: nothing to convert (the common case)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return "".join(value)  # a plain str: pyVmomi's enum values are str subclasses
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        return int(value)  # pyVmomi's long/short/byte are int subclasses
    if isinstance(value, ManagedObject):
        return moref(value)
    if isinstance(value, DataObject):
        out: dict[str, Any] = {"_typeName": value._wsdlName}
        for name in _fields(kind, value):
            field = getattr(value, name, None)
            if field is None or (isinstance(field, list) and not field):
                continue
            out[name] = plain(field)
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
