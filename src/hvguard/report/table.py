"""The terminal report: one table per SS-009 section, the findings that need attention, a summary line."""

from __future__ import annotations

import io
from collections import Counter, defaultdict

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from hvguard.engine import Evaluation
from hvguard.findings import SEVERITY_ORDER, Finding, Status, severity

STYLE = {
    Status.PASS: "green",
    Status.FAIL: "bold red",
    Status.WARN: "yellow",
    Status.MANUAL: "cyan",
    Status.NOT_APPLICABLE: "dim",
    Status.ERROR: "bold magenta",
    Status.WAIVED: "blue",
}
#: Per measure, how many attention-needing findings the table spells out before pointing to JSON.
DETAIL_LIMIT = 5
#: Collection problems listed per target in the header.
PROBLEM_LIMIT = 10
ATTENTION = (Status.ERROR, Status.FAIL, Status.WARN, Status.MANUAL)


def _label(status: Status) -> Text:
    return Text(status.value.upper().replace("_", "/"), style=STYLE[status])


def _counts(findings: list[Finding]) -> str:
    c = Counter(f.status for f in findings)
    return " · ".join(f"{c[s]} {s.value}" for s in SEVERITY_ORDER if c[s])


def build(ev: Evaluation) -> Group:
    """The report as rich renderables."""
    per_measure: dict[str, list[Finding]] = defaultdict(list)
    for f in ev.findings:
        per_measure[f.measure].append(f)
    parts: list[Table | Text] = []
    vm_total = sum(len(t.hypervisor.vms) for t in ev.targets if t.hypervisor)
    head = Text.assemble(
        ("hvguard", "bold"),
        f" — {ev.catalog.id} v{ev.catalog.version} · profile {ev.profile.name}"
        + (" (tailored)" if ev.profile.tailored else "")
        + f" · {len(ev.targets)} target(s), {vm_total} VM(s)",
    )
    parts.append(head)
    for t in ev.targets:
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
    for dev in ev.profile.deviations:
        parts.append(Text(f"  profile deviation: {dev}", style="yellow"))

    for section, title in ev.catalog.sections.items():
        table = Table(title=f"{section} {title}", title_justify="left", expand=False, show_lines=False)
        table.add_column("Measure", no_wrap=True)
        table.add_column("Status", no_wrap=True)
        table.add_column("Title")
        table.add_column("Findings")
        for m in ev.catalog.measures:
            if m.section != section:
                continue
            table.add_row(m.id, _label(ev.by_measure[m.id]), m.title, _counts(per_measure[m.id]))
        parts.append(table)

    attention = Text()
    for m in ev.catalog.measures:
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
                f" {f.subject}" + (f" @ {f.target}" if len(ev.targets) > 1 else "") + f": {f.message}\n"
            )
            if f.remediation:
                fix = f.remediation.strip().replace("\n", "\n        ")
                attention.append(f"      fix: {fix}\n", style="dim")
        if len(needs) > DETAIL_LIMIT:
            attention.append(f"  … and {len(needs) - DETAIL_LIMIT} more (see --format json)\n", style="dim")
    if attention.plain:
        parts.append(Text("\nFindings that need attention", style="bold underline"))
        parts.append(attention)

    rolled = Counter(ev.by_measure.values())
    summary = Text("\nSummary: ", style="bold")
    summary.append(f"{len(ev.catalog.measures)} measures — ")
    summary.append_text(
        Text(", ").join(Text(f"{rolled[s]} {s.value}", style=STYLE[s]) for s in SEVERITY_ORDER if rolled[s])
    )
    summary.append(f" · {len(ev.findings)} findings")
    parts.append(summary)
    return Group(*parts)


def print_report(ev: Evaluation, console: Console) -> None:
    """Print the report to a (possibly colour) console."""
    console.print(build(ev))


def render(ev: Evaluation) -> str:
    """The report as plain text (no colour), for files."""
    buf = io.StringIO()
    print_report(ev, Console(file=buf, width=160, color_system=None, force_terminal=False))
    return buf.getvalue()
