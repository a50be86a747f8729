"""``hvguard library``: the group with all its commands.

The store commands (``hvguard.cli.library``) and the server and client commands
(``hvguard.cli.library_client``) register themselves on the one group when their modules are imported;
this module imports both, so neither needs to import the other back.
"""

from __future__ import annotations

import hvguard.cli.library_client  # noqa: F401  (registers serve, push, pull … on the group)
from hvguard.cli.library import library

__all__ = ["library"]
