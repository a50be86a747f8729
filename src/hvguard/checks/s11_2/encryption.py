"""Checks for SS-009 11.2.9.

11.2.9 VM image files on encrypted devices

Checks: ``vm_disk_encryption``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hvguard.catalog.checks import static_remediation
from hvguard.checks.base import CheckContext, check, vm_subject
from hvguard.checks.s11_2.common import (
    disk_name,
    storage_or_none,
)
from hvguard.checks.support.ops import (
    REMOTE_FS,
    mount_for,
)
from hvguard.checks.support.subjects import vms_or_not_applicable
from hvguard.facts import (
    Disk,
    StorageFacts,
    VmFacts,
)
from hvguard.findings import Finding


def _disk_host_path(d: Disk, storage: StorageFacts) -> str | None:
    """The host path holding a disk's data: its file, or its pool's target directory."""
    if d.source_path and d.source_path.startswith("/"):
        return d.source_path
    if d.source_pool:
        pool = next((p for p in storage.pools if p.name == d.source_pool), None)
        if pool is not None and pool.target_path:
            return pool.target_path
    return None


def _encrypted_backing(d: Disk, storage: StorageFacts) -> tuple[bool | None, str] | None:
    """(encrypted?, how) for the file system holding a local disk; None when it cannot be placed."""
    path = _disk_host_path(d, storage)
    if path is None or storage.mounts is None:
        return None
    m = mount_for(path, storage.mounts)
    if m is None:
        return None
    where = f"{path} on {m.mountpoint} ({m.fstype} {m.source})"
    if m.fstype in REMOTE_FS:
        return None  # judged as an image server (network disk rules), not as local encryption
    if m.encrypted:
        return True, f"{where}: dm-crypt — {' → '.join(m.crypt_chain)}"
    if m.encrypted is None:
        return None, where
    return False, f"{where}: not dm-crypt ({' → '.join(m.crypt_chain) or 'no device-mapper layer'})"


#: libvirt ``<encryption format=…>`` values that mean LUKS (strong, passphrase-protected keyslots).
LUKS_FORMATS = frozenset({"luks", "luks2", "luks-any"})


_ENCRYPT_FIX = static_remediation("kvm.vm-disk-encryption")  # text in hvguard/catalog/checks.yaml


@check(
    "11.2.9",
    id="kvm.vm-disk-encryption",
    reads=("hypervisor.vms[].disks[].encryption", "hypervisor.vms[].disks[].source_*"),
)
def vm_disk_encryption(ctx: CheckContext) -> Iterator[Finding]:
    """Each VM's disk images are encrypted (per VM).

    Pass: every local disk (``device`` disk/lun; cdrom/floppy ignored) has ``<encryption format='luks'>``
    (luks/luks2/luks-any), or lives on a dm-crypt (LUKS) backed file system — the mount holding the file
    (or the pool's target directory, for pool volumes) has a ``CRYPT-`` device-mapper device beneath it.
    Fail: a local disk on unencrypted storage without ``<encryption>``, or with the broken legacy qcow AES
    format. Manual: a network disk without ``<encryption>`` (the image server's storage is not visible),
    an unrecognised format, or storage whose device chain could not be followed. Whether another
    access-control mechanism makes 11.2.9 inapplicable is shown by an exception. Passphrase holders and
    complexity are attestation.
    """
    storage = storage_or_none(ctx)

    def judge(vm: VmFacts) -> Iterator[Finding]:
        subject = vm_subject(vm)
        disks = [
            d
            for d in vm.disks
            if d.device not in ("cdrom", "floppy")
            and (d.source_path or d.source_protocol or d.source_name or d.source_volume)
        ]
        if not disks:
            yield ctx.not_applicable(
                subject,
                "VM has no disk images (no disk with a source; cdrom/floppy ignored)",
                {"disks": [{"device": d.device, "target": d.target} for d in vm.disks]},
            )
            return
        plain: list[str] = []
        weak: list[str] = []
        remote: list[str] = []
        odd: list[str] = []
        per_disk: dict[str, Any] = {}
        for d in disks:
            name = disk_name(d)
            enc = d.encryption
            network = d.source_protocol is not None or d.type == "network"
            if network:
                source = f"{d.source_protocol}://{','.join(d.source_hosts)}/{d.source_name or ''}"
            else:
                source = d.source_path or f"pool {d.source_pool}/{d.source_volume}"
            per_disk[name] = {
                "source": source,
                "encryption": None
                if enc is None
                else {"format": enc.format, "secret_uuid": enc.secret_uuid, "secret_usage": enc.secret_usage},
            }
            if enc is None and not network and storage is not None:
                backing = _encrypted_backing(d, storage)
                if backing is not None:
                    per_disk[name]["backing"] = backing[1]
                    if backing[0] is True:
                        continue
                    if backing[0] is None:
                        odd.append(f"{name} (storage encryption unknown: {backing[1]})")
                        continue
            if enc is None:
                (remote if network else plain).append(name)
            elif enc.format in LUKS_FORMATS:
                continue
            elif enc.format == "qcow":
                weak.append(name)
            else:
                odd.append(f"{name} ({enc.format})")
        evidence = {"disks": per_disk}
        if plain or weak:
            parts = []
            if plain:
                parts.append("unencrypted: " + ", ".join(plain))
            if weak:
                parts.append("legacy qcow AES encryption (weak, deprecated by QEMU): " + ", ".join(weak))
            yield ctx.failed(
                subject,
                "VM image files are not kept encrypted — " + "; ".join(parts) + ".",
                evidence,
                _ENCRYPT_FIX,
            )
        elif remote or odd:
            yield ctx.manual(
                subject,
                "Encryption at rest cannot be shown from the VM definition for: "
                + ", ".join([*(f"{n} (network disk)" for n in remote), *odd])
                + ". Evidence needed: the image server's storage is on an encrypted device (e.g. LUKS), "
                "and who holds its passphrases.",
                evidence,
            )
        else:
            on_crypt = [n for n, v in per_disk.items() if v.get("backing") and v.get("encryption") is None]
            yield ctx.passed(
                subject,
                "Every disk image is LUKS-encrypted"
                + (
                    f" (on dm-crypt storage: {', '.join(on_crypt)}; the rest with a libvirt secret)"
                    if on_crypt
                    else " with a libvirt secret"
                )
                + " — passphrase holders and complexity remain attestation.",
                evidence,
            )

    yield from vms_or_not_applicable(ctx, judge, count_evidence=True)
