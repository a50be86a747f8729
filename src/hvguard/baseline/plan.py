"""The remediation plan: for every drifted value, how hvguard would put it back (and whether it can).

Per setting, the mechanism (decided once, here) and whether a running VM is changed too:

- ``cputune.*``: ``setSchedulerParametersFlags`` (0 unsets a period or quota; live: yes for values,
  unsetting is config only); unsetting ``shares``: ``defineXML`` (the API would store 0).
- ``memtune.soft_limit_kib``: ``setMemoryParameters`` (live: yes). ``hard_limit_kib`` and
  ``swap_hard_limit_kib``: the same API, config only: lowering a running VM's hard limit can get it killed.
- ``blkiotune.weight``: ``setBlkioParameters`` (live: yes); ``blkiotune.devices``: the same, config only.
- ``disks[T].iotune``: ``setBlockIoTune`` (live: yes).
- ``interfaces[MAC].inbound|outbound``: ``setInterfaceParameters`` (live: yes); ``defineXML`` of the edited
  XML where the driver refuses the API (libvirt has no bandwidth API for user-mode NICs).
- ``vcpu.*``: ``setVcpusFlags`` (``VIR_DOMAIN_VCPU_MAXIMUM`` for the maximum), config only (no hot-plug).
- ``memory.*``: ``setMemoryFlags`` (``VIR_DOMAIN_MEM_MAXIMUM`` for the maximum), config only.
- ``type`` and ``seclabels``: ``defineXML`` of the edited persistent XML; they apply at the next cold boot.
- ``devices.*``, a missing disk, interface or domain: manual — adding or removing devices changes what
  the guest sees, so hvguard never does it on its own.
- host ``qemu_conf`` / ``libvirtd_conf``: a task of the Ansible playbook (``--emit-ansible``); host
  ``facts``: manual.

Every config change uses ``VIR_DOMAIN_AFFECT_CONFIG`` (the persistent definition); live changes are
separate calls with ``VIR_DOMAIN_AFFECT_LIVE`` (libvirt-python refuses both flags in one call).
``<min_guarantee>`` is never set (QEMU refuses it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hvguard.baseline.drift import HOST, DriftItem

MANUAL = "manual"
ANSIBLE = "ansible"
DEFINE_XML = "defineXML"
RESTART = "restart"

_ELEMENT = re.compile(r"(disks|interfaces)\[[^\]]+\]")


@dataclass(frozen=True)
class Mechanism:
    """How one drifted value is put back."""

    method: str
    live_safe: bool
    note: str = ""


def mechanism(path: str, expected: Any) -> Mechanism:
    """The mechanism for a drifted VM value at ``path`` whose baseline value is ``expected``."""
    group, _, rest = path.partition(".")
    key = rest.split(".", 1)[0]
    if path == "domain":
        return Mechanism(MANUAL, False, "the VM is not defined on this target: define it, then re-run")
    if path == "type":
        return Mechanism(DEFINE_XML, False, "the domain type takes effect at the next cold boot")
    if group == "vcpu":
        return Mechanism("setVcpusFlags", False, "persistent definition only (no CPU hot-plug)")
    if group == "memory":
        return Mechanism("setMemoryFlags", False, "persistent definition only (no ballooning)")
    if group == "cputune":
        if expected is None and key == "shares":
            return Mechanism(DEFINE_XML, False, "the scheduler API cannot unset shares")
        if expected is None:
            return Mechanism("setSchedulerParametersFlags", False, "unset in the definition; next cold boot")
        return Mechanism("setSchedulerParametersFlags", True)
    if group == "memtune":
        if key == "soft_limit_kib":
            return Mechanism("setMemoryParameters", True)
        return Mechanism(
            "setMemoryParameters",
            False,
            "persistent definition only: lowering a running VM's hard limit can get it killed",
        )
    if group == "blkiotune":
        if key == "weight":
            return Mechanism("setBlkioParameters", expected is not None)
        return Mechanism("setBlkioParameters", False, "persistent definition only")
    if _ELEMENT.fullmatch(path):
        what = "disk" if path.startswith("disks") else "interface"
        return Mechanism(MANUAL, False, f"the {what} does not exist on this VM: add it by hand")
    if path.startswith("disks["):
        return Mechanism("setBlockIoTune", True)
    if path.startswith("interfaces["):
        return Mechanism("setInterfaceParameters", True)
    if path.startswith("seclabels"):
        return Mechanism(DEFINE_XML, False, "security labels take effect at the next cold boot")
    if group == "devices" or path.startswith("devices"):
        return Mechanism(
            MANUAL, False, "devices are never changed automatically: edit the definition (virsh edit)"
        )
    return Mechanism(MANUAL, False, "no automatic remediation for this setting")


@dataclass(frozen=True)
class Action:
    """One planned change: the drifted value, the mechanism and where it applies.

    ``scope``: ``config`` (persistent definition), ``config+live``, ``live`` (the definition already
    matches), ``none`` (manual, or pending a restart), ``host file`` (Ansible)."""

    item: DriftItem
    method: str
    scope: str
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """Plain data for the plan file and ``--format json``."""
        return {**self.item.to_json(), "method": self.method, "scope": self.scope, "note": self.note}

    @property
    def automatic(self) -> bool:
        """True when hvguard performs it with ``--apply``."""
        return self.method not in (MANUAL, ANSIBLE, RESTART)


@dataclass
class DomainPlan:
    """What the plan does to one governed domain."""

    name: str
    uuid: str
    vm_class: str
    active: bool
    actions: list[Action] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "name": self.name,
            "uuid": self.uuid,
            "class": self.vm_class,
            "active": self.active,
            "actions": [a.to_json() for a in self.actions],
        }

    @property
    def automatic(self) -> list[Action]:
        """The actions ``--apply`` performs."""
        return [a for a in self.actions if a.automatic]


@dataclass
class Plan:
    """A remediation plan for one target."""

    target: str
    baseline: str
    domains: list[DomainPlan] = field(default_factory=list)
    host: list[Action] = field(default_factory=list)
    missing: list[Action] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def all_actions(self) -> list[Action]:
        """Every action, host first."""
        return [*self.host, *(a for d in self.domains for a in d.actions), *self.missing]

    def to_json(self) -> dict[str, Any]:
        """The ``hvguard.remediation-plan/1`` document."""
        actions = self.all_actions()
        return {
            "schema": "hvguard.remediation-plan/1",
            "target": self.target,
            "baseline": self.baseline,
            "host": [a.to_json() for a in self.host],
            "domains": [d.to_json() for d in self.domains],
            "missing": [a.to_json() for a in self.missing],
            "errors": list(self.errors),
            "warnings": list(self.warnings),
            "summary": {
                "actions": len(actions),
                "automatic": sum(1 for a in actions if a.automatic),
                "ansible": sum(1 for a in actions if a.method == ANSIBLE),
                "manual": sum(1 for a in actions if a.method in (MANUAL, RESTART)),
                "domains": len(self.domains),
            },
        }


def host_actions(items: list[DriftItem]) -> list[Action]:
    """Host drift: config-file keys go to the Ansible playbook, facts are manual."""
    out: list[Action] = []
    for item in items:
        if item.subject != HOST:
            continue
        if item.path.startswith(("qemu_conf.", "libvirtd_conf.")):
            out.append(Action(item, ANSIBLE, "host file", "emitted as a playbook task (--emit-ansible FILE)"))
        else:
            out.append(Action(item, MANUAL, "none", "a host fact: change the host's configuration by hand"))
    return out


def domain_actions(config: list[DriftItem], live: list[DriftItem] | None) -> list[Action]:
    """Actions for one domain from its drift against the persistent definition (``config``) and, for a
    running domain, against the live one (``live``)."""
    live_paths = {i.path: i for i in live or []}
    out: list[Action] = []
    for item in config:
        mech = mechanism(item.path, item.expected)
        if not mech.method or mech.method == MANUAL:
            out.append(Action(item, MANUAL, "none", mech.note))
            continue
        scope = "config+live" if (mech.live_safe and item.path in live_paths) else "config"
        note = mech.note
        if live is not None and item.path in live_paths and not mech.live_safe:
            note = (note + "; " if note else "") + "the running VM keeps its value until a cold boot"
        out.append(Action(item, mech.method, scope, note))
    config_paths = {i.path for i in config}
    for path, item in live_paths.items():
        if path in config_paths:
            continue
        mech = mechanism(path, item.expected)
        if mech.live_safe:
            out.append(Action(item, mech.method, "live", "the persistent definition already matches"))
        else:
            out.append(
                Action(item, RESTART, "none", "the persistent definition already matches; cold-boot the VM")
            )
    return out
