"""The HTML report's page sections around the findings: verdict, charts, summary, targets, profile and the
exceptions and attestations registers, plus the small pieces every part of the page uses.

Everything that comes from facts or evidence goes through :func:`esc`; a status is always written as its
one label from :data:`hvguard.report.common.LABEL` beside its colour.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from html import escape
from typing import Any

from hvguard.findings import Verdict
from hvguard.report.build import ReportView
from hvguard.report.common import LABEL, ORDER, privilege_banner, rank, worst, xml_safe
from hvguard.report.html_assets import COLOUR
from hvguard.report.model import RegisterUse, Report, Result, Target
from hvguard.report.verdicts import VERDICT_LABEL


@functools.lru_cache(maxsize=1 << 16)
def _esc_text(text: str) -> str:
    # a 10,000-VM report escapes the same labels, keys and messages over a million times
    return escape(xml_safe(text), quote=True)


def esc(value: Any) -> str:
    """Escaped text of any value (``None`` → empty); characters XML cannot carry become U+FFFD."""
    return "" if value is None else _esc_text(value if isinstance(value, str) else str(value))


def anchor(prefix: str, ident: str) -> str:
    """An element id made of ``prefix`` and ``ident`` with everything but letters and digits as ``-``."""
    return f"{prefix}-" + "".join(ch if ch.isalnum() else "-" for ch in ident)


@functools.lru_cache(maxsize=64)
def badge(status: str) -> str:
    """The coloured text label of a status (text first: colour is never the only cue)."""
    return f'<span class="badge s-{esc(status)}">{esc(LABEL.get(status, status.upper()))}</span>'


def verdict_badge(verdict: str | None) -> str:
    """The label of a verdict (``—`` when there is none)."""
    if not verdict:
        return '<span class="muted">—</span>'
    try:
        label = VERDICT_LABEL[Verdict(verdict)]
    except ValueError:
        label = verdict.upper()
    return f'<span class="badge v-{esc(verdict)}">{esc(label)}</span>'


def counts(statuses: Iterable[str]) -> str:
    """``"2 FAIL · 3 PASS"``: how many of each status, worst first, each status spelt as its label."""
    seen: dict[str, int] = defaultdict(int)
    for s in statuses:
        seen[s] += 1
    return " · ".join(f"{seen[s]} {LABEL.get(s, s)}" for s in ORDER if seen[s])


def status_bar(statuses: list[str], width: int = 160) -> str:
    """A decorative SVG bar of the share of each status (the counts are always written beside it)."""
    total = len(statuses)
    if not total:
        return ""
    parts: list[str] = []
    x = 0.0
    for s in ORDER:
        n = statuses.count(s)
        if not n:
            continue
        w = width * n / total
        parts.append(f'<rect x="{x:.2f}" y="0" width="{max(w - 1, 1):.2f}" height="14" fill="{COLOUR[s]}"/>')
        x += w
    return (
        f'<svg class="bar" width="{width}" height="14" viewBox="0 0 {width} 14" aria-hidden="true" '
        f'focusable="false">{"".join(parts)}</svg>'
    )


def readable(value: Any) -> str:
    """A threshold or setting value as a person writes it: lists comma-separated, ``none`` when empty,
    mappings as ``key: value`` pairs, booleans as yes/no — never a Python repr."""
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(readable(v) for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {readable(v)}" for k, v in value.items()) or "none"
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def estate_verdict(rep: Report) -> str:
    """The estate's verdict from its targets' verdicts (``targets[].verdict``, the one rule in
    ``engine.target_verdict``): ``not_compliant`` when a target is, else ``not_assessed`` when a target
    could not be assessed (the estate cannot be called compliant without it), else ``compliant``."""
    verdicts = {str(t.verdict) for t in rep.targets}
    for verdict in ("not_compliant", "not_assessed"):
        if verdict in verdicts:
            return verdict
    return "compliant"


def per_target_measures(rep: Report) -> dict[str, dict[str, str]]:
    """Each target's measures and the worst status of its findings on each (the per-host roll-up)."""
    out: dict[str, dict[str, str]] = {t.id: {} for t in rep.targets}
    for r in rep.results:
        row = out.setdefault(r.target, {})
        status = r.status.value
        if r.measure not in row or rank(status) > rank(row[r.measure]):
            row[r.measure] = status
    return out


def banners(rep: Report) -> str:
    """The privilege warnings that head the report (a scan without root, paths it could not read)."""
    items = []
    for t in rep.targets:
        banner = privilege_banner(t)
        if banner is not None:
            who = f"{esc(t.id)}: " if len(rep.targets) > 1 else ""
            items.append(f'<p class="banner" role="alert">{who}{esc(banner)}</p>')
    return "".join(items)


def _verdict(view: ReportView) -> str:
    rep = view.report
    verdict = estate_verdict(rep)
    rolled = [s.value for s in rep.summary.by_measure.values()]
    bad = sum(1 for s in rolled if s in ("fail", "error"))
    down = sum(1 for t in rep.targets if t.unreachable)
    parts = []
    if rep.targets and down == len(rep.targets):
        parts.append("no target could be collected")
    else:
        failing = "no measure fails"
        if bad:
            failing = f"{bad} of {len(rolled)} measures fail or could not be evaluated"
        if bad and verdict == "compliant":
            # Only binding (must/conditional) measures decide a target's verdict.
            failing += ", none of them binding on any target"
        parts.append(failing)
    for status, words in (("warn", "advisory (WARN)"), ("manual", "need evidence (MANUAL)")):
        n = rolled.count(status)
        if n:
            parts.append(f"{n} {words}")
    if down and down < len(rep.targets):
        parts.append(f"{down} of {len(rep.targets)} target(s) could not be assessed")
    return (
        f'<p class="verdict" id="verdict"><span class="vlabel">Verdict</span> {verdict_badge(verdict)} '
        f"{esc('; '.join(parts))}.</p>"
    )


def _attention(view: ReportView) -> str:
    """The measures that need someone, worst first, each linking to its drill-down."""
    titles = {m.id: m.title for m in view.catalog.measures}
    order = {m.id: i for i, m in enumerate(view.catalog.measures)}
    items = [
        (m, s.value)
        for m, s in view.report.summary.by_measure.items()
        if s.value in ("error", "fail", "warn", "manual")
    ]
    if not items:
        return "<p>No measure needs attention.</p>"
    items.sort(key=lambda it: (-rank(it[1]), order.get(it[0], 0)))
    lis = "".join(
        f'<li>{badge(s)} <a href="#{anchor("m", m)}">{esc(m)} {esc(titles.get(m, ""))}</a></li>'
        for m, s in items
    )
    return f'<h3 id="h-attention">Measures needing attention, worst first</h3><ul class="attn">{lis}</ul>'


def _by_section(view: ReportView, per_measure: dict[str, list[Result]]) -> str:
    rep, catalog = view.report, view.catalog
    by_measure = {m: s.value for m, s in rep.summary.by_measure.items()}
    rows = []
    for sec, title in catalog.sections.items():
        ms = [m for m in catalog.measures if m.section == sec]
        rolled = [by_measure[m.id] for m in ms]
        findings = [r.status.value for m in ms for r in per_measure[m.id]]
        passed = sum(1 for s in rolled if s in ("pass", "not_applicable", "waived"))
        key = (-rank(worst(rolled)), -sum(1 for s in rolled if s in ("fail", "error")), sec)
        rows.append(
            (
                key,
                f'<tr><th scope="row"><a href="#{anchor("sec", sec)}">{esc(sec)}</a></th>'
                f"<td>{esc(title)}</td>"
                f"<td>{badge(worst(rolled))}</td>"
                f"<td>{status_bar(rolled)}{passed} of {len(rolled)} met · {esc(counts(rolled))}</td>"
                f"<td>{esc(counts(findings))}</td></tr>",
            )
        )
    rows.sort(key=lambda kv: kv[0])
    return (
        '<table class="full chart"><caption>Compliance by section, worst first (bar: share of the '
        "section's measures by status)</caption><thead><tr>"
        '<th scope="col">Section</th><th scope="col">Title</th><th scope="col">Worst</th>'
        '<th scope="col">Measures</th><th scope="col">Findings</th>'
        f"</tr></thead><tbody>{''.join(r for _, r in rows)}</tbody></table>"
    )


def _by_target(rep: Report) -> str:
    per = per_target_measures(rep)
    rows = []
    for t in rep.targets:
        rolled = list(per.get(t.id, {}).values())
        top = "error" if t.unreachable else worst(rolled)
        bad = sum(1 for s in rolled if s in ("fail", "error"))
        key = (not t.unreachable, -rank(top), -bad, t.id)  # a target that could not be assessed first
        state = f"unreachable: {esc(t.unreachable)}" if t.unreachable else f"{esc(counts(rolled))}"
        rows.append(
            (
                key,
                f'<tr><th scope="row"><a class="tlink" href="#measures" data-target="{esc(t.id)}">'
                f"{esc(t.id)}</a></th><td>{badge(top)}</td>"
                f'<td>{status_bar(rolled)}{state}</td><td class="num">{t.vm_count}</td></tr>',
            )
        )
    rows.sort(key=lambda kv: kv[0])
    return (
        '<div class="scroll" role="region" aria-labelledby="c-hosts" tabindex="0">'
        '<table class="full chart"><caption id="c-hosts">Compliance by target, worst first (bar: share of '
        "the target's measures by status)</caption><thead><tr>"
        '<th scope="col">Target</th><th scope="col">Worst</th><th scope="col">Measures</th>'
        '<th scope="col">VMs</th>'
        f"</tr></thead><tbody>{''.join(r for _, r in rows)}</tbody></table></div>"
    )


def summary(view: ReportView, per_measure: dict[str, list[Result]]) -> str:
    """The summary: the verdict, what needs attention, and the charts by section and by target."""
    rep, catalog = view.report, view.catalog
    by_measure = {m: s.value for m, s in rep.summary.by_measure.items()}
    findings = [r.status.value for r in rep.results]
    vms = sum(t.vm_count for t in rep.targets)
    rolled = [by_measure[m.id] for m in catalog.measures]
    lead = (
        f"<p><strong>{len(rolled)} measures</strong>: {esc(counts(rolled))}. "
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
    return (
        '<section id="summary" aria-labelledby="h-summary"><h2 id="h-summary">Summary</h2>'
        f"{_verdict(view)}{lead}{_by_section(view, per_measure)}{_by_target(rep)}{_attention(view)}"
        f"{by_status}</section>"
    )


def _target_state(t: Target) -> str:
    if t.unreachable:
        return f"{badge('error')} unreachable: {esc(t.unreachable)}"
    if t.problems:
        items = "".join(f"<li>{esc(p.area)}: {esc(p.source)}: {esc(p.message)}</li>" for p in t.problems)
        return (
            f'<details class="ev"><summary>{len(t.problems)} collection problem(s)</summary>'
            f"<ul>{items}</ul></details>"
        )
    return "collected without problems"


def targets(rep: Report) -> str:
    """The targets table: each target's verdict, platform, hypervisor, VMs, collection state and (when any
    target has one) inventory groups; then the groups' roll-ups."""
    grouped = any(t.groups for t in rep.targets)
    rows = []
    for t in rep.targets:
        hv = t.hypervisor
        hv_text = " ".join(str(x) for x in (hv.type, hv.version) if x) if hv else ""
        if hv and hv.libvirt:
            hv_text += f" (libvirt {hv.libvirt})"
        rows.append(
            f'<tr><th scope="row">{esc(t.id)}</th><td>{verdict_badge(t.verdict)}</td>'
            f"<td>{esc(t.platform)}</td>"
            f'<td>{esc(t.hostname)}</td><td>{esc(hv_text)}</td><td class="num">{t.vm_count}</td>'
            f"<td>{esc(t.collected_at)}</td><td>{_target_state(t)}</td>"
            + (f"<td>{esc(', '.join(t.groups))}</td>" if grouped else "")
            + "</tr>"
        )
    return (
        '<section id="targets" aria-labelledby="h-targets"><h2 id="h-targets">Targets</h2>'
        '<div class="scroll" role="region" aria-label="Targets (scrollable)" tabindex="0">'
        '<table class="full"><thead><tr><th scope="col">Target</th><th scope="col">Verdict</th>'
        '<th scope="col">Platform</th><th scope="col">Hostname</th><th scope="col">Hypervisor</th>'
        '<th scope="col">VMs</th><th scope="col">Collected at</th><th scope="col">Collection</th>'
        + ('<th scope="col">Groups</th>' if grouped else "")
        + f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>{_groups_table(rep)}</section>"
    )


def _groups_table(rep: Report) -> str:
    """The inventory groups' roll-ups (empty without groups)."""
    if not rep.summary.by_group:
        return ""
    rows = "".join(
        f'<tr><th scope="row">{esc(name)}</th><td class="num">{g.targets}</td>'
        f'<td class="num">{g.compliant}</td><td class="num">{g.not_compliant}</td>'
        f'<td class="num">{g.not_assessed}</td></tr>'
        for name, g in rep.summary.by_group.items()
    )
    return (
        '<h3 id="h-groups">Groups</h3>'
        '<div class="scroll" role="region" aria-label="Groups (scrollable)" tabindex="0">'
        '<table class="full"><thead><tr><th scope="col">Group</th><th scope="col">Targets</th>'
        '<th scope="col">Compliant</th><th scope="col">Not compliant</th><th scope="col">Not assessed</th>'
        f"</tr></thead><tbody>{rows}</tbody></table></div>"
    )


def profile(rep: Report) -> str:
    """The profile: where it came from, its deviations from the defaults and every threshold used."""
    p = rep.profile
    thresholds = "".join(
        f'<tr><th scope="row">{esc(k)}</th><td>{esc(readable(v))}</td></tr>' for k, v in p.thresholds.items()
    )
    deviations = (
        "<ul>" + "".join(f"<li>{esc(d)}</li>" for d in p.deviations) + "</ul>"
        if p.deviations
        else "<p>No deviations: the packaged default profile was used as is.</p>"
    )
    advisory = ", ".join(p.advisory) or "none"
    return (
        '<section id="profile" aria-labelledby="h-profile"><h2 id="h-profile">Profile</h2>'
        f"<p>Profile <strong>{esc(p.name)}</strong> from {esc(p.source)}"
        f"{' (tailored)' if p.tailored else ''}. Measures tailored to advisory: {esc(advisory)}.</p>"
        f'<h3 id="h-deviations">Deviations from the defaults</h3>{deviations}'
        f"<table><caption>Thresholds used</caption><tbody>{thresholds}</tbody></table></section>"
    )


def _register(kind: str, use: RegisterUse | None) -> str:
    if not use:
        return f"<p>No {kind} file was given.</p>"
    by_state = ", ".join(f"{n} {s}" for s, n in use.by_state.items())
    notes = "".join(f"<li>{esc(n)}</li>" for n in use.notes)
    rows = "".join(
        f'<tr><th scope="row">{esc(e.id)}</th><td>{esc(e.measure)}</td>'
        f"<td>{esc(e.state)}</td>"
        f"<td>{esc(e.valid_from.isoformat())} – {esc(e.valid_until.isoformat())}</td>"
        f'<td class="num">{esc(e.matched)}</td><td class="num">{esc(e.applied)}</td></tr>'
        for e in use.entry_use
    )
    table = (
        f'<table><caption>{esc(kind.capitalize())} entries</caption><thead><tr><th scope="col">Entry</th>'
        '<th scope="col">Measure</th><th scope="col">State</th><th scope="col">Valid</th>'
        '<th scope="col">Findings matched</th><th scope="col">Findings changed</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
        if rows
        else ""
    )
    return (
        f"<p>{esc(kind.capitalize())} file <code>{esc(use.path)}</code> (sha256 "
        f"<code>{esc(use.sha256)}</code>): {esc(use.entries)} entries ({esc(by_state)}), "
        f"{esc(use.applied)} finding(s) changed.</p>" + (f"<ul>{notes}</ul>" if notes else "") + table
    )


def registers(rep: Report) -> str:
    """The exceptions register and attestations file the evaluation used, entry by entry."""
    as_of = rep.as_of.isoformat() if rep.as_of else None
    return (
        '<section id="registers" aria-labelledby="h-registers">'
        '<h2 id="h-registers">Exceptions and attestations</h2>'
        + (f"<p>Judged as of {esc(as_of)}.</p>" if as_of else "")
        + '<h3 id="h-exceptions">Exceptions register</h3>'
        + _register("exceptions", rep.exceptions)
        + '<h3 id="h-attestations">Attestations</h3>'
        + _register("attestations", rep.attestations)
        + "</section>"
    )
