"""The Ansible collection ``hvguard.ss009``: real ``ansible-playbook`` runs the ``collect`` role against
three loopback sshd hosts (tests/ansible_env.py), the bundles land on the controller, and
``hvguard evaluate DIR`` gives one estate report of them. Nothing is written on the hosts, every host
reports changed=0, and check mode runs the same collection.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ansible_env import ANSIBLE_PLAYBOOK, COLLECTION, Hosts, playbook

pytestmark = pytest.mark.skipif(
    ANSIBLE_PLAYBOOK is None and os.environ.get("CI") != "true",
    reason="ansible-playbook not installed (scripts/setup.sh test installs ansible-core)",
)


@pytest.fixture(scope="module")
def hosts() -> Iterator[Hosts]:
    started = Hosts(3).start()
    try:
        yield started
    finally:
        started.stop()


def recap(stdout: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP: host → counter → value."""
    out: dict[str, dict[str, int]] = {}
    for line in stdout.split("PLAY RECAP", 1)[1].splitlines():
        m = re.match(r"^(\S+)\s+:\s+(.*)$", line.strip())
        if m:
            out[m[1]] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m[2])}
    return out


def evaluate(folder: Path, *extra: str) -> dict[str, Any]:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "hvguard",
            "evaluate",
            str(folder),
            "--format",
            "json",
            "--no-history",
            *extra,
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )
    assert r.returncode in (0, 1), r.stderr
    data: dict[str, Any] = json.loads(r.stdout)
    return data


def assert_estate(hosts: Hosts, bundles: Path, inventory: Path) -> None:
    """One bundle per host on the controller, as hvguard wrote it, and one estate report of them with
    the inventory's groups."""
    files = sorted(p.name for p in bundles.iterdir())
    assert files == [f"{n}.json" for n in hosts.names]
    for name in files:
        path = bundles / name
        assert path.stat().st_mode & 0o777 == 0o600
        # hvguard's own compact encoding, byte for byte: not re-read and re-dumped by Ansible.
        assert path.read_bytes().startswith(b'{"schema":"hvguard.bundle/1","facts_version":')
    doc = evaluate(bundles, "--inventory", str(inventory))
    assert [t["id"] for t in doc["targets"]] == hosts.names
    assert all(t["groups"] == ["hypervisors"] for t in doc["targets"])
    assert doc["summary"]["by_group"]["hypervisors"]["targets"] == len(hosts.names)
    for t in doc["targets"]:
        assert t["verdict"] in ("compliant", "not_compliant"), t
        assert t["collection"]["privileged"] is True  # become: hvguard ran as root
        assert "linux-host:local" in t["collectors"]
    assert [s["targets"] for s in doc["source"]["bundles"]] == [[n] for n in hosts.names]
    assert len(doc["summary"]["by_measure"]) == 36


def test_the_role_collects_every_host_read_only_and_evaluate_gives_one_estate(
    hosts: Hosts, tmp_path: Path
) -> None:
    bundles = tmp_path / "bundles"
    inventory = hosts.inventory(tmp_path / "inventory.yml", hvguard_bundle_dir=str(bundles))
    before = hosts.listing()
    r = playbook(inventory, tmp_path, "-v")  # -v prints each task's result: no_log must still hide it
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    counts = recap(r.stdout)
    assert set(counts) == set(hosts.names)
    for name, c in counts.items():
        assert (c["changed"], c["failed"], c["unreachable"]) == (0, 0, 0), (name, c)
        assert c["ok"] >= 3
    # No bundle text in the output (no_log): a bundle holds the host's whole security configuration.
    assert "hvguard.bundle/1" not in r.stdout and "censored" in r.stdout
    assert hosts.listing() == before  # nothing written on the hosts (pipelining: not even Ansible's tmp)
    assert_estate(hosts, bundles, inventory)


def test_check_mode_runs_the_same_collection(hosts: Hosts, tmp_path: Path) -> None:
    bundles = tmp_path / "checked"
    inventory = hosts.inventory(tmp_path / "inventory.yml", hvguard_bundle_dir=str(bundles))
    before = hosts.listing()
    r = playbook(inventory, tmp_path, "--check")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert all(c["changed"] == 0 and c["failed"] == 0 for c in recap(r.stdout).values())
    assert hosts.listing() == before
    assert_estate(hosts, bundles, inventory)


def test_a_host_without_hvguard_fails_in_words(hosts: Hosts, tmp_path: Path) -> None:
    bundles = tmp_path / "bundles"
    inventory = hosts.inventory(tmp_path / "inventory.yml", hvguard_bundle_dir=str(bundles))
    r = playbook(inventory, tmp_path, "--limit", "hv01", "-e", '{"hvguard_command": "/nonexistent/hvguard"}')
    assert r.returncode == 2, r.stdout[-3000:]
    assert "hvguard collect failed on hv01 (exit" in r.stdout
    assert recap(r.stdout)["hv01"]["failed"] == 1
    assert not (bundles / "hv01.json").exists()


def test_the_listing_sees_what_ansible_writes_without_pipelining(hosts: Hosts, tmp_path: Path) -> None:
    """The control of the "nothing written" assertions: with pipelining turned off Ansible copies its
    module into the login account's home (~/.ansible/tmp), and the listing shows it."""
    inventory = hosts.inventory(tmp_path / "inventory.yml", hvguard_bundle_dir=str(tmp_path / "b"))
    before = hosts.listing()
    extra = '{"ansible_pipelining": false, "hvguard_command": "/nonexistent/hvguard"}'
    playbook(inventory, tmp_path, "--limit", "hv02", "-e", extra)
    after = hosts.listing()
    try:
        assert after != before
        assert any("/.ansible" in p for p in after[hosts.users[1]])
    finally:
        shutil.rmtree(hosts.homes[1] / ".ansible", ignore_errors=True)
    assert hosts.listing() == before


def test_the_collection_builds_for_galaxy_and_automation_hub(tmp_path: Path) -> None:
    """``ansible-galaxy collection build`` accepts galaxy.yml and the layout (what an AWX project or a
    Galaxy import needs first; importing into AWX itself is not tested here)."""
    galaxy = shutil.which("ansible-galaxy")
    assert galaxy is not None
    r = subprocess.run(
        [galaxy, "collection", "build", str(COLLECTION), "--output-path", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_HOME": str(tmp_path / "home"), "ANSIBLE_NOCOLOR": "1"},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert [p.name for p in tmp_path.glob("*.tar.gz")] == ["hvguard-ss009-0.1.0.tar.gz"]
