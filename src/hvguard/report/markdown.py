"""The Markdown report (``--format markdown``): a concise summary to paste into a ticket.

A header (targets, profile and its deviations, counts), a table of the measures that did not pass with
their finding counts, exceptions and attestations in force, and the top failures with their exact
remediation in fenced code blocks. Text from facts and evidence is escaped — Markdown punctuation and
inline HTML are backslash-escaped, table cells never break the table (pipes escaped, newlines folded) and
every fence is longer than any run of backticks inside it — so a hostile VM name cannot inject links,
images or markup into a ticket.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from hvguard.engine import Evaluation
from hvguard.report.build import ReportView, display_view, report_view
from hvguard.report.common import (
    LABEL,
    ORDER,
    attestation_text,
    counts_text,
    one_line,
    rank,
    waiver_text,
)
from hvguard.report.model import Result
from hvguard.report.verdicts import (
    VERDICT_LABEL,
    assessed_results,
    group_counts,
    verdict_counts,
    verdict_detail,
)

#: How many failing findings are spelled out with their remediation.
TOP_FAILURES = 10
# Characters that start emphasis, code, links, images, inline HTML, entities, tables or strike-through
# anywhere in a line; block markers only matter at the start of a line (see ``md_line``).
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#!])")
_BLOCK_START = re.compile(r"^(\s*)([-+=>]|\d+[.)])")


def md(text: Any) -> str:
    """Inline text on one line with every Markdown (and HTML) special character backslash-escaped."""
    return _SPECIAL.sub(r"\\\1", one_line("" if text is None else str(text)))


def md_line(text: Any) -> str:
    """:func:`md` for text that starts a line: a leading list, quote or heading marker is escaped too."""
    escaped = md(text)
    m = _BLOCK_START.match(escaped)
    if not m:
        return escaped
    # "- x" → "\- x"; "1. x" → "1\. x" (a backslash before a digit would be shown literally)
    at = m.end(2) - 1 if m[2][0].isdigit() else m.end(1)
    return escaped[:at] + "\\" + escaped[at:]


def fence(text: str, lang: str = "") -> str:
    """``text`` in a fenced code block whose fence is longer than any backtick run inside it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    bar = "`" * max(3, longest + 1)
    return f"{bar}{lang}\n{text.rstrip()}\n{bar}"


def markdown_text(view: ReportView) -> str:
    """The Markdown summary of a report."""
    view = display_view(view)  # no input redraws, forges or reorders a line
    rep, catalog = view.report, view.catalog
    by_measure = rep.summary.by_measure
    per_measure: dict[str, list[Result]] = defaultdict(list)
    shown = assessed_results(rep)  # a target not assessed is its own line in the header
    for r in shown:
        per_measure[r.measure].append(r)
    rolled = [by_measure[m.id] for m in catalog.measures]
    p = rep.profile
    out: list[str] = [f"# hvguard {md(catalog.id)} v{md(catalog.version)} report", ""]
    for t in rep.targets:
        verdict = f"**{VERDICT_LABEL[t.verdict]}** ({md(verdict_detail(t, rep.summary.by_target[t.id]))})"
        bits = [verdict, md(t.platform)]
        if t.hostname:
            bits.append(f"host {md(t.hostname)}")
        bits.append(f"{t.vm_count} VM(s)")
        if t.groups:
            bits.append(f"groups {md(', '.join(t.groups))}")
        if t.collection.tls_verified is False:
            bits.append("**TLS certificate NOT verified** (--tls-insecure)")
        if t.problems and not t.unreachable:
            bits.append(f"{len(t.problems)} collection problem(s)")
        out.append(f"- **Target** {md(t.id)} — {', '.join(bits)}")
    out.append(
        f"- **Profile** {md(p.name)} ({md(p.source)})"
        + (" — **tailored**" if p.tailored else " — default, no deviations")
    )
    out += [f"  - deviation: {md(d)}" for d in p.deviations]
    as_of = rep.as_of.isoformat() if rep.as_of else None
    for kind, use in (("exceptions", rep.exceptions), ("attestations", rep.attestations)):
        if use:
            out.append(
                f"- **{kind.capitalize()}** {md(use.path)} (sha256 {md(use.sha256)}), "
                f"judged as of {md(as_of)}: {md(use.applied)} finding(s) changed"
            )
            out += [f"  - note: {md(n)}" for n in use.notes]
    out.append(f"- **Targets** ({len(rep.targets)}): {md(verdict_counts(rep))}")
    if rep.summary.by_group:
        out.append(f"- **Groups** ({len(rep.summary.by_group)}):")
        out += [f"  - {md(name)}: {md(group_counts(g))}" for name, g in rep.summary.by_group.items()]
    out.append(f"- **Measures** ({len(rolled)}): {md(counts_text(rolled))}")
    out.append(f"- **Findings** ({len(rep.results)}): {md(counts_text(r.status for r in rep.results))}")
    out.append(f"- **Generated** {md(rep.generated_at)} by hvguard {md(rep.tool.version)}")
    out.append("")

    open_measures = [m for m in catalog.measures if by_measure[m.id] not in ("pass", "not_applicable")]
    out.append("## Measures not passed")
    out.append("")
    if open_measures:
        out += ["| Measure | Status | Title | Findings |", "|---|---|---|---|"]
        for m in sorted(open_measures, key=lambda m: -rank(by_measure[m.id])):
            found = counts_text(r.status for r in per_measure[m.id])
            out.append(f"| {md(m.id)} | **{LABEL[by_measure[m.id]]}** | {md(m.title)} | {md(found)} |")
    else:
        out.append("Every measure passed or does not apply.")
    out.append("")

    waived = [r for r in rep.results if r.waiver]
    attested = [r for r in rep.results if r.attestation]
    if waived or attested:
        out += ["## Exceptions and attestations in force", ""]
        for r in waived:
            out.append(
                f"- {md(r.measure)} {md(r.subject)}: **WAIVED** (was {md(r.original_status)}) — "
                f"{md(waiver_text(r.waiver))}"
            )
        for r in attested:
            out.append(f"- {md(r.measure)} {md(r.subject)}: {md(attestation_text(r.attestation))}")
        out.append("")

    failing = sorted(
        (r for r in shown if r.status in ("error", "fail")),
        key=lambda r: (-rank(r.status), catalog.ids.index(r.measure), r.target, r.subject),
    )
    out += ["## Top failures", ""]
    if not failing:
        out += ["No failures and no evaluation errors.", ""]
    multi = len(rep.targets) > 1
    for r in failing[:TOP_FAILURES]:
        where = f" @ {md(r.target)}" if multi else ""
        out.append(f"### {md(r.measure)} {md(r.title)} — {LABEL[r.status]} {md(r.subject)}{where}")
        out += ["", md_line(r.message), ""]
        if r.remediation:
            out += ["Remediation:", "", fence(r.remediation.strip()), ""]
    if len(failing) > TOP_FAILURES:
        out += [
            f"… and {len(failing) - TOP_FAILURES} more failing finding(s): see the HTML, CSV or JSON report.",
            "",
        ]
    statuses_present = [s for s in ORDER if any(r.status == s for r in rep.results)]
    out.append(f"_Statuses: {', '.join(f'{LABEL[s]} = {s}' for s in statuses_present)}._")
    return "\n".join(out) + "\n"


def render(ev: Evaluation) -> str:
    """Render the Markdown summary of ``ev``."""
    return markdown_text(report_view(ev))
