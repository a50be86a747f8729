"""The check interface: pure functions from the facts model to findings.

A check is a function ``fn(ctx) -> Iterable[Finding]`` registered with :func:`check`. It declares the
measure it serves and the facts it reads; it never does I/O. ``ctx`` binds the target's facts, the
profile and the measure, and offers small constructors (``ctx.passed``, ``ctx.failed`` …) so every
finding carries its measure, check id and evidence in the same shape.

Where a check cannot proceed (facts missing, a file libvirt would reject) it, or a helper it calls,
raises :class:`CannotEvaluate`; the function :func:`check` registers turns that into the ``error`` finding
after whatever the check yielded before. This module never imports the checks themselves: which modules
define checks, and in what order they run, is :mod:`hvguard.checks.registry`'s business.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import msgspec

from hvguard.facts import HostFacts, HypervisorFacts, Problem, TargetFacts, VmFacts, platform_family
from hvguard.findings import Finding, Status
from hvguard.profile import Profile

HOST = "host"


def vm_subject(vm: VmFacts) -> str:
    """The subject string of a VM's findings."""
    return f"vm:{vm.name}"


class CannotEvaluate(Exception):
    """``what`` cannot be evaluated for ``subject``: the check runner reports it as an ``error`` finding.

    ``areas`` name the fact areas whose collection problems explain why; ``evidence``, when given,
    replaces the default evidence (the list of those problem areas).
    """

    def __init__(self, subject: str, what: str, *areas: str, evidence: dict[str, Any] | None = None) -> None:
        super().__init__(f"cannot evaluate {what}")
        self.subject = subject
        self.what = what
        self.areas = areas
        self.evidence = evidence


class CheckContext(msgspec.Struct, frozen=True):
    """What one check invocation sees: one target's facts, the profile, and the measure it serves."""

    target: TargetFacts
    profile: Profile
    measure: str
    check_id: str

    @property
    def host(self) -> HostFacts | None:
        """Host facts, or None when they were not collected."""
        return self.target.host

    @property
    def hypervisor(self) -> HypervisorFacts | None:
        """The libvirt connection's facts, or None when there is no connection."""
        return self.target.hypervisor

    # -- problems ------------------------------------------------------------------------------------
    def problems(self, *areas: str) -> list[Problem]:
        """Collection problems recorded for these areas or any area beneath them (``host`` covers
        ``host.cpu``)."""
        return [
            p for p in self.target.problems if any(p.area == a or p.area.startswith(a + ".") for a in areas)
        ]

    def why_missing(self, *areas: str) -> str:
        """A one-line reason for missing facts, from the recorded problems (or a generic one)."""
        found = self.problems(*areas)
        if found:
            return "; ".join(f"{p.source}: {p.message}" for p in found[:3])
        if "host" in {a.split(".")[0] for a in areas} and self.target.host is None:
            return "host facts were not collected for this target (a remote or test libvirt URI; pass --root)"
        if "hypervisor" in {a.split(".")[0] for a in areas} and self.target.hypervisor is None:
            return "no hypervisor connection for this target"
        return "the fact was not collected"

    # -- finding constructors ------------------------------------------------------------------------
    def _make(
        self,
        status: Status,
        subject: str,
        message: str,
        evidence: dict[str, Any] | None,
        remediation: str | None,
        method: str = "facts",
    ) -> Finding:
        return Finding(
            measure=self.measure,
            status=status,
            subject=subject,
            message=message,
            evidence=evidence or {},
            remediation=remediation,
            target=self.target.id,
            check=self.check_id,
            method=method,
        )

    def passed(
        self, subject: str, message: str, evidence: dict[str, Any] | None = None, *, method: str = "facts"
    ) -> Finding:
        """A ``pass`` finding (``method`` names how it was decided when not from facts alone)."""
        return self._make(Status.PASS, subject, message, evidence, None, method)

    def failed(
        self,
        subject: str,
        message: str,
        evidence: dict[str, Any] | None,
        remediation: str,
        *,
        method: str = "facts",
    ) -> Finding:
        """A ``fail`` finding; a remediation is mandatory."""
        return self._make(Status.FAIL, subject, message, evidence, remediation, method)

    def warned(
        self, subject: str, message: str, evidence: dict[str, Any] | None, remediation: str | None
    ) -> Finding:
        """A ``warn`` finding: an advisory part of the measure is not met."""
        return self._make(Status.WARN, subject, message, evidence, remediation)

    def manual(self, subject: str, message: str, evidence: dict[str, Any] | None = None) -> Finding:
        """A ``manual`` finding: facts cannot decide; ``message`` states the evidence an auditor needs."""
        return self._make(Status.MANUAL, subject, message, evidence, None, method="attestation")

    def not_applicable(self, subject: str, reason: str, evidence: dict[str, Any] | None = None) -> Finding:
        """A ``not_applicable`` finding, always with its reason."""
        return self._make(Status.NOT_APPLICABLE, subject, reason, evidence, None)

    def error(self, subject: str, what: str, *areas: str, evidence: dict[str, Any] | None = None) -> Finding:
        """An ``error`` finding: ``what`` could not be evaluated, with the collection problem as reason.

        The evidence lists the problem areas unless ``evidence`` is given."""
        if evidence is None:
            evidence = {"problems": [p.area for p in self.problems(*areas)]}
        return self._make(Status.ERROR, subject, self.error_message(what, *areas), evidence, None)

    def error_message(self, what: str, *areas: str) -> str:
        """The message of the ``error`` finding for ``what``: ``cannot evaluate WHAT: REASON``."""
        reason = self.why_missing(*areas) if areas else ""
        return f"cannot evaluate {what}: {reason}" if reason else f"cannot evaluate {what}"

    def error_for(self, signal: CannotEvaluate) -> Finding:
        """The ``error`` finding a :class:`CannotEvaluate` stands for."""
        return self.error(signal.subject, signal.what, *signal.areas, evidence=signal.evidence)

    # -- VM iteration --------------------------------------------------------------------------------
    def vm_error(self, vm: VmFacts) -> Finding:
        """The ``error`` finding of a VM whose definition could not be fetched or parsed."""
        return self._make(Status.ERROR, vm_subject(vm), f"cannot evaluate this VM: {vm.error}", {}, None)

    def each_vm(self, judge: Callable[[VmFacts], Iterable[Finding]]) -> Iterator[Finding]:
        """``judge``'s findings for every VM of the connection, in the connection's order, with the
        ``error`` finding of each unparsable VM in its place (so a check cannot forget them). Raises
        :class:`CannotEvaluate` when there is no connection."""
        hv = self.target.hypervisor
        if hv is None:
            raise CannotEvaluate(HOST, "per-VM settings", "hypervisor")
        for vm in hv.vms:
            if vm.error is not None:
                yield self.vm_error(vm)
            else:
                yield from judge(vm)


CheckFn = Callable[[CheckContext], Iterable[Finding]]


class Check(msgspec.Struct, frozen=True):
    """A registered check: the measure it serves, the facts it reads and the function."""

    id: str
    measure: str
    reads: tuple[str, ...]
    fn: CheckFn
    doc: str
    platforms: tuple[str, ...] = ()
    """Platform ids the check applies to, from the check map (empty: every platform)."""

    def applies_to(self, platform: str) -> bool:
        """Whether the check judges a target of ``platform``: the same platform family as one of its own
        (a Linux host without a hypervisor answer is judged by the libvirt checks, which report what
        they cannot read)."""
        return not self.platforms or platform_family(platform) in {platform_family(p) for p in self.platforms}


_REGISTRY: dict[str, Check] = {}


def check(measure: str, *, id: str, reads: Sequence[str]) -> Callable[[CheckFn], CheckFn]:
    """Register ``fn`` as the check ``id`` for ``measure``, reading the named facts.

    The registered (and returned) function runs ``fn`` and turns a :class:`CannotEvaluate` raised while
    it runs into the ``error`` finding, after the findings ``fn`` yielded before it."""

    def register(fn: CheckFn) -> CheckFn:
        if id in _REGISTRY:
            raise ValueError(f"duplicate check id {id}")

        @functools.wraps(fn)
        def run(ctx: CheckContext) -> Iterator[Finding]:
            try:
                yield from fn(ctx)
            except CannotEvaluate as signal:
                yield ctx.error_for(signal)

        _REGISTRY[id] = Check(
            id=id, measure=measure, reads=tuple(reads), fn=run, doc=(fn.__doc__ or "").strip()
        )
        return run

    return register


def defined_checks() -> dict[str, Check]:
    """The checks registered so far by the modules imported, by id (the registry imports them all)."""
    return dict(_REGISTRY)
