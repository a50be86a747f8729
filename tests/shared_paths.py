"""Where the shared project material lives: ``../shared`` beside the repository.

A user's plain clone has no ``../shared``: the tests that need it skip, each with a one-line reason. In
CI (``CI=true``) the material must be there, so its absence fails those tests instead of skipping them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def shared(*parts: str) -> Path:
    """A path under ``../shared``: skipped when it is missing, failed when it is missing under CI=true."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        reason = f"needs {path} (the shared material beside the repository)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"shared material missing under CI=true: {reason}")
        pytest.skip(reason)
    return path
