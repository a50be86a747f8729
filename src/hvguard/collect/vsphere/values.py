"""Small readers of plain data (:mod:`hvguard.collect.vsphere.plain`) shared by the vSphere collectors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def dig(value: Any, path: str) -> Any:
    """``value["a"]["b"]`` for ``"a.b"``; None where a step is missing or not a mapping."""
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def items(value: Any) -> list[Mapping[str, Any]]:
    """The mappings in a list value (anything else dropped)."""
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def text(value: Any) -> str | None:
    """A non-empty string, else None."""
    return "".join(value) if isinstance(value, str) and value else None


def integer(value: Any) -> int | None:
    """An int (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def boolean(value: Any) -> bool | None:
    """A bool, else None."""
    return value if isinstance(value, bool) else None


def strings(value: Any) -> list[str]:
    """The strings of a list value."""
    return [str(v) for v in value if isinstance(v, str)] if isinstance(value, list) else []
