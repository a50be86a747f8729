"""``hvguard history`` and ``hvguard diff``: list stored scans and show what changed between two;
``hvguard history prune`` removes old scans.

Registered lazily in ``hvguard.cli.app.LAZY_COMMANDS``. Exit codes: ``history`` and ``history prune`` 0;
``diff`` 0 when nothing changed, 1 when a status or an audited fact changed; all 2 on a usage or
database error (one line).
"""

from __future__ import annotations

import sys

import click

from hvguard.cli.console import wide_console
from hvguard.cli.errors import EXIT_FINDINGS, EXIT_OK, UserError
from hvguard.cli.options import db_option
from hvguard.history.store import HistoryError, HistoryStore


class _HistoryGroup(click.Group):
    """``history`` lists scans when given no subcommand, as it did before it had any: a word that names
    no subcommand is refused as the plain command refused any argument."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """The subcommand ``args[0]`` names; an unknown word is an unexpected extra argument."""
        if args and self.get_command(ctx, args[0]) is None:
            extra = "argument" if len(args) == 1 else "arguments"
            raise click.UsageError(f"Got unexpected extra {extra} ({' '.join(args)})", ctx)
        return super().resolve_command(ctx, args)


@click.group("history", cls=_HistoryGroup, invoke_without_command=True)
@db_option
@click.option("--target", help="Only scans that include this target (counts are for it alone).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Newest N scans.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def history(ctx: click.Context, db: str | None, target: str | None, limit: int, fmt: str) -> int | None:
    """List stored scans, newest first (every scan and evaluate is stored unless --no-history).

    `hvguard history prune` removes old scans.
    """
    if ctx.invoked_subcommand is not None:
        # The listing's options before a subcommand would silently do nothing: refuse them.
        given = [
            f"--{n}"
            for n, p in (("target", "target"), ("limit", "limit"), ("format", "fmt"))
            if _given(ctx, p)
        ]
        if given:
            raise click.UsageError(
                f"{', '.join(given)} applies to the scan list, not to history {ctx.invoked_subcommand}", ctx
            )
        return None
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


@history.command("prune")
@db_option
@click.option(
    "--keep-days",
    type=click.IntRange(min=0),
    required=True,
    metavar="N",
    help="Remove scans stored more than N days ago.",
)
@click.option("--dry-run", is_flag=True, help="Only print what would be removed.")
@click.option(
    "--include-latest",
    is_flag=True,
    help="Also remove a target's latest scan when it is that old (by default it is kept).",
)
@click.pass_context
def prune(ctx: click.Context, db: str | None, keep_days: int, dry_run: bool, include_latest: bool) -> int:
    """Remove scans older than --keep-days days, but never a target's latest scan (unless
    --include-latest). Prints each scan removed; on SQLite the file is compacted (VACUUM) when at least
    a quarter of it is free space."""
    from datetime import UTC, datetime

    from hvguard.history.retention import execute_prune, plan_prune, reclaim_space

    parent = ctx.parent
    if parent is not None and _given(parent, "db") and not _given(ctx, "db"):
        db = parent.params["db"]  # `history --db URL prune`: the database named, never $HVGUARD_DB's
    verb = "would remove" if dry_run else "removed"
    try:
        with HistoryStore.open(db, create=False) as store:
            plan = plan_prune(
                store, keep_days=keep_days, now=datetime.now(UTC), include_latest=include_latest
            )
            if plan.remove and not dry_run:
                execute_prune(store, plan)
            reclaimed = reclaim_space(store) if plan.remove and not dry_run else None
            label = store.label
    except HistoryError as exc:
        raise UserError(str(exc)) from exc
    out = [s.line(verb) for s in plan.remove]
    kept = len(plan.kept_latest)
    tail = f" (kept {kept} older scan{'s' if kept != 1 else ''}: the latest of a target)" if kept else ""
    out.append(f"{verb} {len(plan.remove)} scan{'s' if len(plan.remove) != 1 else ''} from {label}{tail}")
    if reclaimed is not None:
        before, after = reclaimed
        out.append(f"compacted {label}: {before >> 10} KiB -> {after >> 10} KiB")
    sys.stdout.write("\n".join(out) + "\n")
    return EXIT_OK


def _given(ctx: click.Context, name: str) -> bool:
    """Whether option ``name`` was typed on the command line (not a default, variable or config value)."""
    return ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE


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
