"""Profiles: the thresholds the checks use, the measures tailored to advisory, and modality overrides.

The packaged ``profiles/default.yaml`` holds the documented defaults. A user profile (``--profile FILE``)
overrides any of them; every override is listed as a deviation in reports (with its direction —
loosened or tightened — and the measures it affects), and the engine notes every finding that passes
only because of a loosened threshold, so a loosened threshold is never silent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from hvguard.catalog import load_catalog


class ProfileError(ValueError):
    """A profile file that cannot be used (unreadable, malformed, unknown key, bad value)."""


class Thresholds(msgspec.Struct, frozen=True):
    """Numeric settings read by the checks; defaults are documented in ``profiles/default.yaml``."""

    memory_overcommit_pass_max: float = 1.0
    memory_overcommit_warn_max: float = 1.5
    memory_overcommit_scope: str = "defined"
    vcpu_extra_reserved_cores: int = 0
    patch_max_age_days: int = 14
    max_host_accounts: int = 5
    approved_host_accounts: tuple[str, ...] = ()
    firewall_allowed_ports: tuple[str, ...] = ("22/tcp", "16514/tcp")
    vsphere_min_builds: tuple[str, ...] = ()
    vsphere_min_builds_as_of: str = ""
    vsphere_release_list_max_age_days: int = 120


#: The measures whose checks read each threshold. The engine re-evaluates these measures with the
#: default thresholds to find findings that pass only because a threshold was loosened; a threshold
#: missing here makes it re-evaluate every measure (correct, only slower).
THRESHOLD_MEASURES: dict[str, tuple[str, ...]] = {
    "memory_overcommit_pass_max": ("11.3.1",),
    "memory_overcommit_warn_max": ("11.3.1",),
    "memory_overcommit_scope": ("11.3.1",),
    "vcpu_extra_reserved_cores": ("11.3.3",),
    "patch_max_age_days": ("11.4.8",),
    "max_host_accounts": ("11.2.4",),
    "approved_host_accounts": ("11.2.4", "11.2.5"),
    "firewall_allowed_ports": ("11.4.9", "11.4.12"),
    "vsphere_min_builds": ("11.4.8",),
    "vsphere_min_builds_as_of": ("11.4.8",),
    "vsphere_release_list_max_age_days": ("11.4.8",),
}

#: For each threshold, whether moving from the default (first) to the new value (second) loosens it.
_LOOSENS: dict[str, Callable[[Any, Any], bool]] = {
    "memory_overcommit_pass_max": lambda old, new: new > old,
    "memory_overcommit_warn_max": lambda old, new: new > old,
    "memory_overcommit_scope": lambda old, new: old == "defined" and new == "running",
    "vcpu_extra_reserved_cores": lambda old, new: new < old,
    "patch_max_age_days": lambda old, new: new > old,
    "max_host_accounts": lambda old, new: new > old,
    "firewall_allowed_ports": lambda old, new: not set(new) <= set(old),
    "vsphere_release_list_max_age_days": lambda old, new: new > old,
}


class Deviation(msgspec.Struct, frozen=True):
    """One way a profile differs from the packaged defaults, as data (reports print ``text``)."""

    kind: str
    """``threshold``, ``advisory`` or ``modality``."""
    key: str
    """The threshold name, or the measure id for advisory/modality tailoring."""
    default: Any
    value: Any
    direction: str
    """``loosened`` (a finding can pass or warn where the defaults fail it), ``tightened`` or ``changed``."""
    measures: tuple[str, ...]
    """The measures it affects (empty when unknown: then it may affect any)."""
    text: str

    def to_json(self) -> dict[str, Any]:
        """The deviation as plain data for the JSON report."""
        return {
            "kind": self.kind,
            "key": self.key,
            "default": self.default,
            "value": self.value,
            "direction": self.direction,
            "measures": list(self.measures),
            "text": self.text,
        }


def _threshold_deviation(key: str, old: Any, new: Any) -> Deviation:
    loosens = _LOOSENS.get(key)
    direction = "changed" if loosens is None else "loosened" if loosens(old, new) else "tightened"
    measures = THRESHOLD_MEASURES.get(key, ())
    text = f"threshold {key}: {old} → {new} ({direction}; {', '.join(measures) or 'any measure'})"
    return Deviation("threshold", key, old, new, direction, measures, text)


class Profile(msgspec.Struct, frozen=True):
    """A named set of thresholds plus advisory tailoring, and where it deviates from the defaults."""

    name: str = "default"
    description: str = ""
    source: str = "builtin:default"
    thresholds: Thresholds = msgspec.field(default_factory=Thresholds)
    advisory: frozenset[str] = frozenset()
    deviations: tuple[str, ...] = ()
    modality: Mapping[str, str] = msgspec.field(default_factory=dict)
    """Modality overrides, measure id → ``must`` or ``should`` (``should`` reports a fail as warn)."""
    deviation_details: tuple[Deviation, ...] = ()
    """``deviations`` as data, in the same order."""

    @property
    def tailored(self) -> bool:
        """True when anything differs from the packaged default profile."""
        return bool(self.deviations)

    def loosened(self, measure: str) -> tuple[Deviation, ...]:
        """The loosened threshold deviations that can affect ``measure``."""
        return tuple(
            d
            for d in self.deviation_details
            if d.kind == "threshold"
            and d.direction != "tightened"
            and (not d.measures or measure in d.measures)
        )

    def is_advisory(self, measure_id: str, catalog_modality: str) -> bool:
        """True when a fail on this measure is reported as warn: the standard says "should" (unless the
        profile overrides it to "must"), or the profile tailors it to advisory."""
        override = self.modality.get(measure_id)
        if override is not None:
            return override == "should"
        return catalog_modality == "should" or measure_id in self.advisory

    def to_json(self) -> dict[str, Any]:
        """The profile as it appears in the JSON report."""
        return {
            "name": self.name,
            "source": self.source,
            "thresholds": {name: getattr(self.thresholds, name) for name in Thresholds.__struct_fields__},
            "advisory": sorted(self.advisory),
            "modality": dict(sorted(self.modality.items())),
            "tailored": self.tailored,
            "deviations": list(self.deviations),
            "deviation_details": [d.to_json() for d in self.deviation_details],
        }


#: The top-level keys of a profile file and what each holds (the JSON Schema is generated from these
#: tables and ``profiles/default.yaml``'s comments).
PROFILE_KEYS: dict[str, str] = {
    "name": "The profile's name, shown in reports.",
    "description": "What the profile is for.",
    "thresholds": "Thresholds to change from the packaged defaults; any left out keep their default.",
    "advisory": "Measure ids tailored to advisory: a fail is reported as warn (listed as a deviation).",
    "modality": "Modality overrides, measure id → must or should (cannot set must on an advisory measure).",
}
#: Each threshold's type (``float``, ``int``, ``str`` or ``tuple`` of non-empty strings), from the
#: defaults of :class:`Thresholds`.
THRESHOLD_TYPES: dict[str, type] = {
    name: type(getattr(Thresholds(), name)) for name in Thresholds.__struct_fields__
}
#: One ``firewall_allowed_ports`` entry: ``PORT[-PORT]/PROTO``.
PORT_SPEC = re.compile(r"[1-9]\d{0,4}(-[1-9]\d{0,4})?/(tcp|udp|sctp)")
#: The values of ``memory_overcommit_scope``.
OVERCOMMIT_SCOPES = ("defined", "running")
#: Text thresholds that take one of a few values.
THRESHOLD_CHOICES: dict[str, tuple[str, ...]] = {"memory_overcommit_scope": OVERCOMMIT_SCOPES}
#: Thresholds that must be above 0 (``0 < memory_overcommit_pass_max <= memory_overcommit_warn_max``).
POSITIVE_THRESHOLDS = ("memory_overcommit_pass_max", "memory_overcommit_warn_max")
#: Integer thresholds that must not be negative.
NON_NEGATIVE_THRESHOLDS = ("vcpu_extra_reserved_cores", "patch_max_age_days", "max_host_accounts")
#: The values of a ``modality:`` override.
MODALITIES = ("must", "should")


def _coerce(key: str, value: Any) -> Any:
    want = THRESHOLD_TYPES[key]
    if want is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if want is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if want is str and isinstance(value, str):
        return value
    if want is tuple and isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise ProfileError(f"threshold {key!r} must be {want.__name__}, got {value!r}")


def _build(raw: Any, source: str, base: Profile | None) -> Profile:
    if not isinstance(raw, dict):
        raise ProfileError(f"{source}: a profile is a mapping with 'thresholds' and 'advisory'")
    unknown = set(raw) - set(PROFILE_KEYS)
    if unknown:
        raise ProfileError(f"{source}: unknown key(s) {', '.join(sorted(unknown))}")
    defaults = base.thresholds if base else Thresholds()
    values = {name: getattr(defaults, name) for name in Thresholds.__struct_fields__}
    # Absent or empty (``thresholds:``) is no change; any other non-mapping, even an empty list, is
    # refused rather than ignored.
    given = raw.get("thresholds")
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ProfileError(f"{source}: 'thresholds' must be a mapping")
    deviations: list[Deviation] = []
    for key, value in given.items():
        if key not in THRESHOLD_TYPES:
            raise ProfileError(f"{source}: unknown threshold {key!r}")
        new = _coerce(key, value)
        if base is not None and new != values[key]:
            deviations.append(_threshold_deviation(key, values[key], new))
        values[key] = new
    th = Thresholds(**values)
    for key, choices in THRESHOLD_CHOICES.items():
        if getattr(th, key) not in choices:
            raise ProfileError(f"{source}: {key} must be one of {sorted(choices)}")
    if not 0 < th.memory_overcommit_pass_max <= th.memory_overcommit_warn_max:
        raise ProfileError(f"{source}: need 0 < memory_overcommit_pass_max <= memory_overcommit_warn_max")
    for key in NON_NEGATIVE_THRESHOLDS:
        if getattr(th, key) < 0:
            raise ProfileError(f"{source}: {key} must be >= 0")
    bad_ports = [p for p in th.firewall_allowed_ports if not PORT_SPEC.fullmatch(p)]
    if bad_ports:
        raise ProfileError(f"{source}: firewall_allowed_ports entries must be PORT[-PORT]/PROTO: {bad_ports}")
    advisory_raw = raw.get("advisory")
    if advisory_raw is None:
        advisory_raw = []
    if not isinstance(advisory_raw, list):
        raise ProfileError(f"{source}: 'advisory' must be a list of measure ids")
    catalog = load_catalog()
    ids = set(catalog.ids)
    advisory = frozenset(str(a) for a in advisory_raw)
    bad = sorted(advisory - ids)
    if bad:
        raise ProfileError(f"{source}: 'advisory' names unknown measure(s) {', '.join(bad)}")
    modality = _modality_overrides(raw.get("modality"), source, ids, advisory)
    if base is not None:
        for m in sorted(advisory - base.advisory):
            measure = catalog.measure(m)
            if measure.modality == "should":
                continue  # already advisory as worded: nothing changes
            deviations.append(
                Deviation(
                    "advisory",
                    m,
                    measure.modality,
                    "should",
                    "loosened",
                    (m,),
                    f"advisory: {m} (fail reported as warn{_outside_preamble(measure.advisory_preamble)})",
                )
            )
        for m, value in sorted(modality.items()):
            measure = catalog.measure(m)
            worded = "should" if measure.modality == "should" else "must"
            if value == worded:
                continue
            if value == "should":
                what = f"loosened: fail reported as warn{_outside_preamble(measure.advisory_preamble)}"
            else:
                what = "tightened: fail reported as fail, not warn"
            deviations.append(
                Deviation(
                    "modality",
                    m,
                    measure.modality,
                    value,
                    what.split(":")[0],
                    (m,),
                    f"modality {m}: {measure.modality} → {value} ({what})",
                )
            )
    return Profile(
        name=str(raw.get("name", base.name if base else "default")),
        description=str(raw.get("description", "")),
        source=source,
        thresholds=th,
        advisory=advisory | (base.advisory if base else frozenset()),
        deviations=tuple(d.text for d in deviations),
        modality=modality,
        deviation_details=tuple(deviations),
    )


def _outside_preamble(advisory_preamble: bool) -> str:
    """The caveat for advisory tailoring of a "must" the 11.3 preamble does not cover."""
    if advisory_preamble:
        return ""
    return "; SS-009 allows advisory tailoring only for 11.3 — elsewhere §5 asks for an approved exception"


def _modality_overrides(raw: Any, source: str, ids: set[str], advisory: frozenset[str]) -> dict[str, str]:
    """The profile's ``modality:`` mapping, validated (known measures, must/should, no clash with
    ``advisory``)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ProfileError(f"{source}: 'modality' must be a mapping of measure id to must or should")
    out: dict[str, str] = {}
    for key, value in raw.items():
        m = str(key)
        if m not in ids:
            hint = " (quote measure ids: '11.3.10')" if isinstance(key, float) else ""
            raise ProfileError(f"{source}: 'modality' names unknown measure {m}{hint}")
        if value not in MODALITIES:
            raise ProfileError(f"{source}: modality of {m} must be 'must' or 'should', got {value!r}")
        if value == "must" and m in advisory:
            raise ProfileError(f"{source}: {m} is both in 'advisory' and set to modality must")
        out[m] = value
    return out


def default_profile() -> Profile:
    """The packaged default profile."""
    # Imported here: the guard hook's compiled path never parses YAML (start-up of every VM start).
    from importlib import resources

    from hvguard.yamlsafe import load_yaml

    text = resources.files("hvguard").joinpath("profiles/default.yaml").read_text(encoding="utf-8")
    return _build(load_yaml(text, "builtin:default"), "builtin:default", None)


def load_profile(path: Path | None) -> Profile:
    """The default profile, overridden by the file at ``path`` when given."""
    base = default_profile()
    if path is None:
        return base
    from hvguard.yamlsafe import YamlInputError, load_yaml_file

    try:
        raw = load_yaml_file(path)
    except YamlInputError as exc:
        raise ProfileError(f"profile {exc}") from exc
    return _build(raw, str(path), base)
