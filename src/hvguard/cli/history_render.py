"""Print the scan list (``hvguard history``) and a scan diff (``hvguard diff``): rich tables for people,
JSON for scripts. The JSON forms carry every value in full; tables shorten long values."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hvguard.findings import SEVERITY_ORDER
from hvguard.history.compare import FactChange, ScanDiff, Transition
from hvguard.history.records import ScanSummary, iso
from hvguard.report.common import visible

STATUS_STYLE = {
    "pass": "green",
    "fail": "bold red",
    "warn": "yellow",
    "manual": "cyan",
    "not_applicable": "dim",
    "error": "bold magenta",
    "waived": "blue",
}
#: Table cells longer than this are cut (the JSON form has the full value).
VALUE_WIDTH = 70


def to_json_text(data: Any) -> str:
    """Indented JSON, newline-terminated."""
    return msgspec.json.format(msgspec.json.encode(data), indent=2).decode() + "\n"


def history_json(scans: Sequence[ScanSummary], database: str, target: str | None) -> str:
    """``hvguard history --format json``."""
    return to_json_text(
        {
            "schema": "hvguard.history/1",
            "database": database,
            "target": target,
            "scans": [s.to_json() for s in scans],
        }
    )


def _counts(by_status: dict[str, int]) -> Text:
    out = Text()
    for status in SEVERITY_ORDER:
        n = by_status.get(status.value, 0)
        if n:
            if out:
                out.append(" · ")
            out.append(f"{n} {status.value}", style=STATUS_STYLE[status.value])
    return out or Text("no findings", style="dim")


def print_history(scans: Sequence[ScanSummary], database: str, target: str | None, console: Console) -> None:
    """``hvguard history``: newest first, one row per scan."""
    where = f" of {target}" if target else ""
    if not scans:
        console.print(Text(f"no scans{where} recorded in {database}"))
        return
    table = Table(title=Text(f"hvguard scan history{where} — {database}"), title_justify="left")
    for col in ("ID", "Time (UTC)", "Command", "Targets", "Findings", "Profile"):
        table.add_column(col, no_wrap=col in {"ID", "Time (UTC)"})
    for s in scans:
        table.add_row(
            str(s.id),
            iso(s.created_at),
            s.command,
            Text("\n".join(s.targets) or "—"),  # Text: ids hold brackets rich would read as markup
            _counts(s.by_status),
            Text(s.profile_name + (" (tailored)" if s.profile_tailored else "")),
        )
    console.print(table)


def _status(value: str | None) -> Text:
    if value is None:
        return Text("—", style="dim")
    return Text(value.upper().replace("_", "/"), style=STATUS_STYLE.get(value, "bold magenta"))


def _statuses(rolled: str | None, each: tuple[str, ...]) -> Text:
    text = _status(rolled)
    if len(each) > 1:
        text.append(f" ({', '.join(each)})", style="dim")
    return text


def _value(value: Any, present: bool) -> Text:
    if not present:
        return Text("—", style="dim")
    raw = msgspec.json.encode(value).decode()
    if len(raw) > VALUE_WIDTH:
        raw = raw[: VALUE_WIDTH - 1] + "…"
    return Text(raw)


def _transitions_table(items: Sequence[Transition]) -> Table:
    table = Table(title="Status transitions", title_justify="left", show_edge=False)
    for col in ("Measure", "Subject", "Old", "New", "Message"):
        table.add_column(col, overflow="fold")
    for t in items:
        table.add_row(
            t.measure,
            Text(visible(t.subject)),  # names from targets: control characters shown, never sent
            _statuses(t.old, t.old_statuses),
            _statuses(t.new, t.new_statuses),
            Text(visible(t.message)),
        )
    return table


def _facts_table(items: Sequence[FactChange]) -> Table:
    table = Table(title="Fact changes", title_justify="left", show_edge=False)
    for col in ("Path", "Old", "New"):
        table.add_column(col, overflow="fold")
    for c in items:
        table.add_row(
            Text(visible(c.path)), _value(c.old, c.kind != "added"), _value(c.new, c.kind != "removed")
        )
    return table


def print_diff(diff: ScanDiff, console: Console) -> None:
    """``hvguard diff``: per target, whole subjects added/removed, status transitions, fact changes."""
    o, n = diff.old, diff.new
    console.print(
        Text.assemble(
            ("hvguard diff", "bold"),
            f" — scan {o.id} ({iso(o.created_at)}) → scan {n.id} ({iso(n.created_at)})",
        )
    )
    for note in diff.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    by_target: dict[str, list[Transition]] = defaultdict(list)
    for t in diff.transitions:
        by_target[t.target].append(t)
    facts: dict[str, list[FactChange]] = defaultdict(list)
    for c in diff.fact_changes:
        facts[c.target].append(c)
    for target in diff.targets:
        console.print()
        console.print(Text(f"target {target}", style="bold"))
        added = [s for t, s in diff.subjects_added if t == target]
        removed = [s for t, s in diff.subjects_removed if t == target]
        for label, subjects in (("new", added), ("gone", removed)):
            if subjects:
                console.print(Text(visible(f"  {label} subject(s): {', '.join(subjects)}")))
        # A subject that came or went wholesale is one line above, not one row per measure.
        wholesale = set(added) | set(removed)
        rows = [t for t in by_target[target] if t.subject not in wholesale]
        if rows:
            console.print(_transitions_table(rows))
        if facts[target]:
            console.print(_facts_table(facts[target]))
        xml_only = [vm for t, vm in diff.unaudited_xml_changes if t == target]
        if xml_only:
            console.print(
                Text(
                    visible(
                        "  domain XML changed outside the audited settings (not counted): "
                        + ", ".join(xml_only)
                    ),
                    style="dim",
                )
            )
        if not (rows or facts[target] or added or removed):
            console.print(Text("  no changes"))
    summary = (
        f"{len(diff.transitions)} status transition(s), {len(diff.fact_changes)} fact change(s)"
        if diff.changed
        else "no changes"
    )
    console.print()
    console.print(Text(summary, style="bold" if diff.changed else "green"))
