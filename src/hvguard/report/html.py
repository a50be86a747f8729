"""The HTML report (``--format html``): one self-contained, accessible file for people.

One file with everything inline — CSS, SVG charts and a small script — and a Content Security Policy that
forbids loading anything else (and running any script but ours, by hash). It opens on a verdict, the
measures that need attention and compliance charts by section and by target (worst first); then the
targets with their verdicts, the profile, the registers, a per-VM view and a drill-down per measure
(native ``<details>``) with each finding's evidence and remediation.

Filters (status — by default FAIL, ERROR and WARN —, section, target, subject; a VM's name shows its
findings) are progressive enhancement. Printing (or saving as PDF) shows every finding and fix the filter
selects, expanded, and says which findings the print leaves out.

Scale: up to :data:`INLINE_LIMIT` findings every row is in the page as HTML (readable without
JavaScript). Above it the rows travel as compact JSON in a ``<script type="application/json">`` block:
each distinct row is rendered once, by the same code, with the VM name and target replaced by
placeholders, and the script puts rows into the page only when a measure is opened, a filter changes or
the page is printed — a 10,000-VM report stays a few MB and opens at once.

Everything that comes from facts or evidence is escaped with :func:`html.escape` — VM names, messages and
evidence strings come from hosts we do not trust. Status is always written as a text label beside its
colour; the palette keeps ≥ 4.5:1 contrast (WCAG 2.2 AA).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from hvguard.catalog import Measure
from hvguard.engine import Evaluation
from hvguard.report.build import ReportView, display_view, report_view
from hvguard.report.common import (
    LABEL,
    ORDER,
    attestation_text,
    compact_json,
    rank,
    vm_name,
    waiver_text,
    worst,
)
from hvguard.report.html_assets import CSP, CSS
from hvguard.report.html_parts import (
    anchor,
    badge,
    banners,
    counts,
    esc,
    profile,
    registers,
    status_bar,
    summary,
    targets,
)
from hvguard.report.html_script import SCRIPT
from hvguard.report.model import Report, Result

__all__ = [
    "CSP",
    "INLINE_LIMIT",
    "badge",
    "evidence_table",
    "finding_row",
    "html_document",
    "measure_block",
    "render",
    "status_bar",
]

#: Reports with more findings than this carry their rows as JSON, rendered by the page on demand.
INLINE_LIMIT = 5000
#: Placeholders of a row template for the VM name and the target id (escaped): U+0001/U+0002 never occur
#: in report text (control characters are shown as visible escapes, see ``display_view``).
NAME_MARK, TARGET_MARK = "\x01", "\x02"
#: Statuses the filter selects when the page opens (and what a print of the untouched page shows).
DEFAULT_STATUSES = ("error", "fail", "warn")


def _value_html(value: Any) -> str:
    if value is None:
        return '<span class="muted">null</span>'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        text = str(value)
        return f"<pre><code>{esc(text)}</code></pre>" if "\n" in text else esc(text)
    if isinstance(value, dict) and set(value) == {"value", "source"}:
        # an effective setting: its value and where it came from (file:line or libvirt's default)
        return f'{_value_html(value["value"])} <span class="muted">({esc(value["source"])})</span>'
    return f"<code>{esc(compact_json(value))}</code>"


def evidence_table(evidence: dict[str, Any]) -> str:
    """Evidence as a key/value table; nested values as compact JSON."""
    if not evidence:
        return '<p class="muted">No evidence recorded.</p>'
    rows = "".join(
        f'<tr><th scope="row">{esc(k)}</th><td>{_value_html(v)}</td></tr>' for k, v in evidence.items()
    )
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def _waiver_html(w: dict[str, Any]) -> str:
    bits = [f"<strong>Waived</strong> by {esc(waiver_text(w))}."]
    if w.get("title"):
        bits.append(f"{esc(w['title'])}.")
    if w.get("reference"):
        bits.append(f"Reference: {esc(w['reference'])}.")
    if w.get("risk_rating"):
        bits.append(f"Risk rating: {esc(w['risk_rating'])}.")
    if w.get("justification"):
        bits.append(f"Justification: {esc(w['justification'])}")
    controls = w.get("compensating_controls")
    if controls:
        items = controls if isinstance(controls, list) else [controls]
        bits.append("Compensating controls: " + "; ".join(esc(c) for c in items))
    return f'<p class="waiver">{" ".join(bits)}</p>'


def _attested_item(item: Any) -> str:
    if not isinstance(item, dict):
        return f"<li>{esc(item if isinstance(item, str) else compact_json(item))}</li>"
    where = item.get("path") or item.get("url") or "(no location)"
    bits = [f"<code>{esc(where)}</code>"]
    if item.get("description"):
        bits.append(esc(item["description"]))
    if "verified" in item or "result" in item:
        flag = item.get("verified")
        verified = "yes" if flag is True else "no" if flag is False else str(flag)
        bits.append(
            f"verified: {esc(verified)}" + (f" ({esc(item['result'])})" if item.get("result") else "")
        )
    if item.get("sha256"):
        bits.append(f"sha256 <code>{esc(item['sha256'])}</code>")
    if item.get("actual_sha256"):
        bits.append(f"actual sha256 <code>{esc(item['actual_sha256'])}</code>")
    return f"<li>{' — '.join(bits)}</li>"


def _attestation_html(a: dict[str, Any]) -> str:
    bits = [f"<strong>Attested</strong>: {esc(attestation_text(a))}."]
    if a.get("statement"):
        bits.append(f"Statement: {esc(a['statement'])}")
    if a.get("reference"):
        bits.append(f"Reference: {esc(a['reference'])}.")
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
        f'<br><span class="muted">{label} {esc(LABEL.get(s, s))}</span>'
        for s, label in ((r.original_status, "was"), (r.untailored_status, "default thresholds:"))
        if s
    )
    where = f'<br><span class="muted">{esc(r.target)}</span>' if multi_target else ""
    body = [f"<p>{esc(r.message)}</p>"]
    if r.waiver:
        body.append(_waiver_html(r.waiver))
    if r.attestation:
        body.append(_attestation_html(r.attestation))
    if r.notes:
        body.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in r.notes) + "</ul>")
    how = f"method {r.method or 'facts'}" + (f", check {r.check}" if r.check else "")
    body.append(
        f'<details class="ev"><summary>Evidence <span class="muted">({esc(how)})</span></summary>'
        f"{evidence_table(r.evidence)}</details>"
    )
    if r.remediation:
        body.append(f'<p class="label">Remediation</p><pre><code>{esc(r.remediation.strip())}</code></pre>')
    return (
        f'<tr class="finding" data-status="{esc(status)}" data-section="{esc(section)}" '
        f'data-target="{esc(r.target)}" data-subject="{esc(r.subject)}"'
        f' data-waiver="{esc((r.waiver or {}).get("id") or "")}">'
        f"<td>{badge(status)}{was}</td>"
        f'<th scope="row">{esc(r.subject)}{where}</th>'
        f"<td>{''.join(body)}</td></tr>"
    )


def measure_block(m: Measure, results: list[Result], rolled: str, rep: Report, *, inline: bool = True) -> str:
    """The drill-down of one measure: the standard's words, then every finding (worst first), or an empty
    table body the page's script fills from the JSON rows when ``inline`` is false."""
    multi = len(rep.targets) > 1
    meta = [
        ("Standard text", esc(m.text)),
        ("NIST CSF 1.1", esc(", ".join(m.nist))),
        ("Modality", esc(m.modality)),
        ("Automation", esc(m.automation)),
    ]
    if m.id in rep.profile.advisory:
        meta.append(("Profile", "tailored to advisory: a fail is reported as warn"))
    if m.notes:
        meta.append(("How hvguard reads it", esc(m.notes)))
    if any(r.status == "manual" for r in results):
        meta.append(("Evidence an auditor needs", esc(m.manual_evidence)))
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in meta)
    rows = "".join(finding_row(r, m.section, multi) for r in _worst_first(results)) if inline else ""
    return (
        f'<details class="measure" id="{anchor("m", m.id)}" data-measure="{esc(m.id)}" '
        f'data-section="{esc(m.section)}">'
        f"<summary>{badge(rolled)} {esc(m.id)} {esc(m.title)} "
        f'<span class="muted">— {esc(counts(r.status.value for r in results))}</span></summary>'
        f'<dl class="meta">{dl}</dl>'
        f'<table class="full"><caption>Findings for {esc(m.id)}</caption><thead><tr>'
        '<th scope="col">Status</th><th scope="col">Subject</th>'
        '<th scope="col">Finding, evidence and remediation</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></details>"
    )


def _worst_first(results: list[Result]) -> list[Result]:
    return sorted(results, key=lambda r: (-rank(r.status.value), r.target, r.subject))


def _filters(view: ReportView) -> str:
    boxes = "".join(
        f'<label><input type="checkbox" name="status" value="{s}"'
        f"{' checked' if s in DEFAULT_STATUSES else ''} "
        f'data-attention="{"yes" if s in ("error", "fail", "warn", "manual") else "no"}"> {LABEL[s]}</label>'
        for s in ORDER
    )
    sections = "".join(
        f'<option value="{esc(k)}">{esc(k)} {esc(v)}</option>' for k, v in view.catalog.sections.items()
    )
    tgts = "".join(f'<option value="{esc(t.id)}">{esc(t.id)}</option>' for t in view.report.targets)
    return (
        '<section id="filters" aria-labelledby="h-filters" hidden><h2 id="h-filters">Filter findings</h2>'
        '<form id="filter-form" class="filters" action="#" aria-describedby="filter-count">'
        f"<fieldset><legend>Status</legend>{boxes}</fieldset>"
        '<div><label for="f-section">Section</label><select id="f-section">'
        f'<option value="">All sections</option>{sections}</select></div>'
        '<div><label for="f-target">Target</label><select id="f-target">'
        f'<option value="">All targets</option>{tgts}</select></div>'
        '<div><label for="f-subject">Subject contains</label>'
        '<input type="search" id="f-subject" autocomplete="off"></div>'
        '<div><button type="button" id="f-attention">Needs attention only</button> '
        '<button type="button" id="f-all">Show everything</button> '
        '<button type="reset">Default filter</button> '
        '<button type="button" id="f-expand">Expand all measures</button> '
        '<button type="button" id="f-collapse">Collapse all</button></div>'
        '</form><p id="filter-count" role="status"></p></section>'
    )


def _vm_rows(view: ReportView) -> tuple[list[Any], list[tuple[str, str, str, set[str]]]]:
    """The per-VM matrix: its columns, and each VM's (target, subject, row HTML, statuses), worst first."""
    rep, catalog = view.report, view.catalog
    cells: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    order: list[tuple[str, str]] = list(view.vms)
    for r in rep.results:
        if vm_name(r.subject) is None:
            continue
        key = (r.target, r.subject)
        if key not in cells:
            order.append(key)
        cells[key][r.measure].append(r.status.value)
    used = {m for row in cells.values() for m in row}
    cols = [m for m in catalog.measures if m.id in used]
    multi = len(rep.targets) > 1
    out = []
    for i, (target, subject) in enumerate(dict.fromkeys(order)):
        row = cells.get((target, subject), {})
        statuses = {s for ss in row.values() for s in ss} or {"not_applicable"}
        overall = worst(statuses)
        tds = "".join(
            f"<td>{badge(worst(row[m.id]))}</td>" if m.id in row else '<td><span class="muted">—</span></td>'
            for m in cols
        )
        where = f'<br><span class="muted">{esc(target)}</span>' if multi else ""
        bad = sum(1 for ss in row.values() if worst(ss) in ("error", "fail"))
        html = (
            f'<tr class="vm" data-target="{esc(target)}" data-subject="{esc(subject)}" '
            f'data-statuses="{esc(" ".join(sorted(statuses)))}">'
            f'<th scope="row"><a class="vmlink" href="#measures" data-target="{esc(target)}" '
            f'data-subject="{esc(subject)}">{esc(vm_name(subject))}</a>{where}</th>'
            f"<td>{badge(overall)}</td>{tds}</tr>"
        )
        out.append(((-rank(overall), -bad, i), (target, subject, html, statuses)))
    out.sort(key=lambda kv: kv[0])
    return cols, [v for _, v in out]


def _vm_matrix(cols: list[Any], rows: list[tuple[str, str, str, set[str]]], inline: bool) -> str:
    if not rows:
        return (
            '<section id="vms" aria-labelledby="h-vms"><h2 id="h-vms">Per-VM view</h2>'
            "<p>No VMs were found on the targets.</p></section>"
        )
    head = "".join(
        f'<th scope="col"><a href="#{anchor("m", m.id)}" title="{esc(m.title)}">{esc(m.id)}</a></th>'
        for m in cols
    )
    body = "".join(html for _, _, html, _ in rows) if inline else ""
    return (
        '<section id="vms" aria-labelledby="h-vms"><h2 id="h-vms">Per-VM view</h2>'
        "<p>Each VM's worst status per measure that is evaluated per VM (host-level measures are in the "
        "drill-down below), worst VMs first. A dash means the measure produced no finding for that VM; "
        "a VM's name shows its findings.</p>"
        '<div class="scroll" role="region" aria-labelledby="h-vms" tabindex="0">'
        '<table class="matrix"><thead><tr><th scope="col">VM</th><th scope="col">Worst</th>'
        f'{head}</tr></thead><tbody id="vm-body">{body}</tbody></table></div>'
        '<p id="vm-more" class="more" hidden></p></section>'
    )


class _Templates:
    """Distinct row HTML with the VM name and target cut out, each stored once (the JSON rows' dictionary)."""

    def __init__(self) -> None:
        self.items: list[list[str]] = []
        self._index: dict[tuple[str, str], int] = {}

    def add(self, html: str, subject: str, target: str, key: str) -> int:
        """The index of ``html`` as a template (``key``: the row's status or statuses, for the filter).

        Cutting is exactly reversible: the placeholders never occur in report text, and the page puts the
        target back before the name (the order they were cut out in reverse)."""
        name = vm_name(subject)
        if name:
            html = html.replace(esc(name), NAME_MARK)
        html = html.replace(esc(target), TARGET_MARK)
        k = (key, html)
        if k not in self._index:
            self._index[k] = len(self.items)
            self.items.append([key, html])
        return self._index[k]


class _Ids:
    """Strings numbered in first-seen order (subjects, targets)."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._index: dict[str, int] = {}

    def __call__(self, value: str) -> int:
        if value not in self._index:
            self._index[value] = len(self.items)
            self.items.append(value)
        return self._index[value]


def _data_block(
    view: ReportView,
    per_measure: dict[str, list[Result]],
    vm_rows: list[tuple[str, str, str, set[str]]],
) -> str:
    """The rows of a large report as JSON: ``t`` templates ``[status, html]``, ``m`` measure id →
    ``[[template, subject, target], …]`` worst first, ``v`` VM rows ``[template, subject, target]`` worst
    first (their templates' key: the VM's statuses), ``s`` subjects, ``g`` targets."""
    rep = view.report
    multi = len(rep.targets) > 1
    sec = {m.id: m.section for m in view.catalog.measures}
    tpl, subjects, tgts = _Templates(), _Ids(), _Ids()
    rows: dict[str, list[list[int]]] = {}
    for m in view.catalog.measures:
        rows[m.id] = [
            [
                tpl.add(finding_row(r, sec[m.id], multi), r.subject, r.target, r.status.value),
                subjects(r.subject),
                tgts(r.target),
            ]
            for r in _worst_first(per_measure[m.id])
        ]
    vms = [
        [tpl.add(html, subject, target, " ".join(sorted(st))), subjects(subject), tgts(target)]
        for target, subject, html, st in vm_rows
    ]
    data = {"t": tpl.items, "m": rows, "v": vms, "s": subjects.items, "g": tgts.items}
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    # inside <script> only "</script" or "<!--" could end or confuse the block: no "<" is left at all
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="hvguard-data">{text}</script>'


def html_document(view: ReportView, *, inline_limit: int = INLINE_LIMIT) -> str:
    """The HTML report (one self-contained document); above ``inline_limit`` findings the rows are JSON
    rendered on demand by the page."""
    view = display_view(view)  # no input redraws, forges or reorders a line
    rep, catalog = view.report, view.catalog
    inline = len(rep.results) <= inline_limit
    per_measure: dict[str, list[Result]] = defaultdict(list)
    for r in rep.results:
        per_measure[r.measure].append(r)
    by_measure = rep.summary.by_measure
    target_names = ", ".join(t.id for t in rep.targets) or "no targets"
    title = f"hvguard {catalog.id} report — {target_names}"
    blocks = []
    for sec, sec_title in catalog.sections.items():
        ms = [m for m in catalog.measures if m.section == sec]
        ms.sort(key=lambda m: -rank(by_measure[m.id].value))  # worst first, catalog order within a status
        inner = "".join(
            measure_block(m, per_measure[m.id], by_measure[m.id].value, rep, inline=inline) for m in ms
        )
        blocks.append(
            f'<section class="msection" id="{anchor("sec", sec)}" aria-labelledby="{anchor("h-sec", sec)}">'
            f'<h3 id="{anchor("h-sec", sec)}">{esc(sec)} {esc(sec_title)}</h3>{inner}</section>'
        )
    cols, vm_rows = _vm_rows(view)
    data = "" if inline else _data_block(view, per_measure, vm_rows)
    large = (
        ""
        if inline
        else f'<p class="nojs">This report has {len(rep.results)} findings: the page shows them with its '
        "script, which is off. Every finding is also in the JSON report (<code>--format json</code>).</p>"
    )
    tool = rep.tool
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        '<a class="skip" href="#main">Skip to main content</a>'
        '<header class="top"><div class="wrap">'
        f"<h1>{esc(catalog.id)} v{esc(catalog.version)} compliance report</h1>"
        f'<p class="muted">{esc(catalog.title)} · targets: {esc(target_names)} · profile '
        f"{esc(rep.profile.name)}{' (tailored)' if rep.profile.tailored else ''} · generated "
        f"{esc(rep.generated_at)} by {esc(tool.name)} {esc(tool.version)}</p>"
        '<nav aria-label="Report sections"><ul>'
        '<li><a href="#summary">Summary</a></li><li><a href="#targets">Targets</a></li>'
        '<li><a href="#profile">Profile</a></li><li><a href="#registers">Exceptions and attestations</a></li>'
        '<li><a href="#vms">Per-VM view</a></li>'
        '<li><a href="#measures">Measures</a></li></ul></nav></div></header>'
        '<main id="main" class="wrap" tabindex="-1">'
        '<p id="print-note" class="print-only">This print shows every finding.</p>'
        f"{banners(rep)}{summary(view, per_measure)}{targets(rep)}{profile(rep)}{registers(rep)}"
        f"{_filters(view)}"
        f"{_vm_matrix(cols, vm_rows, inline)}"
        '<section id="measures" aria-labelledby="h-measures"><h2 id="h-measures">Measures</h2>'
        "<p>Open a measure to see the standard's text, every finding with its evidence and the exact "
        f"remediation. Within each section the worst measures come first.</p>{large}"
        '<p id="none-shown" hidden>No finding matches the filter: “Show everything” shows every finding.</p>'
        f"{''.join(blocks)}"
        "</section></main>"
        '<footer><div class="wrap">'
        f"<p>Generated by {esc(tool.name)} {esc(tool.version)} at {esc(rep.generated_at)} "
        f"(report schema {esc(rep.schema)}). This file is self-contained: it loads nothing from "
        "anywhere.</p></div></footer>"
        f"{data}<script>{SCRIPT}</script></body></html>\n"
    )


def render(ev: Evaluation) -> str:
    """Render the HTML report of ``ev``."""
    return html_document(report_view(ev))
