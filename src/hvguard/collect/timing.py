"""Timings for ``hvguard -v``: how long each collector, command and step took, logged at INFO level."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("hvguard.timing")


@contextmanager
def timed(what: str) -> Iterator[None]:
    """Log ``what`` and its wall-clock duration when the block ends (also when it raises)."""
    if not log.isEnabledFor(logging.INFO):
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        log.info("%.3f s  %s", time.perf_counter() - started, what)
