"""Subjects, fact areas and evidence size shared by the checks: the VMs of a connection, which host area
to blame, and how many items an evidence list keeps."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from hvguard.checks.base import HOST, CheckContext
from hvguard.facts import AccessFacts, VmFacts
from hvguard.findings import Finding


def vms_or_not_applicable(
    ctx: CheckContext, judge: Callable[[VmFacts], Iterable[Finding]], *, count_evidence: bool = False
) -> Iterator[Finding]:
    """:meth:`CheckContext.each_vm`, but one ``not_applicable`` when the connection defines no VM at all.

    ``count_evidence`` adds the URI and a VM count of 0 to that finding's evidence (the 11.2 checks'
    wording; the 11.1 and 11.3 checks report no evidence there)."""
    hv = ctx.hypervisor
    if hv is not None and not hv.vms:
        evidence = {"uri": hv.uri, "vm_count": 0} if count_evidence else None
        yield ctx.not_applicable(HOST, f"no VMs defined on {hv.uri}", evidence)
        return
    yield from ctx.each_vm(judge)


def host_area(ctx: CheckContext, sub: str) -> str:
    """The fact area to blame: ``host.<sub>``, or ``host`` when no host facts were collected at all."""
    return f"host.{sub}" if ctx.host is not None else "host"


def capped(items: list[Any], limit: int = 50) -> list[Any]:
    """At most ``limit`` items for evidence (the count is reported beside it)."""
    return items[:limit]


def host_access(ctx: CheckContext) -> AccessFacts | None:
    """The host's access-control facts (None for targets or bundles without them)."""
    return ctx.host.access if ctx.host is not None else None
