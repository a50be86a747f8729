"""The settings a baseline governs, read from the facts model as plain data in the baseline's own shape.

``vm_settings`` and ``host_settings`` give the complete view (what ``capture`` writes); drift compares a
baseline entry against the same view restricted to the keys the entry governs. Both sides go through
these functions, so a value is never compared in two different spellings.
"""

from __future__ import annotations

from typing import Any

import msgspec

from hvguard.baseline.schema import HOST_FACT_PATHS
from hvguard.facts import Bandwidth, ConfFile, HostFacts, Interface, SecLabel, VmFacts

#: qemu.conf keys a captured baseline records (the ones hvguard's checks read, plus the console and
#: TLS settings that decide remote exposure). A hand-written baseline may govern any other key.
QEMU_CONF_KEYS: tuple[str, ...] = (
    "security_driver",
    "security_default_confined",
    "security_require_confined",
    "user",
    "group",
    "dynamic_ownership",
    "remember_owner",
    "seccomp_sandbox",
    "namespaces",
    "cgroup_controllers",
    "cgroup_device_acl",
    "clear_emulator_capabilities",
    "vnc_listen",
    "vnc_tls",
    "vnc_tls_x509_verify",
    "vnc_sasl",
    "spice_listen",
    "spice_tls",
    "spice_sasl",
    "default_tls_x509_verify",
    "chardev_tls",
    "nbd_tls",
    "migrate_tls_force",
)

#: libvirtd.conf keys a captured baseline records (remote access, socket permissions, ACL, audit, logs).
LIBVIRTD_CONF_KEYS: tuple[str, ...] = (
    "listen_tls",
    "listen_tcp",
    "listen_addr",
    "auth_tcp",
    "auth_tls",
    "auth_unix_ro",
    "auth_unix_rw",
    "unix_sock_group",
    "unix_sock_ro_perms",
    "unix_sock_rw_perms",
    "unix_sock_admin_perms",
    "access_drivers",
    "tls_no_verify_certificate",
    "tls_allowed_dn_list",
    "sasl_allowed_username_list",
    "tls_priority",
    "audit_level",
    "audit_logging",
    "log_outputs",
    "log_filters",
)

#: Standard paths of the two files on a host (the playbook edits these, never an offline root's copy).
CONF_PATHS: dict[str, str] = {
    "qemu_conf": "/etc/libvirt/qemu.conf",
    "libvirtd_conf": "/etc/libvirt/libvirtd.conf",
}
CONF_KEYS: dict[str, tuple[str, ...]] = {"qemu_conf": QEMU_CONF_KEYS, "libvirtd_conf": LIBVIRTD_CONF_KEYS}


# --------------------------------------------------------------------------------------------------------
# VMs


def _bandwidth(b: Bandwidth | None) -> dict[str, Any] | None:
    if b is None:
        return None
    return {"average": b.average, "peak": b.peak, "burst": b.burst, "floor": b.floor}


def _seclabel(s: SecLabel) -> dict[str, Any]:
    dynamic = s.type == "dynamic"
    # A dynamic label is generated at each start: comparing it would report drift on every boot.
    return {
        "model": s.model,
        "type": s.type,
        "relabel": s.relabel,
        "label": None if dynamic else s.label,
        "imagelabel": None if dynamic else s.imagelabel,
    }


def is_default_seclabel(label: dict[str, Any]) -> bool:
    """True for ``type='dynamic'`` with relabelling: what libvirt applies when no ``<seclabel>`` is given
    (a running domain's XML shows it, its definition does not), so it is never listed or compared."""
    return (
        label.get("type") == "dynamic"
        and label.get("relabel") in (True, None)
        and label.get("label") is None
        and label.get("imagelabel") is None
    )


def interface_key(nic: Interface, index: int) -> str:
    """How a baseline names an interface: its MAC (libvirt assigns one to every NIC), else ``#N``."""
    return (nic.mac or "").lower() or f"#{index + 1}"


def vm_settings(vm: VmFacts) -> dict[str, Any]:
    """Every governed setting of ``vm`` in baseline shape (unset values are None)."""
    ct, mt, dev = vm.cputune, vm.memtune, vm.devices
    return {
        "type": vm.domain_type,
        "vcpu": {"maximum": vm.vcpu.maximum, "current": vm.vcpu.current or vm.vcpu.maximum},
        "memory": {
            "maximum_kib": vm.memory_kib,
            "current_kib": vm.current_memory_kib if vm.current_memory_kib is not None else vm.memory_kib,
        },
        "cputune": {
            "shares": ct.shares,
            "period": ct.period,
            "quota": ct.quota,
            "global_period": ct.global_period,
            "global_quota": ct.global_quota,
            "emulator_period": ct.emulator_period,
            "emulator_quota": ct.emulator_quota,
        },
        "memtune": {
            "hard_limit_kib": mt.hard_limit_kib,
            "soft_limit_kib": mt.soft_limit_kib,
            "swap_hard_limit_kib": mt.swap_hard_limit_kib,
        },
        "blkiotune": {
            "weight": vm.blkiotune.weight,
            "devices": {
                d.path: {
                    "weight": d.weight,
                    "read_bytes_sec": d.read_bytes_sec,
                    "write_bytes_sec": d.write_bytes_sec,
                    "read_iops_sec": d.read_iops_sec,
                    "write_iops_sec": d.write_iops_sec,
                }
                for d in vm.blkiotune.devices
            },
        },
        "disks": {
            d.target: {"iotune": {k: v for k, v in d.iotune.items() if v}} for d in vm.disks if d.target
        },
        "interfaces": {
            interface_key(n, i): {"inbound": _bandwidth(n.inbound), "outbound": _bandwidth(n.outbound)}
            for i, n in enumerate(vm.interfaces)
        },
        "seclabels": [d for d in (_seclabel(s) for s in vm.seclabels) if not is_default_seclabel(d)],
        "devices": {
            "usb_controllers": dev.usb_controllers,
            "usb_devices": dev.usb_devices,
            "redirdevs": dev.redirdevs,
            "serials": dev.serials,
            "parallels": dev.parallels,
            "channels": dev.channels,
            "consoles": dev.consoles,
            "floppies": dev.floppies,
            "cdroms": dev.cdroms,
            "sounds": dev.sounds,
            "smartcards": dev.smartcards,
            "watchdogs": dev.watchdogs,
            # The port is assigned at start (autoport), so it is not configuration.
            "graphics": [
                {"type": g.type, "listen": g.listen, "password_set": g.password_set, "tls": g.tls}
                for g in dev.graphics
            ],
            "videos": dev.videos,
            "rngs": dev.rngs,
            "memballoon": dev.memballoon,
            "tpms": [msgspec.to_builtins(t) for t in vm.tpms],
            "hostdevs": [msgspec.to_builtins(h) for h in vm.hostdevs],
        },
    }


def disk_devices(vm: VmFacts) -> dict[str, str]:
    """Disk target → device kind (``disk``, ``cdrom`` …): ``"*"`` in a baseline covers ``disk`` only."""
    return {d.target: d.device for d in vm.disks if d.target}


# --------------------------------------------------------------------------------------------------------
# Host


def conf_values(cf: ConfFile, keys: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The values written in a libvirt config file for ``keys`` (None: absent, libvirt's default)."""
    out: dict[str, Any] = {}
    for key in keys:
        cv = cf.values.get(key)
        out[key] = None if cv is None else cv.value
    return out


def host_fact(host: HostFacts, dotted: str) -> Any:
    """The value of a host fact by dotted path (``kernel.lockdown``), as plain data."""
    value: Any = host
    for part in dotted.split("."):
        value = getattr(value, part)
    return msgspec.to_builtins(value)


def host_settings(host: HostFacts) -> dict[str, Any]:
    """The host part of a captured baseline: recorded config keys and configuration facts."""
    return {
        "qemu_conf": conf_values(host.qemu_conf, QEMU_CONF_KEYS),
        "libvirtd_conf": conf_values(host.libvirtd_conf, LIBVIRTD_CONF_KEYS),
        "facts": {path: host_fact(host, path) for path in HOST_FACT_PATHS},
    }
