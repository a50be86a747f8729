"""The scan side of history: the one call that stores an evaluation.

Light to import on purpose (``scan`` and ``evaluate`` import it at start-up): SQLAlchemy and platformdirs
load only when a scan is actually stored, so ``--no-history`` runs and every other command pay nothing.
The ``--db``/``--no-history`` options are the command line's (``hvguard.cli.options``).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from contextlib import suppress
from importlib import import_module

from hvguard.engine import Evaluation


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

    Call it once the report is written, so a slow or locked database never delays or loses the report.
    Never raises: the report is what a scan is for, so a locked, unwritable, corrupt or newer-schema
    database costs one warning line on stderr and the scan goes on to exit with its usual code (a CI gate
    must not turn red or green because of the history).
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


def _warn(reason: str) -> None:
    sys.stderr.write(f"hvguard: warning: scan history not saved: {reason}\n")
    sys.stderr.flush()
