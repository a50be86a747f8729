"""The watcher: libvirt domain events in, compared definitions and notifications out.

Threads:

- the **event loop** (``virEventRegisterDefaultImpl`` + ``virEventRunDefaultImpl``): libvirt calls
  the event callbacks here; they only queue ``(uuid, trigger)`` so the loop (and its keepalives)
  never waits on an RPC;
- one **connection worker** per URI: opens the connection, registers the events, and for each queued
  event fetches the VM's definitions, canonicalises them, compares them with the state file and, when
  they differ, queues one notification per channel in the same transaction that stores the new state;
- one **delivery** thread per channel (:mod:`.delivery`).

What counts as a change (decided here, documented in the README):

- the *persistent definition* (``XMLDesc(INACTIVE)``) of every persistent VM: ``defined``,
  ``config-changed``, ``undefined``;
- the *running configuration* (``XMLDesc(0)``) of a running VM between its start and its stop:
  ``live-changed`` (hot-plug, live tunables). A start, stop or restart is not a configuration change;
  it resets the running baseline silently (the run id tells a restart from a change);
- transient VMs (no persistent definition): ``created``, ``live-changed``, ``destroyed``.

Missing nothing: events are registered *before* every resynchronisation (start, reconnect, and every
``resync_interval_s``), which compares every VM with the state file and reports what changed while
hvguard was not looking (``missed: true``), including VMs defined or undefined meanwhile. The first
time a URI is seen its VMs are recorded as the baseline without notifications.

libvirt emits no event for changes made through the config-only APIs (``virsh schedinfo --config``,
``setvcpus --config`` …), so for a local URI the daemon's configuration directory is watched with
inotify (:mod:`.confdir`) and each rewritten ``NAME.xml`` queues a look at that VM; for a remote URI
every VM is compared every ``poll_interval_s`` (default 5 s) instead.

The connection is watched with ``registerCloseCallback`` (and keepalive on remote connections); when it
closes, the worker reconnects with exponential backoff (0.5 s doubling, capped at ``reconnect_max_s``)
and resynchronises.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from hvguard.collect.libvirt.conn import TargetUnreachable, collect_libvirt
from hvguard.collect.linux.source import LocalSource
from hvguard.collect.targets import collect_host_facts, is_local_uri
from hvguard.facts import Problem, VmFacts
from hvguard.services.watch.canonical import (
    CanonicalError,
    canonical_domain_xml,
    sha256_text,
    unified_xml_diff,
)
from hvguard.services.watch.changes import parse_canonical, value_changes
from hvguard.services.watch.confdir import ConfigDirWatch, config_dir_for
from hvguard.services.watch.payload import encode, make_payload, summary
from hvguard.services.watch.reconnect import run_reconnecting
from hvguard.services.watch.reevaluate import ConnectionView, Reevaluator
from hvguard.services.watch.state import DomainState, Store, now_iso

log = logging.getLogger("hvguard.watch")


_LIFECYCLE = {0: "defined", 1: "undefined", 2: "started", 3: "suspended", 4: "resumed", 5: "stopped",
              6: "shutdown", 7: "pmsuspended", 8: "crashed"}  # fmt: skip
_DEFINED_DETAIL = {0: "added", 1: "updated", 2: "renamed", 3: "from-snapshot"}
_UNDEFINED_DETAIL = {0: "removed", 1: "renamed"}
_CLOSE_REASON = {0: "error", 1: "end of file", 2: "keepalive timeout", 3: "closed by client"}


def lifecycle_trigger(event: int, detail: int) -> str:
    """``defined/updated``, ``undefined/removed``, ``started`` … for a lifecycle event."""
    name = _LIFECYCLE.get(event, f"event-{event}")
    if event == 0:
        return f"{name}/{_DEFINED_DETAIL.get(detail, detail)}"
    if event == 1:
        return f"{name}/{_UNDEFINED_DETAIL.get(detail, detail)}"
    return name


# --------------------------------------------------------------------------------------------------
# The libvirt event loop (one per process)
# --------------------------------------------------------------------------------------------------
class EventLoop:
    """Runs libvirt's default event loop in a daemon thread."""

    _registered = False
    _lock = threading.Lock()

    def __init__(self, libvirt: Any) -> None:
        self.libvirt = libvirt
        with EventLoop._lock:
            if not EventLoop._registered:
                # Must precede the first connection opened in this process.
                libvirt.virEventRegisterDefaultImpl()
                EventLoop._registered = True
        self._running = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the loop thread."""
        self._running.set()
        # A periodic timer makes each iteration return at least every 200 ms, so stop() is prompt.
        self.libvirt.virEventAddTimeout(200, lambda _timer, _opaque: None, None)
        self._thread = threading.Thread(target=self._run, name="libvirt events", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while self._running.is_set():
            if self.libvirt.virEventRunDefaultImpl() < 0:
                log.error("libvirt event loop iteration failed")
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop the loop (returns within about 200 ms)."""
        self._running.clear()
        if self._thread is not None:
            self._thread.join(timeout=1.0)


# --------------------------------------------------------------------------------------------------
# One connection
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Event:
    uuid: str
    name: str
    trigger: str


@dataclass(frozen=True)
class _NameEvent:
    name: str
    trigger: str


@dataclass(frozen=True)
class _Closed:
    reason: str
    generation: int
    """Which connection closed (a late notice about an earlier connection is ignored)."""


_Item = _Event | _NameEvent | _Closed

#: Poll interval for URIs without a watchable configuration directory (remote connections).
DEFAULT_REMOTE_POLL_S = 5.0


class ConnectionWorker(threading.Thread):
    """Watches one libvirt URI: events, comparison, notifications, reconnects."""

    def __init__(
        self,
        libvirt: Any,
        uri: str,
        *,
        store: Store,
        reevaluator: Reevaluator,
        channels: Sequence[str],
        on_queued: Callable[[], None],
        stop: threading.Event,
        reconnect_max_s: float,
        resync_interval_s: float,
        secret_key: bytes,
        poll_interval_s: float | None = None,
    ) -> None:
        super().__init__(name=f"watch {uri}", daemon=True)
        self.libvirt = libvirt
        self.uri = uri
        self.store = store
        self.reevaluator = reevaluator
        self.channels = list(channels)
        self.on_queued = on_queued
        self._stop_event = stop
        self.reconnect_max_s = reconnect_max_s
        self.resync_interval_s = resync_interval_s
        self.secret_key = secret_key
        self.config_dir = config_dir_for(uri)
        if poll_interval_s is None:
            poll_interval_s = 0.0 if self.config_dir is not None else DEFAULT_REMOTE_POLL_S
        self.poll_interval_s = poll_interval_s
        self.queue: queue.Queue[_Item] = queue.Queue()
        self.view = ConnectionView(uri=uri)
        self.first_attempt_done = threading.Event()
        self._conn: Any = None
        self._read_write = False
        self._callbacks: list[int] = []
        self._last_sync = 0.0
        self._last_poll = 0.0
        self._ever_connected = False
        self._generation = 0
        self._canonical_cache: dict[str, tuple[str, tuple[str, str, int | None]]] = {}

    # -- thread --------------------------------------------------------------------------------------
    def run(self) -> None:
        """Connect, resynchronise, then process events until stopped; reconnect when the link drops."""
        if self.config_dir is not None:
            ConfigDirWatch(self.config_dir, self._on_config_file, self._stop_event).start()
        run_reconnecting(
            self.uri,
            stop=self._stop_event,
            first_attempt_done=self.first_attempt_done,
            reconnect_max_s=self.reconnect_max_s,
            connected=lambda: self._conn is not None,
            connect_and_resync=self._connect_and_resync,
            step=self._process_one,
            disconnect=self._disconnect,
        )

    def _process_one(self) -> None:
        timeout = 1.0
        now = time.monotonic()
        if self.resync_interval_s > 0:
            due = self._last_sync + self.resync_interval_s - now
            if due <= 0:
                self._guarded(lambda: self._resync("periodic"))
                return
            timeout = min(timeout, due)
        if self.poll_interval_s > 0:
            due = self._last_poll + self.poll_interval_s - now
            if due <= 0:
                self._guarded(self._poll)
                return
            timeout = min(timeout, due)
        try:
            item = self.queue.get(timeout=timeout)
        except queue.Empty:
            return
        if isinstance(item, _Closed):
            if self._stop_event.is_set() or item.generation != self._generation:
                return
            log.warning("%s: connection lost (%s); reconnecting", self.uri, item.reason)
            self._disconnect()
            return
        if isinstance(item, _NameEvent):
            self._guarded(lambda: self._handle_name(item))
            return
        self._guarded(lambda: self._handle_event(item))

    def _guarded(self, fn: Callable[[], None]) -> None:
        """Run ``fn``; a libvirt error on a dead connection means reconnect (then resync)."""
        try:
            fn()
        except self.libvirt.libvirtError as exc:
            alive = False
            with contextlib.suppress(Exception):
                alive = self._conn is not None and self._conn.isAlive() == 1
            if alive:
                log.error("%s: libvirt call failed: %s", self.uri, " ".join(str(exc).split()))
            else:
                log.warning("%s: connection lost (%s); reconnecting", self.uri, " ".join(str(exc).split()))
                self._disconnect()

    def wake(self) -> None:
        """Make the worker look at the stop event now (it is waiting for events otherwise)."""
        self.queue.put(_Closed("hvguard is stopping", -1))

    # -- connection ----------------------------------------------------------------------------------
    def _connect_and_resync(self) -> bool:
        lv = self.libvirt
        try:
            try:
                conn = lv.open(self.uri)
                self._read_write = True
            except lv.libvirtError as exc:
                rw_error = " ".join(str(exc).split())
                conn = lv.openReadOnly(self.uri)
                self._read_write = False
                log.warning(
                    "%s: read-write access refused (%s); read-only: console password changes are not seen",
                    self.uri,
                    rw_error,
                )
        except lv.libvirtError as exc:
            log.error("%s: cannot connect: %s", self.uri, " ".join(str(exc).split()))
            return False
        self._conn = conn
        self._generation += 1
        try:
            with contextlib.suppress(lv.libvirtError):
                conn.setKeepAlive(5, 3)  # remote drivers only; a dead peer is noticed within ~20 s
            conn.registerCloseCallback(self._on_close, self._generation)
            self._register_events(conn)
            # Events first, then the comparison: a change made during the resync arrives as an event.
            self._resync("reconnect" if self._ever_connected else "start")
        except lv.libvirtError as exc:
            log.error("%s: set-up after connecting failed: %s", self.uri, " ".join(str(exc).split()))
            self._disconnect()
            return False
        if self._ever_connected:
            log.warning("%s: reconnected and resynchronised", self.uri)
        self._ever_connected = True
        return True

    def _register_events(self, conn: Any) -> None:
        lv = self.libvirt
        ids: list[tuple[int, Callable[..., None]]] = [
            (lv.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle),
            (lv.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED, self._on_device_added),
            (lv.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, self._on_device_removed),
            (lv.VIR_DOMAIN_EVENT_ID_TUNABLE, self._on_tunable),
            (lv.VIR_DOMAIN_EVENT_ID_METADATA_CHANGE, self._on_metadata),
            (lv.VIR_DOMAIN_EVENT_ID_DISK_CHANGE, self._on_disk_change),
        ]
        for event_id, cb in ids:
            self._callbacks.append(conn.domainEventRegisterAny(None, event_id, cb, None))

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        lv = self.libvirt
        for cb_id in self._callbacks:
            with contextlib.suppress(lv.libvirtError):
                conn.domainEventDeregisterAny(cb_id)
        self._callbacks.clear()
        with contextlib.suppress(lv.libvirtError):
            conn.unregisterCloseCallback()
        with contextlib.suppress(lv.libvirtError):
            conn.close()

    # -- callbacks (event loop thread: queue only, no RPC) -------------------------------------------
    def _queue(self, dom: Any, trigger: str) -> None:
        self.queue.put(_Event(uuid=dom.UUIDString(), name=dom.name(), trigger=trigger))

    def _on_lifecycle(self, _conn: Any, dom: Any, event: int, detail: int, _opaque: Any) -> None:
        self._queue(dom, lifecycle_trigger(event, detail))

    def _on_device_added(self, _conn: Any, dom: Any, alias: str, _opaque: Any) -> None:
        self._queue(dom, f"device-added:{alias}")

    def _on_device_removed(self, _conn: Any, dom: Any, alias: str, _opaque: Any) -> None:
        self._queue(dom, f"device-removed:{alias}")

    def _on_tunable(self, _conn: Any, dom: Any, params: dict[str, Any], _opaque: Any) -> None:
        self._queue(dom, "tunable:" + ",".join(sorted(params)))

    def _on_metadata(self, _conn: Any, dom: Any, mtype: int, nsuri: str | None, _opaque: Any) -> None:
        self._queue(dom, "metadata")

    def _on_disk_change(
        self, _conn: Any, dom: Any, _old: str, _new: str, alias: str, _reason: int, _opaque: Any
    ) -> None:
        self._queue(dom, f"disk-change:{alias}")

    def _on_close(self, _conn: Any, reason: int, generation: int) -> None:
        self.queue.put(_Closed(_CLOSE_REASON.get(reason, str(reason)), generation))

    def _on_config_file(self, name: str) -> None:
        self.queue.put(_NameEvent(name=name, trigger="config-file"))

    # -- reading a VM --------------------------------------------------------------------------------
    def _canonical(self, xml: str, slot: str) -> tuple[str, str, int | None]:
        """Canonical text, its hash and the run id; cached per ``slot`` (uuid + scope) by raw hash, so a
        poll of unchanged VMs costs one hash each."""
        raw_sha = sha256_text(xml)
        cached = self._canonical_cache.get(slot)
        if cached is not None and cached[0] == raw_sha:
            return cached[1]
        try:
            text, run_id = canonical_domain_xml(xml, secret_key=self.secret_key)
            result = (text, sha256_text(text), run_id)
        except CanonicalError as exc:
            # Keep a marker, never the raw text: it could hold a console password in clear.
            result = (f"<!-- unparsable domain XML: {exc} -->\n", "unparsable:" + raw_sha, None)
        self._canonical_cache[slot] = (raw_sha, result)
        return result

    def snapshot(self, dom: Any) -> DomainState | None:
        """The VM's current definitions, or None when it no longer exists."""
        lv = self.libvirt
        secure = lv.VIR_DOMAIN_XML_SECURE if self._read_write else 0
        try:
            persistent = bool(dom.isPersistent())
            active = bool(dom.isActive())
            config_raw = dom.XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE | secure) if persistent else None
            live_raw = dom.XMLDesc(secure) if active else None
        except lv.libvirtError as exc:
            if exc.get_error_code() == lv.VIR_ERR_NO_DOMAIN:
                return None
            raise
        uuid = dom.UUIDString()
        config_xml = config_sha = live_xml = live_sha = None
        live_id: int | None = None
        if config_raw is not None:
            config_xml, config_sha, _ = self._canonical(config_raw, f"{uuid}:config")
        if live_raw is not None:
            text, sha, run_id = self._canonical(live_raw, f"{uuid}:live")
            if run_id is not None:  # it stopped between isActive and XMLDesc otherwise
                live_xml, live_sha, live_id = text, sha, run_id
        if config_xml is None and live_xml is None:
            return None  # a transient VM that stopped: gone
        return DomainState(
            uuid=uuid,
            name=dom.name(),
            persistent=config_xml is not None,
            config_xml=config_xml,
            config_sha=config_sha,
            live_id=live_id,
            live_xml=live_xml,
            live_sha=live_sha,
        )

    def _facts(self, state: DomainState | None) -> VmFacts | None:
        """Parsed facts of the definition the checks evaluate: persistent, else running."""
        if state is None:
            return None
        xml = state.config_xml if state.config_xml is not None else state.live_xml
        vm = parse_canonical(xml, state.name)
        if vm is None:
            return None
        return msgspec.structs.replace(vm, persistent=state.persistent, active=state.live_id is not None)

    # -- comparing -----------------------------------------------------------------------------------
    def _handle_event(self, ev: _Event) -> None:
        if self._conn is None:
            return
        try:
            dom = self._conn.lookupByUUIDString(ev.uuid)
        except self.libvirt.libvirtError as exc:
            if exc.get_error_code() != self.libvirt.VIR_ERR_NO_DOMAIN:
                raise
            new = None
        else:
            new = self.snapshot(dom)
        old = self.store.domain(self.uri, ev.uuid)
        self.apply(old, new, trigger=ev.trigger, missed=False)

    def _handle_name(self, ev: _NameEvent) -> None:
        if self._conn is None:
            return
        try:
            dom = self._conn.lookupByName(ev.name)
        except self.libvirt.libvirtError as exc:
            if exc.get_error_code() != self.libvirt.VIR_ERR_NO_DOMAIN:
                raise
            return  # removed: libvirt's own "undefined" event reports it, by UUID
        new = self.snapshot(dom)
        if new is not None:
            self.apply(self.store.domain(self.uri, new.uuid), new, trigger=ev.trigger, missed=False)

    def _poll(self) -> None:
        """Compare every VM now (for connections without a configuration directory to watch)."""
        assert self._conn is not None
        self._last_poll = time.monotonic()
        stored = self.store.domains(self.uri)
        current: dict[str, DomainState] = {}
        for dom in self._conn.listAllDomains(0):
            snap = self.snapshot(dom)
            if snap is not None:
                current[snap.uuid] = snap
        for uuid in [*stored, *(u for u in current if u not in stored)]:
            self.apply(stored.get(uuid), current.get(uuid), trigger="poll", missed=False)
        self._last_poll = time.monotonic()

    def apply(self, old: DomainState | None, new: DomainState | None, *, trigger: str, missed: bool) -> int:
        """Compare, then store ``new`` and queue its notifications atomically; return how many
        notifications (events × channels) were queued."""
        if old == new:
            return 0
        payloads = self._payloads(old, new, trigger=trigger, missed=missed)
        uuid = (new or old).uuid  # type: ignore[union-attr]
        if new is None:
            self._canonical_cache.pop(f"{uuid}:config", None)
            self._canonical_cache.pop(f"{uuid}:live", None)
        rows = [(ch, p["id"], encode(p)) for p in payloads for ch in self.channels]
        self.store.commit(self.uri, uuid, new, rows)
        for p in payloads:
            log.warning("%s", summary(p))
        if not payloads and old is not None and new is not None and old.live_id != new.live_id:
            state = "started" if new.live_id is not None else "stopped"
            log.info("%s: vm %s %s (run id %s)", self.uri, new.name, state, new.live_id)
        if rows:
            self.on_queued()
        return len(rows)

    def _payloads(
        self, old: DomainState | None, new: DomainState | None, *, trigger: str, missed: bool
    ) -> list[dict[str, Any]]:
        name = (new or old).name  # type: ignore[union-attr]
        uuid = (new or old).uuid  # type: ignore[union-attr]
        found: list[tuple[str, str, str | None, str | None]] = []  # (event, scope, old xml, new xml)
        old_cfg = old.config_xml if old is not None else None
        new_cfg = new.config_xml if new is not None else None
        old_sha = old.config_sha if old is not None else None
        new_sha = new.config_sha if new is not None else None
        if old_cfg is None and new_cfg is not None:
            found.append(("defined", "config", None, new_cfg))
        elif old_cfg is not None and new_cfg is None:
            found.append(("undefined", "config", old_cfg, None))
        elif old_cfg is not None and new_cfg is not None and old_sha != new_sha:
            found.append(("config-changed", "config", old_cfg, new_cfg))

        old_live = old.live_xml if old is not None else None
        new_live = new.live_xml if new is not None else None
        transient_before = old is not None and not old.persistent
        transient_now = new is not None and not new.persistent
        same_run = (
            old is not None and new is not None and old.live_id is not None and old.live_id == new.live_id
        )
        if same_run and old is not None and new is not None and old.live_sha != new.live_sha:
            found.append(("live-changed", "live", old_live, new_live))
        elif transient_now and (old is None or transient_before) and not same_run:
            found.append(("created", "live", old_live if transient_before else None, new_live))
        elif transient_before and new is None:
            found.append(("destroyed", "live", old_live, None))

        # The in-memory set the checks see moves to the new definition before the re-evaluation.
        new_facts = self._facts(new)
        if new_facts is None:
            self.view.vms.pop(uuid, None)
        else:
            self.view.vms[uuid] = new_facts
        if not found:
            return []
        findings = self.reevaluator.findings_after_change(self.view, name if new is not None else None)
        host = self.view.hypervisor.hostname if self.view.hypervisor is not None else None
        stamp = now_iso()
        out = []
        for event, scope, before, after in found:
            old_vm = parse_canonical(before, name)
            new_vm = parse_canonical(after, name)
            parse_error = new_vm.error if new_vm is not None and new_vm.error else None
            changes = (
                [] if parse_error or (old_vm is not None and old_vm.error) else value_changes(old_vm, new_vm)
            )
            label = f"{name}.xml" if scope == "config" else f"{name}.running.xml"
            out.append(
                make_payload(
                    event=event,
                    scope=scope,
                    trigger=trigger,
                    missed=missed,
                    uri=self.uri,
                    host=host or socket.gethostname(),
                    vm=name,
                    uuid=uuid,
                    time=stamp,
                    changes=changes,
                    xml_diff=unified_xml_diff(before, after, label=label),
                    findings=findings,
                    parse_error=parse_error,
                )
            )
        return out

    # -- resynchronisation ---------------------------------------------------------------------------
    def _refresh_facts(self) -> None:
        problems: list[Problem] = []
        try:
            hv = collect_libvirt(self.uri, problems=problems)
        except TargetUnreachable as exc:
            problems.append(Problem(area="hypervisor", source=self.uri, message=exc.message))
            hv = None
        host = None
        if is_local_uri(self.uri):
            host = collect_host_facts(LocalSource(), problems=problems)
        else:
            problems.append(
                Problem(area="host", source=self.uri, message="host files cannot be read through this URI")
            )
        self.view.hypervisor = replace_vms(hv)
        self.view.host = host
        self.view.problems = problems

    def _resync(self, why: str) -> None:
        assert self._conn is not None
        started = time.monotonic()
        self._refresh_facts()
        current: dict[str, DomainState] = {}
        for dom in self._conn.listAllDomains(0):
            snap = self.snapshot(dom)
            if snap is not None:
                current[snap.uuid] = snap
        stored = self.store.domains(self.uri)
        self._last_sync = self._last_poll = time.monotonic()
        if not self.store.has_baseline(self.uri):
            self.store.record_baseline(self.uri, current.values())
            self.view.vms = {u: f for u, s in current.items() if (f := self._facts(s)) is not None}
            self.reevaluator.baseline(self.view)
            log.warning(
                "watching %s: baseline of %d VM(s) recorded (first run: no notifications for them)",
                self.uri,
                len(current),
            )
            return
        # Start from what was known, so each change's re-evaluation sees the estate as it was before it.
        self.view.vms = {u: f for u, s in stored.items() if (f := self._facts(s)) is not None}
        self.reevaluator.baseline(self.view)
        queued = 0
        trigger = f"resync:{why}"
        for uuid in [*stored, *(u for u in current if u not in stored)]:
            queued += self.apply(stored.get(uuid), current.get(uuid), trigger=trigger, missed=True)
        self.store.mark_synced(self.uri)
        level = logging.WARNING if why != "periodic" or queued else logging.INFO
        log.log(
            level,
            "watching %s: %d VM(s); resynchronised (%s) in %.2f s, %d missed change notification(s) queued",
            self.uri,
            len(current),
            why,
            time.monotonic() - started,
            queued,
        )


def replace_vms(hv: Any) -> Any:
    """Hypervisor facts without their VM list (the watcher keeps its own, from the definitions)."""
    return None if hv is None else msgspec.structs.replace(hv, vms=[])


__all__ = ["ConnectionWorker", "EventLoop", "lifecycle_trigger"]
