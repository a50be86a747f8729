"""Operational facts of a Linux hypervisor host (SS-009 11.2.9/11.2.10 storage, 11.4.4, 11.4.8–11.4.13):
audit and system logging, firewall and listening sockets, patch state, network layout, storage pools."""

from __future__ import annotations

from hvguard.facts.base import Model

__all__ = ["OperationsFacts"]


class OperationsFacts(Model, frozen=True, kw_only=True):
    """How the host logs, filters traffic, is patched, is wired and stores VM images."""
