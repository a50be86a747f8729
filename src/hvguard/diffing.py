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


def diff_values(
    old: Any,
    new: Any,
    *,
    path: str = "",
    list_keys: Sequence[str] = ("name", "id", "target", "mac", "path"),
    ignore: Callable[[str], bool] | None = None,
) -> list[Change]:
    """Every leaf that differs between ``old`` and ``new`` (plain data: dicts, lists, scalars).

    Lists of mappings that carry an identifying key (``list_keys``, first found) are matched by that key
    (``vms[web1]``) so an insertion does not show as every later element changing; other lists are
    compared by position. ``ignore(path)`` drops paths (e.g. timestamps).
    """
    return list(_walk(old, new, path, tuple(list_keys), ignore))


def _walk(
    old: Any, new: Any, path: str, keys: tuple[str, ...], ignore: Callable[[str], bool] | None
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
            yield from _walk(old.get(k, _MISSING), new.get(k, _MISSING), sub, keys, ignore)
        return
    if isinstance(old, list) and isinstance(new, list):
        old_keys = [_key_of(i, keys) for i in old]
        new_keys = [_key_of(i, keys) for i in new]
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
                    by_old.get(k, _MISSING), by_new.get(k, _MISSING), f"{path}[{k}]", keys, ignore
                )
            return
        for i in range(max(len(old), len(new))):
            yield from _walk(
                old[i] if i < len(old) else _MISSING,
                new[i] if i < len(new) else _MISSING,
                f"{path}[{i}]",
                keys,
                ignore,
            )
        return
    if old != new or type(old) is not type(new):
        yield Change(path, old, new, "changed")
