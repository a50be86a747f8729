"""``hvguard scan --inventory`` against real OpenSSH servers on three loopback addresses (tests/sshd_env.py).

Each server has its own client key, named only by the inventory (``ansible_ssh_private_key_file``; no
``--identity``, no ssh-agent, an empty HOME), so a host is collected only when its own key reaches the
transport; one host is reached as a non-root account with ``ansible_become: true`` and must be collected
as root (through ``sudo -n``). A fourth, dead host is excluded with ``--limit``. An exceptions register
scoped by ``groups: [site_a]`` must waive site_a's hosts only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hvguard.catalog import load_catalog
from sshd_env import Sshd, free_port, throwaway_user

USER = throwaway_user("inv")
HVGUARD = [sys.executable, "-m", "hvguard"]


@pytest.fixture(scope="module")
def servers() -> Iterator[list[Sshd]]:
    started: list[Sshd] = []
    try:
        for address in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
            server = Sshd(address)
            started.append(server)
            if address == "127.0.0.4":
                server.add_user(USER, sudo=True)
            else:
                server.authorize("root")
            server.start()
        yield started
    finally:
        for server in started:
            server.stop()


@pytest.fixture(autouse=True)
def _no_personal_ssh_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ssh-agent and an empty HOME: only the inventory's keys can authenticate."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


def _inventory(servers: list[Sshd], tmp_path: Path) -> Path:
    hv1, hv2, hv3 = servers

    def host(server: Sshd, user: str, **extra: object) -> dict[str, object]:
        return {
            "ansible_host": server.address,
            "ansible_port": server.port,
            "ansible_user": user,
            "ansible_ssh_private_key_file": str(server.client_key),
            **extra,
        }

    inventory = {
        "all": {
            "children": {
                "site_a": {"hosts": {"hv1": host(hv1, "root"), "hv2": host(hv2, "root")}},
                "site_b": {"hosts": {"hv3": host(hv3, USER, ansible_become=True)}},
                "retired": {"hosts": {"old1": {"ansible_host": "127.0.0.9", "ansible_port": free_port()}}},
            }
        }
    }
    path = tmp_path / "estate.yml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def _exceptions(tmp_path: Path) -> Path:
    """One exception per catalog measure, all scoped to the inventory group site_a."""
    entries = [
        {
            "id": f"EX-{n:03d}",
            "measure": measure,
            "scope": {"groups": ["site_a"]},
            "justification": "Site A is being decommissioned; its findings are accepted until then.",
            "risk_owner": "Head of Platform",
            "approved_by": "CISO",
            "approved_on": "2026-01-10",
            "expires_on": "2027-01-10",
            "risk_rating": "medium",
        }
        for n, measure in enumerate(load_catalog().ids)
    ]
    path = tmp_path / "exceptions.yaml"
    path.write_text(yaml.safe_dump({"exceptions": entries}, sort_keys=False))
    return path


def test_scan_inventory_collects_each_host_its_own_way_and_scopes_exceptions_by_group(
    servers: list[Sshd], tmp_path: Path
) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("".join(s.known_hosts_line() for s in servers))
    md = tmp_path / "report.md"
    done = subprocess.run(
        [
            *HVGUARD,
            "scan",
            "--inventory",
            str(_inventory(servers, tmp_path)),
            "--limit",
            "!retired",
            "--known-hosts",
            str(known_hosts),
            "--exceptions",
            str(_exceptions(tmp_path)),
            "--as-of",
            "2026-06-01",
            "--no-history",
            "--fail-on",
            "never",
            "-o",
            "json:-",
            "-o",
            f"markdown:{md}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    expected = [servers[0].target("root"), servers[1].target("root"), servers[2].target(USER)]
    # old1 (group retired, a dead port) was left out by --limit: it is not even a not-assessed target.
    assert [t["id"] for t in report["targets"]] == expected
    by_id = {t["id"]: t for t in report["targets"]}
    for target in expected:
        assert by_id[target]["unreachable"] is None, by_id[target]["unreachable"]
    assert [by_id[t]["groups"] for t in expected] == [["site_a"], ["site_a"], ["site_b"]]
    # ansible_become on hv3 reached the transport: its non-root account collected as root via sudo.
    assert by_id[expected[2]]["collection"]["privileged"] is True

    per_target: dict[str, set[str]] = {t: set() for t in expected}
    for r in report["results"]:
        per_target[r["target"]].add(r["status"])
    for target in expected[:2]:  # site_a: every fail and warn waived by the group-scoped register
        assert "waived" in per_target[target] and not per_target[target] & {"fail", "warn"}
    assert "waived" not in per_target[expected[2]]  # site_b: outside every entry's scope
    assert per_target[expected[2]] & {"fail", "warn"}, per_target[expected[2]]

    by_group = report["summary"]["by_group"]
    assert list(by_group) == ["site_a", "site_b"]
    assert by_group["site_a"]["targets"] == 2 and by_group["site_b"]["targets"] == 1
    assert "waived" not in by_group["site_b"]["by_measure"].values()
    assert "waived" in by_group["site_a"]["by_measure"].values()
    text = md.read_text()
    assert "- **Groups** (2):" in text and "groups site\\_a" in text
