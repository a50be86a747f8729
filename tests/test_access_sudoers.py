"""hvguard's sudoers parser, checked against sudo's own parser (``cvtsudoers -e -f json`` expands aliases;
``visudo -c`` reports syntax errors) on the syntaxes people write."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hvguard.collect.linux.access_files import HostFiles
from hvguard.collect.linux.access_sudoers import parse_sudoers
from hvguard.facts import SudoFacts

DATA = Path(__file__).parent / "data" / "roots"


def tool(name: str) -> str:
    path = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        pytest.fail(f"{name} is missing (scripts/setup.sh test installs sudo)")
    return path


def parse_text(tmp_path: Path, text: str, extra: dict[str, str] | None = None) -> SudoFacts:
    (tmp_path / "etc").mkdir(exist_ok=True)
    (tmp_path / "etc/sudoers").write_text(text)
    for rel, body in (extra or {}).items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(body)
    return parse_sudoers(HostFiles(tmp_path), "hv1")


_USER_KINDS = {
    "username": "",
    "usergroup": "%",
    "userid": "#",
    "usergid": "%#",
    "netgroup": "+",
    "nonunixgroup": "%:",
}


def _principal(item: dict[str, Any]) -> str:
    negated = "!" if item.get("negated") else ""
    for key, prefix in _USER_KINDS.items():
        if key in item:
            value = str(item[key])
            return negated + (value if value == "ALL" else prefix + value)
    raise AssertionError(f"unexpected user item {item}")


def sudo_view(path: Path) -> list[tuple[list[str], list[str], bool]]:
    """(users, commands, nopasswd) per command group, as sudo itself parses the file."""
    done = subprocess.run(
        [tool("cvtsudoers"), "-e", "-f", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    data = json.loads(done.stdout)
    out: list[tuple[list[str], list[str], bool]] = []
    for spec in data.get("User_Specs", []):
        users = [_principal(u) for u in spec["User_List"]]
        for cmnd in spec["Cmnd_Specs"]:
            options = {k: v for o in cmnd.get("Options", []) for k, v in o.items()}
            commands = [("!" if c.get("negated") else "") + c["command"] for c in cmnd["Commands"]]
            out.append((users, commands, options.get("authenticate") is False))
    return out


def our_view(facts: SudoFacts) -> list[tuple[list[str], list[str], bool]]:
    return [(r.principals, r.commands, r.nopasswd) for r in facts.rules]


SAMPLES = {
    "debian-default": (
        "Defaults\tenv_reset\nDefaults\tmail_badpass\n"
        'Defaults\tsecure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"\n'
        "root\tALL=(ALL:ALL) ALL\n%sudo\tALL=(ALL:ALL) ALL\n"
    ),
    "aliases-and-continuations": (
        "User_Alias OPS = alice, bob, \\\n    %hv-ops\n"
        "User_Alias ADMINS = carol : AUDIT = #1001, %#2000\n"
        "Runas_Alias VMADM = root, libvirt-qemu\n"
        "Host_Alias HV = hv1, hv2, 10.0.5.0/24\n"
        "Cmnd_Alias VIRT = /usr/bin/virsh list, /usr/bin/virsh start *, \\\n    /usr/bin/virsh shutdown *\n"
        "Cmnd_Alias SHELLS = /bin/sh, /bin/bash\n"
        "OPS HV = (VMADM) NOPASSWD: VIRT, PASSWD: /usr/bin/systemctl restart libvirtd\n"
        "ADMINS ALL = ALL, !SHELLS\n"
        "AUDIT ALL = (root) NOPASSWD: /usr/bin/virsh dumpxml *, sudoedit /etc/libvirt/qemu.conf # comment\n"
    ),
    "uids-negation-options": (
        "#1000 ALL = /usr/bin/id\n"
        "ALL, !mallory ALL = (root) /usr/bin/virsh list\n"
        "dave ALL = TIMEOUT=30 /usr/bin/virt-top\n"
        "erin ALL=(ALL) NOPASSWD:ALL\n"
        "frank ALL = /usr/bin/printf a\\,b, /usr/bin/true\n"
        "User_Alias NESTED = OPS2, grace\nUser_Alias OPS2 = heidi\n"
        "NESTED ALL = !/usr/bin/su, /usr/bin/virsh\n"
    ),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_resolved_grants_match_sudos_own_parser(tmp_path: Path, name: str) -> None:
    facts = parse_text(tmp_path, SAMPLES[name])
    assert facts.errors == []
    assert our_view(facts) == sudo_view(tmp_path / "etc/sudoers")


@pytest.mark.parametrize(
    "text",
    [
        "root ALL=(ALL:ALL) ALL\nbob ALL = (root NOPASSWD: /usr/bin/virsh\n",
        "alice ALL = /usr/bin/id\ncarol ALL\n",
        "User_Alias lower = alice\n",
        'Cmnd_Alias X = /bin/true\nbob ALL = "unterminated\n',
    ],
)
def test_syntax_errors_are_reported_on_the_line_visudo_names(tmp_path: Path, text: str) -> None:
    path = tmp_path / "etc/sudoers"
    facts = parse_text(tmp_path, text)
    done = subprocess.run(
        [tool("visudo"), "-c", "-f", str(path)], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode != 0
    visudo_lines = {int(n) for n in re.findall(r"sudoers:(\d+):", done.stdout + done.stderr)}
    ours = {int(m.group(1)) for e in facts.errors if (m := re.search(r" line (\d+): ", e))}
    assert ours and ours == visudo_lines, (facts.errors, done.stdout + done.stderr)


def test_includes_includedir_and_percent_h(tmp_path: Path) -> None:
    facts = parse_text(
        tmp_path,
        "root ALL=(ALL) ALL\n#includedir /etc/sudoers.d\n@include sudoers.local\n#include /etc/sudoers.%h\n"
        "  #include /etc/not-an-include\n",
        {
            "etc/sudoers.d/10-ops": "bob ALL = /usr/bin/virsh list\n",
            "etc/sudoers.d/README.md": "ignored ALL = ALL\n",
            "etc/sudoers.d/old~": "ignored ALL = ALL\n",
            "etc/sudoers.local": "carol ALL = /usr/bin/id\n",
            "etc/sudoers.hv1": "dave ALL = /usr/bin/uptime\n",
        },
    )
    assert facts.errors == []
    assert facts.files == ["/etc/sudoers", "/etc/sudoers.d/10-ops", "/etc/sudoers.local", "/etc/sudoers.hv1"]
    assert [(r.principals, r.file, r.line) for r in facts.rules] == [
        (["root"], "/etc/sudoers", 1),
        (["bob"], "/etc/sudoers.d/10-ops", 1),
        (["carol"], "/etc/sudoers.local", 1),
        (["dave"], "/etc/sudoers.hv1", 1),
    ]


def test_missing_include_and_undefined_alias_are_errors(tmp_path: Path) -> None:
    facts = parse_text(tmp_path, "@include /etc/nowhere\nADMINS ALL = ALL\n")
    assert "/etc/nowhere: included file does not exist" in facts.errors
    assert any("user alias ADMINS is used but not defined" in e and "line 2" in e for e in facts.errors)


def test_fixture_roles_resolve_with_file_and_line() -> None:
    facts = parse_sudoers(HostFiles(DATA / "access-good"), "hv1")
    assert facts.errors == []  # README.txt (a name with a dot) is skipped by includedir, as sudo does
    roles = {(tuple(r.principals), r.file, r.line): r for r in facts.rules}
    ops = roles[(("bob", "%hv-web-ops"), "/etc/sudoers.d/50-hv-roles", 8)]
    assert ops.commands == ["/usr/bin/virsh start *", "/usr/bin/virsh shutdown *", "/usr/bin/virsh reboot *"]
    admins = roles[(("alice", "breakglass"), "/etc/sudoers.d/50-hv-roles", 9)]
    assert "!/usr/bin/virsh undefine *" in admins.commands and not admins.all_commands
