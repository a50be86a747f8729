"""Delivery: one thread per channel drains that channel's outbox rows in order.

A channel that fails is retried with exponential backoff (1 s, 2 s, 4 s … capped at ``retry_max_s``);
every failure is logged at ERROR with the reason and how many notifications wait, so a channel that is
down is never silent. Order is kept per channel (a later change is not sent before an earlier one), and
one slow or broken channel does not hold up the others.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading

from hvguard.services.watch.notify_base import Notifier, NotifyError, one_line
from hvguard.services.watch.state import Store

log = logging.getLogger("hvguard.watch")

FIRST_RETRY_S = 1.0


class Deliverer(threading.Thread):
    """Sends the outbox rows of one channel until stopped."""

    def __init__(
        self, store: Store, notifier: Notifier, *, retry_max_s: float, stop: threading.Event
    ) -> None:
        super().__init__(name=f"deliver {notifier.key}", daemon=True)
        self.store = store
        self.notifier = notifier
        self.retry_max_s = retry_max_s
        self._stop_event = stop
        self._wake = threading.Event()
        self.delivered_count = 0

    def wake(self) -> None:
        """New rows were queued: look now."""
        self._wake.set()

    def run(self) -> None:
        """Deliver until the stop event is set."""
        delay = FIRST_RETRY_S
        key = self.notifier.key
        while not self._stop_event.is_set():
            self._wake.clear()  # before reading: a row queued after the read sets it again
            try:
                row = self.store.outbox_head(key)
            except sqlite3.Error as exc:
                if self._stop_event.is_set():
                    return
                log.error("state file read failed for %s: %s", key, exc)
                self._stop_event.wait(delay)
                continue
            if row is None:
                self._wake.wait(1.0)
                continue
            try:
                payload = json.loads(row.payload)
                self.notifier.send(payload, row.payload)
            except NotifyError as exc:
                self._failed(row.id, row.event_id, str(exc), delay)
                self._stop_event.wait(delay)
                delay = min(delay * 2, self.retry_max_s)
                continue
            except Exception as exc:  # a bug in a channel must not kill delivery for good
                self._failed(
                    row.id, row.event_id, f"internal error: {type(exc).__name__}: {one_line(exc)}", delay
                )
                self._stop_event.wait(delay)
                delay = min(delay * 2, self.retry_max_s)
                continue
            delay = FIRST_RETRY_S
            try:
                self.store.delivered(row.id)
            except sqlite3.Error:
                # Only at shutdown (store closed mid-send): the row stays and is sent again at the next
                # start — a duplicate with the same id, never a loss.
                return
            self.delivered_count += 1
            log.info("delivered %s to %s (after %d failed attempt(s))", row.event_id, key, row.attempts)

    def _failed(self, row_id: int, event_id: str, reason: str, delay: float) -> None:
        try:
            self.store.failed(row_id, reason)
            waiting = self.store.pending().get(self.notifier.key, 0)
        except sqlite3.Error:
            waiting = -1
        log.error(
            "NOTIFICATION NOT DELIVERED to %s: %s — change %s kept in the state file (%s waiting); "
            "retry in %.0f s",
            self.notifier.key,
            reason,
            event_id,
            waiting if waiting >= 0 else "?",
            delay,
        )
