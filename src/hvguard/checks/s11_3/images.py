"""Checks for SS-009 11.3.8 and 11.3.9.

11.3.8 Only SS-025-compliant images in the image library
11.3.9 Digital signature on every VM image

Checks: ``image_ss025``, ``image_signatures``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import HOST, CheckContext, check
from hvguard.findings import Finding


@check("11.3.8", id="kvm.image-ss025", reads=())
def image_ss025(ctx: CheckContext) -> Iterator[Finding]:
    """Always ``manual``: hvguard does not inventory or scan an image library yet (the image library
    service is planned), and SS-025 was not supplied. With ``scan --library`` the library's own check
    (``library.gate``) decides instead."""
    if ctx.target.image_library is not None:
        return
    yield ctx.manual(
        HOST,
        "Provide the inventory of every VM image on the image server / in the VM image library (and libvirt "
        "storage pools holding templates), a current SS-025 compliance result per image (e.g. an offline "
        "scan record), and the procedure that removes non-compliant images. hvguard's image library service "
        "is not available yet, and SS-025 was not supplied.",
    )


@check("11.3.9", id="kvm.image-signatures", reads=())
def image_signatures(ctx: CheckContext) -> Iterator[Finding]:
    """Always ``manual``: libvirt has no native image signing; the signature per image and its
    verification are evidence outside the host facts until hvguard's signed image library exists. With
    ``scan --library`` the library's own check (``library.signatures``) decides instead."""
    if ctx.target.image_library is not None:
        return
    yield ctx.manual(
        HOST,
        "Provide, for every image kept on the image server / in the VM image library, its digital signature "
        "and a current verification record, with the signing key's management per SS-002 and its algorithm "
        "and key size per SS-007. libvirt does not sign images; hvguard's signed image library is not "
        "available yet.",
    )
