"""Where the shared project material lives: ``../shared`` beside the repository (also in CI)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def shared(*parts: str) -> Path:
    """A path under ``../shared``; the test fails (never skips) when it is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"shared material missing: {path} (the repository must sit beside ../shared)")
    return path
