"""Render one evaluation in every format asked for and write each output, then store the run.

Every output comes from the same evaluation (``-o html:r.html -o sarif:r.sarif -o json:-``). All are
rendered first and every destination is checked before the first is written, so a refused path (an
existing file without ``--force``, a symbolic link …) is one line and exit 2 with nothing written; each
file written is named on stderr (not under ``-q``).
"""

from __future__ import annotations

from collections.abc import Sequence

from hvguard.cli.console import wide_console
from hvguard.cli.output import OWNER_ONLY, OutputSpec, check_destinations, write_output
from hvguard.cli.verbosity import info
from hvguard.collect.timing import timed
from hvguard.engine import Evaluation
from hvguard.history.record import record_evaluation
from hvguard.report import renderer


def _size(n: int) -> str:
    return f"{n} bytes" if n < 10_000 else f"{n / 1000:.0f} kB" if n < 10_000_000 else f"{n / 1e6:.0f} MB"


def write_reports(ev: Evaluation, outputs: Sequence[OutputSpec], *, force: bool) -> None:
    """Render ``ev`` once per output and write them all (files first, standard output last)."""
    rendered: list[tuple[OutputSpec, str | None]] = []
    for spec in outputs:
        if spec.fmt == "table" and spec.path is None:
            rendered.append((spec, None))  # printed on the console: colour and width of the terminal
            continue
        with timed(f"render {spec.fmt}"):
            rendered.append((spec, renderer(spec.fmt)(ev)))
    check_destinations(outputs, force=force)
    for spec, text in sorted(rendered, key=lambda item: item[0].path is None):
        if text is None:
            from hvguard.report.table import print_report

            print_report(ev, wide_console())
            continue
        with timed(f"write {spec.describe()}"):
            write_output(text, spec.path, force=force, mode=OWNER_ONLY)
        if spec.path is not None:
            info(f"wrote {spec.path} ({spec.fmt}, {_size(len(text.encode('utf-8')))})")


def report_and_store(
    ev: Evaluation,
    *,
    outputs: Sequence[OutputSpec],
    force: bool,
    fail_on: str,
    command: str,
    inputs: Sequence[str],
    db: str | None,
    store: bool,
) -> int:
    """Write the reports, then store the evaluation in the history (unless ``--no-history``) — in that
    order, so a slow or locked database never delays or loses a report — and return the exit code
    (which follows the findings the selection shows). A report that cannot be written raises (exit 2)
    and stores nothing."""
    write_reports(ev, outputs, force=force)
    with timed("store history"):
        record_evaluation(ev, command=command, inputs=inputs, db=db, enabled=store)
    return ev.exit_code(fail_on)
