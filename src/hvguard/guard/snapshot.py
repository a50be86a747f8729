"""The host-facts snapshot a guard decides against: this host's facts without its VMs' details.

``take`` collects the local host (host files and ``qemu:///system``) as ``hvguard collect`` does and
writes a normal evidence bundle, ``STATE_DIR/host-facts.json`` (0600), whose VMs are cut down to what
another VM's decision needs of them: name, uuid, state and memory (11.3.1 counts every VM's memory). A
VM's own settings are never judged from the snapshot — the domain XML libvirt hands the hook is.

``load`` reads any bundle (``guard check --host-facts BUNDLE``) of one libvirt or Linux target the same
way: its VMs cut down likewise, so a decision does not depend on how the bundle was made.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from hvguard.collect.bundle import BundleError, make_bundle, read_bundle, write_bundle
from hvguard.facts import TargetFacts, VmFacts, platform_family

SNAPSHOT_FILE = "host-facts.json"


class SnapshotError(ValueError):
    """A host-facts bundle that cannot serve as a guard's snapshot; the message is one line."""


def strip_vm(vm: VmFacts) -> VmFacts:
    """``vm`` reduced to the facts another VM's decision reads: identity, state and memory size."""
    return VmFacts(
        name=vm.name,
        uuid=vm.uuid,
        domain_type=vm.domain_type,
        active=vm.active,
        persistent=vm.persistent,
        xml_sha256=vm.xml_sha256,
        error=vm.error,
        memory_kib=vm.memory_kib,
        current_memory_kib=vm.current_memory_kib,
        max_memory_kib=vm.max_memory_kib,
    )


def strip(target: TargetFacts) -> TargetFacts:
    """``target`` with every VM cut down by :func:`strip_vm` (host and hypervisor facts kept whole)."""
    hv = target.hypervisor
    if hv is None:
        return target
    return msgspec.structs.replace(
        target, hypervisor=msgspec.structs.replace(hv, vms=[strip_vm(vm) for vm in hv.vms])
    )


def collect(target: str = "local", *, root: Path | None = None) -> TargetFacts:
    """Collect ``target`` (default: this host) and return it as a snapshot (VMs cut down)."""
    from hvguard.collect.targets import collect_target

    facts = collect_target(target, root=root)
    if facts.unreachable is not None:
        raise SnapshotError(f"{target}: unreachable: {facts.unreachable}")
    return strip(facts)


def take(state_dir: Path, *, target: str = "local", root: Path | None = None) -> Path:
    """Collect this host and write ``STATE_DIR/host-facts.json`` (replacing it atomically, 0600).
    ``target``/``root`` let tests snapshot a test-driver host."""
    path = state_dir / SNAPSHOT_FILE
    write_bundle(make_bundle([collect(target, root=root)]), path, overwrite=True)
    return path


def load(path: Path) -> TargetFacts:
    """The snapshot in the bundle at ``path``: exactly one reachable libvirt or Linux target, VMs cut
    down. :class:`SnapshotError` (one line) otherwise; ``BundleError`` reasons are passed on."""
    try:
        bundle = read_bundle(path)
    except BundleError as exc:
        raise SnapshotError(str(exc)) from exc
    if len(bundle.targets) != 1:
        raise SnapshotError(
            f"host facts {path}: holds {len(bundle.targets)} targets; a guard decides against one host"
        )
    target = bundle.targets[0]
    if target.unreachable is not None:
        raise SnapshotError(f"host facts {path}: target {target.id} was unreachable: {target.unreachable}")
    if platform_family(target.platform) != "libvirt":
        raise SnapshotError(
            f"host facts {path}: target {target.id} is a {target.platform} target, not a libvirt host"
        )
    return strip(target)
