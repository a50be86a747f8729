"""Checks for SS-009 11.3.8 and 11.3.9 on an hvguard image library (``scan --library URL``).

11.3.8 Only SS-025-compliant images in the image library
11.3.9 Digital signature on every VM image

Checks: ``library_gate``, ``library_signatures``, ``library_vm_images`` (per VM: each disk's image is a
signed library image). Without ``--library`` they yield nothing and the
manual checks of :mod:`hvguard.checks.s11_3.images` state the evidence needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hvguard.checks.base import CheckContext, check
from hvguard.checks.support.library import LIBRARY, judged, unreadable
from hvguard.facts import LibraryDiskImage
from hvguard.findings import Finding

STRONG_SIGNING = {"ed25519", "ecdsa-p384", "ecdsa-p521", "rsa-pss-3072", "rsa-pss-4096"}


@check("11.3.8", id="library.gate", reads=("image_library",))
def library_gate(ctx: CheckContext) -> Iterator[Finding]:
    """No stored image fails the library's current gate. Fail: quarantined images; warn: guest
    inspection off, or images last gated under another profile (run ``library regate``)."""
    lib = ctx.target.image_library
    if lib is None:
        return
    if lib.error:
        yield unreadable(ctx, lib)
        return
    evidence: dict[str, Any] = {
        "library": lib.url,
        "images": lib.images_by_status,
        "failing_gate": [f"{i.name} {i.version} ({i.id})" for i in lib.failing_gate][:50],
        "guest_inspection": lib.guest_inspection,
        "gate_profile_sha256": lib.gate_profile_sha256,
        "gated_under_other_profile": lib.gated_under_other_profile,
    }
    if lib.failing_gate:
        yield ctx.failed(
            LIBRARY,
            f"Image library {lib.url}: {len(lib.failing_gate)} image(s) fail the current gate: "
            + ", ".join(f"{i.name} {i.version}" for i in lib.failing_gate[:5])
            + ".",
            evidence,
            "Fix and re-publish the images, then hvguard library delete URL ID --totp-file F for each "
            "quarantined one.",
        )
    elif lib.guest_inspection != "required" or lib.gated_under_other_profile:
        why = []
        if lib.guest_inspection != "required":
            why.append(f"guest inspection is {lib.guest_inspection}: SS-025 guest rules are not enforced")
        if lib.gated_under_other_profile:
            why.append(f"{lib.gated_under_other_profile} image(s) were gated under another profile")
        yield ctx.warned(
            LIBRARY,
            f"Image library {lib.url}: " + "; ".join(why) + ".",
            evidence,
            "hvguard library regate URL --totp-file F (re-runs the current gate, quarantines failures); "
            "create stores with --guest-inspection required.",
        )
    else:
        yield ctx.passed(
            LIBRARY,
            f"Image library {lib.url}: all {lib.images_total} image(s) passed the current gate (profile "
            f"{lib.gate_profile_sha256[:12]}) with guest inspection required; failures are never stored.",
            evidence,
        )


@check("11.3.9", id="library.signatures", reads=("image_library",))
def library_signatures(ctx: CheckContext) -> Iterator[Finding]:
    """Every image available for check-out carries the library's signature, made with a strong key."""
    lib = ctx.target.image_library
    if lib is None:
        return
    if lib.error:
        yield unreadable(ctx, lib)
        return
    evidence = {
        "library": lib.url,
        "signing_algorithm": lib.signing_algorithm,
        "signing_key_bits": lib.signing_key_bits,
        "signing_key_id": lib.signing_key_id,
        "approved": lib.images_by_status.get("approved", 0),
        "approved_unsigned": lib.approved_unsigned,
    }
    problems = []
    if lib.signing_algorithm not in STRONG_SIGNING:
        problems.append(f"signing algorithm {lib.signing_algorithm or 'unknown'} is not a strong one")
    if lib.approved_unsigned:
        problems.append(f"{lib.approved_unsigned} approved image(s) have no signature")
    yield judged(
        ctx,
        lib,
        problems,
        evidence,
        fix=("Re-create the store with --signing-key-type ed25519|ecdsa-p384|rsa-pss-3072 and re-approve."),
        passed=(
            f"Image library {lib.url}: every approved image has a signed manifest ({lib.signing_algorithm}, "
            f"key {lib.signing_key_id[:16]}); check-out verifies it before writing."
        ),
    )


def _disk_line(d: LibraryDiskImage) -> str:
    image = f"{d.image_name} {d.image_version} ({d.image_id})" if d.image_name else d.image_id or "no image"
    via = {"backing": "read-only base", "manifest": "manifest beside", "metadata": "domain metadata"}
    how = via.get(d.provenance, "no evidence")
    return f"{d.disk}: {image} via {how}" + (f" ({d.error or d.detail})" if d.error or d.detail else "")


@check("11.3.9", id="library.vm-images", reads=("image_library",))
def library_vm_images(ctx: CheckContext) -> Iterator[Finding]:
    """Per VM: every disk's image is a signed library image. Fail: a signature or hash does not verify or
    the image is not an approved library image; manual: a disk without evidence; error: a disk or its
    base could not be read."""
    lib = ctx.target.image_library
    if lib is None or lib.error:
        return  # library.signatures reports the library's error once
    by_vm: dict[str, list[LibraryDiskImage]] = {}
    for d in lib.vm_disks:
        by_vm.setdefault(d.vm, []).append(d)
    for vm, disks in by_vm.items():
        subject = f"vm:{vm}"
        evidence: dict[str, Any] = {
            "library": lib.url,
            "disks": [
                {
                    "disk": d.disk,
                    "path": d.path,
                    "base": d.base,
                    "provenance": d.provenance,
                    "image_id": d.image_id,
                    "signature_valid": d.signature_valid,
                    **({"error": d.error} if d.error else {"detail": d.detail} if d.detail else {}),
                }
                for d in disks
            ],
        }
        bad = [d for d in disks if d.signature_valid is False]
        unread = [d for d in disks if d.error]
        unknown = [d for d in disks if d.signature_valid is None and not d.error]
        if bad:
            yield ctx.failed(
                subject,
                f"{vm}: " + "; ".join(_disk_line(d) for d in bad) + ".",
                evidence,
                "Re-create the disk from an approved image: hvguard library pull URL ID --output BASE, then "
                "qemu-img create -f qcow2 -F qcow2 -b BASE DISK (keep BASE.manifest.json beside it).",
            )
        elif unread:
            yield ctx.error(
                subject,
                f"the image provenance of {vm}'s disks: " + "; ".join(_disk_line(d) for d in unread),
                "image_library",
                evidence=evidence,
            )
        elif unknown:
            yield ctx.manual(
                subject,
                f"{vm}: no library evidence for "
                + "; ".join(_disk_line(d) for d in unknown)
                + ". Show where "
                "these disks' images came from, or base them on a pulled library image (read-only backing "
                "file with its manifest, or <hvguard:image disk=... id=.../> in the domain metadata).",
                evidence,
            )
        else:
            yield ctx.passed(
                subject,
                f"{vm}: every disk comes from a signed library image: "
                + "; ".join(_disk_line(d) for d in disks)
                + ".",
                evidence,
            )
