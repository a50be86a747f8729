"""The terminal report: one table per SS-009 section, the findings that need attention, a summary line."""

from __future__ import annotations

import io
from collections import Counter, defaultdict

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from hvguard.engine import Evaluation
from hvguard.findings import SEVERITY_ORDER, Status, Verdict, severity
from hvguard.report.build import ReportView, display_view, report_view
from hvguard.report.common import privilege_banner
from hvguard.report.model import RegisterUse, Report, Result
from hvguard.report.verdicts import VERDICT_LABEL, assessed_results, verdict_counts, verdict_detail

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
#: Per measure, how many attention-needing findings the table spells out before pointing to JSON.
DETAIL_LIMIT = 5
#: Collection problems listed per target in the header.
PROBLEM_LIMIT = 10
ATTENTION = (Status.ERROR, Status.FAIL, Status.WARN, Status.MANUAL)


def _label(status: Status) -> Text:
    return Text(status.value.upper().replace("_", "/"), style=STYLE[status])


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
        was.append(f"was {f.original_status.value.upper().replace('_', '/')}")
    if f.untailored_status is not None:
        was.append(f"default thresholds: {f.untailored_status.value.upper()}")
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
    parts: list[Table | Text] = []
    vm_total = sum(t.vm_count for t in rep.targets)
    head = Text.assemble(
        ("hvguard", "bold"),
        f" — {catalog.id} v{catalog.version} · profile {profile.name}"
        + (" (tailored)" if profile.tailored else "")
        + f" · {len(rep.targets)} target(s), {vm_total} VM(s)",
    )
    parts.append(head)
    bundle = rep.source.bundle if rep.source else None
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

    for section, title in catalog.sections.items():
        table = Table(title=f"{section} {title}", title_justify="left", expand=False, show_lines=False)
        table.add_column("Measure", no_wrap=True)
        table.add_column("Status", no_wrap=True)
        table.add_column("Title")
        table.add_column("Findings")
        for m in catalog.measures:
            if m.section != section:
                continue
            table.add_row(m.id, _label(rep.summary.by_measure[m.id]), m.title, _counts(per_measure[m.id]))
        parts.append(table)

    many_targets = len(rep.targets) > 1
    attention = Text()
    for m in catalog.measures:
        needs = sorted(
            (f for f in per_measure[m.id] if f.status in ATTENTION),
            key=lambda f: (-severity(f.status), f.target, f.subject),
        )
        if not needs:
            continue
        attention.append(f"\n{m.id} {m.title}\n", style="bold")
        for f in needs[:DETAIL_LIMIT]:
            attention.append("  ")
            attention.append_text(_label(f.status))
            attention.append(
                f" {f.subject}" + (f" @ {f.target}" if many_targets else "") + f": {f.message}\n"
            )
            if f.remediation:
                fix = f.remediation.strip().replace("\n", "\n        ")
                attention.append(f"      fix: {fix}\n", style="dim")
            for note in _register_notes(f, ids):
                attention.append(f"      note: {note}\n", style="dim")
        if len(needs) > DETAIL_LIMIT:
            attention.append(f"  … and {len(needs) - DETAIL_LIMIT} more (see --format json)\n", style="dim")
    if attention.plain:
        parts.append(Text("\nFindings that need attention", style="bold underline"))
        parts.append(attention)

    accepted = Text()
    for m in catalog.measures:
        shown = [f for f in per_measure[m.id] if _accepted(f)]
        if not shown:
            continue
        accepted.append(f"\n{m.id} {m.title}\n", style="bold")
        for f in shown[:DETAIL_LIMIT]:
            accepted.append_text(_accepted_line(f, many_targets))
        if len(shown) > DETAIL_LIMIT:
            accepted.append(f"  … and {len(shown) - DETAIL_LIMIT} more (see --format json)\n", style="dim")
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
    summary.append(f" · {len(rep.results)} findings")
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
        block.append(f"  {t.id}: {verdict_detail(t, rep.summary.by_target[t.id])}")
    return block


def print_report(ev: Evaluation, console: Console) -> None:
    """Print the report to a (possibly colour) console."""
    console.print(build(report_view(ev)))


def render(ev: Evaluation) -> str:
    """The report as plain text (no colour), for files."""
    buf = io.StringIO()
    print_report(ev, Console(file=buf, width=160, color_system=None, force_terminal=False))
    return buf.getvalue()
