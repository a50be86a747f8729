"""Ansible inventories as targets: the real ``ansible-inventory`` and hvguard's own YAML reader (forced
with a PATH without Ansible) must give the same hosts, groups and targets for the same inventories;
INI goes through Ansible; hostile inventories and patterns are one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hvguard.collect.inventory import InventoryError, InventoryHost, groups_for, load_inventories

ANSIBLE = shutil.which("ansible-inventory")
needs_ansible = pytest.mark.skipif(
    ANSIBLE is None and os.environ.get("CI") != "true",
    reason="ansible-inventory not installed (scripts/setup.sh test installs ansible-core)",
)

SITES = """\
all:
  vars:
    ansible_user: ops
  hosts:
    lone:
      ansible_host: 10.0.0.9
  children:
    site_a:
      vars:
        ansible_port: 2222
        ansible_user: site-a-ops
      hosts:
        hv1:
          ansible_host: 127.0.0.2
        hv2:
      children:
        rack1:
          hosts:
            hv3:
              ansible_port: 2200
          vars:
            ansible_become: true
            ansible_ssh_private_key_file: /keys/rack1
    site_b:
      hosts:
        hv3:
        hv4:
          hvguard_target: qemu+ssh://root@hv4.example/system
      vars:
        ansible_user: site-b-ops
"""

# Sibling groups at the same depth: the later name wins; ansible_group_priority overrides the order;
# a deeper group wins over its parent whatever the names; the host's own value wins over all.
PRECEDENCE = """\
zeta:
  hosts:
    p1:
    p2:
    p3:
  vars:
    ansible_port: 2001
alpha:
  hosts:
    p1:
    p2:
      ansible_port: 2999
  vars:
    ansible_port: 2002
    ansible_group_priority: 10
mid:
  hosts:
    p5:
  vars:
    ansible_user: mid
zz:
  hosts:
    p5:
  vars:
    ansible_user: zz
top:
  children:
    deep:
      hosts:
        p3:
        p4:
      vars:
        ansible_user: deep
  vars:
    ansible_user: top
"""

RANGES = """\
web:
  hosts:
    hv[01:03]:
    hv[a:b].lab:2202:
    "[::1]:2203":
plain:
  hosts: single
"""


def _own_reader(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A PATH without Ansible: hvguard's own reader and pattern evaluator."""
    empty = tmp_path / "no-ansible-bin"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(empty))


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _both(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, paths: list[Path], limit: str | None = None
) -> list[InventoryHost]:
    with_ansible = load_inventories(paths, limit)
    with monkeypatch.context() as patch:
        _own_reader(patch, tmp_path)
        own = load_inventories(paths, limit)
    assert own == with_ansible
    return own


@needs_ansible
def test_sites_inventory_same_hosts_groups_and_targets_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hosts = _both(monkeypatch, tmp_path, [_write(tmp_path, "sites.yml", SITES)])
    by_name = {h.name: h for h in hosts}
    assert [h.name for h in hosts] == ["hv1", "hv2", "hv3", "hv4", "lone"]
    assert by_name["hv1"].target == "ssh://site-a-ops@127.0.0.2:2222"
    assert by_name["hv1"].groups == ("site_a",)
    # hv3: in rack1 (depth 2) and site_a, site_b (depth 1): site_b's user wins over site_a's (name).
    assert by_name["hv3"].user == "site-b-ops"
    assert by_name["hv3"].groups == ("rack1", "site_a", "site_b")
    assert by_name["hv3"].sudo is True
    assert by_name["hv3"].identity_file == "/keys/rack1"
    assert by_name["hv3"].port == 2200
    assert by_name["hv3"].target == "ssh://site-b-ops@hv3:2200"
    assert by_name["hv4"].target == "qemu+ssh://root@hv4.example/system"
    assert by_name["lone"] == InventoryHost(
        name="lone",
        target="ssh://ops@10.0.0.9",
        groups=(),
        sudo=False,
        identity_file=None,
        port=None,
        user="ops",
    )


@needs_ansible
def test_precedence_depth_priority_and_name_order_match_ansible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hosts = {h.name: h for h in _both(monkeypatch, tmp_path, [_write(tmp_path, "prec.yml", PRECEDENCE)])}
    # Merged in (depth, priority, name) order: zeta (1, 1) before alpha (1, 10), so alpha's value wins.
    assert hosts["p1"].port == 2002
    assert hosts["p5"].user == "zz"  # same depth and priority: the later name wins
    assert hosts["p2"].port == 2999
    assert hosts["p3"].user == "deep"
    assert hosts["p4"].groups == ("deep", "top")


@needs_ansible
def test_ranges_ports_and_string_hosts_match_ansible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hosts = _both(monkeypatch, tmp_path, [_write(tmp_path, "ranges.yaml", RANGES)])
    assert [h.target for h in hosts] == [
        "ssh://[::1]:2203",
        "ssh://hv01",
        "ssh://hv02",
        "ssh://hv03",
        "ssh://hva.lab:2202",
        "ssh://hvb.lab:2202",
        "ssh://single",
    ]


@needs_ansible
def test_several_files_and_group_vars_directories_merge_as_ansible_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _write(tmp_path, "a/one.yml", "site_a:\n  hosts:\n    hv1:\n    hv2:\n")
    _write(tmp_path, "a/group_vars/all.yml", "ansible_user: from-group-vars\n")
    _write(tmp_path, "a/group_vars/site_a/ssh.yml", "ansible_port: 2022\n")
    _write(tmp_path, "a/host_vars/hv2.yaml", "ansible_host: 127.0.0.5\nansible_become: yes\n")
    second = _write(
        tmp_path, "b/two.yml", "site_b:\n  hosts:\n    hv2:\n    hv9:\n      ansible_port: 2299\n"
    )
    hosts = {h.name: h for h in _both(monkeypatch, tmp_path, [first, second])}
    assert hosts["hv1"].target == "ssh://from-group-vars@hv1:2022"
    assert hosts["hv2"].target == "ssh://from-group-vars@127.0.0.5:2022"
    assert hosts["hv2"].groups == ("site_a", "site_b")
    assert hosts["hv2"].sudo is True
    # group_vars/all.yml beside one file applies to the hosts of every file, as in Ansible.
    assert hosts["hv9"].target == "ssh://from-group-vars@hv9:2299"


LIMITS = [
    "site_a",
    "site_a:!rack1",
    "hv*:&site_b",
    "site_b,lone",
    "ungrouped",
    "!site_a",
    "&site_b",
    "hv?",
    "all:!hv4",
    "hv1:hv2:hv1",
]


@needs_ansible
@pytest.mark.parametrize("pattern", LIMITS)
def test_limit_patterns_select_what_ansible_selects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pattern: str
) -> None:
    hosts = _both(monkeypatch, tmp_path, [_write(tmp_path, "sites.yml", SITES)], limit=pattern)
    assert hosts  # every pattern of the list selects something


def test_limit_site_a_without_rack1_by_own_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _own_reader(monkeypatch, tmp_path)
    path = _write(tmp_path, "sites.yml", SITES)
    assert [h.name for h in load_inventories([path], "site_a:!rack1")] == ["hv1", "hv2"]
    assert [h.name for h in load_inventories([path], "site_b:&rack1")] == ["hv3"]
    assert [h.name for h in load_inventories([path], "lone,hv4")] == ["hv4", "lone"]


@pytest.mark.parametrize("pattern", ["~hv[0-9]", "site_a[0]", "@retry", "a b", "site_a:!", ""])
def test_limit_syntax_beyond_the_subset_is_refused_without_ansible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pattern: str
) -> None:
    _own_reader(monkeypatch, tmp_path)
    with pytest.raises(InventoryError) as info:
        load_inventories([_write(tmp_path, "sites.yml", SITES)], pattern)
    assert "\n" not in str(info.value)


@needs_ansible
def test_limit_regex_goes_to_ansible_when_installed(tmp_path: Path) -> None:
    hosts = load_inventories([_write(tmp_path, "sites.yml", SITES)], "~hv[12]")
    assert [h.name for h in hosts] == ["hv1", "hv2"]


def test_limit_matching_nothing_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _own_reader(monkeypatch, tmp_path)
    with pytest.raises(InventoryError, match="matches no host"):
        load_inventories([_write(tmp_path, "sites.yml", SITES)], "nosuchgroup")


INI = """\
lone ansible_host=10.0.0.9

[site_a]
hv1 ansible_host=127.0.0.2
hv2

[site_a:vars]
ansible_port=2222
ansible_user=ops

[rack1]
hv3 ansible_port=2200 ansible_become=true

[site_a:children]
rack1
"""


@needs_ansible
def test_ini_inventory_read_through_ansible(tmp_path: Path) -> None:
    hosts = {h.name: h for h in load_inventories([_write(tmp_path, "hosts.ini", INI)], None)}
    assert hosts["hv1"].target == "ssh://ops@127.0.0.2:2222"
    assert hosts["hv3"].groups == ("rack1", "site_a")
    assert hosts["hv3"].sudo is True
    assert hosts["hv3"].target == "ssh://ops@hv3:2200"
    assert hosts["lone"].groups == ()


def test_ini_inventory_without_ansible_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _own_reader(monkeypatch, tmp_path)
    with pytest.raises(InventoryError, match="INI inventories need Ansible") as info:
        load_inventories([_write(tmp_path, "hosts", INI)], None)
    assert "\n" not in str(info.value)


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(8)
)

HOSTILE = {
    "list.yml": ("- hv1\n- hv2\n", "mapping of groups"),
    "scalar.yml": ("just text\n", "mapping of groups"),
    "empty.yml": ("", "empty inventory"),
    "bomb.yml": (BOMB, "aliases expand"),
    "badport.yml": ("g:\n  hosts:\n    hv1:\n      ansible_port: 70000\n", "not a port number"),
    "textport.yml": ("g:\n  hosts:\n    hv1:\n      ansible_port: ssh\n", "not a port number"),
    "ctrl.yml": ('g:\n  hosts:\n    "hv\\u0007x":\n', "control characters"),
    "ctrlvar.yml": ('g:\n  hosts:\n    hv1:\n      ansible_host: "a\\nb"\n', "control characters"),
    "range.yml": ("g:\n  hosts:\n    hv[0:99999999]:\n", "more than"),
    "badkey.yml": ("g:\n  host:\n    hv1:\n", "only 'hosts', 'children' and 'vars'"),
    "loop.yml": ("a:\n  children:\n    b:\n      children:\n        a:\n  hosts:\n    h:\n", "loop"),
    "plugin.yml": ("plugin: amazon.aws.aws_ec2\n", "needs Ansible"),
    "template.yml": ("g:\n  hosts:\n    hv1:\n      ansible_host: \"{{ lookup('env', 'X') }}\"\n", "Jinja"),
    "vault.yml": (
        "g:\n  hosts:\n    hv1:\n      ansible_user: !vault |\n        $ANSIBLE_VAULT;1.1\n",
        "vault",
    ),
    "become.yml": ("g:\n  hosts:\n    hv1:\n      ansible_become: maybe\n", "not a boolean"),
    "winrm.yml": ("g:\n  hosts:\n    hv1:\n      ansible_connection: winrm\n", "not SSH"),
    "badtarget.yml": ("g:\n  hosts:\n    hv1:\n      hvguard_target: gopher://x\n", "hvguard_target"),
    "same.yml": (
        "g:\n  hosts:\n    a:\n      ansible_host: h\n    b:\n      ansible_host: h\n",
        "same target",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_inventory_is_one_line_without_ansible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    text, reason = HOSTILE[name]
    path = _write(tmp_path, name, text)
    _own_reader(monkeypatch, tmp_path)
    with pytest.raises(InventoryError) as info:
        load_inventories([path], None)
    assert reason in str(info.value)
    assert "\n" not in str(info.value)


@needs_ansible
@pytest.mark.parametrize(
    "name", ["list.yml", "empty.yml", "bomb.yml", "badport.yml", "ctrlvar.yml", "template.yml", "same.yml"]
)
def test_hostile_inventory_is_one_line_with_ansible(tmp_path: Path, name: str) -> None:
    text, _reason = HOSTILE[name]
    with pytest.raises(InventoryError) as info:
        load_inventories([_write(tmp_path, name, text)], None)
    assert "\n" not in str(info.value)


def test_huge_file_and_fifo_are_refused_unread(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yml"
    with huge.open("wb") as out:
        out.truncate(64 * 1024 * 1024)
    with pytest.raises(InventoryError, match="larger than"):
        load_inventories([huge], None)
    fifo = tmp_path / "fifo.yml"
    os.mkfifo(fifo)
    with pytest.raises(InventoryError, match="not a regular file"):
        load_inventories([fifo], None)


def test_groups_for_matches_stem_then_host_name_then_target() -> None:
    hosts = [
        InventoryHost("hv1", "ssh://ops@10.0.0.1:2222", ("site_a",), False, None, 2222, "ops"),
        InventoryHost("hv2", "ssh://10.0.0.2", ("site_b", "x"), False, None, None, None),
        InventoryHost("hv3", "qemu+ssh://root@hv3/system", ("site_c",), False, None, None, None),
    ]
    assert groups_for("ssh://elsewhere", None, Path("/bundles/hv1.json"), hosts) == ("site_a",)
    assert groups_for("local", "10.0.0.2", "/b/collected.json", hosts) == ("site_b", "x")
    assert groups_for("local", "hv2", None, hosts) == ("site_b", "x")
    assert groups_for("ssh://root@10.0.0.1", None, None, hosts) == ("site_a",)
    assert groups_for("qemu+ssh://root@hv3/system", None, None, hosts) == ("site_c",)
    assert groups_for("ssh://unknown", "nobody", Path("x.json"), hosts) == ()


# -- the command line -----------------------------------------------------------------------------------


def _hvguard(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "hvguard", *args],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
        env=env,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_evaluate_inventory_gives_a_bundles_targets_their_groups(tmp_path: Path) -> None:
    from factories import target
    from hvguard.collect.bundle import make_bundle, write_bundle

    bundle = tmp_path / "hv2.json"
    write_bundle(make_bundle([target(tid="ssh://root@10.1.1.2")]), bundle)
    inventory = _write(tmp_path, "sites.yml", SITES)
    done = _hvguard("evaluate", str(bundle), "--inventory", str(inventory), "-o", "json:-", "--no-history",
                    "--fail-on", "never")  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # The bundle's file stem names the inventory host hv2 (site_a).
    assert report["targets"][0]["groups"] == ["site_a"]
    assert list(report["summary"]["by_group"]) == ["site_a"]
    plain = _hvguard("evaluate", str(bundle), "-o", "json:-", "--no-history", "--fail-on", "never")
    assert json.loads(plain.stdout)["targets"][0]["groups"] == []


def test_scan_inventory_usage_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    no_ansible = tmp_path / "bin"
    no_ansible.mkdir()
    env = {**os.environ, "PATH": str(no_ansible)}
    cases = [
        (["scan", "--limit", "site_a"], "--limit needs --inventory", None),
        (["scan", "--inventory", str(tmp_path / "missing.yml")], "no such file", None),
        (["scan", "--inventory", str(_write(tmp_path, "hosts", INI))], "INI inventories need Ansible", env),
        (
            ["scan", "--inventory", str(_write(tmp_path, "s.yml", SITES)), "--limit", "~x"],
            "not supported",
            env,
        ),
        (["scan", "--inventory", str(_write(tmp_path, "bomb.yml", BOMB))], "aliases expand", None),
    ]
    for args, reason, environment in cases:
        done = _hvguard(*args, "--no-history", env=environment)
        assert done.returncode == 2 and done.stdout == "", (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and reason in lines[0], (args, done.stderr)


@needs_ansible
def test_what_ansible_skips_with_a_warning_is_passed_on(tmp_path: Path) -> None:
    """Ansible skips an unknown group key with a warning (hvguard's own reader refuses it): the warning
    reaches the caller instead of vanishing with ansible-inventory's stderr."""
    path = _write(tmp_path, "typo.yml", "g:\n  hostz:\n    a:\n  hosts:\n    b:\n")
    said: list[str] = []
    hosts = load_inventories([path], None, warn=said.append)
    assert [h.name for h in hosts] == ["b"]
    assert len(said) == 1 and "Skipping unexpected key (hostz)" in said[0], said


@needs_ansible
def test_hvguard_target_may_name_a_vsphere_or_libvirt_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (
        "esx:\n  hosts:\n    esx01:\n      hvguard_target: vsphere://auditor@esx01.example.net\n"
        "kvm:\n  hosts:\n    hv9:\n      hvguard_target: qemu+tls://hv9.example.net/system\n"
    )
    hosts = _both(monkeypatch, tmp_path, [_write(tmp_path, "mixed.yml", text)])
    assert [(h.target, h.groups) for h in hosts] == [
        ("vsphere://auditor@esx01.example.net", ("esx",)),
        ("qemu+tls://hv9.example.net/system", ("kvm",)),
    ]
