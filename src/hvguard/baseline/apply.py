"""Remediation through libvirt: plan against the live daemon, apply with an undo record, undo exactly.

Only domains a VM class of the baseline matches are ever read for changes or touched. Before the first
change of a run, every domain the run will change has its persistent XML (``VIR_DOMAIN_XML_INACTIVE |
VIR_DOMAIN_XML_SECURE``) written to the run directory; undo defines that XML again and verifies the
result canonically (C14N 2.0) equal. Live values changed on running domains are recorded beforehand
and put back by undo while the domain still runs the same instance.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from xml.etree.ElementTree import canonicalize

from defusedxml.ElementTree import fromstring

from hvguard.baseline import xmledit
from hvguard.baseline.drift import DriftItem, host_drift, vm_drift, vm_views
from hvguard.baseline.matching import Matcher, exact_name
from hvguard.baseline.plan import (
    DEFINE_XML,
    Action,
    DomainPlan,
    Plan,
    domain_actions,
    host_actions,
)
from hvguard.baseline.runs import MANIFEST_SCHEMA, Run, RunError, RunStore
from hvguard.baseline.schema import HostSettings, LoadedBaseline, VmSettings
from hvguard.collect.libvirt.domain_xml import parse_domain_xml
from hvguard.facts import HostFacts, VmFacts

#: VIR_DOMAIN_MEMORY_PARAM_UNLIMITED: libvirt-python does not export this C macro.
MEMORY_UNLIMITED = 9007199254740991

_SCHED = {
    "shares": "cpu_shares",
    "period": "vcpu_period",
    "quota": "vcpu_quota",
    "global_period": "global_period",
    "global_quota": "global_quota",
    "emulator_period": "emulator_period",
    "emulator_quota": "emulator_quota",
}
_MEMTUNE = {
    "hard_limit_kib": "hard_limit",
    "soft_limit_kib": "soft_limit",
    "swap_hard_limit_kib": "swap_hard_limit",
}
_BLKIO_DEVICE = {
    "weight": "device_weight",
    "read_bytes_sec": "device_read_bytes_sec",
    "write_bytes_sec": "device_write_bytes_sec",
    "read_iops_sec": "device_read_iops_sec",
    "write_iops_sec": "device_write_iops_sec",
}
_UNSUPPORTED_CODES = ("VIR_ERR_CONFIG_UNSUPPORTED", "VIR_ERR_OPERATION_UNSUPPORTED", "VIR_ERR_NO_SUPPORT")


class RemediationError(Exception):
    """The remediation cannot start or continue (connection, refused undo); one line."""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _libvirt() -> Any:
    try:
        import libvirt
    except ImportError as exc:
        raise RemediationError("libvirt-python is not installed (pip install 'hvguard[libvirt]')") from exc
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


def connect(uri: str) -> Any:
    """A read-write libvirt connection (remediation changes definitions)."""
    libvirt = _libvirt()
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise RemediationError(f"{uri}: cannot open a read-write connection: {_one_line(exc)}") from exc


def canonical(xml: str) -> str:
    """C14N 2.0 form of ``xml`` with insignificant whitespace dropped (DTDs refused first)."""
    fromstring(xml, forbid_dtd=True)
    return canonicalize(xml_data=xml, strip_text=True)


# --------------------------------------------------------------------------------------------------------
# Planning


@dataclass
class _Domain:
    """A governed domain as read for planning."""

    dom: Any
    plan: DomainPlan
    settings: VmSettings
    inactive: VmFacts
    live: VmFacts | None


@dataclass
class Planned:
    """A plan and the libvirt objects it was made from (for :func:`apply_plan`)."""

    plan: Plan
    uri: str
    domains: list[_Domain] = field(default_factory=list)
    host_items: list[DriftItem] = field(default_factory=list)


def build_plan(
    conn: Any, uri: str, loaded: LoadedBaseline, host: HostFacts | None, host_problem: str | None
) -> Planned:
    """Read every domain, match it against the baseline's classes and plan the changes."""
    libvirt = _libvirt()
    baseline = loaded.baseline
    plan = Plan(target=uri, baseline=loaded.source, warnings=list(loaded.warnings))
    planned = Planned(plan=plan, uri=uri)
    if isinstance(baseline.host, HostSettings):
        if host is None:
            plan.errors.append(f"host: host facts were not collected ({host_problem or 'remote target'})")
        else:
            items, errors = host_drift(baseline.host, host)
            planned.host_items = items
            plan.host = host_actions(items)
            plan.errors.extend(f"{e.subject}: {e.message}" for e in errors)
    try:
        doms = conn.listAllDomains(0)
    except libvirt.libvirtError as exc:
        raise RemediationError(f"{uri}: cannot list domains: {_one_line(exc)}") from exc
    seen: set[str] = set()
    matcher = Matcher(baseline.vm_classes)
    for dom in sorted(doms, key=lambda d: d.name()):
        name = dom.name()
        seen.add(name)
        try:
            persistent = bool(dom.isPersistent())
            active = bool(dom.isActive())
            inactive_xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                continue
            plan.errors.append(f"vm:{name}: cannot read its definition: {_one_line(exc)}")
            continue
        inactive = parse_domain_xml(inactive_xml, name_hint=name)
        a = matcher.assign(name, inactive.metadata_tags)
        if a.vm_class is None:
            continue
        if (w := a.warning()) is not None:
            plan.warnings.append(w)
        if inactive.error is not None:
            plan.errors.append(f"vm:{name}: cannot parse its definition: {inactive.error}")
            continue
        if not persistent:
            plan.warnings.append(f"vm:{name} is transient (no persistent definition): not remediated")
            continue
        live: VmFacts | None = None
        if active:
            try:
                live = parse_domain_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE), name_hint=name)
            except libvirt.libvirtError as exc:
                plan.errors.append(f"vm:{name}: cannot read its live XML: {_one_line(exc)}")
                continue
            if live.error is not None:
                plan.errors.append(f"vm:{name}: cannot parse its live XML: {live.error}")
                continue
        settings = a.vm_class.settings
        config_items = vm_drift(settings, inactive, a.vm_class.name)
        live_items = vm_drift(settings, live, a.vm_class.name) if live is not None else None
        actions = domain_actions(config_items, live_items)
        if not actions:
            continue
        dp = DomainPlan(
            name=name, uuid=dom.UUIDString(), vm_class=a.vm_class.name, active=active, actions=actions
        )
        plan.domains.append(dp)
        planned.domains.append(_Domain(dom=dom, plan=dp, settings=settings, inactive=inactive, live=live))
    for cls in baseline.vm_classes:
        exact = exact_name(cls)
        if exact is not None and exact not in seen:
            item = DriftItem(f"vm:{exact}", "domain", "defined", None, cls.name)
            plan.missing.append(
                Action(item, "manual", "none", "the VM is not defined on this target: define it, then re-run")
            )
    return planned


# --------------------------------------------------------------------------------------------------------
# Applying


@dataclass
class DomainResult:
    """What happened to one domain."""

    name: str
    uuid: str
    applied: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    remaining: list[DriftItem] = field(default_factory=list)
    live_restore: list[dict[str, Any]] = field(default_factory=list)
    domain_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        """Manifest entry (without file names)."""
        return {
            "name": self.name,
            "uuid": self.uuid,
            "applied": self.applied,
            "failed": self.failed,
            "remaining": [i.to_json() for i in self.remaining],
            "live_restore": self.live_restore,
            "domain_id": self.domain_id,
        }


@dataclass
class ApplyResult:
    """The outcome of ``--apply``."""

    run_id: str
    run_dir: str
    domains: list[DomainResult] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every automatic action was applied and verified."""
        return all(not d.failed and not d.remaining for d in self.domains)


def _actions_by(dp: DomainPlan, prefix: str, scopes: tuple[str, ...]) -> list[Action]:
    return [a for a in dp.automatic if a.item.path.startswith(prefix) and a.scope in scopes]


_CONFIG = ("config", "config+live")
_LIVE = ("config+live", "live")


def _group(path: str) -> str:
    """``disks[vda].iotune.x`` → ``disks[vda]``; ``cputune.quota`` → ``cputune``."""
    return path.split(".", 1)[0]


def _key(path: str, index: int = 1) -> str:
    parts = path.split(".")
    return parts[index] if len(parts) > index else ""


def _bracket(path: str) -> str:
    return path[path.index("[") + 1 : path.index("]")]


class _Applier:
    """Applies one domain's actions; every call's failure is recorded against the paths it served."""

    def __init__(self, libvirt: Any, d: _Domain, result: DomainResult, *, live: bool) -> None:
        self.lv = libvirt
        self.d = d
        self.dom = d.dom
        self.result = result
        self.live = live and d.live is not None
        self.expected, _ = vm_views(d.settings, d.inactive)

    # -- helpers ---------------------------------------------------------------------------------------
    def _call(self, actions: list[Action], what: str, fn: Callable[[], Any]) -> bool:
        try:
            fn()
        except self.lv.libvirtError as exc:
            for a in actions:
                self.result.failed.append({"path": a.item.path, "call": what, "error": _one_line(exc)})
            return False
        self.result.applied.extend(f"{a.item.path} ({what})" for a in actions)
        return True

    def _unsupported(self, exc: Any) -> bool:
        codes = {getattr(self.lv, c, None) for c in _UNSUPPORTED_CODES}
        return exc.get_error_code() in codes

    def _remember_live(
        self, method: str, device: str | None, getter: Callable[[], dict[str, Any]], keys: list[str]
    ) -> None:
        try:
            current = getter()
        except self.lv.libvirtError:
            return
        params = {k: current[k] for k in keys if k in current}
        if params:
            self.result.live_restore.append({"method": method, "device": device, "params": params})

    # -- config ------------------------------------------------------------------------------------------
    def config(self) -> None:
        flags = self.lv.VIR_DOMAIN_AFFECT_CONFIG
        dp = self.d.plan
        self._vcpu(dp, flags)
        self._memory(dp, flags)
        sched = [a for a in _actions_by(dp, "cputune.", _CONFIG) if a.method != DEFINE_XML]
        if sched:
            params = {_SCHED[_key(a.item.path)]: a.item.expected or 0 for a in sched}
            self._call(
                sched,
                "setSchedulerParametersFlags",
                lambda: self.dom.setSchedulerParametersFlags(params, flags),
            )
        mem = _actions_by(dp, "memtune.", _CONFIG)
        if mem:
            mparams = {
                _MEMTUNE[_key(a.item.path)]: a.item.expected
                if a.item.expected is not None
                else MEMORY_UNLIMITED
                for a in mem
            }
            self._call(mem, "setMemoryParameters", lambda: self.dom.setMemoryParameters(mparams, flags))
        weight = _actions_by(dp, "blkiotune.weight", _CONFIG)
        if weight:
            w = weight[0].item.expected or 0
            self._call(
                weight, "setBlkioParameters", lambda: self.dom.setBlkioParameters({"weight": w}, flags)
            )
        devices = _actions_by(dp, "blkiotune.devices", _CONFIG)
        if devices:
            bparams = self._blkio_devices()
            self._call(devices, "setBlkioParameters", lambda: self.dom.setBlkioParameters(bparams, flags))
        self._iotune(dp, flags, _CONFIG)
        xml_edits = self._interfaces(dp, flags, _CONFIG)
        xml_edits += [a for a in dp.automatic if a.method == DEFINE_XML and a.scope in _CONFIG]
        if xml_edits:
            self._define_edited(xml_edits)

    def _vcpu(self, dp: DomainPlan, flags: int) -> None:
        actions = _actions_by(dp, "vcpu.", _CONFIG)
        if not actions:
            return
        want = self.expected.get("vcpu", {})
        if "maximum" in want and any(a.item.path == "vcpu.maximum" for a in actions):
            maxi = int(want["maximum"])
            self._call(
                [a for a in actions if a.item.path == "vcpu.maximum"],
                "setVcpusFlags(MAXIMUM)",
                lambda: self.dom.setVcpusFlags(maxi, flags | self.lv.VIR_DOMAIN_VCPU_MAXIMUM),
            )
        if "current" in want:
            cur = int(want["current"])
            self._call(
                [a for a in actions if a.item.path == "vcpu.current"],
                "setVcpusFlags",
                lambda: self.dom.setVcpusFlags(cur, flags),
            )

    def _memory(self, dp: DomainPlan, flags: int) -> None:
        actions = _actions_by(dp, "memory.", _CONFIG)
        if not actions:
            return
        want = self.expected.get("memory", {})
        if "maximum_kib" in want and any(a.item.path == "memory.maximum_kib" for a in actions):
            maxi = int(want["maximum_kib"])
            self._call(
                [a for a in actions if a.item.path == "memory.maximum_kib"],
                "setMemoryFlags(MAXIMUM)",
                lambda: self.dom.setMemoryFlags(maxi, flags | self.lv.VIR_DOMAIN_MEM_MAXIMUM),
            )
        if "current_kib" in want:
            cur = int(want["current_kib"])
            self._call(
                [a for a in actions if a.item.path == "memory.current_kib"],
                "setMemoryFlags",
                lambda: self.dom.setMemoryFlags(cur, flags),
            )

    def _blkio_devices(self) -> dict[str, str]:
        want = {d["path"]: d for d in self.expected.get("blkiotune", {}).get("devices", [])}
        have = {d.path: d for d in self.d.inactive.blkiotune.devices}
        params: dict[str, str] = {}
        for field_name, param in _BLKIO_DEVICE.items():
            entries = []
            for path in [*want, *(p for p in have if p not in want)]:
                value = want.get(path, {}).get(field_name) or 0
                current = getattr(have[path], field_name) if path in have else None
                if (current or 0) != value:
                    entries.append(f"{path},{value}")
            if entries:
                params[param] = ",".join(entries)
        return params

    def _iotune(self, dp: DomainPlan, flags: int, scopes: tuple[str, ...], vm: VmFacts | None = None) -> None:
        source = vm or self.d.inactive
        by_disk: dict[str, list[Action]] = {}
        for a in _actions_by(dp, "disks[", scopes):
            by_disk.setdefault(_bracket(a.item.path), []).append(a)
        current = {d.target: d.iotune for d in source.disks if d.target}
        wanted = {d["target"]: d.get("iotune") for d in self.expected.get("disks", [])}
        for disk, actions in by_disk.items():
            target_limits = wanted.get(disk) or {}
            params = {k: 0 for k, v in current.get(disk, {}).items() if v} | dict(target_limits)
            live_flag = flags == self.lv.VIR_DOMAIN_AFFECT_LIVE
            if live_flag:
                self._remember_live(
                    "setBlockIoTune", disk, partial(self.dom.blockIoTune, disk, flags), list(params)
                )
            self._call(
                actions,
                "setBlockIoTune" + (" (live)" if live_flag else ""),
                partial(self.dom.setBlockIoTune, disk, params, flags),
            )

    def _bandwidth_params(self, mac: str, actions: list[Action]) -> dict[str, int]:
        wanted = {i["mac"]: i for i in self.expected.get("interfaces", [])}.get(mac, {})
        params: dict[str, int] = {}
        for direction in {_key(a.item.path) for a in actions}:
            values = wanted.get(direction)
            if values is None:
                params[f"{direction}.average"] = 0
            else:
                for k, v in values.items():
                    params[f"{direction}.{k}"] = v or 0
        return params

    def _interfaces(self, dp: DomainPlan, flags: int, scopes: tuple[str, ...]) -> list[Action]:
        """Interface QoS through the API; returns the actions to do by XML where the driver refuses it."""
        by_mac: dict[str, list[Action]] = {}
        for a in _actions_by(dp, "interfaces[", scopes):
            by_mac.setdefault(_bracket(a.item.path), []).append(a)
        fallback: list[Action] = []
        live_flag = flags == self.lv.VIR_DOMAIN_AFFECT_LIVE
        for mac, actions in by_mac.items():
            params = self._bandwidth_params(mac, actions)
            if live_flag:
                self._remember_live(
                    "setInterfaceParameters",
                    mac,
                    partial(self.dom.interfaceParameters, mac, flags),
                    list(params),
                )
            try:
                self.dom.setInterfaceParameters(mac, params, flags)
            except self.lv.libvirtError as exc:
                if self._unsupported(exc) and not live_flag:
                    fallback.extend(actions)
                    continue
                for a in actions:
                    self.result.failed.append(
                        {"path": a.item.path, "call": "setInterfaceParameters", "error": _one_line(exc)}
                    )
                continue
            suffix = " (live)" if live_flag else ""
            self.result.applied.extend(f"{a.item.path} (setInterfaceParameters{suffix})" for a in actions)
        return fallback

    def _define_edited(self, actions: list[Action]) -> None:
        """Settings without a narrower API: edit the current persistent XML and define it."""
        lv = self.lv
        try:
            xml = self.dom.XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE | lv.VIR_DOMAIN_XML_SECURE)
            root = xmledit.parse(xml)
            for a in actions:
                path = a.item.path
                if path == "type":
                    xmledit.set_domain_type(root, str(a.item.expected))
                elif path.startswith("seclabels"):
                    xmledit.set_seclabels(root, self.expected.get("seclabels", []))
                elif path == "cputune.shares":
                    xmledit.remove_cputune(root, "shares")
                elif path.startswith("interfaces["):
                    mac = _bracket(path)
                    direction = _key(path)
                    wanted = {i["mac"]: i for i in self.expected.get("interfaces", [])}.get(mac, {})
                    xmledit.set_bandwidth(root, mac, direction, wanted.get(direction))
            new_xml = xmledit.serialise(root)
        except (xmledit.XmlEditError, lv.libvirtError, ValueError) as exc:
            for a in actions:
                self.result.failed.append({"path": a.item.path, "call": DEFINE_XML, "error": _one_line(exc)})
            return
        conn = self.dom.connect()
        self._call(actions, DEFINE_XML, lambda: conn.defineXML(new_xml))

    # -- live --------------------------------------------------------------------------------------------
    def apply_live(self) -> None:
        if not self.live:
            return
        flags = self.lv.VIR_DOMAIN_AFFECT_LIVE
        dp = self.d.plan
        sched = [a for a in _actions_by(dp, "cputune.", _LIVE) if a.item.expected is not None]
        if sched:
            params = {_SCHED[_key(a.item.path)]: a.item.expected for a in sched}
            self._remember_live(
                "setSchedulerParametersFlags",
                None,
                lambda: self.dom.schedulerParametersFlags(flags),
                list(params),
            )
            self._call(
                sched,
                "setSchedulerParametersFlags (live)",
                lambda: self.dom.setSchedulerParametersFlags(params, flags),
            )
        mem = [a for a in _actions_by(dp, "memtune.soft_limit_kib", _LIVE)]
        if mem:
            value = mem[0].item.expected if mem[0].item.expected is not None else MEMORY_UNLIMITED
            self._remember_live(
                "setMemoryParameters", None, lambda: self.dom.memoryParameters(flags), ["soft_limit"]
            )
            self._call(
                mem,
                "setMemoryParameters (live)",
                lambda: self.dom.setMemoryParameters({"soft_limit": value}, flags),
            )
        weight = [a for a in _actions_by(dp, "blkiotune.weight", _LIVE) if a.item.expected is not None]
        if weight:
            w = weight[0].item.expected
            self._remember_live(
                "setBlkioParameters", None, lambda: self.dom.blkioParameters(flags), ["weight"]
            )
            self._call(
                weight, "setBlkioParameters (live)", lambda: self.dom.setBlkioParameters({"weight": w}, flags)
            )
        assert self.d.live is not None
        self._iotune(dp, flags, _LIVE, vm=self.d.live)
        for a in self._interfaces(dp, flags, _LIVE):  # pragma: no cover - live never falls back
            self.result.failed.append(
                {"path": a.item.path, "call": "setInterfaceParameters", "error": "unsupported"}
            )


def _restore_live(libvirt: Any, dom: Any, entry: dict[str, Any]) -> None:
    flags = libvirt.VIR_DOMAIN_AFFECT_LIVE
    method, device, params = entry["method"], entry.get("device"), entry["params"]
    if method == "setSchedulerParametersFlags":
        dom.setSchedulerParametersFlags(params, flags)
    elif method == "setMemoryParameters":
        dom.setMemoryParameters(params, flags)
    elif method == "setBlkioParameters":
        dom.setBlkioParameters(params, flags)
    elif method == "setBlockIoTune":
        dom.setBlockIoTune(device, params, flags)
    elif method == "setInterfaceParameters":
        dom.setInterfaceParameters(device, params, flags)
    else:
        raise RunError(f"unknown live restore method {method!r}")


def apply_plan(
    planned: Planned, store: RunStore, *, live: bool = True, baseline_text: str | None = None
) -> ApplyResult:
    """Apply every automatic action of ``planned``, recording the undo information first."""
    libvirt = _libvirt()
    run = store.new_run()
    result = ApplyResult(run_id=run.run_id, run_dir=str(run.path))
    manifest: dict[str, Any] = {
        "schema": MANIFEST_SCHEMA,
        "run_id": run.run_id,
        "created_at": store.now(),
        "uri": planned.uri,
        "baseline": {
            "path": planned.plan.baseline,
            "sha256": hashlib.sha256(baseline_text.encode()).hexdigest() if baseline_text else None,
        },
        "live": live,
        "status": "applying",
        "domains": [],
    }
    run.write_json("plan.json", planned.plan.to_json())
    todo = [d for d in planned.domains if d.plan.automatic]
    # Every "before" is on disk before the first change, so an interrupted run can still be undone.
    for d in todo:
        try:
            xml = d.dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
        except libvirt.libvirtError as exc:
            manifest["status"] = "aborted"
            run.write_json("manifest.json", manifest)
            raise RemediationError(
                f"vm:{d.plan.name}: cannot save its definition, nothing was changed: {_one_line(exc)}"
            ) from exc
        before = run.save_xml("before", d.plan.uuid, xml)
        manifest["domains"].append({"name": d.plan.name, "uuid": d.plan.uuid, "before": before})
    run.write_json("manifest.json", manifest)
    for d, entry in zip(todo, manifest["domains"], strict=True):
        dr = DomainResult(name=d.plan.name, uuid=d.plan.uuid)
        if d.live is not None:
            try:
                dr.domain_id = int(d.dom.ID())
            except libvirt.libvirtError:
                dr.domain_id = None
        applier = _Applier(libvirt, d, dr, live=live)
        applier.config()
        applier.apply_live()
        try:
            after_xml = d.dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
            entry["after"] = run.save_xml("after", d.plan.uuid, after_xml)
            after = parse_domain_xml(after_xml, name_hint=d.plan.name)
            applied_paths = {a.item.path for a in d.plan.automatic if a.scope in _CONFIG}
            dr.remaining = [
                i for i in vm_drift(d.settings, after, d.plan.vm_class) if i.path in applied_paths
            ]
        except libvirt.libvirtError as exc:
            dr.failed.append({"path": "", "call": "virDomainGetXMLDesc", "error": _one_line(exc)})
        entry.update(dr.to_json())
        result.domains.append(dr)
        run.write_json("manifest.json", manifest)
    manifest["status"] = "applied" if result.complete else "partial"
    manifest["finished_at"] = store.now()
    run.write_json("manifest.json", manifest)
    return result


# --------------------------------------------------------------------------------------------------------
# Undo


@dataclass
class UndoResult:
    """The outcome of ``--undo``."""

    run_id: str
    restored: list[str] = field(default_factory=list)
    live_restored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class UndoRefused(RemediationError):
    """Undo would overwrite changes made after the run; ``details`` holds the diffs."""

    def __init__(self, message: str, details: str) -> None:
        super().__init__(message)
        self.details = details


def _xml_diff(old: str, new: str, label_old: str, label_new: str, limit: int = 80) -> str:
    lines = list(
        difflib.unified_diff(
            old.splitlines(), new.splitlines(), fromfile=label_old, tofile=label_new, lineterm=""
        )
    )
    if len(lines) > limit:
        lines = [*lines[:limit], f"… {len(lines) - limit} more diff lines"]
    return "\n".join(lines)


def undo_run(store: RunStore, run_id: str, *, force: bool = False, uri: str | None = None) -> UndoResult:
    """Restore every domain of run ``run_id`` to its saved persistent XML, verified canonically.

    Refuses (:class:`UndoRefused`) when a domain changed since the run, unless ``force``."""
    libvirt = _libvirt()
    run = store.open_run(run_id)
    manifest = run.read_json("manifest.json")
    if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA:
        raise RunError(f"run {run_id}: manifest.json is not a {MANIFEST_SCHEMA} record")
    if manifest.get("status") == "undone" and not force:
        raise RemediationError(
            f"run {run_id} was already undone at {manifest.get('undone_at')}; --force repeats it"
        )
    conn = connect(uri or str(manifest["uri"]))
    try:
        return _undo(libvirt, conn, run, manifest, force=force, store=store)
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()


def _undo(
    libvirt: Any, conn: Any, run: Run, manifest: dict[str, Any], *, force: bool, store: RunStore
) -> UndoResult:
    result = UndoResult(run_id=run.run_id)
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
    plans: list[tuple[dict[str, Any], str, Any]] = []
    changed: list[str] = []
    for entry in manifest.get("domains", []):
        uuid, name = str(entry["uuid"]), str(entry["name"])
        before = run.load_xml("before", uuid)
        if before is None:
            raise RunError(f"run {run.run_id}: the saved XML of {name} is missing")
        after = run.load_xml("after", uuid) or before
        try:
            dom = conn.lookupByUUIDString(uuid)
            current = dom.XMLDesc(flags)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise RemediationError(f"vm:{name}: cannot read its definition: {_one_line(exc)}") from exc
            dom, current = None, None
        if current is None:
            changed.append(f"vm:{name}: no longer defined (undo would define it again)")
        elif canonical(current) != canonical(after) and canonical(current) != canonical(before):
            changed.append(
                f"vm:{name} changed since run {run.run_id}:\n" + _xml_diff(after, current, "after run", "now")
            )
        plans.append((entry, before, dom))
    if changed and not force:
        raise UndoRefused(
            f"run {run.run_id}: {len(changed)} domain(s) changed since the run; undo refused "
            "(--force overrides)",
            "\n".join(changed),
        )
    for entry, before, dom in plans:
        name = str(entry["name"])
        try:
            conn.defineXML(before)
            dom = conn.lookupByUUIDString(str(entry["uuid"]))
            now = dom.XMLDesc(flags)
        except libvirt.libvirtError as exc:
            raise RemediationError(f"vm:{name}: undo failed: {_one_line(exc)}") from exc
        if canonical(now) != canonical(before):
            raise RemediationError(
                f"vm:{name}: the restored definition differs from the saved one:\n"
                + _xml_diff(before, now, "saved", "now")
            )
        result.restored.append(name)
        restores = entry.get("live_restore") or []
        if restores:
            try:
                running_id = int(dom.ID()) if dom.isActive() else None
            except libvirt.libvirtError:
                running_id = None
            if running_id is not None and running_id == entry.get("domain_id"):
                for r in restores:
                    try:
                        _restore_live(libvirt, dom, r)
                    except libvirt.libvirtError as exc:
                        result.notes.append(f"vm:{name}: live {r['method']} not restored: {_one_line(exc)}")
                    else:
                        result.live_restored.append(f"{name}: {r['method']}")
            else:
                result.notes.append(
                    f"vm:{name}: live values not restored (the VM was stopped or restarted since the run)"
                )
    manifest["status"] = "undone"
    manifest["undone_at"] = store.now()
    run.write_json("manifest.json", manifest)
    return result
