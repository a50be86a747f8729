"""Many evidence bundles read as one estate (``hvguard evaluate BUNDLE_OR_DIR...``).

An estate is what the Ansible role (or many ``hvguard collect`` runs) leaves on a controller: one bundle
per host, usually in one directory. Evaluating them together must give the same report as one
multi-target ``scan`` of the same hosts, so this module only decides *which* targets the estate holds:

- a directory stands for its ``*.json`` and ``*.json.gz`` entries (not recursive, hidden files skipped,
  sorted by name); a directory without any is an input error — an empty estate would pass silently;
- a target collected as ``local`` (``hvguard collect local`` on the host itself, as the Ansible role runs
  it) is named after its bundle file when the estate has more than one bundle or was given as a
  directory: ``hv01.json`` → ``hv01`` (the Ansible inventory name), since every such bundle says ``local``;
- a target named by two bundles is refused with both bundle names (one line, exit 2): the two
  collections may disagree and neither silently replaces the other — remove the stale bundle;
- the limits of one bundle (:class:`~hvguard.collect.bundle.BundleLimits`: targets, VMs) hold for the
  whole estate too.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from hvguard.collect.bundle import MAX_TARGETS_ENV, MAX_VMS_ENV, BundleError, BundleLimits
from hvguard.collect.inventory import InventoryHost, groups_for
from hvguard.collect.targets import LOCAL
from hvguard.facts import Bundle, TargetFacts

#: The file names a directory's bundles have (what ``hvguard collect --output`` and the Ansible role write).
BUNDLE_SUFFIXES = (".json.gz", ".json")


@dataclass(frozen=True)
class EstatePaths:
    """The bundle files an ``evaluate`` reads, and whether they make an estate of many."""

    paths: tuple[Path, ...]
    """Every bundle file, in the order given (a directory's files sorted by name)."""
    estate: bool
    """True when more than one bundle is read or a directory was given: ``local`` targets are then
    named after their bundle file."""


def _listed(folder: Path) -> list[Path]:
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        raise BundleError(f"cannot list bundle directory {folder}: {exc.strerror or exc}") from None
    # Subdirectories are left alone (not recursive); every other matching entry is read, so a FIFO or
    # device named *.json is refused by the bundle reader instead of being skipped silently.
    return [
        p
        for p in entries
        if not p.name.startswith(".") and p.name.endswith(BUNDLE_SUFFIXES) and not p.is_dir()
    ]


def bundle_paths(args: Sequence[Path]) -> EstatePaths:
    """The bundle files named by ``args`` (files, or directories of bundles); :class:`BundleError` for a
    directory holding none."""
    out: list[Path] = []
    folder_given = False
    for arg in args:
        if arg.is_dir():
            folder_given = True
            found = _listed(arg)
            if not found:
                raise BundleError(
                    f"{arg}: a directory without bundles (*.json, *.json.gz); nothing to evaluate"
                )
            out.extend(found)
        else:
            out.append(arg)
    seen: dict[Path, Path] = {}
    for path in out:
        key = Path(os.path.realpath(path))
        if key in seen:
            raise BundleError(f"{path}: the same bundle given twice (also as {seen[key]})")
        seen[key] = path
    return EstatePaths(paths=tuple(out), estate=folder_given or len(out) > 1)


def bundle_stem(path: Path) -> str:
    """The host name a bundle file stands for: its name without ``.json``/``.json.gz``."""
    for suffix in BUNDLE_SUFFIXES:
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            return path.name[: -len(suffix)]
    return path.name


def estate_targets(
    bundles: Iterable[tuple[Path, Bundle]], *, estate: bool, limits: BundleLimits | None = None
) -> list[tuple[Path, list[TargetFacts]]]:
    """Each bundle's targets as the estate names them (``local`` → the bundle's stem when ``estate``),
    checked for a target named twice across bundles and for the estate-wide limits."""
    limits = limits or BundleLimits.from_env()
    seen: dict[str, Path] = {}
    out: list[tuple[Path, list[TargetFacts]]] = []
    vms = 0
    for path, bundle in bundles:
        named: list[TargetFacts] = []
        for t in bundle.targets:
            if estate and t.id == LOCAL:
                t = msgspec.structs.replace(t, id=bundle_stem(path))
            first = seen.get(t.id)
            if first is not None:
                raise BundleError(
                    f"target {t.id!r} is in two bundles ({first} and {path}); an estate names each target "
                    "once: remove the stale bundle"
                )
            seen[t.id] = path
            vms += len(t.hypervisor.vms) if t.hypervisor else 0
            vms += len(t.vsphere.vms) if t.vsphere else 0
            named.append(t)
        if len(seen) > limits.max_targets:
            raise BundleError(
                f"more than {limits.max_targets} targets over all bundles (limit: {MAX_TARGETS_ENV})"
            )
        if vms > limits.max_vms:
            raise BundleError(f"more than {limits.max_vms} VMs over all bundles (limit: {MAX_VMS_ENV})")
        out.append((path, named))
    return out


def attach_groups(
    targets: Sequence[TargetFacts], bundle_of: Mapping[str, Path], hosts: Sequence[InventoryHost]
) -> tuple[list[TargetFacts], list[str]]:
    """``targets`` with the groups of the inventory host each matches (``evaluate --inventory``:
    :func:`~hvguard.collect.inventory.groups_for` — the host named like the bundle file when the bundle
    holds that one target, else the collected host name, else the target), and the ids of the targets
    left without a group (no inventory host matches, or it is in no group); those keep the groups their
    bundle recorded."""
    per_bundle = Counter(bundle_of.values())
    out: list[TargetFacts] = []
    ungrouped: list[str] = []
    for t in targets:
        path = bundle_of.get(t.id)
        # A bundle of several targets is not one host: its file name names none of them. groups_for
        # matches the stem without `.json`; give it the same stem for `.json.gz`.
        named = None
        if path is not None and per_bundle[path] == 1:
            named = path.with_name(f"{bundle_stem(path)}.json")
        hostname = (t.host.hostname if t.host else None) or (t.hypervisor.hostname if t.hypervisor else None)
        groups = groups_for(t.id, hostname, named, hosts)
        if groups:
            t = msgspec.structs.replace(t, groups=tuple(sorted(groups)))
        elif not t.groups:
            ungrouped.append(t.id)
        out.append(t)
    return out, ungrouped
