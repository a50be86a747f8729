"""``hvguard exceptions …`` and ``hvguard attestations …``, and loading the files that ``scan`` and
``evaluate`` take through ``--exceptions``, ``--attestations`` and ``--as-of`` (see ``options``).

``lint`` checks a file and lists every problem as ``FILE:LINE: error|warning ENTRY: message`` (exit 2
when any is an error); ``list`` prints the register with each entry's state and days to expiry;
``export`` writes it as CSV or JSON for a risk register or GRC tool.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import click

from hvguard.cli.console import wide_console
from hvguard.cli.errors import EXIT_OK, EXIT_USAGE
from hvguard.cli.options import AS_OF_HELP, CalendarDate
from hvguard.cli.output import FROM_UMASK, write_output
from hvguard.workflow.attestations import AttestationSet, check_attestations, verify_evidence
from hvguard.workflow.dates import local_today
from hvguard.workflow.exceptions import ExceptionRegister, check_exceptions
from hvguard.workflow.registerfile import Problem, RegisterError


@dataclass(frozen=True)
class Workflow:
    """The loaded register files and evaluation date, as ``evaluate()`` keyword arguments."""

    exceptions: ExceptionRegister | None
    attestations: AttestationSet | None
    as_of: date

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`hvguard.engine.evaluate`."""
        return {"exceptions": self.exceptions, "attestations": self.attestations, "as_of": self.as_of}


def load_workflow(
    exceptions_path: Path | None, attestations_path: Path | None, as_of: date | None
) -> Workflow:
    """Load and validate both files (``RegisterError`` → exit 2 naming the entry)."""
    from hvguard.workflow.attestations import load_attestations
    from hvguard.workflow.exceptions import load_exceptions

    today = local_today()
    return Workflow(
        exceptions=load_exceptions(exceptions_path, today=today) if exceptions_path else None,
        attestations=load_attestations(attestations_path, today=today) if attestations_path else None,
        as_of=as_of or today,
    )


# --------------------------------------------------------------------------------------------------------
# lint / list / export


def _print_problems(path: Path, problems: list[Problem]) -> None:
    for p in problems:
        at = f"{path}:{p.line}" if p.line else str(path)
        click.echo(f"{at}: {p.severity} {p.where}: {p.message}")


def _lint_result(path: Path, problems: list[Problem], entries: int, what: str) -> int:
    _print_problems(path, problems)
    errors = sum(1 for p in problems if p.severity == "error")
    warnings = len(problems) - errors
    verdict = "fix the errors" if errors else "OK"
    click.echo(f"{path}: {entries} {what}, {errors} error(s), {warnings} warning(s): {verdict}")
    return EXIT_USAGE if errors else EXIT_OK


def _checked_exceptions(
    path: Path, as_of: date | None = None
) -> tuple[ExceptionRegister | None, list[Problem]]:
    try:
        return check_exceptions(path, as_of=as_of)
    except RegisterError as exc:
        return None, exc.problems


def _checked_attestations(
    path: Path, as_of: date | None = None
) -> tuple[AttestationSet | None, list[Problem]]:
    try:
        return check_attestations(path, as_of=as_of)
    except RegisterError as exc:
        return None, exc.problems


def _usable(path: Path, kind: str) -> Any:
    checked = _checked_exceptions(path) if kind == "exceptions" else _checked_attestations(path)
    found, problems = checked
    if found is None:
        errors = [p for p in problems if p.severity == "error"]
        raise RegisterError(path, kind, errors)
    return found


def _table(title: str, columns: list[str], rows: list[list[str]], styles: list[str | None]) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col)
    for row, style in zip(rows, styles, strict=True):
        table.add_row(*row, style=style)
    wide_console(200).print(table)


_STATE_STYLE = {"expired": "red", "pending": "dim"}


def _state_cell(state: str, days: int) -> tuple[str, str | None]:
    if state == "active" and days <= 30:
        return ("active, expires today" if days == 0 else f"active, {days} d left"), "yellow"
    if state == "active":
        return f"active, {days} d left", None
    if state == "expired":
        return f"expired {-days} d ago", _STATE_STYLE[state]
    return "pending (approved later)", _STATE_STYLE[state]


_STATES = click.Choice(["all", "active", "expired", "pending"])


@click.group("exceptions")
def exceptions_group() -> None:
    """The exceptions register (SS-009 §5): lint, list and export it."""


LINT_AS_OF_HELP = "Warn about entries expired on this date (default: today, local time)."


@exceptions_group.command("lint")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--as-of", "as_of", type=CalendarDate(), help=LINT_AS_OF_HELP)
def exceptions_lint(file: Path, as_of: date | None) -> int:
    """Check an exceptions register; every problem names its entry and line (exit 2 on errors)."""
    register, problems = _checked_exceptions(file, as_of)
    return _lint_result(file, problems, len(register.entries) if register else 0, "exception(s)")


def _scope_text(row: dict[str, Any]) -> str:
    """``target / subject [/ check] (groups g1, g2)`` of a register row."""
    scope = f"{row['target']} / {row['subject']}" + (f" / {row['check']}" if row["check"] != "*" else "")
    return scope + (f" (groups {row['groups']})" if row["groups"] else "")


@exceptions_group.command("list")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--as-of", "as_of", type=CalendarDate(), help=AS_OF_HELP)
@click.option("--state", type=_STATES, default="all", show_default=True, help="Only entries in this state.")
@click.option("--expiring-within", type=click.IntRange(min=0), help="Only entries expiring within N days.")
def exceptions_list(file: Path, as_of: date | None, state: str, expiring_within: int | None) -> int:
    """Print the register, soonest expiry first, with each entry's state and days to expiry."""
    from hvguard.workflow.register_rows import exception_rows

    day = as_of or local_today()
    rows = exception_rows(_usable(file, "exceptions"), day)
    rows = [r for r in rows if state == "all" or r["state"] == state]
    if expiring_within is not None:
        rows = [r for r in rows if r["state"] == "active" and r["days_to_expiry"] <= expiring_within]
    rows.sort(key=lambda r: (r["expires_on"], r["id"]))
    cells, styles = [], []
    for r in rows:
        when, style = _state_cell(r["state"], r["days_to_expiry"])
        scope = _scope_text(r)
        cells.append(
            [r["id"], r["measure"], scope, r["risk_rating"], r["risk_owner"], r["approved_by"],
             r["approved_on"], r["expires_on"], when]
        )  # fmt: skip
        styles.append(style)
    columns = ["Id", "Measure", "Scope", "Risk", "Risk owner", "Approved by", "Approved", "Expires", "State"]
    _table(f"Exceptions register {file} — as of {day}", columns, cells, styles)
    return EXIT_OK


@exceptions_group.command("export")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), help="Write to FILE.")
@click.option("--force", is_flag=True, help="Replace an existing --output file.")
@click.option("--as-of", "as_of", type=CalendarDate(), help=AS_OF_HELP)
def exceptions_export(file: Path, fmt: str, output: Path | None, force: bool, as_of: date | None) -> int:
    """Export the register (state and days to expiry included) as CSV or JSON."""
    return _export("exceptions", file, fmt, output, force=force, as_of=as_of)


@click.group("attestations")
def attestations_group() -> None:
    """Attestations (SS-009 §4): lint, list and export them."""


@attestations_group.command("lint")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--as-of", "as_of", type=CalendarDate(), help=LINT_AS_OF_HELP)
def attestations_lint(file: Path, as_of: date | None) -> int:
    """Check an attestations file and verify every evidence file's sha256 (exit 2 on errors)."""
    found, problems = _checked_attestations(file, as_of)
    if found is not None:
        for att in found.entries:
            for check in verify_evidence(att, found.evidence_root):
                if check.failed:
                    problems.append(Problem(att.id, f"evidence {check}", att.line))
                elif not check.verified:
                    problems.append(Problem(att.id, f"evidence {check}", att.line, "warning"))
    return _lint_result(file, problems, len(found.entries) if found else 0, "attestation(s)")


@attestations_group.command("list")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--as-of", "as_of", type=CalendarDate(), help=AS_OF_HELP)
@click.option("--state", type=_STATES, default="all", show_default=True, help="Only entries in this state.")
def attestations_list(file: Path, as_of: date | None, state: str) -> int:
    """Print the attestations, soonest expiry first, with state and days to expiry."""
    from hvguard.workflow.register_rows import attestation_rows

    day = as_of or local_today()
    rows = [r for r in attestation_rows(_usable(file, "attestations"), day) if state in ("all", r["state"])]
    rows.sort(key=lambda r: (r["valid_until"], r["id"]))
    cells, styles = [], []
    for r in rows:
        when, style = _state_cell(r["state"], r["days_to_expiry"])
        scope = _scope_text(r)
        cells.append(
            [r["id"], r["measure"], scope, r["attested_by"], r["attested_on"], r["valid_until"], when,
             r["evidence"] or "—"]
        )  # fmt: skip
        styles.append(style)
    columns = ["Id", "Measure", "Scope", "Attested by", "Attested", "Valid until", "State", "Evidence"]
    _table(f"Attestations {file} — as of {day}", columns, cells, styles)
    return EXIT_OK


@attestations_group.command("export")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), help="Write to FILE.")
@click.option("--force", is_flag=True, help="Replace an existing --output file.")
@click.option("--as-of", "as_of", type=CalendarDate(), help=AS_OF_HELP)
def attestations_export(file: Path, fmt: str, output: Path | None, force: bool, as_of: date | None) -> int:
    """Export the attestations (state and days to expiry included) as CSV or JSON."""
    return _export("attestations", file, fmt, output, force=force, as_of=as_of)


def _export(kind: str, file: Path, fmt: str, output: Path | None, *, force: bool, as_of: date | None) -> int:
    """``exceptions|attestations export``: the file's rows (state and days to expiry) as CSV or JSON."""
    from hvguard.workflow import register_rows as rr

    day = as_of or local_today()
    loaded: ExceptionRegister | AttestationSet = _usable(file, kind)
    columns: tuple[str, ...]
    if isinstance(loaded, ExceptionRegister):
        rows, columns = rr.exception_rows(loaded, day), rr.EXCEPTION_COLUMNS
    else:
        rows, columns = rr.attestation_rows(loaded, day), rr.ATTESTATION_COLUMNS
    as_csv = fmt == "csv"
    text = rr.to_csv(rows, columns) if as_csv else rr.to_json(kind, str(file), loaded.sha256, day, rows)
    write_output(text, output, force=force, mode=FROM_UMASK)
    return EXIT_OK
