"""Profiles: the thresholds the checks use and the measures tailored to advisory.

The packaged ``profiles/default.yaml`` holds the documented defaults. A user profile (``--profile FILE``)
overrides any of them; every override is listed as a deviation in reports, so a loosened threshold is
never silent.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from hvguard.catalog import load_catalog


class ProfileError(ValueError):
    """A profile file that cannot be used (unreadable, malformed, unknown key, bad value)."""


@dataclass(frozen=True)
class Thresholds:
    """Numeric settings read by the checks; defaults are documented in ``profiles/default.yaml``."""

    memory_overcommit_pass_max: float = 1.0
    memory_overcommit_warn_max: float = 1.5
    memory_overcommit_scope: str = "defined"
    vcpu_extra_reserved_cores: int = 0
    patch_max_age_days: int = 14


@dataclass(frozen=True)
class Profile:
    """A named set of thresholds plus advisory tailoring, and where it deviates from the defaults."""

    name: str = "default"
    description: str = ""
    source: str = "builtin:default"
    thresholds: Thresholds = field(default_factory=Thresholds)
    advisory: frozenset[str] = frozenset()
    deviations: tuple[str, ...] = ()

    @property
    def tailored(self) -> bool:
        """True when anything differs from the packaged default profile."""
        return bool(self.deviations)

    def to_json(self) -> dict[str, Any]:
        """The profile as it appears in the JSON report."""
        return {
            "name": self.name,
            "source": self.source,
            "thresholds": {f.name: getattr(self.thresholds, f.name) for f in fields(Thresholds)},
            "advisory": sorted(self.advisory),
            "tailored": self.tailored,
            "deviations": list(self.deviations),
        }


_THRESHOLD_TYPES: dict[str, type] = {f.name: type(getattr(Thresholds(), f.name)) for f in fields(Thresholds)}
_ALLOWED_SCOPES = {"defined", "running"}


def _coerce(key: str, value: Any) -> Any:
    want = _THRESHOLD_TYPES[key]
    if want is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if want is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if want is str and isinstance(value, str):
        return value
    raise ProfileError(f"threshold {key!r} must be {want.__name__}, got {value!r}")


def _build(raw: Any, source: str, base: Profile | None) -> Profile:
    if not isinstance(raw, dict):
        raise ProfileError(f"{source}: a profile is a mapping with 'thresholds' and 'advisory'")
    unknown = set(raw) - {"name", "description", "thresholds", "advisory"}
    if unknown:
        raise ProfileError(f"{source}: unknown key(s) {', '.join(sorted(unknown))}")
    defaults = base.thresholds if base else Thresholds()
    values = {f.name: getattr(defaults, f.name) for f in fields(Thresholds)}
    given = raw.get("thresholds") or {}
    if not isinstance(given, dict):
        raise ProfileError(f"{source}: 'thresholds' must be a mapping")
    deviations: list[str] = []
    for key, value in given.items():
        if key not in _THRESHOLD_TYPES:
            raise ProfileError(f"{source}: unknown threshold {key!r}")
        new = _coerce(key, value)
        if base is not None and new != values[key]:
            deviations.append(f"threshold {key}: {values[key]} → {new}")
        values[key] = new
    th = Thresholds(**values)
    if th.memory_overcommit_scope not in _ALLOWED_SCOPES:
        raise ProfileError(f"{source}: memory_overcommit_scope must be one of {sorted(_ALLOWED_SCOPES)}")
    if not 0 < th.memory_overcommit_pass_max <= th.memory_overcommit_warn_max:
        raise ProfileError(f"{source}: need 0 < memory_overcommit_pass_max <= memory_overcommit_warn_max")
    if th.vcpu_extra_reserved_cores < 0 or th.patch_max_age_days < 0:
        raise ProfileError(f"{source}: vcpu_extra_reserved_cores and patch_max_age_days must be >= 0")
    advisory_raw = raw.get("advisory") or []
    if not isinstance(advisory_raw, list):
        raise ProfileError(f"{source}: 'advisory' must be a list of measure ids")
    ids = set(load_catalog().ids)
    advisory = frozenset(str(a) for a in advisory_raw)
    bad = sorted(advisory - ids)
    if bad:
        raise ProfileError(f"{source}: 'advisory' names unknown measure(s) {', '.join(bad)}")
    if base is not None:
        deviations += [f"advisory: {m} (fail reported as warn)" for m in sorted(advisory - base.advisory)]
    return Profile(
        name=str(raw.get("name", base.name if base else "default")),
        description=str(raw.get("description", "")),
        source=source,
        thresholds=th,
        advisory=advisory | (base.advisory if base else frozenset()),
        deviations=tuple(deviations),
    )


def default_profile() -> Profile:
    """The packaged default profile."""
    text = resources.files("hvguard").joinpath("profiles/default.yaml").read_text(encoding="utf-8")
    return _build(yaml.safe_load(text), "builtin:default", None)


def load_profile(path: Path | None) -> Profile:
    """The default profile, overridden by the file at ``path`` when given."""
    base = default_profile()
    if path is None:
        return base
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"cannot read profile {path}: {exc.strerror or exc}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ProfileError(f"profile {path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    return _build(raw, str(path), base)
