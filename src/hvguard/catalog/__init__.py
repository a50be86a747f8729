"""The SS-009 catalog: the standard's 36 measures as data (``ss009.yaml``) and a typed loader."""

from __future__ import annotations

from functools import cache

import msgspec


class Measure(msgspec.Struct, frozen=True):
    """One SS-009 measure as the standard words it, plus hvguard's reading of it."""

    id: str
    section: str
    title: str
    text: str
    nist: tuple[str, ...]
    modality: str
    """``must``, ``should`` or ``conditional`` — as worded in the standard."""
    automation: str
    """``full``, ``partial`` or ``attestation``: how far facts alone can decide it."""
    advisory_preamble: bool
    """True for 11.3.x, whose preamble calls them "advisory measures where appropriate"."""
    notes: str
    manual_evidence: str
    """What an auditor needs to see where facts cannot decide."""


class Catalog(msgspec.Struct, frozen=True):
    """The whole standard: identity, section titles and the measures in document order."""

    id: str
    title: str
    version: str
    date: str
    framework: str
    sections: dict[str, str]
    measures: tuple[Measure, ...]

    def measure(self, measure_id: str) -> Measure:
        """The measure with this id; KeyError if the standard has none."""
        for m in self.measures:
            if m.id == measure_id:
                return m
        raise KeyError(measure_id)

    @property
    def ids(self) -> tuple[str, ...]:
        """Measure ids in document order."""
        return tuple(m.id for m in self.measures)


@cache
def load_catalog() -> Catalog:
    """Load the packaged SS-009 catalog (cached: it never changes while running)."""
    # Imported here: the guard hook's compiled path never parses YAML (start-up of every VM start).
    from importlib import resources

    from hvguard.yamlsafe import load_yaml

    text = resources.files(__package__).joinpath("ss009.yaml").read_text(encoding="utf-8")
    raw = load_yaml(text, "builtin:ss009.yaml")  # libyaml's loader: the pure one costs ~0.1 s per start
    head = raw["catalog"]
    measures = tuple(
        Measure(
            id=str(m["id"]),
            section=str(m["section"]),
            title=m["title"],
            text=m["text"],
            nist=tuple(m["nist"]),
            modality=m["modality"],
            automation=m["automation"],
            advisory_preamble=bool(m.get("advisory_preamble", False)),
            notes=m.get("notes", ""),
            manual_evidence=m["manual_evidence"],
        )
        for m in raw["measures"]
    )
    return Catalog(
        id=head["id"],
        title=head["title"],
        version=str(head["version"]),
        date=str(head["date"]),
        framework=head["framework"],
        sections={str(k): v for k, v in raw["sections"].items()},
        measures=measures,
    )
