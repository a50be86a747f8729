"""``hvguard history`` and ``hvguard diff``: list stored scans and show what changed between two.

Registered lazily in ``hvguard.cli.app.LAZY_COMMANDS``. Exit codes: ``history`` 0; ``diff`` 0 when nothing
changed, 1 when a status or an audited fact changed; both 2 on a usage or database error (one line).
"""

from __future__ import annotations

import sys

import click

from hvguard.cli.console import wide_console
from hvguard.cli.errors import EXIT_FINDINGS, EXIT_OK, UserError
from hvguard.cli.options import db_option
from hvguard.history.store import HistoryError, HistoryStore


@click.command("history")
@db_option
@click.option("--target", help="Only scans that include this target (counts are for it alone).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Newest N scans.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def history(db: str | None, target: str | None, limit: int, fmt: str) -> int:
    """List stored scans, newest first (every scan and evaluate is stored unless --no-history)."""
    from hvguard.cli.history_render import history_json, print_history

    try:
        with HistoryStore.open(db, create=False) as store:
            scans = store.list_scans(target=target, limit=limit)
            label = store.label
    except HistoryError as exc:
        raise UserError(str(exc)) from exc
    if fmt == "json":
        sys.stdout.write(history_json(scans, label, target))
    else:
        print_history(scans, label, target, wide_console())
    return EXIT_OK


@click.command("diff")
@click.argument("old")
@click.argument("new")
@db_option
@click.option("--target", help="Compare this target only (needed when the scans cover different targets).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def diff(old: str, new: str, db: str | None, target: str | None, fmt: str) -> int:
    """Show what changed from scan OLD to scan NEW: status transitions and value-level fact changes.

    OLD and NEW are scan ids (see hvguard history), latest, previous or latest~N (with --target,
    counted among that target's scans). Exit 0: no changes; 1: changes found.
    """
    from hvguard.cli.history_render import print_diff, to_json_text
    from hvguard.history.compare import diff_scans

    try:
        with HistoryStore.open(db, create=False) as store:
            old_id = store.resolve(old, target=target)
            new_id = store.resolve(new, target=target)
            only = [target] if target is not None else None
            before = store.load(old_id, targets=only)
            after = store.load(new_id, targets=only)
    except HistoryError as exc:
        raise UserError(str(exc)) from exc
    if target is not None:
        targets = [target]
    else:
        if set(before.summary.targets) != set(after.summary.targets):
            a, b = (", ".join(s.summary.targets) or "none" for s in (before, after))
            raise UserError(
                f"scans {old_id} and {new_id} cover different targets ({a} vs {b}); choose one with --target"
            )
        targets = list(dict.fromkeys(after.summary.targets))
    result = diff_scans(before, after, targets)
    if fmt == "json":
        sys.stdout.write(to_json_text(result.to_json()))
    else:
        print_diff(result, wide_console())
    return EXIT_FINDINGS if result.changed else EXIT_OK
