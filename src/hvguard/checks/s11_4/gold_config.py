"""Checks for SS-009 11.4.7.

11.4.7 Gold configuration: define, apply automatically, check compliance

Checks: ``gold_configuration``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import HOST, CheckContext, check
from hvguard.findings import Finding


@check("11.4.7", id="host.gold-configuration", reads=())
def gold_configuration(ctx: CheckContext) -> Iterator[Finding]:
    """A gold configuration is defined, applied automatically and checked — attestation (advisory measure)."""
    yield ctx.manual(
        HOST,
        "Evidence needed: the gold configuration baseline assigned to this host (e.g. an hvguard profile "
        "plus Ansible/OpenSCAP content under version control), the automation that applies it to new and "
        "existing hosts, and the date and result of the last compliance run (this hvguard report can be that"
        " run).",
        {"baseline": "not collected (attestation)"},
    )
