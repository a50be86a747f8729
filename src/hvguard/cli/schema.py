"""``hvguard schema NAME``: print one of the published JSON Schemas; ``--list`` names them all.

The schemas are the files shipped in :mod:`hvguard.schemas` (generated from the models), so what this
prints is what the package documents, without importing any model. Editors use them to check exceptions
registers, attestations, profiles, baselines and watch configurations as they are written.
"""

from __future__ import annotations

import sys

import click

from hvguard.cli.errors import EXIT_OK, UserError


@click.command()
@click.argument("name", required=False)
@click.option("--list", "list_all", is_flag=True, help="List the schemas, one a line, with what each is.")
def schema(name: str | None, list_all: bool) -> int:
    """Print a published JSON Schema (draft 2020-12), or --list them.

    NAME is report, bundle, exceptions, attestations, profile, baseline or watch-config. An editor given
    one checks a YAML input as it is written: hvguard schema exceptions > exceptions.schema.json
    """
    from hvguard.schemas import SCHEMAS, shipped_text

    if list_all:
        if name is not None:
            raise UserError("give either --list or a schema NAME, not both")
        width = max(len(n) for n in SCHEMAS)
        for n, what in SCHEMAS.items():
            click.echo(f"{n:<{width}}  {what}")
        return EXIT_OK
    if name is None:
        raise UserError(f"give a schema NAME ({', '.join(SCHEMAS)}) or --list")
    if name not in SCHEMAS:
        raise UserError(f"unknown schema {name!r} (one of {', '.join(SCHEMAS)}; see hvguard schema --list)")
    sys.stdout.write(shipped_text(name))
    return EXIT_OK
