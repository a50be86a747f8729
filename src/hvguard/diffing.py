"""Value-level differences between two nested values (facts, settings): which path changed from what to
what. Used wherever hvguard tells a person what changed (scan diff, baseline drift, watch notifications)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_MISSING: Any = object()


@dataclass(frozen=True)
class Change:
    """One changed value: ``path`` like ``vms[web1].cputune.quota``; ``old``/``new`` are None when the
    value was added/removed (``kind`` says which)."""

    path: str
    old: Any
    new: Any
    kind: str
    """``changed``, ``added`` or ``removed``."""


def _key_of(item: Any, keys: Sequence[str]) -> str | None:
    if isinstance(item, Mapping):
        for k in keys:
            v = item.get(k)
            if isinstance(v, str | int) and v != "":
                return str(v)
    return None


def _identity(
    path: str, item: Any, keys: Sequence[str], key_of: Callable[[str, Any], str | None] | None
) -> str | None:
    custom = key_of(path, item) if key_of is not None else None
    return custom if custom is not None else _key_of(item, keys)


def diff_values(
    old: Any,
    new: Any,
    *,
    path: str = "",
    list_keys: Sequence[str] = ("name", "id", "target", "mac", "path"),
    ignore: Callable[[str], bool] | None = None,
    key_of: Callable[[str, Any], str | None] | None = None,
) -> list[Change]:
    """Every leaf that differs between ``old`` and ``new`` (plain data: dicts, lists, scalars).

    Lists of mappings that carry an identifying key (``list_keys``, first found) are matched by that key
    (``vms[web1]``) so an insertion does not show as every later element changing; other lists are
    compared by position. ``ignore(path)`` drops paths (e.g. timestamps). ``key_of(list_path, item)``
    names an item's identity where ``list_keys`` cannot (problems by area and source); None falls back
    to ``list_keys``.
    """
    return list(_walk(old, new, path, tuple(list_keys), ignore, key_of))


def _walk(
    old: Any,
    new: Any,
    path: str,
    keys: tuple[str, ...],
    ignore: Callable[[str], bool] | None,
    key_of: Callable[[str, Any], str | None] | None = None,
) -> Iterator[Change]:
    if ignore is not None and path and ignore(path):
        return
    if old is _MISSING:
        yield Change(path, None, new, "added")
        return
    if new is _MISSING:
        yield Change(path, old, None, "removed")
        return
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for k in list(old) + [k for k in new if k not in old]:
            sub = f"{path}.{k}" if path else str(k)
            yield from _walk(old.get(k, _MISSING), new.get(k, _MISSING), sub, keys, ignore, key_of)
        return
    if isinstance(old, list) and isinstance(new, list):
        old_keys = [_identity(path, i, keys, key_of) for i in old]
        new_keys = [_identity(path, i, keys, key_of) for i in new]
        keyed = (
            all(k is not None for k in old_keys + new_keys)
            and len(set(old_keys)) == len(old_keys)
            and len(set(new_keys)) == len(new_keys)
        )
        if keyed:
            by_old = dict(zip(old_keys, old, strict=True))
            by_new = dict(zip(new_keys, new, strict=True))
            for k in [*old_keys, *[k for k in new_keys if k not in by_old]]:
                assert k is not None
                yield from _walk(
                    by_old.get(k, _MISSING), by_new.get(k, _MISSING), f"{path}[{k}]", keys, ignore, key_of
                )
            return
        for i in range(max(len(old), len(new))):
            yield from _walk(
                old[i] if i < len(old) else _MISSING,
                new[i] if i < len(new) else _MISSING,
                f"{path}[{i}]",
                keys,
                ignore,
                key_of,
            )
        return
    if old != new or type(old) is not type(new):
        yield Change(path, old, new, "changed")
