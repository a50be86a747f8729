"""The base error of the collect seam, in a module of its own so that a reader (the libvirt domain XML
parser the guard hook uses on every VM start) can derive from it without loading the collector contract
(:mod:`hvguard.collect.interface` re-exports it)."""

from __future__ import annotations


class CollectError(Exception):
    """Base of every error raised across the collect seam; ``str()`` is a one-line reason."""
