"""The HTML report (``--format html``): one self-contained, accessible file for people.

One file with everything inline — CSS, SVG status bars and a small filter script — and a Content
Security Policy that forbids loading anything else (and running any script but ours, by hash). It has a
summary by section, the targets, the profile and its deviations, a drill-down per measure (native
``<details>``, so it works without JavaScript) with each finding's evidence and remediation, and a
VM × measure matrix. Filters (status, section, target, subject text) are progressive enhancement: without
JavaScript every finding is visible and the filter form stays hidden.

Everything that comes from facts or evidence is escaped with :func:`html.escape` — VM names, messages and
evidence strings come from hosts we do not trust. Status is always written as a text label beside its
colour; the palette keeps ≥ 4.5:1 contrast (WCAG 2.2 AA).
"""

from __future__ import annotations

from collections import defaultdict
from html import escape
from typing import Any

from hvguard.catalog import Measure
from hvguard.engine import Evaluation
from hvguard.report.build import ReportView, display_view, report_view
from hvguard.report.common import (
    LABEL,
    ORDER,
    attestation_text,
    compact_json,
    counts_text,
    privilege_banner,
    rank,
    vm_name,
    waiver_text,
    worst,
    xml_safe,
)
from hvguard.report.html_assets import COLOUR, CSP, CSS, SCRIPT
from hvguard.report.model import RegisterUse, Report, Result

__all__ = ["CSP", "badge", "evidence_table", "finding_row", "html_document", "measure_block", "render"]


def _e(value: Any) -> str:
    """Escaped text of any value (``None`` → empty); control characters become U+FFFD."""
    return "" if value is None else escape(xml_safe(str(value)), quote=True)


def _anchor(prefix: str, ident: str) -> str:
    return f"{prefix}-" + "".join(ch if ch.isalnum() else "-" for ch in ident)


def badge(status: str) -> str:
    """The coloured text label of a status (text first: colour is never the only cue)."""
    return f'<span class="badge s-{_e(status)}">{_e(LABEL.get(status, status.upper()))}</span>'


def status_bar(statuses: list[str], width: int = 160) -> str:
    """A decorative SVG bar of the share of each status (the counts are always written beside it)."""
    total = len(statuses)
    if not total:
        return ""
    counts = {s: statuses.count(s) for s in ORDER}
    parts: list[str] = []
    x = 0.0
    for s in ORDER:
        if not counts[s]:
            continue
        w = width * counts[s] / total
        parts.append(f'<rect x="{x:.2f}" y="0" width="{max(w - 1, 1):.2f}" height="14" fill="{COLOUR[s]}"/>')
        x += w
    return (
        f'<svg class="bar" width="{width}" height="14" viewBox="0 0 {width} 14" aria-hidden="true" '
        f'focusable="false">{"".join(parts)}</svg>'
    )


def _value_html(value: Any) -> str:
    if value is None:
        return '<span class="muted">null</span>'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        text = str(value)
        return f"<pre><code>{_e(text)}</code></pre>" if "\n" in text else _e(text)
    if isinstance(value, dict) and set(value) == {"value", "source"}:
        # an effective setting: its value and where it came from (file:line or libvirt's default)
        return f'{_value_html(value["value"])} <span class="muted">({_e(value["source"])})</span>'
    return f"<code>{_e(compact_json(value))}</code>"


def evidence_table(evidence: dict[str, Any]) -> str:
    """Evidence as a key/value table; nested values as compact JSON."""
    if not evidence:
        return '<p class="muted">No evidence recorded.</p>'
    rows = "".join(
        f'<tr><th scope="row">{_e(k)}</th><td>{_value_html(v)}</td></tr>' for k, v in evidence.items()
    )
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def _waiver_html(w: dict[str, Any]) -> str:
    bits = [f"<strong>Waived</strong> by {_e(waiver_text(w))}."]
    if w.get("title"):
        bits.append(f"{_e(w['title'])}.")
    if w.get("reference"):
        bits.append(f"Reference: {_e(w['reference'])}.")
    if w.get("risk_rating"):
        bits.append(f"Risk rating: {_e(w['risk_rating'])}.")
    if w.get("justification"):
        bits.append(f"Justification: {_e(w['justification'])}")
    controls = w.get("compensating_controls")
    if controls:
        items = controls if isinstance(controls, list) else [controls]
        bits.append("Compensating controls: " + "; ".join(_e(c) for c in items))
    return f'<p class="waiver">{" ".join(bits)}</p>'


def _attested_item(item: Any) -> str:
    if not isinstance(item, dict):
        return f"<li>{_e(item if isinstance(item, str) else compact_json(item))}</li>"
    where = item.get("path") or item.get("url") or "(no location)"
    bits = [f"<code>{_e(where)}</code>"]
    if item.get("description"):
        bits.append(_e(item["description"]))
    if "verified" in item or "result" in item:
        flag = item.get("verified")
        verified = "yes" if flag is True else "no" if flag is False else str(flag)
        bits.append(f"verified: {_e(verified)}" + (f" ({_e(item['result'])})" if item.get("result") else ""))
    if item.get("sha256"):
        bits.append(f"sha256 <code>{_e(item['sha256'])}</code>")
    if item.get("actual_sha256"):
        bits.append(f"actual sha256 <code>{_e(item['actual_sha256'])}</code>")
    return f"<li>{' — '.join(bits)}</li>"


def _attestation_html(a: dict[str, Any]) -> str:
    bits = [f"<strong>Attested</strong>: {_e(attestation_text(a))}."]
    if a.get("statement"):
        bits.append(f"Statement: {_e(a['statement'])}")
    if a.get("reference"):
        bits.append(f"Reference: {_e(a['reference'])}.")
    html = f'<p class="attest">{" ".join(bits)}</p>'
    items = a.get("evidence")
    if items:
        items = items if isinstance(items, list) else [items]
        html += (
            '<p class="label">Attested evidence</p><ul>' + "".join(_attested_item(i) for i in items) + "</ul>"
        )
    return html


def finding_row(r: Result, section: str, multi_target: bool) -> str:
    """One finding as a table row carrying its filter keys as data attributes."""
    status = r.status.value
    was = "".join(
        f'<br><span class="muted">{label} {_e(LABEL.get(s, s))}</span>'
        for s, label in ((r.original_status, "was"), (r.untailored_status, "default thresholds:"))
        if s
    )
    where = f'<br><span class="muted">{_e(r.target)}</span>' if multi_target else ""
    body = [f"<p>{_e(r.message)}</p>"]
    if r.waiver:
        body.append(_waiver_html(r.waiver))
    if r.attestation:
        body.append(_attestation_html(r.attestation))
    if r.notes:
        body.append("<ul>" + "".join(f"<li>{_e(n)}</li>" for n in r.notes) + "</ul>")
    how = f"method {r.method or 'facts'}" + (f", check {r.check}" if r.check else "")
    body.append(
        f'<details class="ev"><summary>Evidence <span class="muted">({_e(how)})</span></summary>'
        f"{evidence_table(r.evidence)}</details>"
    )
    if r.remediation:
        body.append(f'<p class="label">Remediation</p><pre><code>{_e(r.remediation.strip())}</code></pre>')
    return (
        f'<tr class="finding" data-status="{_e(status)}" data-section="{_e(section)}" '
        f'data-target="{_e(r.target)}" data-subject="{_e(r.subject)}"'
        f' data-waiver="{_e((r.waiver or {}).get("id") or "")}">'
        f"<td>{badge(status)}{was}</td>"
        f'<th scope="row">{_e(r.subject)}{where}</th>'
        f"<td>{''.join(body)}</td></tr>"
    )


def measure_block(m: Measure, results: list[Result], rolled: str, rep: Report) -> str:
    """The drill-down of one measure: the standard's words, then every finding."""
    multi = len(rep.targets) > 1
    ordered = sorted(results, key=lambda r: (-rank(r.status), r.target, r.subject))
    meta = [
        ("Standard text", _e(m.text)),
        ("NIST CSF 1.1", _e(", ".join(m.nist))),
        ("Modality", _e(m.modality)),
        ("Automation", _e(m.automation)),
    ]
    if m.id in rep.profile.advisory:
        meta.append(("Profile", "tailored to advisory: a fail is reported as warn"))
    if m.notes:
        meta.append(("How hvguard reads it", _e(m.notes)))
    if any(r.status == "manual" for r in results):
        meta.append(("Evidence an auditor needs", _e(m.manual_evidence)))
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in meta)
    rows = "".join(finding_row(r, m.section, multi) for r in ordered)
    return (
        f'<details class="measure" id="{_anchor("m", m.id)}" data-measure="{_e(m.id)}">'
        f"<summary>{badge(rolled)} {_e(m.id)} {_e(m.title)} "
        f'<span class="muted">— {_e(counts_text(r.status for r in results))}</span></summary>'
        f'<dl class="meta">{dl}</dl>'
        f'<table class="full"><caption>Findings for {_e(m.id)}</caption><thead><tr>'
        '<th scope="col">Status</th><th scope="col">Subject</th>'
        '<th scope="col">Finding, evidence and remediation</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></details>"
    )


def _summary(view: ReportView, per_measure: dict[str, list[Result]]) -> str:
    rep, catalog = view.report, view.catalog
    by_measure: dict[str, str] = {m: s.value for m, s in rep.summary.by_measure.items()}
    findings = [r.status.value for r in rep.results]
    vms = sum(t.vm_count for t in rep.targets)
    rolled = [by_measure[m.id] for m in catalog.measures]
    lead = (
        f"<p><strong>{len(rolled)} measures</strong>: {_e(counts_text(rolled))}. "
        f"<strong>{len(findings)} findings</strong> on {len(rep.targets)} target(s) and {vms} VM(s). "
        "A measure takes the worst status of its findings.</p>"
    )
    status_rows = "".join(
        f'<tr><th scope="row">{badge(s)}</th><td class="num">{rolled.count(s)}</td>'
        f'<td class="num">{findings.count(s)}</td></tr>'
        for s in ORDER
    )
    by_status = (
        '<table><caption>Measures and findings by status</caption><thead><tr><th scope="col">Status</th>'
        '<th scope="col">Measures</th><th scope="col">Findings</th></tr></thead>'
        f"<tbody>{status_rows}</tbody></table>"
    )
    sec_rows = []
    for sec, title in catalog.sections.items():
        ms = [m for m in catalog.measures if m.section == sec]
        sec_findings = [r.status.value for m in ms for r in per_measure[m.id]]
        sec_rolled = [by_measure[m.id] for m in ms]
        sec_rows.append(
            f'<tr><th scope="row"><a href="#{_anchor("sec", sec)}">{_e(sec)}</a></th><td>{_e(title)}</td>'
            f"<td>{badge(worst(sec_rolled))} {_e(counts_text(sec_rolled))}</td>"
            f"<td>{status_bar(sec_findings)}{_e(counts_text(sec_findings))}</td></tr>"
        )
    by_section = (
        '<table class="full"><caption>By section</caption><thead><tr><th scope="col">Section</th>'
        '<th scope="col">Title</th><th scope="col">Measures (roll-up)</th><th scope="col">Findings</th>'
        f"</tr></thead><tbody>{''.join(sec_rows)}</tbody></table>"
    )
    return (
        '<section id="summary" aria-labelledby="h-summary"><h2 id="h-summary">Summary</h2>'
        f"{lead}{by_status}{by_section}</section>"
    )


def _banners(rep: Report) -> str:
    """The privilege warnings that head the report (a scan without root, paths it could not read)."""
    items = []
    for t in rep.targets:
        banner = privilege_banner(t)
        if banner is not None:
            who = f"{_e(t.id)}: " if len(rep.targets) > 1 else ""
            items.append(f'<p class="banner" role="alert">{who}{_e(banner)}</p>')
    return "".join(items)


def _targets(rep: Report) -> str:
    rows = []
    for t in rep.targets:
        hv = t.hypervisor
        hv_text = " ".join(str(x) for x in (hv.type, hv.version) if x) if hv else ""
        if hv and hv.libvirt:
            hv_text += f" (libvirt {hv.libvirt})"
        if t.unreachable:
            state = f"{badge('error')} unreachable: {_e(t.unreachable)}"
        elif t.problems:
            items = "".join(f"<li>{_e(p.area)}: {_e(p.source)}: {_e(p.message)}</li>" for p in t.problems)
            state = (
                f'<details class="ev"><summary>{len(t.problems)} collection problem(s)</summary>'
                f"<ul>{items}</ul></details>"
            )
        else:
            state = "collected without problems"
        rows.append(
            f'<tr><th scope="row">{_e(t.id)}</th><td>{_e(t.platform)}</td><td>{_e(t.hostname)}</td>'
            f'<td>{_e(hv_text)}</td><td class="num">{t.vm_count}</td><td>{_e(t.collected_at)}</td>'
            f"<td>{state}</td></tr>"
        )
    return (
        '<section id="targets" aria-labelledby="h-targets"><h2 id="h-targets">Targets</h2>'
        '<div class="scroll" role="region" aria-label="Targets (scrollable)" tabindex="0">'
        '<table class="full"><thead><tr><th scope="col">Target</th><th scope="col">Platform</th>'
        '<th scope="col">Hostname</th><th scope="col">Hypervisor</th><th scope="col">VMs</th>'
        '<th scope="col">Collected at</th><th scope="col">Collection</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _profile(rep: Report) -> str:
    p = rep.profile
    thresholds = "".join(
        f'<tr><th scope="row">{_e(k)}</th><td>{_e(v)}</td></tr>' for k, v in p.thresholds.items()
    )
    deviations = (
        "<ul>" + "".join(f"<li>{_e(d)}</li>" for d in p.deviations) + "</ul>"
        if p.deviations
        else "<p>No deviations: the packaged default profile was used as is.</p>"
    )
    advisory = ", ".join(p.advisory) or "none"
    return (
        '<section id="profile" aria-labelledby="h-profile"><h2 id="h-profile">Profile</h2>'
        f"<p>Profile <strong>{_e(p.name)}</strong> from {_e(p.source)}"
        f"{' (tailored)' if p.tailored else ''}. Measures tailored to advisory: {_e(advisory)}.</p>"
        f'<h3 id="h-deviations">Deviations from the defaults</h3>{deviations}'
        f"<table><caption>Thresholds used</caption><tbody>{thresholds}</tbody></table></section>"
    )


def _register(kind: str, use: RegisterUse | None) -> str:
    if not use:
        return f"<p>No {kind} file was given.</p>"
    by_state = ", ".join(f"{n} {s}" for s, n in use.by_state.items())
    notes = "".join(f"<li>{_e(n)}</li>" for n in use.notes)
    rows = "".join(
        f'<tr><th scope="row">{_e(e.id)}</th><td>{_e(e.measure)}</td>'
        f"<td>{_e(e.state)}</td>"
        f"<td>{_e(e.valid_from.isoformat())} – {_e(e.valid_until.isoformat())}</td>"
        f'<td class="num">{_e(e.matched)}</td><td class="num">{_e(e.applied)}</td></tr>'
        for e in use.entry_use
    )
    table = (
        f'<table><caption>{_e(kind.capitalize())} entries</caption><thead><tr><th scope="col">Entry</th>'
        '<th scope="col">Measure</th><th scope="col">State</th><th scope="col">Valid</th>'
        '<th scope="col">Findings matched</th><th scope="col">Findings changed</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
        if rows
        else ""
    )
    return (
        f"<p>{_e(kind.capitalize())} file <code>{_e(use.path)}</code> (sha256 "
        f"<code>{_e(use.sha256)}</code>): {_e(use.entries)} entries ({_e(by_state)}), "
        f"{_e(use.applied)} finding(s) changed.</p>" + (f"<ul>{notes}</ul>" if notes else "") + table
    )


def _registers(rep: Report) -> str:
    as_of = rep.as_of.isoformat() if rep.as_of else None
    return (
        '<section id="registers" aria-labelledby="h-registers">'
        '<h2 id="h-registers">Exceptions and attestations</h2>'
        + (f"<p>Judged as of {_e(as_of)}.</p>" if as_of else "")
        + '<h3 id="h-exceptions">Exceptions register</h3>'
        + _register("exceptions", rep.exceptions)
        + '<h3 id="h-attestations">Attestations</h3>'
        + _register("attestations", rep.attestations)
        + "</section>"
    )


def _filters(view: ReportView) -> str:
    boxes = "".join(
        f'<label><input type="checkbox" name="status" value="{s}" checked '
        f'data-attention="{"yes" if s in ("error", "fail", "warn", "manual") else "no"}"> {LABEL[s]}</label>'
        for s in ORDER
    )
    sections = "".join(
        f'<option value="{_e(k)}">{_e(k)} {_e(v)}</option>' for k, v in view.catalog.sections.items()
    )
    targets = "".join(f'<option value="{_e(t.id)}">{_e(t.id)}</option>' for t in view.report.targets)
    return (
        '<section id="filters" aria-labelledby="h-filters" hidden><h2 id="h-filters">Filter findings</h2>'
        '<form id="filter-form" class="filters" action="#" aria-describedby="filter-count">'
        f"<fieldset><legend>Status</legend>{boxes}</fieldset>"
        '<div><label for="f-section">Section</label><select id="f-section">'
        f'<option value="">All sections</option>{sections}</select></div>'
        '<div><label for="f-target">Target</label><select id="f-target">'
        f'<option value="">All targets</option>{targets}</select></div>'
        '<div><label for="f-subject">Subject contains</label>'
        '<input type="search" id="f-subject" autocomplete="off"></div>'
        '<div><button type="button" id="f-attention">Needs attention only</button> '
        '<button type="reset">Show everything</button> '
        '<button type="button" id="f-expand">Expand all measures</button> '
        '<button type="button" id="f-collapse">Collapse all</button></div>'
        '</form><p id="filter-count" role="status"></p></section>'
    )


def _vm_matrix(view: ReportView) -> str:
    rep, catalog = view.report, view.catalog
    cells: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    order: list[tuple[str, str]] = list(view.vms)
    measures_used: set[str] = set()
    for r in rep.results:
        if vm_name(r.subject) is None:
            continue
        key = (r.target, r.subject)
        if key not in cells and key not in order:
            order.append(key)
        cells[key][r.measure].append(r.status.value)
        measures_used.add(r.measure)
    if not order:
        return (
            '<section id="vms" aria-labelledby="h-vms"><h2 id="h-vms">Per-VM view</h2>'
            "<p>No VMs were found on the targets.</p></section>"
        )
    cols = [m for m in catalog.measures if m.id in measures_used]
    multi = len(rep.targets) > 1
    head = "".join(
        f'<th scope="col"><a href="#{_anchor("m", m.id)}" title="{_e(m.title)}">{_e(m.id)}</a></th>'
        for m in cols
    )
    rows = []
    for target, subject in dict.fromkeys(order):
        row = cells.get((target, subject), {})
        statuses = {s for ss in row.values() for s in ss}
        overall = worst(statuses) if statuses else "not_applicable"
        tds = "".join(
            f"<td>{badge(worst(row[m.id]))}</td>" if m.id in row else '<td><span class="muted">—</span></td>'
            for m in cols
        )
        where = f'<br><span class="muted">{_e(target)}</span>' if multi else ""
        rows.append(
            f'<tr class="vm" data-target="{_e(target)}" data-subject="{_e(subject)}" '
            f'data-statuses="{_e(" ".join(sorted(statuses)) or "not_applicable")}">'
            f'<th scope="row">{_e(vm_name(subject))}{where}</th><td>{badge(overall)}</td>{tds}</tr>'
        )
    return (
        '<section id="vms" aria-labelledby="h-vms"><h2 id="h-vms">Per-VM view</h2>'
        "<p>Each VM's worst status per measure that is evaluated per VM (host-level measures are in the "
        "drill-down below). A dash means the measure produced no finding for that VM.</p>"
        '<div class="scroll" role="region" aria-labelledby="h-vms" tabindex="0">'
        '<table class="matrix"><thead><tr><th scope="col">VM</th><th scope="col">Worst</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def html_document(view: ReportView) -> str:
    """The HTML report (one self-contained document)."""
    view = display_view(view)  # no input redraws, forges or reorders a line
    rep, catalog = view.report, view.catalog
    per_measure: dict[str, list[Result]] = defaultdict(list)
    for r in rep.results:
        per_measure[r.measure].append(r)
    by_measure = rep.summary.by_measure
    target_names = ", ".join(t.id for t in rep.targets) or "no targets"
    title = f"hvguard {catalog.id} report — {target_names}"
    blocks = []
    for sec, sec_title in catalog.sections.items():
        inner = "".join(
            measure_block(m, per_measure[m.id], by_measure[m.id].value, rep)
            for m in catalog.measures
            if m.section == sec
        )
        blocks.append(
            f'<section class="msection" id="{_anchor("sec", sec)}" aria-labelledby="{_anchor("h-sec", sec)}">'
            f'<h3 id="{_anchor("h-sec", sec)}">{_e(sec)} {_e(sec_title)}</h3>{inner}</section>'
        )
    tool = rep.tool
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        '<a class="skip" href="#main">Skip to main content</a>'
        '<header class="top"><div class="wrap">'
        f"<h1>{_e(catalog.id)} v{_e(catalog.version)} compliance report</h1>"
        f'<p class="muted">{_e(catalog.title)} · targets: {_e(target_names)} · profile '
        f"{_e(rep.profile.name)}{' (tailored)' if rep.profile.tailored else ''} · generated "
        f"{_e(rep.generated_at)} by {_e(tool.name)} {_e(tool.version)}</p>"
        '<nav aria-label="Report sections"><ul>'
        '<li><a href="#summary">Summary</a></li><li><a href="#targets">Targets</a></li>'
        '<li><a href="#profile">Profile</a></li><li><a href="#registers">Exceptions and attestations</a></li>'
        '<li><a href="#vms">Per-VM view</a></li>'
        '<li><a href="#measures">Measures</a></li></ul></nav></div></header>'
        '<main id="main" class="wrap" tabindex="-1">'
        f"{_banners(rep)}{_summary(view, per_measure)}{_targets(rep)}{_profile(rep)}{_registers(rep)}"
        f"{_filters(view)}"
        f"{_vm_matrix(view)}"
        '<section id="measures" aria-labelledby="h-measures"><h2 id="h-measures">Measures</h2>'
        "<p>Open a measure to see the standard's text, every finding with its evidence and the exact "
        f"remediation.</p>{''.join(blocks)}</section></main>"
        '<footer><div class="wrap">'
        f"<p>Generated by {_e(tool.name)} {_e(tool.version)} at {_e(rep.generated_at)} "
        f"(report schema {_e(rep.schema)}). This file is self-contained: it loads nothing from "
        "anywhere.</p></div></footer>"
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def render(ev: Evaluation) -> str:
    """Render the HTML report of ``ev``."""
    return html_document(report_view(ev))
