"""Build the report model from an evaluation, and what the formats render besides it.

:func:`build_report` is the one place an :class:`~hvguard.engine.Evaluation` becomes the
``hvguard.report/1`` document; :func:`report_view` adds the reference data the document names only by
id (the catalog) and the VM inventory it only counts, and is what every format renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from hvguard import __version__
from hvguard.catalog import Catalog
from hvguard.engine import Evaluation, group_rollups
from hvguard.facts import TargetFacts
from hvguard.findings import Finding, Status, Verdict
from hvguard.profile import Profile, Thresholds
from hvguard.report.common import visible
from hvguard.report.model import (
    SCHEMA,
    BundleProvenance,
    CatalogRef,
    CollectionProblem,
    Deviation,
    EntryUse,
    GroupSummary,
    HypervisorInfo,
    ProfileBlock,
    RegisterUse,
    Report,
    Result,
    SelectionBlock,
    Source,
    Summary,
    Target,
    TargetCollection,
    TargetSummary,
    Tool,
)
from hvguard.report.selection import generated_at_of, selection_of, shown_findings, subject_selected
from hvguard.workflow.usage import SourceUse

if TYPE_CHECKING:
    from hvguard.collect.bundle import BundleSource


def _target(t: TargetFacts, verdict: Verdict) -> Target:
    hv = t.hypervisor
    vs = t.vsphere
    product = vs.product if vs else None
    return Target(
        id=t.id,
        platform=t.platform,
        hostname=(t.host.hostname if t.host else None)
        or (hv.hostname if hv else None)
        or (vs.endpoint.rsplit(":", 1)[0].strip("[]") if vs else None),
        uri=hv.uri if hv else None,
        hypervisor=HypervisorInfo(
            type=hv.hypervisor_type, version=hv.hypervisor_version, libvirt=hv.libvirt_version
        )
        if hv
        else (
            HypervisorInfo(type=product.name, version=product.full_name or product.version, libvirt=None)
            if product
            else None
        ),
        vm_count=len(hv.vms) if hv else (len(vs.vms) if vs else 0),
        collected_at=t.collection.collected_at,
        collectors=t.collection.collectors,
        unreachable=t.unreachable,
        problems=[CollectionProblem(area=p.area, source=p.source, message=p.message) for p in t.problems],
        collection=TargetCollection(
            privileged=t.collection.privileged,
            unreadable=list(t.collection.unreadable),
            tls_verified=vs.tls_verified if vs else None,
        ),
        verdict=verdict,
        groups=sorted(t.groups),
    )


def _profile(p: Profile) -> ProfileBlock:
    return ProfileBlock(
        name=p.name,
        source=p.source,
        thresholds={name: getattr(p.thresholds, name) for name in Thresholds.__struct_fields__},
        advisory=sorted(p.advisory),
        modality=dict(sorted(p.modality.items())),
        tailored=p.tailored,
        deviations=list(p.deviations),
        deviation_details=[
            Deviation(
                kind=d.kind,
                key=d.key,
                default=d.default,
                value=d.value,
                direction=d.direction,
                measures=list(d.measures),
                text=d.text,
            )
            for d in p.deviation_details
        ],
    )


def _register(use: SourceUse | None) -> RegisterUse | None:
    if use is None:
        return None
    counts: dict[str, int] = {"active": 0, "expired": 0, "pending": 0}
    for e in use.entries:
        counts[e.state] = counts.get(e.state, 0) + 1
    return RegisterUse(
        path=use.path,
        sha256=use.sha256,
        entries=len(use.entries),
        by_state=counts,
        applied=sum(e.applied for e in use.entries),
        notes=use.notes,
        entry_use=[
            EntryUse(
                id=e.id,
                measure=e.measure,
                state=e.state,
                valid_from=e.valid_from,
                valid_until=e.valid_until,
                days_left=e.days_left,
                matched=e.matched,
                applied=e.applied,
                notes=list(e.notes),
            )
            for e in use.entries
        ],
    )


def _provenance(b: BundleSource) -> BundleProvenance:
    return BundleProvenance(
        path=b.path,
        sha256=b.sha256,
        created_at=b.created_at,
        tool_version=b.tool_version,
        signed_by=b.signed_by,
        targets=list(b.targets),
    )


def _source(ev: Evaluation) -> Source | None:
    bundles = ev.bundles or ((ev.bundle,) if ev.bundle is not None else ())
    if not bundles:
        return None
    return Source(
        bundle=_provenance(ev.bundle) if ev.bundle is not None else None,
        bundles=[_provenance(b) for b in bundles],
    )


def _result(f: Finding, title: str) -> Result:
    return Result(
        measure=f.measure,
        title=title,
        status=f.status,
        target=f.target,
        subject=f.subject,
        message=f.message,
        evidence=f.evidence,
        remediation=f.remediation,
        waiver=f.waiver,
        attestation=f.attestation,
        check=f.check,
        method=f.method,
        original_status=f.original_status,
        untailored_status=f.untailored_status,
        notes=f.notes,
    )


def utc_stamp() -> str:
    """Now as a report stamps it: ISO 8601, UTC, seconds, ``Z``."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _selection(ev: Evaluation, selected: int) -> SelectionBlock:
    sel = selection_of(ev)
    return SelectionBlock(
        measures=list(sel.measures),
        skip_measures=list(sel.skip_measures),
        vms=list(sel.vms),
        skip_host=sel.skip_host,
        statuses=list(sel.statuses),
        results_total=len(ev.findings),
        results_selected=selected,
    )


def build_report(ev: Evaluation) -> Report:
    """The ``hvguard.report/1`` document of ``ev``, stamped with the current time: the findings its
    selection keeps (:mod:`hvguard.report.selection`), the roll-ups of all of them."""
    titles = {m.id: m.title for m in ev.catalog.measures}
    shown = shown_findings(ev)
    return Report(
        schema=SCHEMA,
        generated_at=generated_at_of(ev) or utc_stamp(),
        tool=Tool(name="hvguard", version=__version__),
        catalog=CatalogRef(id=ev.catalog.id, version=ev.catalog.version),
        profile=_profile(ev.profile),
        as_of=ev.as_of,
        exceptions=_register(ev.exceptions_used),
        attestations=_register(ev.attestations_used),
        source=_source(ev),
        targets=[_target(t, ev.verdicts[t.id].verdict) for t in ev.targets],
        results=[_result(f, titles[f.measure]) for f in shown],
        summary=Summary(
            by_status={Status(s): n for s, n in ev.by_status.items()},
            by_measure=dict(ev.by_measure),
            by_target={
                tid: TargetSummary(
                    verdict=v.verdict,
                    by_status={Status(s): n for s, n in v.by_status.items()},
                    blocking_measures=list(v.blocking),
                )
                for tid, v in ev.verdicts.items()
            },
            not_assessed=ev.not_assessed,
            by_group={
                name: GroupSummary(
                    targets=g.targets,
                    compliant=g.compliant,
                    not_compliant=g.not_compliant,
                    not_assessed=g.not_assessed,
                    by_measure=dict(g.by_measure),
                )
                for name, g in group_rollups(ev).items()
            },
        ),
        selection=_selection(ev, len(shown)),
    )


def report_dict(ev: Evaluation) -> dict[str, Any]:
    """The report as plain data (dicts, lists, strings, numbers): :func:`build_report` for tests."""
    data: dict[str, Any] = msgspec.to_builtins(build_report(ev))
    return data


@dataclass(frozen=True)
class ReportView:
    """What every format renders: the report document plus what it names by id or only counts."""

    report: Report
    """The ``hvguard.report/1`` document — the evaluation's every verdict, roll-up and input."""
    catalog: Catalog
    """The standard's reference data the document names by measure id: titles, text, sections, order."""
    vms: tuple[tuple[str, str], ...]
    """Every VM of every target as (target id, ``vm:NAME``) in collection order — the document counts
    VMs per target, and the per-VM view lists VMs that got no per-VM finding too (with ``--vm``, the
    VMs it matches)."""

    @property
    def register_notes(self) -> list[str]:
        """Notes on the register entries (stale, expired, expiring soon …), exceptions first."""
        rep = self.report
        return [
            f"{kind} {note}"
            for kind, use in (("exceptions", rep.exceptions), ("attestations", rep.attestations))
            if use is not None
            for note in use.notes
        ]


def report_view(ev: Evaluation) -> ReportView:
    """The report of ``ev`` with its catalog and VM inventory, ready for any format."""
    sel = selection_of(ev)
    vms = tuple(
        (t.id, f"vm:{vm.name}")
        for t in ev.targets
        if t.hypervisor
        for vm in t.hypervisor.vms
        if subject_selected(f"vm:{vm.name}", sel.vms, skip_host=False)
    )
    return ReportView(report=build_report(ev), catalog=ev.catalog, vms=vms)


#: Fields whose text is several lines by design (a fix: commands, one per line); every other string is
#: one line in the human formats.
_MULTI_LINE_FIELDS = frozenset({"remediation"})


def _shown(value: Any, multiline: bool = False) -> Any:
    """``value`` with every string in it (struct fields, list items, dict keys and values) made
    terminal-safe by :func:`~hvguard.report.common.visible`; unchanged objects are returned as they are."""
    if isinstance(value, str):
        return visible(value, multiline=multiline)
    if isinstance(value, msgspec.Struct):
        changed = {}
        for name in value.__struct_fields__:
            old = getattr(value, name)
            new = _shown(old, name in _MULTI_LINE_FIELDS)
            if new is not old and new != old:
                changed[name] = new
        return msgspec.structs.replace(value, **changed) if changed else value
    if isinstance(value, list | tuple):
        items = [_shown(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        shown = {_shown(k): _shown(v) for k, v in value.items()}
        return value if shown == value else shown
    return value


def display_view(view: ReportView) -> ReportView:
    """``view`` as the human formats (table, Markdown, HTML, CSV) show it: every string from the
    targets — VM names, messages, evidence, problems — with control characters, CR/LF (outside fixes)
    and bidi controls escaped visibly, so no input can redraw, forge or reorder report lines. JSON and
    the machine formats render :func:`report_view` unchanged."""
    return ReportView(report=_shown(view.report), catalog=view.catalog, vms=_shown(view.vms))
