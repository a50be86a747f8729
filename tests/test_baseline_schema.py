"""The baseline file: every mistake is an error naming its line; valid files load exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from msgspec import UNSET

from hvguard.baseline.schema import BaselineError, Vcpu, load_baseline, parse_baseline

GOOD = """\
schema: hvguard.baseline/1
description: web tier
host:
  qemu_conf:
    security_driver: selinux
    namespaces: [mount]
    vnc_listen: null
  facts:
    kernel.lockdown: integrity
vm_classes:
  - name: web
    match: {name: "web-*"}
    settings:
      type: kvm
      vcpu: {maximum: 2}
      cputune: {quota: 50000, period: 100000, shares: null}
      disks:
        "*": {iotune: {total_bytes_sec: 10485760, total_iops_sec: 500}}
      interfaces:
        "*": {inbound: {average: 1000}, outbound: null}
      seclabels: [{model: dac, type: dynamic, relabel: yes}]
  - name: tagged
    match: {metadata: {class: db}}
    settings:
      memtune: {soft_limit_kib: 65536}
"""


def err(text: str) -> str:
    with pytest.raises(BaselineError) as exc:
        parse_baseline(text, "b.yaml")
    return str(exc.value)


def test_a_valid_file_loads_with_absent_null_and_values_kept_apart() -> None:
    loaded = parse_baseline(GOOD, "b.yaml")
    b = loaded.baseline
    assert [c.name for c in b.vm_classes] == ["web", "tagged"]
    web = b.vm_classes[0].settings
    assert web.vcpu == Vcpu(maximum=2)  # current absent = not governed
    assert web.cputune is not UNSET and web.cputune.shares is None and web.cputune.quota == 50000
    assert web.cputune.global_quota is UNSET
    assert web.seclabels is not UNSET and web.seclabels[0].relabel is True
    assert b.host is not UNSET and b.host.qemu_conf == {
        "security_driver": "selinux",
        "namespaces": ["mount"],
        "vnc_listen": None,
    }
    assert loaded.warnings == ()


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (GOOD.replace("quota: 50000", "qouta: 50000"), 16, "unknown key 'qouta'"),
        (
            GOOD.replace("      memtune: {soft_limit_kib", "      memtun: {soft_limit_kib"),
            25,
            "unknown key 'memtun'",
        ),
        (GOOD.replace("soft_limit_kib: 65536", "min_guarantee_kib: 65536"), 25, "not valid for QEMU"),
        (GOOD.replace("maximum: 2", "maximum: two"), 15, "Expected `int`"),
        (GOOD.replace("relabel: yes", "relabel: 3"), 21, "Expected `bool"),
        (GOOD.replace("total_iops_sec: 500", "total_iops: 500"), 18, "unknown iotune limit 'total_iops'"),
        (GOOD.replace("total_iops_sec: 500", "total_iops_sec: 0"), 18, "must be positive"),
        (
            GOOD.replace("    namespaces: [mount]\n", "    namespaces: [mount]\n    namespaces: []\n"),
            7,
            "duplicate key",
        ),
        (GOOD.replace("schema: hvguard.baseline/1", "schema: hvguard.baseline/2"), 1, "schema must be"),
        (GOOD.replace("kernel.lockdown", "kernel.lockdwn"), 9, "unknown host fact"),
        (
            GOOD.replace("security_driver: selinux", "security-driver: selinux"),
            5,
            "not a libvirt configuration key",
        ),
        (GOOD.replace("security_driver: selinux", "security_driver: true"), 5, "Expected `int | str"),
        (GOOD.replace('match: {name: "web-*"}', "match: {}"), 12, "match needs"),
        (GOOD.replace("name: tagged", "name: web"), 22, "used twice"),
        (GOOD.replace("vcpu: {maximum: 2}", "vcpu: {maximum: 2, current: 3}"), 15, "cannot exceed"),
        (GOOD.replace("    match: {metadata: {class: db}}\n", ""), 22, "missing required key 'match'"),
        (GOOD.replace("description: web tier", "description: web: tier"), 2, "invalid YAML"),
        (
            GOOD.replace("namespaces: [mount]", "namespaces: [mount]\n    user: [1]"),
            7,
            "at host.qemu_conf.user",
        ),
        (GOOD.replace("total_iops_sec: 500", "total_iops_sec: x"), 18, "disks.*.iotune.total_iops_sec"),
    ],
)
def test_every_mistake_names_its_line(text: str, line: int, words: str) -> None:
    message = err(text)
    assert message.startswith(f"b.yaml line {line}: "), message
    assert words in message, message
    assert "\n" not in message


def test_empty_and_non_mapping_files_are_errors() -> None:
    assert "empty file" in err("")
    assert "expected a mapping" in err("- a\n- b\n")


def test_a_catch_all_before_other_classes_is_a_lint_warning() -> None:
    text = GOOD.replace('match: {name: "web-*"}', 'match: {name: "*"}')
    assert parse_baseline(text, "b.yaml").warnings == (
        "class 'web' matches every VM, so later classes never apply: tagged",
    )


def test_load_reports_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="no such file"):
        load_baseline(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\xff\xfe schema")
    with pytest.raises(BaselineError, match="not UTF-8"):
        load_baseline(bad)
