"""Keep ``/metrics`` answering within a scrape timeout while a large estate is rendered again.

Rendering 1,000 targets (about 300,000 samples through prometheus_client) takes seconds, close to
Prometheus's default 10 s scrape timeout. :class:`WarmMetrics` renders once at start and again in a
background thread whenever the estate changes (a scan stored or pruned, a new UTC day); a scrape gets
the latest finished text at once and renders itself only when no text exists yet. A scrape may
therefore see the estate as it was up to one rendering ago; ``hvguard_last_scan_timestamp_seconds``
says how old each target's figures are.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class WarmMetrics:
    """A ``/metrics`` renderer that serves its last finished text while the next one is built.

    ``render`` is the full renderer (cheap when nothing changed: it caches per estate state);
    ``interval`` is how often, in seconds, the background thread asks it again.
    """

    def __init__(self, render: Callable[[], bytes], *, interval: float = 15.0) -> None:
        self._render = render
        self._interval = interval
        self._body: bytes | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def refresh(self) -> bytes:
        """Render now (one rendering at a time) and keep the text."""
        with self._lock:
            body = self._render()
            self._body = body
            self.last_error = None
            return body

    def __call__(self) -> bytes:
        """The latest finished text; the first scrape before any rendering renders it."""
        body = self._body
        return body if body is not None else self.refresh()

    def start(self) -> None:
        """Render in a daemon thread now and every ``interval`` seconds until :meth:`stop`."""
        self._thread = threading.Thread(target=self._loop, name="hvguard-metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the background thread to end (it ends after the rendering in progress)."""
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception as exc:  # a failed rendering must not end the refresher
                # The next scrape then renders itself and reports the failure as the server does.
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._body = None
            self._stop.wait(self._interval)
