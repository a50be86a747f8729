"""Test-wide settings shared by every test module."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from vsphere_env import Simulator, TestCA


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


@pytest.fixture(scope="session")
def vcsim_binary() -> Path:
    """VMware's vSphere API simulator (tests/vcsim), built once per source version (cached in build/)."""
    from vsphere_env import build_simulator

    return build_simulator()


@pytest.fixture(scope="session")
def vcsim_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """A test CA and the simulator's certificate for 127.0.0.2, made for this session."""
    from vsphere_env import TestCA

    return TestCA.make(tmp_path_factory.mktemp("vcsim-ca"))


@pytest.fixture(scope="session")
def vcsim_esx(vcsim_binary: Path, vcsim_ca: TestCA) -> Iterator[Simulator]:
    """One ESX-model simulator (a standalone ESXi host, 2 VMs) for this session: tests only read it."""
    from vsphere_env import Simulator

    sim = Simulator(vcsim_binary, vcsim_ca, "-model", "esx", "-api", "7.0.1.0")
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def vcsim_vpx(vcsim_binary: Path, vcsim_ca: TestCA) -> Iterator[Simulator]:
    """One VPX-model simulator (a vCenter: 1 cluster of 3 hosts, 1 standalone host, 4 VMs) for this
    session: tests only read it."""
    from vsphere_env import Simulator

    sim = Simulator(vcsim_binary, vcsim_ca, "-model", "vpx", "-api", "7.0.1.0")
    yield sim
    sim.stop()


@pytest.fixture
def vcsim_fresh(vcsim_binary: Path, vcsim_ca: TestCA) -> Iterator[Callable[..., Simulator]]:
    """Start simulators that a test may change (``vcsim_fresh("-model", "vpx")``); stopped after it."""
    from vsphere_env import Simulator

    started: list[Simulator] = []

    def start(*args: str) -> Simulator:
        sim = Simulator(vcsim_binary, vcsim_ca, *args)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()
