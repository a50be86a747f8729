"""Access-control facts of a Linux hypervisor host (SS-009 11.2.2–11.2.5, 11.4.1–11.4.3, 11.4.5, 11.4.6):
sshd, PAM, directory integration, accounts, sudoers, libvirt access control and polkit rules."""

from __future__ import annotations

from hvguard.facts.base import Model

__all__ = ["AccessFacts"]


class AccessFacts(Model, frozen=True, kw_only=True):
    """Who may reach the host and its hypervisor, and how they authenticate."""
