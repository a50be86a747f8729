"""Test-wide settings shared by every test module."""

from __future__ import annotations

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
