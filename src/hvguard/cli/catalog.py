"""``hvguard catalog``: the 36 SS-009 measures, as a table or JSON."""

from __future__ import annotations

import sys

import click

from hvguard.cli.errors import EXIT_OK


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def catalog(fmt: str) -> int:
    """List the 36 SS-009 measures."""
    from hvguard.catalog import load_catalog

    cat = load_catalog()
    if fmt == "json":
        import msgspec

        data = [
            {
                "id": m.id,
                "section": m.section,
                "title": m.title,
                "text": m.text,
                "modality": m.modality,
                "nist": list(m.nist),
                "automation": m.automation,
                "advisory_preamble": m.advisory_preamble,
                "notes": m.notes,
                "manual_evidence": m.manual_evidence,
            }
            for m in cat.measures
        ]
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(data), indent=2).decode() + "\n")
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{cat.id} v{cat.version} — {cat.title}", title_justify="left")
    for col in ("Measure", "Modality", "Automation", "NIST CSF 1.1", "Title"):
        table.add_column(col)
    for m in cat.measures:
        table.add_row(m.id, m.modality, m.automation, " ".join(m.nist), m.title)
    Console().print(table)
    return EXIT_OK
