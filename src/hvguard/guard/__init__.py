"""Admission control for libvirt: decide, before a VM starts, whether its definition meets SS-009.

The libvirt qemu hook (``hvguard.guard.hook``) and ``hvguard guard check`` judge one domain's XML with
the same checks, profile, exceptions and attestations as ``scan``, against a snapshot of this host's facts
(:mod:`hvguard.guard.snapshot`) and policy files pinned by sha256 (:mod:`hvguard.guard.policy`). Only the
VM's own findings decide (:mod:`hvguard.guard.decide`); every decision is a ``hvguard.guard-decision/1``
record (:mod:`hvguard.guard.record`) appended to ``decisions.jsonl`` and sent to syslog
(:mod:`hvguard.guard.log`).

This module imports nothing heavy: the hook's start-up time is part of every VM start.
"""

#: The default state directory of an installed guard (``--state-dir``, ``HVGUARD_GUARD_DIR``).
DEFAULT_STATE_DIR = "/var/lib/hvguard/guard"
#: The environment variable that overrides :data:`DEFAULT_STATE_DIR`.
STATE_DIR_ENV = "HVGUARD_GUARD_DIR"
