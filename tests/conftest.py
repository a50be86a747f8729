"""Test-wide settings shared by every test module."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every scan a test runs (in-process or as a subprocess, which inherits the environment) stores its
    history in a throwaway database, never in the user's data directory, and reads no configuration file."""
    patch = pytest.MonkeyPatch()
    patch.setenv("HVGUARD_DB", str(tmp_path_factory.mktemp("history") / "history.sqlite3"))
    # No configuration file of the machine or the user changes what a test's hvguard does
    # (tests/test_config_file.py sets its own).
    patch.setenv("HVGUARD_CONFIG", "")
    yield
    patch.undo()


@pytest.fixture(autouse=True, scope="session")
def _no_inherited_terminal_size() -> None:
    """GNU readline (imported by pytest) exports ``COLUMNS``/``LINES`` of the terminal it found — 80×24
    without one — into the C environment, which every subprocess inherits while ``os.environ`` does not
    show it. hvguard honours ``COLUMNS``, so without this every CLI test would render 80 columns wide.
    Tests that want a width set ``COLUMNS`` themselves; one the user exported on purpose is kept."""
    for name in ("COLUMNS", "LINES"):
        if name not in os.environ:
            os.unsetenv(name)
