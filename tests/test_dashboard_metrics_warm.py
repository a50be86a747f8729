"""/metrics answers from its last rendering while the next one is built (services/dashboard/metrics_warm)."""

from __future__ import annotations

import threading
import time

from hvguard.services.dashboard.metrics_warm import WarmMetrics


class SlowRenderer:
    """Renders b"v1", b"v2", … ; renderings after the first wait until ``release`` is set."""

    def __init__(self) -> None:
        self.calls = 0
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> bytes:
        self.calls += 1
        if self.calls > 1:
            self.started.set()
            assert self.release.wait(10)
        return f"v{self.calls}".encode()


def test_a_scrape_gets_the_last_text_at_once_while_a_rendering_runs() -> None:
    render = SlowRenderer()
    warm = WarmMetrics(render)
    assert warm() == b"v1"  # nothing rendered yet: the first scrape renders
    worker = threading.Thread(target=warm.refresh)
    worker.start()
    assert render.started.wait(10)
    t0 = time.monotonic()
    assert warm() == b"v1"  # not blocked behind the rendering in progress
    assert time.monotonic() - t0 < 1
    render.release.set()
    worker.join(10)
    assert warm() == b"v2"
    assert render.calls == 2


def test_the_background_thread_renders_at_start_and_again_until_stopped() -> None:
    bodies: list[bytes] = []

    def render() -> bytes:
        bodies.append(f"v{len(bodies) + 1}".encode())
        return bodies[-1]

    warm = WarmMetrics(render, interval=0.05)
    warm.start()
    deadline = time.monotonic() + 10
    while len(bodies) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    warm.stop()
    assert len(bodies) >= 3
    assert warm() in bodies
    settled = len(bodies)
    time.sleep(0.2)
    assert len(bodies) <= settled + 1  # at most the rendering that was running when stopped


def test_a_failed_background_rendering_is_kept_and_the_next_scrape_renders() -> None:
    outcomes: list[bytes | Exception] = [RuntimeError("database is locked"), b"ok"]

    def render() -> bytes:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    warm = WarmMetrics(render, interval=60)
    warm.start()
    deadline = time.monotonic() + 10
    while warm.last_error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    warm.stop()
    assert warm.last_error == "RuntimeError: database is locked"
    assert warm() == b"ok"
