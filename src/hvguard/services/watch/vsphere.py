"""Watching a vSphere target (``vsphere://USER@HOST``): vCenter/ESXi events in, compared VM settings and
notifications out, through the same state file, outbox, channels and re-evaluation as libvirt URIs.

How changes are seen: an ``EventHistoryCollector`` filtered to VM configuration events
(:data:`EVENT_TYPES`) with its page size set (:data:`PAGE_SIZE`), and ``PropertyCollector.WaitForUpdatesEx``
on its ``latestPage`` — the server answers as soon as a matching event is posted (the simulator batches
them every 250 ms). Each event is processed once (by its ``key``). For every VM an update names, that
VM alone is re-read (the collector's narrow VM read on just its reference), its settings are compared
with the state file, and a ``config-changed`` / ``defined`` / ``undefined`` notification is queued in the
same transaction that stores them.

Bursts larger than the page: when every event of the page is new, events may have scrolled out of it,
so the collector is rewound and drained with ``ReadNextEvents``; if even that does not reach back to an
event already processed, every VM is re-read and compared (a resynchronisation), so no change is lost —
intermediate states within one burst are reported as one net change, as for libvirt.

A lost session (``NotAuthenticated``, a dropped connection) means: log in again with exponential backoff
(0.5 s doubling, capped at ``reconnect_max_s``), re-create the collector, and resynchronise (every VM
re-read and compared; what changed meanwhile is reported with ``missed: true``).

What a VM's "settings" are: its :class:`~hvguard.facts.VsphereVm` facts without run-time state (power
state, current host). They are stored as canonical JSON text; a notification's ``xml_diff`` is the
unified diff of that text (the field keeps its name in ``hvguard.watch/1``).
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from hvguard import __version__
from hvguard.checks.support.vsphere import vm_subjects
from hvguard.collect.vsphere.collector import COLLECTOR
from hvguard.collect.vsphere.connection import Connection, VsphereUnreachable, connect, fault_text
from hvguard.collect.vsphere.inventory import Tree, read_tree
from hvguard.collect.vsphere.target import VsphereOptions, VsphereTarget
from hvguard.collect.vsphere.vms import read_vms
from hvguard.facts import CollectionInfo, Platform, Problem, TargetFacts, VsphereFacts, VsphereVm
from hvguard.services.watch.canonical import sha256_text, unified_xml_diff
from hvguard.services.watch.changes import settings_changes
from hvguard.services.watch.payload import encode, make_payload, summary
from hvguard.services.watch.reconnect import run_reconnecting
from hvguard.services.watch.reevaluate import ConnectionView, Reevaluator
from hvguard.services.watch.state import DomainState, Store, now_iso

log = logging.getLogger("hvguard.watch")

#: Events per collector page. Small on purpose: a burst larger than it exercises the drain path.
PAGE_SIZE = 10
#: The events that mean "a VM's configuration may have changed".
EVENT_TYPES = (
    "VmReconfiguredEvent",
    "VmCreatedEvent",
    "VmClonedEvent",
    "VmDeployedEvent",
    "VmRegisteredEvent",
    "VmRemovedEvent",
    "VmRenamedEvent",
    "VmRelocatedEvent",
    "VmMigratedEvent",
    "VmUpgradeCompleteEvent",
)
_GONE = frozenset({"VmRemovedEvent"})
#: Facts that are the VM's run-time state, not its configuration.
_RUNTIME = frozenset({"power_state", "host"})


class SessionLost(Exception):
    """The session or the connection is gone; the worker logs in again and resynchronises."""


#: Problem texts that mean the read did not happen at all (the session or the connection is gone).
_LOST_MARKERS = ("NotAuthenticated", "connection lost")


def _unusable_read(problems: Sequence[Problem], areas: Sequence[str]) -> list[str]:
    """The problems that make a read unusable for comparison: the whole read failed (one of ``areas``)
    or the session was gone (a per-property ``NotAuthenticated`` would otherwise look like a VM whose
    settings all vanished)."""
    return [p.message for p in problems if p.area in areas or any(m in p.message for m in _LOST_MARKERS)]


def vm_settings(vm: VsphereVm) -> dict[str, Any]:
    """The VM's configuration as plain data (run-time state left out)."""
    data = msgspec.to_builtins(vm)
    assert isinstance(data, dict)
    return {k: v for k, v in data.items() if k not in _RUNTIME}


def vm_state(vm: VsphereVm) -> DomainState:
    """The state-file row of one VM: keyed by its moref, settings as canonical JSON."""
    text = json.dumps(vm_settings(vm), sort_keys=True, indent=1, ensure_ascii=False, default=str) + "\n"
    return DomainState(
        uuid=vm.moref,
        name=vm.name,
        persistent=True,
        config_xml=text,
        config_sha=sha256_text(text),
        live_id=None,
        live_xml=None,
        live_sha=None,
    )


def _stored_settings(state: DomainState | None) -> dict[str, Any]:
    """The settings a state-file row holds ({} for none, or for a row that is not our JSON: the change is
    then told as every setting added, never as a crash of the watcher)."""
    if state is None or not state.config_xml:
        return {}
    try:
        data = json.loads(state.config_xml)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _event_type(event: Any) -> str:
    return str(getattr(event, "_wsdlName", None) or type(event).__name__)


def _event_vm(event: Any) -> tuple[str | None, Any]:
    """The moref and live reference of the VM an event is about (None when it names none)."""
    arg = getattr(event, "vm", None)
    ref = getattr(arg, "vm", None) if arg is not None else None
    return (getattr(ref, "_moId", None), ref) if ref is not None else (None, None)


def _first(messages: Sequence[str]) -> str:
    """The first problem and how many more (a dead session fails every property of every object)."""
    more = f" (and {len(messages) - 1} more)" if len(messages) > 1 else ""
    return messages[0] + more


class VsphereWorker(threading.Thread):
    """Watches one ``vsphere://`` target: events, narrow re-reads, comparison, notifications, reconnects."""

    def __init__(
        self,
        target: VsphereTarget,
        options: VsphereOptions,
        password: str,
        *,
        store: Store,
        reevaluator: Reevaluator,
        channels: Sequence[str],
        on_queued: Callable[[], None],
        stop: threading.Event,
        reconnect_max_s: float,
        page_size: int = PAGE_SIZE,
    ) -> None:
        super().__init__(name=f"watch {target.text}", daemon=True)
        self.target = target
        self.uri = target.text
        self.options = options
        self._password = password
        self.store = store
        self.reevaluator = reevaluator
        self.channels = list(channels)
        self.on_queued = on_queued
        self._stop_event = stop
        self.reconnect_max_s = reconnect_max_s
        self.page_size = page_size
        self.first_attempt_done = threading.Event()
        self.view = ConnectionView(uri=target.text)
        self._conn: Connection | None = None
        self._collector: Any = None
        self._filter: Any = None
        self._pc: Any = None
        self._version = ""
        self._last_key = -1
        self._ever_connected = False
        self._facts: VsphereFacts | None = None
        self._platform = Platform.VMWARE_ESXI
        self._problems: list[Problem] = []
        self._vms: dict[str, VsphereVm] = {}
        self._tree = Tree()

    # -- thread --------------------------------------------------------------------------------------
    def run(self) -> None:
        """Log in, resynchronise, wait for events until stopped; log in again when the session is lost."""
        run_reconnecting(
            self.uri,
            stop=self._stop_event,
            first_attempt_done=self.first_attempt_done,
            reconnect_max_s=self.reconnect_max_s,
            connected=lambda: self._conn is not None,
            connect_and_resync=self._connect_and_resync,
            step=self._step,
            disconnect=self._disconnect,
        )

    def _step(self) -> None:
        """Wait for one batch of events; a lost session disconnects, so the loop logs in again."""
        try:
            self._wait_once()
        except SessionLost as exc:
            if not self._stop_event.is_set():
                log.warning("%s: session lost (%s); logging in again", self.uri, exc)
            self._disconnect()

    def wake(self) -> None:
        """Nothing to do: the worker's wait returns within a second and then sees the stop event."""

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """``fn()``; a lost session or connection becomes :class:`SessionLost`, any other fault too
        (logged as an error first): the way back is a fresh session and a resynchronisation."""
        from pyVmomi import vim, vmodl

        try:
            return fn()
        except vim.fault.NotAuthenticated as exc:
            raise SessionLost(fault_text(exc)) from None
        except vmodl.MethodFault as exc:
            log.error("%s: %s failed: %s", self.uri, what, fault_text(exc))
            raise SessionLost(f"{what}: {fault_text(exc)}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise SessionLost(f"connection lost: {fault_text(exc)}") from None

    # -- session -------------------------------------------------------------------------------------
    def _connect_and_resync(self) -> bool:
        try:
            conn = connect(self.target, self.options, self._password)
        except VsphereUnreachable as exc:
            log.error("%s: cannot connect: %s", self.uri, exc)
            return False
        self._conn = conn
        self._platform = Platform.VMWARE_VCENTER if conn.is_vcenter else Platform.VMWARE_ESXI
        try:
            self._open_collector(conn)
            # The collector first, then the comparison: a change made during the resync is an event.
            self._resync("reconnect" if self._ever_connected else "start")
        except SessionLost as exc:
            log.error("%s: set-up after logging in failed: %s", self.uri, exc)
            self._disconnect()
            return False
        if self._ever_connected:
            log.warning("%s: logged in again and resynchronised", self.uri)
        self._ever_connected = True
        return True

    def _open_collector(self, conn: Connection) -> None:
        from pyVmomi import vim, vmodl

        pc_types = vmodl.query.PropertyCollector
        spec = vim.event.EventFilterSpec(eventTypeId=list(EVENT_TYPES))
        manager = conn.content.eventManager
        self._collector = self._call(
            "CreateCollectorForEvents", lambda: manager.CreateCollectorForEvents(filter=spec)
        )
        self._call("SetCollectorPageSize", lambda: self._collector.SetCollectorPageSize(self.page_size))
        fspec = pc_types.FilterSpec(
            objectSet=[pc_types.ObjectSpec(obj=self._collector, skip=False)],
            propSet=[
                pc_types.PropertySpec(type=vim.event.EventHistoryCollector, pathSet=["latestPage"], all=False)
            ],
        )
        # A PropertyCollector of our own: waiters on a shared one take each other's updates (the
        # simulator's is shared by every session; a real server's by every user of this session).
        shared = conn.content.propertyCollector
        self._pc = pc = self._call("CreatePropertyCollector", shared.CreatePropertyCollector)
        self._filter = self._call("CreateFilter", lambda: pc.CreateFilter(fspec, partialUpdates=False))
        self._version = ""
        # The first answer is the page as it is now: those events happened before this session and
        # the resynchronisation that follows covers them.
        page = self._wait_page(0)
        if page:
            self._last_key = max(self._last_key, *(int(e.key) for e in page))

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        for obj, method in (
            (self._filter, "DestroyPropertyFilter"),
            (self._pc, "DestroyPropertyCollector"),
            (self._collector, "DestroyCollector"),
        ):
            if obj is not None:
                try:
                    getattr(obj, method)()
                except Exception as exc:  # the session may be gone already: nothing left to free
                    log.debug("%s: %s: %s", self.uri, method, fault_text(exc))
        self._filter = self._collector = self._pc = None
        conn.close()

    # -- events --------------------------------------------------------------------------------------
    def _wait_page(self, max_wait_s: int) -> list[Any] | None:
        """The collector's ``latestPage`` when it changed within ``max_wait_s`` seconds, else None."""
        from pyVmomi import vmodl

        pc = self._pc
        options = vmodl.query.PropertyCollector.WaitOptions(maxWaitSeconds=max_wait_s)
        result = self._call("WaitForUpdatesEx", lambda: pc.WaitForUpdatesEx(self._version, options))
        if result is None:
            return None
        self._version = result.version
        page: list[Any] = []
        for fs in result.filterSet or ():
            for obj in fs.objectSet or ():
                for change in obj.changeSet or ():
                    if change.name == "latestPage":
                        page = list(change.val or ())
        return page

    def _wait_once(self) -> None:
        page = self._wait_page(1)
        if page is None:
            return
        new = [e for e in page if int(e.key) > self._last_key]
        if not new:
            return
        if len(page) >= self.page_size and len(new) == len(page):
            drained = self._drain(new)
            if drained is None:
                self._last_key = max(int(e.key) for e in new)
                self._resync("burst larger than the event page", full=False, missed=False)
                return
            new = drained
        self._last_key = max(int(e.key) for e in new)
        self._handle(sorted(new, key=lambda e: int(e.key)))

    def _drain(self, new: list[Any]) -> list[Any] | None:
        """Every event after the last one processed, read back with ``RewindCollector`` and
        ``ReadNextEvents``; None when the collector's history does not reach back that far."""
        collector = self._collector
        self._call("RewindCollector", collector.RewindCollector)
        seen = {int(e.key): e for e in new}
        reached = False
        for _ in range(10_000):  # a bound: a hostile server cannot keep us here
            batch = self._call("ReadNextEvents", lambda: collector.ReadNextEvents(self.page_size))
            if not batch:
                break
            for e in batch:
                key = int(e.key)
                if key <= self._last_key:
                    reached = True
                else:
                    seen.setdefault(key, e)
        if not reached:
            log.info("%s: more events than the page of %d; comparing every VM", self.uri, self.page_size)
            return None
        return list(seen.values())

    def _handle(self, events: list[Any]) -> None:
        assert self._conn is not None
        triggers: dict[str, list[str]] = {}
        refs: dict[str, Any] = {}
        gone: set[str] = set()
        for e in events:
            moid, ref = _event_vm(e)
            if moid is None:
                continue
            kind = _event_type(e)
            names = triggers.setdefault(moid, [])
            if kind not in names:
                names.append(kind)
            if kind in _GONE:
                gone.add(moid)
                refs.pop(moid, None)
            else:
                gone.discard(moid)
                refs[moid] = ref
        if any(k != "VmReconfiguredEvent" for ks in triggers.values() for k in ks):
            self._read_tree()  # a new, renamed or moved VM: its folder and datacenter come from the tree
        read: dict[str, VsphereVm] = {}
        if refs:
            problems: list[Problem] = []
            vms, _pools = read_vms(self._conn, self._tree, problems, list(refs.values()))
            unusable = _unusable_read(problems, ("vsphere.vms",))
            if unusable:
                # The read itself failed (a VM removed since, the session gone): start over cleanly.
                raise SessionLost(_first(unusable))
            read = {vm.moref: vm for vm in vms}
        for moid in triggers:
            new = read.get(moid)
            if new is None and moid not in gone:
                continue  # not returned although asked for: the resync after the fault above covers it
            trigger = ",".join(triggers[moid])
            self.apply(self.store.domain(self.uri, moid), new, trigger=trigger, missed=False)

    def _read_tree(self) -> None:
        assert self._conn is not None
        problems: list[Problem] = []
        tree = read_tree(self._conn, problems)
        if problems:
            raise SessionLost(_first([p.message for p in problems]))
        self._tree = tree

    # -- comparing -----------------------------------------------------------------------------------
    def _target_facts(self) -> TargetFacts:
        vms = [self._vms[m] for m in sorted(self._vms)]
        base = self._facts or VsphereFacts(endpoint=f"{self.target.host}:{self.target.port}")
        return TargetFacts(
            id=self.uri,
            platform=self._platform,
            collection=CollectionInfo(collected_at=now_iso(), tool_version=__version__, collectors=["watch"]),
            vsphere=msgspec.structs.replace(base, vms=vms),
            problems=self._problems,
        )

    def apply(self, old: DomainState | None, new_vm: VsphereVm | None, *, trigger: str, missed: bool) -> int:
        """Compare, then store the VM's new state and queue its notifications atomically; return how many
        notifications (events × channels) were queued."""
        new = vm_state(new_vm) if new_vm is not None else None
        if old == new or (old is not None and new is not None and old.config_sha == new.config_sha):
            if new_vm is not None:
                self._vms[new_vm.moref] = new_vm
            return 0
        moid = (new or old).uuid  # type: ignore[union-attr]
        name = (new or old).name  # type: ignore[union-attr]
        before_vm = self._vms.get(moid)
        subject: str | None = None
        if new_vm is None:
            self._vms.pop(moid, None)
            if before_vm is not None:  # its subject as it was named while it existed
                subject = vm_subjects(self._facts_with(before_vm)).get(moid)
        else:
            self._vms[moid] = new_vm
        target = self._target_facts()
        if new_vm is not None and target.vsphere is not None:
            subject = vm_subjects(target.vsphere).get(moid)
        findings = self.reevaluator.findings_for(lambda: target, self.view, subject)
        event = "defined" if old is None else "undefined" if new is None else "config-changed"
        before = _stored_settings(old)
        after = vm_settings(new_vm) if new_vm is not None else {}
        changes = settings_changes(before, after)
        payload = make_payload(
            event=event,
            scope="config",
            trigger=trigger,
            missed=missed,
            uri=self.uri,
            host=self.target.host,
            vm=name,
            uuid=(new_vm.uuid if new_vm is not None else before.get("uuid")) or moid,
            time=now_iso(),
            changes=changes,
            xml_diff=unified_xml_diff(
                old.config_xml if old else None, new.config_xml if new else None, label=f"{name}.json"
            ),
            findings=findings,
        )
        rows = [(ch, payload["id"], encode(payload)) for ch in self.channels]
        self.store.commit(self.uri, moid, new, rows)
        log.warning("%s", summary(payload))
        if rows:
            self.on_queued()
        return len(rows)

    def _facts_with(self, vm: VsphereVm) -> VsphereFacts:
        base = self._facts or VsphereFacts(endpoint="")
        return msgspec.structs.replace(base, vms=[*self._vms.values(), vm])

    # -- resynchronisation ---------------------------------------------------------------------------
    def _resync(self, why: str, *, full: bool = True, missed: bool = True) -> None:
        """Compare every VM with the state file. ``full``: collect the whole target again (after logging
        in: hosts and permissions feed the re-evaluation too); else only the tree and the VMs (after a
        burst). ``missed``: the changes happened while hvguard was not following events."""
        assert self._conn is not None
        started = time.monotonic()
        problems: list[Problem] = []
        self._read_tree()
        if full:
            facts = COLLECTOR.collect(self._conn, problems)
            vms = facts.vms
        else:
            vms, _pools = read_vms(self._conn, self._tree, problems)
            facts = self._facts or VsphereFacts(endpoint=f"{self.target.host}:{self.target.port}")
        lost = _unusable_read(problems, ("vsphere.vms", "vsphere.inventory"))
        if lost:
            # Never compare against a VM list that was not read: every VM would look removed.
            raise SessionLost(_first(lost))
        if full:
            self._facts, self._problems = facts, problems
        current = {vm.moref: vm for vm in vms}
        stored = self.store.domains(self.uri)
        if not self.store.has_baseline(self.uri):
            self.store.record_baseline(self.uri, [vm_state(vm) for vm in current.values()])
            self._vms = dict(current)
            self.reevaluator.findings_for(self._target_facts, self.view, None)
            log.warning(
                "watching %s: baseline of %d VM(s) recorded (first run: no notifications for them)",
                self.uri,
                len(current),
            )
            return
        # Start from what was known, so each change's re-evaluation sees the estate as it was before it.
        self._vms = {m: current[m] for m in stored if m in current}
        self.reevaluator.findings_for(self._target_facts, self.view, None)
        queued = 0
        for moid in [*stored, *(m for m in current if m not in stored)]:
            queued += self.apply(stored.get(moid), current.get(moid), trigger=f"resync:{why}", missed=missed)
        self.store.mark_synced(self.uri)
        log.warning(
            "watching %s: %d VM(s); resynchronised (%s) in %.2f s, %d change notification(s) queued",
            self.uri,
            len(current),
            why,
            time.monotonic() - started,
            queued,
        )


__all__ = ["EVENT_TYPES", "PAGE_SIZE", "SessionLost", "VsphereWorker", "vm_settings", "vm_state"]
