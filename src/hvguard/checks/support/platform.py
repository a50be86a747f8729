"""What the platform offers for per-VM resource controls (11.3.2, 11.3.4), from the neutral facts.

Checks never read a URI or a driver name to learn the platform: the collector records the offer in
``HypervisorFacts.controls_offered`` (see :class:`hvguard.facts.ControlsOffered`) and these functions read it.
"""

from __future__ import annotations

from typing import Any

from hvguard.checks.base import HOST, CheckContext
from hvguard.facts import ControlsOffered, HypervisorFacts
from hvguard.findings import Finding


def _all_offered(offer: ControlsOffered | None, *offered: bool | None) -> bool | None:
    if offer is None:
        return None
    return all(o is True for o in offered)


def offers_memory_controls(hv: HypervisorFacts) -> bool | None:
    """True when the platform offers a per-VM RAM limit, guarantee and priority (11.3.2); False when it
    is not known to offer all three (a human shows them); None when the collector could not tell."""
    offer = hv.controls_offered
    return _all_offered(
        offer, *((offer.memory_limit, offer.memory_guarantee, offer.memory_priority) if offer else ())
    )


def offers_cpu_controls(hv: HypervisorFacts) -> bool | None:
    """True when the platform offers a per-VM CPU upper limit, lower limit and priority (11.3.4); False
    when it is not known to offer all three; None when the collector could not tell."""
    offer = hv.controls_offered
    return _all_offered(offer, *((offer.cpu_limit, offer.cpu_guarantee, offer.cpu_priority) if offer else ()))


def offer_finding(
    ctx: CheckContext, offered: bool | None, evidence: dict[str, Any], offered_text: str, unassessed_text: str
) -> Finding:
    """The capability finding of 11.3.2/11.3.4: ``pass`` with ``offered_text`` when the platform offers
    the controls, ``error`` when the collector could not tell, else ``manual`` with ``unassessed_text``
    (the evidence a human must show)."""
    if offered:
        return ctx.passed(HOST, offered_text, evidence)
    if offered is None:
        return ctx.error(HOST, "the hypervisor driver", "hypervisor")
    return ctx.manual(HOST, unassessed_text, evidence)
