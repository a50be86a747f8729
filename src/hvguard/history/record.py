"""The scan side of history: the ``--db``/``--no-history`` options and the one call that stores an
evaluation.

Light to import on purpose (``hvguard.cli`` imports it at start-up): SQLAlchemy and platformdirs load
only when a scan is actually stored, so ``--no-history`` runs and every other command pay nothing.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from importlib import import_module
from typing import Any, TypeVar

import click

from hvguard.engine import Evaluation

F = TypeVar("F", bound=Callable[..., Any])

#: Environment variable naming the history database (a URL or a SQLite file path).
DB_ENV = "HVGUARD_DB"

DB_HELP = (
    "History database: a SQLite file path or a SQLAlchemy URL (postgresql+psycopg://USER@HOST/DB). "
    f"Default: ${DB_ENV}, else history.sqlite3 in the user data directory."
)


def db_option(fn: F) -> F:
    """The ``--db URL`` option (also read from ``$HVGUARD_DB``)."""
    return click.option("--db", "db", envvar=DB_ENV, metavar="URL", help=DB_HELP)(fn)


def history_options(fn: F) -> F:
    """``--db URL`` and ``--no-history`` for the commands that store their result (scan, evaluate)."""
    fn = click.option(
        "--no-history", is_flag=True, help="Do not store this run in the scan history (hvguard history)."
    )(fn)
    return db_option(fn)


def warm_history_store(enabled: bool) -> None:
    """Start importing the history store (SQLAlchemy: about 0.15 s) in the background when this run
    will be stored, so it overlaps with collection — which mostly waits for libvirt and the package
    manager — instead of following the report. A failed import is reported by
    :func:`record_evaluation`, as without this."""
    if enabled and "hvguard.history.store" not in sys.modules:
        threading.Thread(target=_import_store, name="hvguard-history-import", daemon=True).start()


def _import_store() -> None:
    with suppress(Exception):
        import_module("hvguard.history.store")


def record_evaluation(
    ev: Evaluation, *, command: str, inputs: Sequence[str], db: str | None, enabled: bool
) -> int | None:
    """Store ``ev`` in the history database; the new scan id, or None when not stored.

    Never raises: the report is what a scan is for, so a locked, unwritable, corrupt or newer-schema
    database costs one warning line on stderr and the scan goes on to print its report and exit with its
    usual code (a CI gate must not turn red or green because of the history).
    """
    if not enabled:
        return None
    try:
        from hvguard.history.store import HistoryError, HistoryStore
    except ImportError as exc:  # a broken install must not cost the report either
        _warn(f"cannot load the history store ({exc})")
        return None
    try:
        with HistoryStore.open(db, create=True) as store:
            return store.save(ev, command=command, inputs=inputs)
    except HistoryError as exc:
        _warn(str(exc))
    except Exception as exc:
        if os.environ.get("HVGUARD_DEBUG"):
            raise
        _warn(f"internal error: {type(exc).__name__}: {exc} (set HVGUARD_DEBUG=1 for details)")
    return None


@contextmanager
def recording(
    ev: Evaluation, *, command: str, inputs: Sequence[str], db: str | None, enabled: bool
) -> Iterator[None]:
    """Store ``ev`` (see :func:`record_evaluation`) once the block — which writes the report — is done.

    The report comes first so a slow or locked database never delays or loses it. The block may end by
    ``sys.exit`` with the report's code (0 or 1): the scan is stored, then the exit goes on. Any other
    ending (an exception, exit 2 such as an ``--output`` file that exists) stores nothing.
    """
    try:
        yield
    except SystemExit as done:
        if done.code in (None, 0, 1):
            record_evaluation(ev, command=command, inputs=inputs, db=db, enabled=enabled)
        raise
    record_evaluation(ev, command=command, inputs=inputs, db=db, enabled=enabled)


def _warn(reason: str) -> None:
    click.echo(f"hvguard: warning: scan history not saved: {reason}", err=True)
