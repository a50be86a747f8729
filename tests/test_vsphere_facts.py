"""The vSphere facts model: it round-trips through a bundle, older bundles still read, areas are unique."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

from hvguard.collect.bundle import make_bundle, read_bundle, write_bundle
from hvguard.facts import FACTS_VERSION, JUDGED_HOST_OPTIONS, AdvancedOptions, host_area, vm_area
from vsphere_factories import esxi_target, vcenter_target


def test_vsphere_target_round_trips_through_a_bundle(tmp_path: Path) -> None:
    targets = [esxi_target(), vcenter_target()]
    path = tmp_path / "b.json"
    write_bundle(make_bundle(targets), path)
    back = read_bundle(path)
    assert [t.vsphere for t in back.targets] == [t.vsphere for t in targets]
    assert back.targets[1].vsphere is not None
    assert back.targets[1].vsphere.hosts[0].options == targets[1].vsphere.hosts[0].options  # type: ignore[union-attr]


def test_option_values_keep_the_api_types() -> None:
    opts = AdvancedOptions(
        values={"a": 600, "b": True, "c": "ssl://x:1514", "d": 1.5}, unreadable={"e": "InvalidName"}
    )
    back = msgspec.json.decode(msgspec.json.encode(opts), type=AdvancedOptions)
    assert back.values == {"a": 600, "b": True, "c": "ssl://x:1514", "d": 1.5}
    assert type(back.values["a"]) is int and type(back.values["b"]) is bool
    assert back.unreadable == {"e": "InvalidName"}


def test_a_version_3_bundle_without_vsphere_facts_still_reads(tmp_path: Path) -> None:
    from factories import target

    path = tmp_path / "v3.json"
    write_bundle(make_bundle([target()]), path)
    raw = json.loads(path.read_bytes())
    assert raw["facts_version"] == FACTS_VERSION == 5
    raw["facts_version"] = 3
    path.write_text(json.dumps(raw), encoding="utf-8")
    back = read_bundle(path)
    assert back.facts_version == FACTS_VERSION
    assert back.targets[0].vsphere is None


def test_problem_areas_use_morefs_so_similar_names_cannot_collide() -> None:
    assert host_area("host-1", "options") == "vsphere.host:host-1.options"
    assert not host_area("host-10").startswith(host_area("host-1") + ".")
    assert vm_area("vm-7", "devices") == "vsphere.vm:vm-7.devices"


def test_every_option_key_a_check_names_is_in_the_judged_list() -> None:
    """The collector queries JUDGED_HOST_OPTIONS; a check reading a key outside it would always be error."""
    import re

    src = Path(__file__).resolve().parents[1] / "src" / "hvguard" / "checks"
    pattern = re.compile(r'"((?:Syslog|UserVars|DCUI|Config|Security|VMkernel|Net)\.[A-Za-z0-9.]+)"')
    named = {k for path in src.rglob("*.py") for k in pattern.findall(path.read_text(encoding="utf-8"))}
    assert named and named <= set(JUDGED_HOST_OPTIONS)
