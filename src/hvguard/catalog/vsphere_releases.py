"""The dated list of patched vSphere builds that 11.4.8 compares ESXi hosts and vCenter against.

Data beside the catalog (``vsphere_releases.yaml``): per product (``esxi``, ``vcenter``) and release line
(``8.0``) the lowest build with the latest security patches hvguard knows of, the list's date and its
source. A profile may add or replace lines (``thresholds.vsphere_min_builds``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources

from hvguard.yamlsafe import load_yaml


@dataclass(frozen=True)
class Release:
    """The minimum patched build of one release line."""

    product: str
    line: str
    build: int
    name: str
    origin: str = "packaged"
    """``packaged`` (this file) or ``profile`` (``thresholds.vsphere_min_builds``)."""


@dataclass(frozen=True)
class ReleaseList:
    """The releases, the date the list was current and where it comes from."""

    releases: tuple[Release, ...]
    as_of: date
    source: str

    def minimum(self, product: str, line: str) -> Release | None:
        """The release of ``product`` on ``line`` (the last entry wins: a profile's replaces the packaged)."""
        found = None
        for r in self.releases:
            if r.product == product and r.line == line:
                found = r
        return found

    def with_overrides(self, entries: tuple[str, ...], as_of: str) -> ReleaseList:
        """This list with the profile's ``PRODUCT LINE BUILD`` entries added after it (so they win), dated
        ``as_of`` when given. ValueError on an entry that does not parse."""
        extra = []
        for entry in entries:
            parts = entry.split()
            if len(parts) != 3 or parts[0] not in ("esxi", "vcenter") or not parts[2].isdigit():
                raise ValueError(
                    f"vsphere_min_builds entry {entry!r}: want 'esxi|vcenter LINE BUILD', e.g. 'esxi 8.0 "
                    "24674464'"
                )
            extra.append(
                Release(parts[0], parts[1], int(parts[2]), f"{parts[0]} {parts[1]} (profile)", "profile")
            )
        day = date.fromisoformat(as_of) if as_of else self.as_of
        return ReleaseList(
            (*self.releases, *extra),
            day,
            self.source + ("; profile thresholds.vsphere_min_builds" if extra else ""),
        )


@cache
def packaged_releases() -> ReleaseList:
    """The packaged list (cached: it never changes while running)."""
    text = resources.files(__package__).joinpath("vsphere_releases.yaml").read_text(encoding="utf-8")
    raw = load_yaml(text, "builtin:vsphere_releases.yaml")
    releases = tuple(
        Release(str(r["product"]), str(r["line"]), int(r["build"]), str(r["name"])) for r in raw["releases"]
    )
    return ReleaseList(releases, date.fromisoformat(str(raw["as_of"])), " ".join(str(raw["source"]).split()))
