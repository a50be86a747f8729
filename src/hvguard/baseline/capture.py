"""Capture a gold configuration from a collected target and write it as readable YAML.

Capture writes **one class per VM, matched by its exact name**, holding every governed setting (unset
values as ``null``). Why not group identical VMs automatically: VMs differ in MAC addresses, disk
targets and names, so automatic grouping would either rarely fire or have to guess which differences
are intended; a per-VM capture is complete, exact and easy to read, and generalising it is a visible,
reviewable edit (replace ``match: {name: web1}`` by ``match: {name: "web-*"}`` or a metadata tag, key
disks/interfaces by ``"*"``, delete settings that should not be governed).
"""

from __future__ import annotations

import fnmatch
from typing import Any

import yaml

from hvguard import __version__
from hvguard.baseline.matching import exact_pattern
from hvguard.baseline.schema import SCHEMA
from hvguard.baseline.settings import host_settings, vm_settings
from hvguard.facts import TargetFacts

HEADER = """\
# hvguard gold configuration (SS-009 11.4.7), captured from {target} at {when} by hvguard {version}.
#
# How it is read (hvguard baseline check / hvguard remediate):
# - host.qemu_conf / host.libvirtd_conf: the value written in the file; null = the key is absent
#   (libvirt's built-in default applies). host.facts: configuration facts of the host.
# - vm_classes are tried in order; the first whose `match` holds governs a VM (name: shell pattern;
#   metadata: hvguard policy tags in the domain's <metadata>). VMs no class matches are not governed.
# - In a settings group a key that is absent is not governed, null means "must be unset", any other
#   value must be equal. disks are keyed by target and interfaces by MAC; "*" covers every disk
#   (device disk) / interface not listed. iotune and blkiotune.devices are compared as a whole.
# - devices are compared but never changed automatically. <min_guarantee> is not valid for QEMU and
#   is never part of a baseline.
# - vSphere: vsphere_hosts are tried in order like vm_classes (match: shell pattern on the host name)
#   and list ESXi advanced options, key: value. A VM class's `resources` group holds the platform-neutral
#   settings (bytes, MHz, IOPS, bytes/s; null = unset/unlimited); disks by label, nics by MAC, "*" all.
"""


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Block style everywhere; no anchors/aliases (a reader must see every value where it applies)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def capture(target: TargetFacts, *, match: str | None = None, host: bool = True) -> dict[str, Any]:
    """The baseline document for ``target``: host settings (when collected and ``host``) and one class
    per VM whose name matches the shell pattern ``match`` (all VMs when None). VMs whose XML could not
    be read are left out (the caller reports them)."""
    doc: dict[str, Any] = {"schema": SCHEMA, "description": f"captured from {target.id}"}
    if target.vsphere is not None:
        from hvguard.baseline.vsphere import capture_vsphere

        host_classes, vm_classes = capture_vsphere(target, match=match, hosts=host)
        if host_classes:
            doc["vsphere_hosts"] = host_classes
        doc["vm_classes"] = vm_classes
        return doc
    if host and target.host is not None:
        doc["host"] = host_settings(target.host)
    classes: list[dict[str, Any]] = []
    hv = target.hypervisor
    for vm in hv.vms if hv is not None else []:
        if vm.error is not None:
            continue
        if match is not None and not fnmatch.fnmatchcase(vm.name, match):
            continue
        classes.append(
            {"name": vm.name, "match": {"name": exact_pattern(vm.name)}, "settings": vm_settings(vm)}
        )
    doc["vm_classes"] = classes
    return doc


def render(doc: dict[str, Any], *, target: str, when: str) -> str:
    """The baseline document as commented YAML."""
    body = yaml.dump(
        doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100
    )
    return HEADER.format(target=target, when=when, version=__version__) + body
