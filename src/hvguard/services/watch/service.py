"""Putting the watcher together: state, channels, event loop, one worker per URI; start and stop.

Shutdown (SIGTERM/SIGINT set the stop event): workers deregister their events and close their
connections, the event loop stops, delivery threads get half a second to finish a send in flight, and
the state file is checkpointed and closed — it is complete on its own afterwards. Undelivered
notifications stay in it for the next start. The whole takes about a second.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hvguard.collect.vsphere.target import VsphereOptions, VsphereTarget
from hvguard.profile import Profile
from hvguard.services.watch.config import Channel, EmailChannel, SyslogChannel, WatchConfig, WebhookChannel
from hvguard.services.watch.delivery import Deliverer
from hvguard.services.watch.notify_base import Notifier
from hvguard.services.watch.reevaluate import Reevaluator
from hvguard.services.watch.sdnotify import sd_notify
from hvguard.services.watch.state import Store
from hvguard.services.watch.watcher import ConnectionWorker, EventLoop

log = logging.getLogger("hvguard.watch")


@dataclass(frozen=True)
class VsphereLogin:
    """How to log in to one watched ``vsphere://`` target (the password is never shown)."""

    target: VsphereTarget
    options: VsphereOptions
    password: str = field(repr=False)


def build_notifier(channel: Channel) -> Notifier:
    """The notifier for one configured channel."""
    if isinstance(channel, WebhookChannel):
        from hvguard.services.watch.notify_webhook import WebhookNotifier

        return WebhookNotifier(channel)
    if isinstance(channel, SyslogChannel):
        from hvguard.services.watch.notify_syslog import SyslogNotifier

        return SyslogNotifier(channel)
    if isinstance(channel, EmailChannel):
        from hvguard.services.watch.notify_email import EmailNotifier

        return EmailNotifier(channel)
    raise TypeError(f"unknown channel {channel!r}")


class WatchService:
    """The running watcher."""

    def __init__(
        self,
        config: WatchConfig,
        profile: Profile,
        store: Store,
        libvirt: Any,
        vsphere: Mapping[str, VsphereLogin] | None = None,
    ) -> None:
        """``libvirt`` is the module (None when only ``vsphere://`` targets are watched); ``vsphere`` maps
        each ``vsphere://`` URI to how to log in to it."""
        self.config = config
        self.store = store
        self.libvirt = libvirt
        self.stop = threading.Event()
        self.notifiers = [build_notifier(c) for c in config.channels]
        self.deliverers = [
            Deliverer(store, n, retry_max_s=config.retry_max_s, stop=self.stop) for n in self.notifiers
        ]
        self.reevaluator = Reevaluator(profile)
        logins = vsphere or {}
        self.loop = EventLoop(libvirt) if any(u not in logins for u in config.uris) else None
        key = store.secret_key()
        self.workers: list[Any] = []
        for uri in config.uris:
            login = logins.get(uri)
            if login is not None:
                from hvguard.services.watch.vsphere import VsphereWorker

                self.workers.append(
                    VsphereWorker(
                        login.target,
                        login.options,
                        login.password,
                        store=store,
                        reevaluator=self.reevaluator,
                        channels=[n.key for n in self.notifiers],
                        on_queued=self._queued,
                        stop=self.stop,
                        reconnect_max_s=config.reconnect_max_s,
                    )
                )
                continue
            self.workers.append(
                ConnectionWorker(
                    libvirt,
                    uri,
                    store=store,
                    reevaluator=self.reevaluator,
                    channels=[n.key for n in self.notifiers],
                    on_queued=self._queued,
                    stop=self.stop,
                    reconnect_max_s=config.reconnect_max_s,
                    resync_interval_s=config.resync_interval_s,
                    poll_interval_s=config.poll_interval_s,
                    secret_key=key,
                )
            )

    def _queued(self) -> None:
        for n in self.notifiers:
            dropped = self.store.trim(n.key, self.config.queue_max)
            if dropped:
                log.error(
                    "OUTBOX FULL for %s (queue_max %d): %d oldest undelivered notification(s) DROPPED: %s",
                    n.key,
                    self.config.queue_max,
                    len(dropped),
                    ", ".join(dropped[:20]),
                )
        for d in self.deliverers:
            d.wake()

    def _report_pending(self) -> None:
        configured = {n.key for n in self.notifiers}
        for channel, count in sorted(self.store.pending().items()):
            if channel in configured:
                log.warning("%d undelivered notification(s) for %s from before; retrying", count, channel)
            else:
                log.error(
                    "%d undelivered notification(s) kept for %s, which is no longer configured "
                    "(configure it again to deliver them)",
                    count,
                    channel,
                )

    def run(self) -> int:
        """Run until :attr:`stop` is set; 0 on a clean stop, 1 when a worker died."""
        for w in self.config.warnings:
            log.warning("%s", w)
        self._report_pending()
        for d in self.deliverers:
            d.start()
        if self.loop is not None:
            self.loop.start()
        for worker in self.workers:
            worker.start()
        while not self.stop.is_set() and not all(w.first_attempt_done.is_set() for w in self.workers):
            self.stop.wait(0.1)
        if not self.stop.is_set():
            sd_notify("READY=1\nSTATUS=watching " + " ".join(self.config.uris))
            log.warning(
                "ready: watching %s; notifying %s",
                ", ".join(self.config.uris),
                ", ".join(n.key for n in self.notifiers),
            )
        rc = 0
        while not self.stop.is_set():
            self.stop.wait(0.5)
            if any(not w.is_alive() for w in self.workers) and not self.stop.is_set():
                log.error("a connection worker stopped unexpectedly; exiting")
                rc = 1
                self.stop.set()
        self.shutdown()
        return rc

    def shutdown(self) -> None:
        """Stop everything and close the state file (idempotent)."""
        self.stop.set()
        sd_notify("STOPPING=1")
        started = time.monotonic()
        for w in self.workers:
            w.wake()
        for w in self.workers:
            if w.is_alive():
                w.join(timeout=max(0.1, 1.5 - (time.monotonic() - started)))
        if self.loop is not None:
            self.loop.stop()
        for d in self.deliverers:
            d.wake()
        for d in self.deliverers:
            if d.is_alive():
                d.join(timeout=max(0.05, 0.5 - (time.monotonic() - started) / 4))
        pending = sum(self.store.pending().values())
        self.store.close()
        log.warning(
            "stopped in %.2f s; %d undelivered notification(s) kept in %s",
            time.monotonic() - started,
            pending,
            self.store.path,
        )
