"""The text ``hvguard collect --dry-run vsphere://…`` prints: every API call and property path the
vSphere collector may use, assembled from the collector modules' declarations (so it cannot drift)."""

from __future__ import annotations

from collections.abc import Iterable

from hvguard.collect.vsphere.collector import ALL_CALLS
from hvguard.collect.vsphere.target import parse_vsphere_target


def describe_calls(targets: Iterable[str]) -> str:
    """Every vSphere API call, object and property path hvguard may use, for ``targets``."""
    out = [
        "hvguard vSphere manifest: every API call and property path hvguard uses on an ESXi host or a "
        "vCenter.",
        "All of it is read-only (PropertyCollector reads, Query*/Retrieve* calls, REST GETs). Nothing is "
        "changed.",
        "",
        "Targets (a dry run contacts none of them):",
    ]
    for target in targets:
        parsed = parse_vsphere_target(target)
        out.append(f"  {target}  (user {parsed.user} at {parsed.host}:{parsed.port})")
    out.append("")
    for call in ALL_CALLS:
        out.append(f"{call.method} on {call.on}" + (f"  -- {call.why}" if call.why else ""))
        out += [f"    {path}" for path in call.paths]
    return "\n".join(out) + "\n"
