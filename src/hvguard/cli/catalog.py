"""``hvguard catalog``: the 36 SS-009 measures, as a table or JSON; ``--coverage`` shows which checks
automate each measure on which platform (from the check map, ``catalog/checks.yaml``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from hvguard.cli.errors import EXIT_OK, UserError

if TYPE_CHECKING:
    from hvguard.catalog import Catalog


PLATFORMS = ("kvm-libvirt", "linux-host", "vmware-esxi", "vmware-vcenter")


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option(
    "--coverage",
    is_flag=True,
    help="Show, per measure, the checks that automate it and the platforms they cover.",
)
@click.option(
    "--platform",
    type=click.Choice(PLATFORMS),
    help="With --coverage: only the checks that apply to this platform.",
)
def catalog(fmt: str, coverage: bool, platform: str | None) -> int:
    """List the 36 SS-009 measures (or, with --coverage, how hvguard automates each one)."""
    from hvguard.catalog import load_catalog

    cat = load_catalog()
    if platform is not None and not coverage:
        raise UserError("--platform goes with --coverage")
    if coverage:
        return _coverage(cat, platform, fmt)
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


def _coverage(cat: Catalog, platform: str | None, fmt: str) -> int:
    from hvguard.catalog.checks import coverage

    rows = coverage(cat, platform)
    if fmt == "json":
        import msgspec

        data = {
            "catalog": {"id": cat.id, "version": cat.version},
            "platform": platform,
            "measures": [
                {
                    "measure": r.measure,
                    "title": r.title,
                    "automation": r.automation,
                    "checks": list(r.checks),
                    "platforms": list(r.platforms),
                }
                for r in rows
            ],
        }
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(data), indent=2).decode() + "\n")
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    scope = f"on {platform}" if platform else "on every platform"
    table = Table(title=f"{cat.id} v{cat.version} — check coverage {scope}", title_justify="left")
    for col in ("Measure", "Automation", "Checks", "Platforms", "Title"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.measure, r.automation, "\n".join(r.checks) or "—", " ".join(r.platforms), r.title)
    Console().print(table)
    automated = sum(1 for r in rows if r.checks)
    Console().print(f"{automated} of {len(rows)} measures have a check {scope}; the others have none there.")
    return EXIT_OK
