"""The terminal report: one table per SS-009 section, the findings that need attention, a summary line.

Every selected finding is listed (narrow the report with ``--measure``, ``--vm``, ``--status``). Fix
commands are printed whole, never wrapped mid-command, so they can be copied at any terminal width.
"""

from __future__ import annotations

import io
import os
from collections import Counter, defaultdict

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from hvguard.engine import Evaluation
from hvguard.findings import SEVERITY_ORDER, Status, Verdict, severity
from hvguard.report.build import ReportView, display_view, report_view
from hvguard.report.common import LABEL, privilege_banner
from hvguard.report.model import RegisterUse, Report, Result, SelectionBlock
from hvguard.report.selection import measure_selected
from hvguard.report.verdicts import (
    VERDICT_LABEL,
    assessed_results,
    group_counts,
    verdict_counts,
    verdict_detail,
)

STYLE = {
    Status.PASS: "green",
    Status.FAIL: "bold red",
    Status.WARN: "yellow",
    Status.MANUAL: "cyan",
    Status.NOT_APPLICABLE: "dim",
    Status.ERROR: "bold magenta",
    Status.WAIVED: "blue",
}
VERDICT_STYLE = {
    Verdict.COMPLIANT: "green",
    Verdict.NOT_COMPLIANT: "bold red",
    Verdict.NOT_ASSESSED: "bold magenta",
}
#: Collection problems listed per target in the header.
PROBLEM_LIMIT = 10
ATTENTION = (Status.ERROR, Status.FAIL, Status.WARN, Status.MANUAL)


def _label(status: Status) -> Text:
    return Text(LABEL[status.value], style=STYLE[status])


def _fix(remediation: str) -> Text:
    """A fix as printed: first line after ``fix:``, continuation lines indented, no line wrapped (a
    command broken across lines could not be copied and run)."""
    fix = remediation.strip().replace("\n", "\n        ")
    return Text(f"      fix: {fix}", style="dim", no_wrap=True, overflow="ignore")


def _selection_line(sel: SelectionBlock) -> Text | None:
    """``selection: --measure 11.3 --status fail · 3 of 83 findings shown``; None without filters."""
    args = [
        *(f"--measure {m}" for m in sel.measures),
        *(f"--skip-measure {m}" for m in sel.skip_measures),
        *(f"--vm {g}" for g in sel.vms),
        *(["--skip-host"] if sel.skip_host else []),
        *([f"--status {','.join(s.value for s in sel.statuses)}"] if sel.statuses else []),
    ]
    if not args:
        return None
    return Text(
        f"  selection: {' '.join(args)} · {sel.results_selected} of {sel.results_total} findings shown "
        "(the summary counts them all)",
        style="bold",
    )


def _counts(findings: list[Result]) -> str:
    c = Counter(f.status for f in findings)
    return " · ".join(f"{c[s]} {s.value}" for s in SEVERITY_ORDER if c[s])


def _source_line(kind: str, use: RegisterUse, verb: str) -> Text:
    by_state = use.by_state
    states = ", ".join(f"{by_state[s]} {s}" for s in ("active", "expired", "pending") if by_state.get(s))
    return Text(
        f"  {kind}: {use.path} (sha256 {use.sha256[:12]}…; {use.entries} entries"
        + (f": {states}" if states else "")
        + f"; {use.applied} finding(s) {verb})"
    )


def _accepted(f: Result) -> bool:
    """Findings whose status is not the checks' own verdict on default settings: waived, attested, or
    passing/warning only because the profile loosened a threshold."""
    return f.status is Status.WAIVED or f.attestation is not None or f.untailored_status is not None


def _accepted_line(f: Result, many_targets: bool) -> Text:
    line = Text("  ")
    line.append_text(_label(f.status))
    was = []
    if f.attestation is not None:
        was.append("attestation refused" if f.status is Status.ERROR else "attested")
    if f.original_status is not None:
        was.append(f"was {LABEL[f.original_status.value]}")
    if f.untailored_status is not None:
        was.append(f"default thresholds: {LABEL[f.untailored_status.value]}")
    line.append(f" ({', '.join(was)})" if was else "", style="dim")
    line.append(f" {f.subject}" + (f" @ {f.target}" if many_targets else "") + f": {f.message}\n")
    if f.waiver is not None:
        w = f.waiver
        line.append(
            f"      {w['id']}: {w['risk_rating']} risk · owner {w['risk_owner']} · approved by "
            f"{w['approved_by']} on {w['approved_on']} · expires {w['expires_on']} "
            f"({w['days_to_expiry']} d left)\n",
            style="blue",
        )
    if f.untailored_status is not None:
        for note in f.notes:
            if "only because the profile" in note:
                line.append(f"      {note}\n", style="yellow")
    return line


def _register_notes(f: Result, ids: frozenset[str]) -> list[str]:
    """A finding's notes that come from a register entry (expired exception, refused attestation …)."""
    return [n for n in f.notes if n.split(" ", 1)[0] in ids]


def build(view: ReportView) -> Group:
    """The report as rich renderables."""
    view = display_view(view)  # no input redraws, forges or reorders a line
    rep, catalog = view.report, view.catalog
    profile = rep.profile
    per_measure: dict[str, list[Result]] = defaultdict(list)
    for f in assessed_results(rep):  # a target not assessed is one line of its own (Targets)
        per_measure[f.measure].append(f)
    parts: list[RenderableType] = []
    vm_total = sum(t.vm_count for t in rep.targets)
    head = Text.assemble(
        ("hvguard", "bold"),
        f" — {catalog.id} v{catalog.version} · profile {profile.name}"
        + (" (tailored)" if profile.tailored else "")
        + f" · {len(rep.targets)} target(s), {vm_total} VM(s)",
    )
    parts.append(head)
    bundle = rep.source.bundle if rep.source else None
    bundles = rep.source.bundles if rep.source else []
    if bundle is None and bundles:
        unsigned = sum(b.signed_by is None for b in bundles)
        keys = sorted({b.signed_by for b in bundles if b.signed_by})
        parts.append(
            Text(
                f"  facts from {len(bundles)} bundles"
                + (f"; signed by key {', '.join(keys)}" if keys else "")
                + (f"; {unsigned} UNSIGNED (origin and integrity not verified)" if unsigned else "")
            )
        )
    if bundle is not None:
        signed = (
            f"signed by key {bundle.signed_by}"
            if bundle.signed_by
            else "UNSIGNED (origin and integrity not verified)"
        )
        parts.append(
            Text(
                f"  facts from bundle {bundle.path} (sha256 {bundle.sha256}), written {bundle.created_at} "
                f"by hvguard {bundle.tool_version}; {signed}"
            )
        )
    for t in rep.targets:
        banner = privilege_banner(t)
        if banner is not None:
            who = f"{t.id}: " if len(rep.targets) > 1 else ""
            parts.append(Text(f"  ! {who}{banner}", style="bold yellow"))
        if t.collection.tls_verified is False:
            parts.append(Text(f"  ! {t.id}: TLS certificate NOT verified (--tls-insecure)", style="bold red"))
    for t in rep.targets:
        line = f"  target {t.id} [{t.platform}]"
        if t.unreachable:
            line += f" — UNREACHABLE: {t.unreachable}"
        elif t.problems:
            line += f" — {len(t.problems)} collection problem(s):"
        parts.append(Text(line))
        if not t.unreachable:
            for p in t.problems[:PROBLEM_LIMIT]:
                parts.append(Text(f"    {p.area}: {p.source}: {p.message}", style="magenta"))
            if len(t.problems) > PROBLEM_LIMIT:
                parts.append(Text(f"    … and {len(t.problems) - PROBLEM_LIMIT} more (see --format json)"))
    if profile.tailored:
        parts.append(Text(f"  profile {profile.name} from {profile.source}"))
    for dev in profile.deviations:
        parts.append(Text(f"  profile deviation: {dev}", style="yellow"))
    if rep.exceptions is not None:
        parts.append(_source_line("exceptions", rep.exceptions, "waived"))
    if rep.attestations is not None:
        parts.append(_source_line("attestations", rep.attestations, "attested"))
    if rep.as_of is not None and (rep.exceptions or rep.attestations):
        parts.append(Text(f"  exceptions and attestations judged as of {rep.as_of}"))
    ids = frozenset(
        e.id for use in (rep.exceptions, rep.attestations) if use is not None for e in use.entry_use
    )
    sel = rep.selection
    selection = _selection_line(sel)
    if selection is not None:
        parts.append(selection)
    measures = [
        m for m in catalog.measures if measure_selected(m.id, m.section, sel.measures, sel.skip_measures)
    ]

    for section, title in catalog.sections.items():
        rows = [m for m in measures if m.section == section]
        if not rows:
            continue
        table = Table(title=f"{section} {title}", title_justify="left", expand=False, show_lines=False)
        table.add_column("Measure", no_wrap=True)
        table.add_column("Status", no_wrap=True)
        table.add_column("Title")
        table.add_column("Findings")
        for m in rows:
            table.add_row(m.id, _label(rep.summary.by_measure[m.id]), m.title, _counts(per_measure[m.id]))
        parts.append(table)

    many_targets = len(rep.targets) > 1
    attention: list[RenderableType] = []
    for m in measures:
        needs = sorted(
            (f for f in per_measure[m.id] if f.status in ATTENTION),
            key=lambda f: (-severity(f.status), f.target, f.subject),
        )
        if not needs:
            continue
        attention.append(Text(f"\n{m.id} {m.title}", style="bold"))
        for f in needs:
            said = Text("  ")
            said.append_text(_label(f.status))
            said.append(f" {f.subject}" + (f" @ {f.target}" if many_targets else "") + f": {f.message}")
            attention.append(said)
            if f.remediation:
                attention.append(_fix(f.remediation))
            notes = _register_notes(f, ids)
            if notes:
                attention.append(Text("\n".join(f"      note: {note}" for note in notes), style="dim"))
    if attention:
        parts.append(Text("\nFindings that need attention", style="bold underline"))
        parts.extend(attention)

    accepted = Text()
    for m in measures:
        shown = [f for f in per_measure[m.id] if _accepted(f)]
        if not shown:
            continue
        accepted.append(f"\n{m.id} {m.title}\n", style="bold")
        for f in shown:
            accepted.append_text(_accepted_line(f, many_targets))
    if accepted.plain:
        parts.append(Text("\nWaived, attested and tailored findings", style="bold underline"))
        parts.append(accepted)
    notes = view.register_notes
    if notes:
        parts.append(Text("\nRegister notes", style="bold underline"))
        parts.append(Text("\n".join(f"  {n}" for n in notes), style="yellow"))

    parts.append(_targets_block(rep))
    rolled = Counter(rep.summary.by_measure.values())
    summary = Text("\nSummary: ", style="bold")
    summary.append(f"{len(catalog.measures)} measures — ")
    summary.append_text(
        Text(", ").join(Text(f"{rolled[s]} {s.value}", style=STYLE[s]) for s in SEVERITY_ORDER if rolled[s])
    )
    summary.append(
        f" · {len(rep.results)} of {sel.results_total} findings shown"
        if selection is not None
        else f" · {len(rep.results)} findings"
    )
    parts.append(summary)
    return Group(*parts)


def _targets_block(rep: Report) -> Text:
    """The per-target verdicts: one line per target, label first (never colour alone)."""
    block = Text("\nTargets: ", style="bold")
    block.append(verdict_counts(rep))
    if rep.summary.not_assessed:
        block.append(" — measures roll up the assessed targets only", style="dim")
    width = max(len(label) for label in VERDICT_LABEL.values())
    for t in rep.targets:
        block.append("\n  ")
        block.append(VERDICT_LABEL[t.verdict].ljust(width), style=VERDICT_STYLE[t.verdict])
        groups = f" [{', '.join(t.groups)}]" if t.groups else ""
        block.append(f"  {t.id}{groups}: {verdict_detail(t, rep.summary.by_target[t.id])}")
    if rep.summary.by_group:
        block.append("\nGroups:", style="bold")
        for name, group in rep.summary.by_group.items():
            block.append(f"\n  {name}: {group_counts(group)}")
    return block


def print_report(ev: Evaluation, console: Console) -> None:
    """Print the report to a (possibly colour) console; lines set not to wrap (fixes) are not cropped."""
    console.print(build(report_view(ev)), crop=False)


#: Width of the text report where no terminal says (a pipe, a file) and ``COLUMNS`` does not either:
#: wider than 80 so the tables are not squeezed.
PIPE_WIDTH = 160


def columns(default: int = PIPE_WIDTH) -> int:
    """``$COLUMNS`` when it is a positive number (the user's or the shell's), else ``default``."""
    value = os.environ.get("COLUMNS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else default


def render(ev: Evaluation) -> str:
    """The report as plain text (no colour), for files: ``$COLUMNS`` wide, else 160."""
    buf = io.StringIO()
    print_report(ev, Console(file=buf, width=columns(), color_system=None, force_terminal=False))
    return buf.getvalue()
