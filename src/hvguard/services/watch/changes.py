"""What changed between two definitions of one VM: parsed settings (value level) and XML lines.

The value-level diff compares the parsed facts (:func:`~hvguard.collect.libvirt.domain_xml.parse_domain_xml`),
so a change reads ``cputune.shares: 1024 → 2048`` rather than a line of XML. It only covers what the
facts model parses; the unified XML diff beside it covers everything else (a changed ``<clock>``,
``<on_crash>`` …), so no change goes unreported.
"""

from __future__ import annotations

from typing import Any

import msgspec

from hvguard.collect.libvirt.domain_xml import parse_domain_xml
from hvguard.diffing import Change, diff_values
from hvguard.facts import VmFacts

#: Facts fields that describe the document or the run rather than the configuration.
_NOT_SETTINGS = frozenset({"xml_sha256", "active", "persistent", "error"})


def settings_of(vm: VmFacts) -> dict[str, Any]:
    """The VM's parsed settings as plain data, without bookkeeping fields."""
    data = msgspec.to_builtins(vm)
    assert isinstance(data, dict)
    return {k: v for k, v in data.items() if k not in _NOT_SETTINGS}


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def value_changes(old: VmFacts | None, new: VmFacts | None) -> list[dict[str, Any]]:
    """``[{path, old, new, kind}]`` between two parsed definitions (None = the VM did not exist).

    For a VM that appears or disappears, only the settings that hold a value are listed.
    """
    before = settings_of(old) if old is not None else {}
    after = settings_of(new) if new is not None else {}
    return settings_changes(before, after)


def settings_changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{path, old, new, kind}]`` between two settings mappings (any platform's VM as plain data)."""
    changes: list[Change] = diff_values(before, after)
    out: list[dict[str, Any]] = []
    for c in changes:
        if c.kind == "added" and _empty(c.new):
            continue
        if c.kind == "removed" and _empty(c.old):
            continue
        out.append({"path": c.path, "old": c.old, "new": c.new, "kind": c.kind})
    return out


def parse_canonical(xml: str | None, name: str) -> VmFacts | None:
    """Parse a stored canonical document (None stays None)."""
    return None if xml is None else parse_domain_xml(xml, name_hint=name)
