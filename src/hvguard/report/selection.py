"""Selection filters (``--measure``, ``--skip-measure``, ``--vm``, ``--skip-host``, ``--status``): which
findings a report shows.

A selection cuts what is displayed and exported, never what is evaluated: the evaluation stays complete
(every check ran, the history stores every finding, ``summary`` rolls up every finding and keeps all 36
measures), the report's ``results`` hold the selected findings only, its ``selection`` block records the
filters, and the exit code follows the selected findings.

:class:`SelectedEvaluation` is an :class:`~hvguard.engine.Evaluation` that carries its selection to the
report builder, so every format — including ones added later — honours it without knowing about it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cached_property

import msgspec

from hvguard.catalog import Catalog
from hvguard.engine import FAIL_ON_LEVELS, Evaluation
from hvguard.findings import Finding, Status

#: The prefix of a VM subject (``vm:NAME``); every other subject (``host``, ``host:NAME``, ``vcenter``)
#: is a host-level finding for ``--vm`` and ``--skip-host``.
VM_PREFIX = "vm:"


class SelectionError(ValueError):
    """A filter value that names nothing (an unknown measure, section or status)."""


def measure_key(value: str, catalog: Catalog) -> str:
    """``value`` checked as a measure id (``11.3.10``) or a section id (``11.3``) of ``catalog``."""
    key = value.strip()
    if key in catalog.sections or key in catalog.ids:
        return key
    raise SelectionError(f"unknown measure or section {value!r} (hvguard catalog lists them)")


def parse_statuses(values: Iterable[str]) -> tuple[Status, ...]:
    """Statuses from comma-separated lists (``fail,error``), each once, in the order first named."""
    out: list[Status] = []
    for value in values:
        for item in value.split(","):
            name = item.strip().lower()
            if not name:
                continue
            try:
                status = Status(name)
            except ValueError:
                known = ", ".join(s.value for s in Status)
                raise SelectionError(f"unknown status {item.strip()!r} (one of: {known})") from None
            if status not in out:
                out.append(status)
    return tuple(out)


def _covers(keys: Iterable[str], measure: str, section: str) -> bool:
    return any(k in (measure, section) for k in keys)


def measure_selected(measure: str, section: str, measures: Iterable[str], skip: Iterable[str]) -> bool:
    """Whether ``measure`` (of ``section``) passes ``--measure``/``--skip-measure`` (ids or sections)."""
    measures = tuple(measures)
    return (not measures or _covers(measures, measure, section)) and not _covers(skip, measure, section)


def subject_selected(subject: str, vms: Iterable[str], skip_host: bool) -> bool:
    """Whether ``subject`` passes ``--vm``/``--skip-host``: a VM whose name matches one glob (all VMs
    without ``--vm``); a host-level subject unless ``--skip-host``."""
    if not subject.startswith(VM_PREFIX):
        return not skip_host
    globs = tuple(vms)
    name = subject[len(VM_PREFIX) :]
    return not globs or any(fnmatchcase(name, g) for g in globs)


@dataclass(frozen=True)
class Selection:
    """The filters of one report; empty filters select everything."""

    measures: tuple[str, ...] = ()
    """``--measure``: measure or section ids; a finding's measure must be one of them or in one."""
    skip_measures: tuple[str, ...] = ()
    """``--skip-measure``: measure or section ids whose findings are left out."""
    vms: tuple[str, ...] = ()
    """``--vm``: shell globs over VM names; VM findings of other VMs are left out."""
    skip_host: bool = False
    """``--skip-host``: leave out every finding that is not about a VM."""
    statuses: tuple[Status, ...] = ()
    """``--status``: the statuses shown (all without it)."""

    @property
    def active(self) -> bool:
        """True when any filter is set."""
        return bool(self.measures or self.skip_measures or self.vms or self.skip_host or self.statuses)

    def keeps(self, finding: Finding, section: str) -> bool:
        """Whether ``finding`` (of a measure in ``section``) is shown."""
        return (
            (not self.statuses or finding.status in self.statuses)
            and measure_selected(finding.measure, section, self.measures, self.skip_measures)
            and subject_selected(finding.subject, self.vms, self.skip_host)
        )

    def apply(self, findings: Iterable[Finding], catalog: Catalog) -> tuple[Finding, ...]:
        """The findings this selection shows, in their order."""
        sections = {m.id: m.section for m in catalog.measures}
        return tuple(f for f in findings if self.keeps(f, sections.get(f.measure, "")))


class SelectedEvaluation(Evaluation, frozen=True, dict=True):
    """A complete evaluation plus the selection its reports apply (see the module notes)."""

    selection: Selection = msgspec.field(default_factory=Selection)
    """The filters; ``findings`` stays every finding."""
    generated_at: str | None = None
    """The one ``generated_at`` stamp of every report of this run (ISO 8601, UTC, ``Z``), so the outputs
    of one run agree; None: each report is stamped when it is built."""

    @cached_property
    def shown(self) -> tuple[Finding, ...]:
        """The findings the selection keeps (computed once)."""
        return self.selection.apply(self.findings, self.catalog)

    def exit_code(self, fail_on: str) -> int:
        """The exit code over the selected findings (0 or 1, the CLI contract)."""
        levels = FAIL_ON_LEVELS[fail_on]
        return 1 if any(f.status in levels for f in self.shown) else 0


def select(ev: Evaluation, selection: Selection, *, generated_at: str | None = None) -> SelectedEvaluation:
    """``ev`` with ``selection`` (and the run's report stamp) attached, every field of ``ev`` kept."""
    fields = {name: getattr(ev, name) for name in Evaluation.__struct_fields__}
    return SelectedEvaluation(**fields, selection=selection, generated_at=generated_at)


def shown_findings(ev: Evaluation) -> tuple[Finding, ...]:
    """The findings a report of ``ev`` shows: its selection's, or all of them."""
    return ev.shown if isinstance(ev, SelectedEvaluation) else ev.findings


def generated_at_of(ev: Evaluation) -> str | None:
    """The run's report stamp of ``ev``, None when each report stamps itself."""
    return ev.generated_at if isinstance(ev, SelectedEvaluation) else None


def selection_of(ev: Evaluation) -> Selection:
    """The selection of ``ev`` (empty for a plain evaluation)."""
    return ev.selection if isinstance(ev, SelectedEvaluation) else Selection()
