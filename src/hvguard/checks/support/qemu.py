"""QEMU's confinement as qemu.conf, running processes and libvirt's capabilities show it.

Shared by 11.2.1 (QEMU confined), 11.2.6 (device emulation unprivileged) and 11.2.7 (per-VM device
ACL): the account QEMU runs as, the active MAC security drivers, and ONE judgement of each qemu.conf
confinement key (:func:`judge_qemu_conf`) that each measure words in its own terms (:data:`UNMET`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from hvguard.checks.base import CheckContext
from hvguard.checks.support.libvirt_conf import (
    DEFAULT_CGROUP_DEVICE_ACL,
    Conf,
    Setting,
    fix_line,
    restart_note,
)
from hvguard.checks.support.subjects import capped
from hvguard.facts import HostFacts, SecLabel

#: Security drivers that give each VM its own mandatory-access-control label (sVirt).
MAC_MODELS = frozenset({"selinux", "apparmor"})
#: Ways qemu.conf names the superuser ("+0" is uid 0; a bare "0" is uid 0 on any sane system).
ROOT_IDS = frozenset({"root", "+0", "0"})


def is_root_id(value: object) -> bool:
    """True when a qemu.conf user/group value (or DAC label part) names uid/gid 0."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value == 0
    return str(value).strip() in ROOT_IDS


def dac_label_is_root(label: SecLabel) -> bool:
    """True for a static DAC ``<seclabel>`` whose label runs QEMU as uid 0 or gid 0 (``+0:+0``, ``root``)."""
    if label.model != "dac" or label.label is None:
        return False
    parts = label.label.split(":")
    return any(is_root_id(p) for p in parts)


class QemuUserState(msgspec.Struct, frozen=True):
    """Whether QEMU runs as root: ``root`` is None when neither processes nor qemu.conf can tell."""

    root: bool | None
    basis: str
    evidence: dict[str, Any]


def qemu_user_state(host: HostFacts, qconf: Conf) -> QemuUserState:
    """The account QEMU runs as: running processes are the runtime truth; else qemu.conf ``user``/``group``.

    The compile-time default applies when ``user`` is absent and no QEMU runs; the facts cannot show it.
    """
    user = qconf.get("user")
    group = qconf.get("group")
    group_root = group.explicit and is_root_id(group.value)
    conf_ev: dict[str, Any] = {"qemu.conf user": user.evidence(), "qemu.conf group": group.evidence()}
    procs = host.qemu_processes
    if procs:
        root_procs = [p for p in procs if p.uid == 0]
        listed = [{"pid": p.pid, "user": p.user, "uid": p.uid, "vm": p.vm_name} for p in capped(procs)]
        ev = {"qemu_processes": listed, "qemu_process_count": len(procs), **conf_ev}
        return QemuUserState(bool(root_procs) or group_root, "running QEMU processes", ev)
    conf_ev["qemu_processes"] = "none running" if procs is not None else "not collected"
    if user.explicit:
        return QemuUserState(is_root_id(user.value) or group_root, "qemu.conf user/group", conf_ev)
    if group_root:
        return QemuUserState(True, "qemu.conf group", conf_ev)
    return QemuUserState(None, "unknown (build-time default user)", conf_ev)


class MacState(msgspec.Struct, frozen=True):
    """Mandatory access control for QEMU: active MAC models (None: unknown) and how that was learnt."""

    active: list[str] | None
    disabled: bool
    basis: str
    evidence: dict[str, Any]


def mac_state(ctx: CheckContext, qconf: Conf) -> MacState:
    """Which MAC security drivers (SELinux/AppArmor sVirt) confine QEMU.

    libvirt's capabilities (``<secmodel>``) are the runtime truth; without them an explicit qemu.conf
    ``security_driver`` is trusted (libvirt refuses to start the QEMU driver if a named driver is missing).
    """
    drv = qconf.get("security_driver")
    names = drv.as_list() if drv.explicit else None
    ev: dict[str, Any] = {"security_driver": drv.evidence()}
    if names == ["none"]:
        return MacState([], True, "qemu.conf security_driver", ev)
    hv = ctx.hypervisor
    caps = hv.capabilities if hv is not None else None
    if caps is not None:
        models = [m.model for m in caps.secmodels]
        ev["capabilities.secmodels"] = models
        active = [m for m in models if m in MAC_MODELS]
        return MacState(active, False, "libvirt capabilities <secmodel>", ev)
    ev["capabilities.secmodels"] = "not collected"
    if names is not None:
        return MacState([n for n in names if n in MAC_MODELS], False, "qemu.conf security_driver", ev)
    return MacState(None, False, "unknown", ev)


MAC_FIX = (
    "Enable sVirt mandatory access control so each VM gets its own label:\n"
    "  Debian/Ubuntu: apt-get install apparmor apparmor-utils; ensure the kernel boots with "
    'apparmor=1 security=apparmor; then in /etc/libvirt/qemu.conf: security_driver = "apparmor"\n'
    "  RHEL/Fedora: set SELINUX=enforcing in /etc/selinux/config and reboot; then in /etc/libvirt/qemu.conf: "
    'security_driver = "selinux"\n'
    "Check: virsh capabilities | grep -A1 '<secmodel>' lists apparmor or selinux. " + restart_note()
)


# --------------------------------------------------------------------------------------------------------
# 11.2.1 Boot option to disallow non-certified drivers (must); confined QEMU (should); bypass (must)

#: What each unmet qemu.conf judgement means, in the words of each measure that judges it. Keys:
#: ``mac_disabled`` / ``mac_inactive`` (security_driver and the active MAC drivers), else the qemu.conf key.
UNMET: dict[str, dict[str, str]] = {
    "11.2.1": {
        "mac_disabled": 'security_driver = "none" turns sVirt confinement off',
        "mac_inactive": "no MAC security driver (SELinux/AppArmor) is active: QEMU is confined by DAC only",
        "security_default_confined": "security_default_confined = 0 leaves guests unconfined by default",
        "security_require_confined": "security_require_confined = 0 lets a VM be defined unconfined",
        "seccomp_sandbox": "seccomp_sandbox = 0 disables QEMU's syscall filter",
        "namespaces": 'namespaces lacks "mount": QEMU sees the host\'s whole /dev',
    },
    "11.2.6": {
        "seccomp_sandbox": "seccomp_sandbox = 0: QEMU may issue any syscall",
    },
    "11.2.7": {
        "mac_disabled": 'security_driver = "none": no VM gets an sVirt label',
        "mac_inactive": (
            "only the DAC driver is active: every VM's QEMU runs as the same account, so each can open "
            "the others' disk images and devices"
        ),
        "security_default_confined": "security_default_confined = 0: VMs without a <seclabel> run unconfined",
        "dynamic_ownership": "dynamic_ownership = 0: libvirt does not hand image files to the VM's own label",
        "namespaces": 'namespaces lacks "mount": each QEMU sees the host\'s whole /dev, not only its devices',
        "cgroup_device_acl": "cgroup_device_acl opens extra host devices to every VM: {extra}",
        "cgroup_controllers": 'cgroup_controllers omits "devices": the per-VM device ACL is not enforced',
    },
}


def acl_extra(acl: Setting) -> list[str]:
    """Devices an explicit ``cgroup_device_acl`` adds to libvirt's default list."""
    return sorted(set(acl.as_list()) - DEFAULT_CGROUP_DEVICE_ACL) if acl.explicit else []


#: Integer keys that must not be 0.
_MUST_BE_ON = frozenset(
    {"security_default_confined", "security_require_confined", "seccomp_sandbox", "dynamic_ownership"}
)


def _gap(s: Setting, unmet: bool, value: Any) -> tuple[str, str] | None:
    return (s.key, fix_line(s, value)) if unmet else None


def _judge_key(qconf: Conf, mac: MacState | None, key: str) -> tuple[str, str] | None:
    """(judgement key, fix) when ``key`` is unmet, else None. Reads the setting only when judged, so a
    value libvirt would reject is reported for the first key in the caller's order."""
    if key == "mac":
        if mac is None:
            raise ValueError("judging the MAC security drivers needs their state")
        if mac.disabled:
            return "mac_disabled", MAC_FIX
        if mac.active is not None and not mac.active:
            return "mac_inactive", MAC_FIX
        return None
    s = qconf.get(key)
    if key in _MUST_BE_ON:
        return _gap(s, s.as_int() == 0, 1)
    if key == "namespaces":
        return _gap(s, "mount" not in s.as_list(), ["mount"])
    if key == "cgroup_device_acl":
        extra = acl_extra(s)
        fix = (
            f"{s.where()}: remove {', '.join(extra)} from cgroup_device_acl (pass devices to the VMs "
            "that need them with <hostdev>/<disk> instead), or comment the key out"
        )
        return (key, fix) if extra else None
    if key == "cgroup_controllers":
        fix = f'{s.where()}: add "devices" to cgroup_controllers (or comment the key out)'
        return (key, fix) if s.explicit and "devices" not in s.as_list() else None
    raise KeyError(key)


def judge_qemu_conf(
    measure: str, qconf: Conf, keys: Sequence[str], mac: MacState | None = None
) -> tuple[list[str], list[str]]:
    """The unmet ``keys`` (in this order) as ``measure`` words them, and their fixes.

    ``keys`` are qemu.conf keys, or ``"mac"`` for the security driver and the active MAC drivers."""
    words = UNMET[measure]
    unmet: list[str] = []
    fixes: list[str] = []
    for key in keys:
        gap = _judge_key(qconf, mac, key)
        if gap is None:
            continue
        name, fix = gap
        extra = acl_extra(qconf.get(key)) if key == "cgroup_device_acl" else []
        unmet.append(words[name].format(extra=", ".join(extra)))
        fixes.append(fix)
    return unmet, fixes
