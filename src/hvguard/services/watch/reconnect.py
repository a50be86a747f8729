"""The one reconnect loop of every watch worker (libvirt and vSphere): connect and resynchronise, work
until stopped, and after a failed connection try again with exponential backoff."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("hvguard.watch")

#: The first wait after a failed connection; each further failure doubles it, up to the worker's maximum.
FIRST_RECONNECT_S = 0.5


def run_reconnecting(
    uri: str,
    *,
    stop: threading.Event,
    first_attempt_done: threading.Event,
    reconnect_max_s: float,
    connected: Callable[[], bool],
    connect_and_resync: Callable[[], bool],
    step: Callable[[], None],
    disconnect: Callable[[], None],
) -> None:
    """Run ``step`` while connected until ``stop`` is set; (re)connect with backoff whenever
    ``connected()`` is false. ``first_attempt_done`` is set once the first attempt ended either way (the
    service waits on it before it reports a start). An unexpected error stops the worker, logged."""
    delay = FIRST_RECONNECT_S
    try:
        while not stop.is_set():
            if not connected():
                if not connect_and_resync():
                    first_attempt_done.set()
                    log.error("%s: not connected; next attempt in %.1f s", uri, delay)
                    stop.wait(delay)
                    delay = min(delay * 2, reconnect_max_s)
                    continue
                delay = FIRST_RECONNECT_S
                first_attempt_done.set()
            step()
    except Exception:
        log.exception("%s: watcher failed", uri)
        stop.set()
    finally:
        first_attempt_done.set()
        disconnect()
