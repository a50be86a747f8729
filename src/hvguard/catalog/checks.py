"""The measure → check map and each check's static metadata (``checks.yaml``), and coverage per platform.

Data, not code, like the catalog beside it: which check serves which measure, on which platforms, in
which module (under :mod:`hvguard.checks`) and with which static remediation text. The check registry
(:mod:`hvguard.checks.registry`) runs the checks in this order and refuses to run when the two disagree.
"""

from __future__ import annotations

from functools import cache

import msgspec

from hvguard.catalog import Catalog

#: The automation level of a measure that no check covers on the platform asked about.
MANUAL_ONLY = "manual-only"


class CheckMeta(msgspec.Struct, frozen=True):
    """One check's static metadata."""

    id: str
    measure: str
    module: str
    """The implementing module under ``hvguard.checks`` (``s11_2.drivers``)."""
    platforms: tuple[str, ...]
    """Platform ids the check applies to (``kvm-libvirt``, ``linux-host`` …)."""
    remediation: str | None
    """The static remediation text its failed findings carry, when it has one."""


class CheckMap(msgspec.Struct, frozen=True):
    """Every check in run order, and the measures declared manual-only with their reasons."""

    checks: tuple[CheckMeta, ...]
    manual_only: dict[str, str]

    def check(self, check_id: str) -> CheckMeta:
        """The metadata of ``check_id``; KeyError when the map has no such check."""
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)

    def for_measure(self, measure_id: str) -> tuple[CheckMeta, ...]:
        """The checks serving ``measure_id``, in run order."""
        return tuple(c for c in self.checks if c.measure == measure_id)


#: The packaged map as a caller already holds it (:func:`preload_check_map`), served instead of parsing.
_preloaded: list[CheckMap] = []


def preload_check_map(cmap: CheckMap) -> None:
    """Serve ``cmap`` — the packaged map, as loaded earlier and kept (the guard hook's compiled policy) —
    from :func:`load_check_map` in this process instead of parsing ``checks.yaml`` again."""
    _preloaded[:] = [cmap]


def load_check_map() -> CheckMap:
    """The packaged ``checks.yaml`` (parsed once per process: it never changes while running)."""
    if _preloaded:
        return _preloaded[0]
    return _parse_check_map()


@cache
def _parse_check_map() -> CheckMap:
    # Imported here: the guard hook's compiled path never parses YAML (start-up of every VM start).
    from importlib import resources

    from hvguard.yamlsafe import load_yaml

    text = resources.files(__package__).joinpath("checks.yaml").read_text(encoding="utf-8")
    raw = load_yaml(text, "builtin:checks.yaml")
    checks = tuple(
        CheckMeta(
            id=str(c["id"]),
            measure=str(c["measure"]),
            module=str(c["module"]),
            platforms=tuple(str(p) for p in c["platforms"]),
            remediation=c.get("remediation"),
        )
        for c in raw["checks"]
    )
    manual = {str(m["measure"]): str(m["reason"]) for m in raw.get("manual_only") or []}
    return CheckMap(checks=checks, manual_only=manual)


def static_remediation(check_id: str) -> str:
    """The static remediation text of ``check_id``; KeyError when it has none."""
    text = load_check_map().check(check_id).remediation
    if text is None:
        raise KeyError(f"{check_id} has no static remediation")
    return text


class CoverageRow(msgspec.Struct, frozen=True):
    """How far hvguard automates one measure (on one platform, or on any)."""

    measure: str
    title: str
    checks: tuple[str, ...]
    """Ids of the checks that serve it on the platform asked about."""
    platforms: tuple[str, ...]
    """Platforms on which at least one of its checks applies (all, sorted)."""
    automation: str
    """The catalog's level (``full``, ``partial``, ``attestation``) when a check serves the measure,
    else ``manual-only``: the engine then reports it ``manual`` with the evidence an auditor needs."""


def coverage(catalog: Catalog, platform: str | None, check_map: CheckMap | None = None) -> list[CoverageRow]:
    """Per measure of ``catalog`` in document order: its checks on ``platform`` (any platform when None),
    the platforms its checks cover, and its automation level.

    This is what ``hvguard catalog --coverage [--format json]`` shows (one row per measure)."""
    cmap = check_map or load_check_map()
    rows: list[CoverageRow] = []
    for m in catalog.measures:
        serving = cmap.for_measure(m.id)
        on_platform = tuple(c.id for c in serving if platform is None or platform in c.platforms)
        platforms = tuple(sorted({p for c in serving for p in c.platforms}))
        automated = bool(on_platform) and m.id not in cmap.manual_only
        rows.append(
            CoverageRow(
                measure=m.id,
                title=m.title,
                checks=on_platform,
                platforms=platforms,
                automation=m.automation if automated else MANUAL_ONLY,
            )
        )
    return rows
