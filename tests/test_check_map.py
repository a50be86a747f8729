"""The measure → check map (catalog/checks.yaml) and the check registry agree both ways; coverage."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

from hvguard.catalog import load_catalog
from hvguard.catalog.checks import MANUAL_ONLY, coverage, load_check_map
from hvguard.checks.registry import registered_checks

PLATFORMS = {"kvm-libvirt", "linux-host", "vmware-esxi", "vmware-vcenter"}


def test_every_registered_check_is_in_the_map_with_its_measure_and_module() -> None:
    cmap = load_check_map()
    for chk in registered_checks():
        meta = cmap.check(chk.id)
        assert meta.measure == chk.measure, chk.id
        assert chk.fn.__module__ == f"hvguard.checks.{meta.module}", chk.id


def test_every_map_entry_is_registered_in_map_order() -> None:
    cmap = load_check_map()
    assert [c.id for c in registered_checks()] == [c.id for c in cmap.checks]
    assert len({c.id for c in cmap.checks}) == len(cmap.checks)


def test_every_measure_has_a_check_or_is_manual_only() -> None:
    catalog = load_catalog()
    cmap = load_check_map()
    assert len(catalog.ids) == 36
    for measure in catalog.ids:
        assert cmap.for_measure(measure) or measure in cmap.manual_only, measure
    assert set(cmap.manual_only) <= set(catalog.ids)
    assert {c.measure for c in cmap.checks} <= set(catalog.ids)


def test_platforms_are_known_ids_and_modules_import() -> None:
    for meta in load_check_map().checks:
        assert meta.platforms and set(meta.platforms) <= PLATFORMS, meta.id
        module = importlib.import_module(f"hvguard.checks.{meta.module}")
        assert meta.measure in (module.__doc__ or ""), f"{meta.module} docstring names {meta.measure}"


def test_coverage_per_platform() -> None:
    catalog = load_catalog()
    rows = coverage(catalog, None)
    assert [r.measure for r in rows] == list(catalog.ids)
    assert all(r.checks and r.automation != MANUAL_ONLY for r in rows)
    by_id = {r.measure: r for r in rows}
    assert by_id["11.1.1"].checks[0] == "kvm.type1-hypervisor"
    assert by_id["11.1.1"].platforms == ("kvm-libvirt", "linux-host", "vmware-esxi", "vmware-vcenter")
    linux = {r.measure: r for r in coverage(catalog, "linux-host")}
    assert linux["11.4.3"].checks == ("host.sshd-mfa", "host.sudo-mfa")
    assert linux["11.3.1"].checks == () and linux["11.3.1"].automation == MANUAL_ONLY
    esxi = coverage(catalog, "vmware-esxi")
    assert all(r.checks and r.automation != MANUAL_ONLY for r in esxi)
    assert all(c.startswith("vsphere.") for r in esxi for c in r.checks)
    vcenter = {r.measure: r.checks for r in coverage(catalog, "vmware-vcenter")}
    assert vcenter == {r.measure: r.checks for r in esxi}


def _hvguard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hvguard", *args], capture_output=True, text=True, check=False, timeout=60
    )


def test_catalog_coverage_command_json_and_table() -> None:
    res = _hvguard("catalog", "--coverage", "--platform", "kvm-libvirt", "--format", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["platform"] == "kvm-libvirt"
    assert [m["measure"] for m in data["measures"]] == list(load_catalog().ids)
    by_measure: dict[str, list[str]] = {}
    for c in registered_checks():
        if "kvm-libvirt" in c.platforms:
            by_measure.setdefault(c.measure, []).append(c.id)
    for m in data["measures"]:
        assert m["checks"] == by_measure.get(m["measure"], [])
    table = _hvguard("catalog", "--coverage")
    assert table.returncode == 0 and "36 measures have a check" in table.stdout
    wrong = _hvguard("catalog", "--platform", "kvm-libvirt")
    assert wrong.returncode == 2 and wrong.stderr.strip() == "hvguard: error: --platform goes with --coverage"
