"""apt.conf(5) syntax as apt reads it: the manual's own examples, apt's corner cases, and every case checked
against the real ``apt-config dump`` reading the same file (when apt is installed), so the parser cannot
drift from apt. Plus the collector reading an offline root's block-syntax ``APT::Periodic`` (issue 10.3)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hvguard.collect.linux.aptconf import AptConfig, apt_parts_order, parse_apt_conf

CASES: dict[str, str] = {
    # apt.conf(5), "SYNTAX": the scoped form and the block form are the same setting
    "manual-block": 'APT {\n  Get {\n    Assume-Yes "true";\n    Fix-Broken "true";\n  };\n};\n',
    "manual-scoped": 'APT::Get::Assume-Yes "true";\nAPT::Get::Fix-Broken "true";\n',
    # apt.conf(5): a list, and #clear of it
    "manual-list": 'DPkg::Pre-Install-Pkgs {"/usr/sbin/dpkg-preconfigure --apt";};\n',
    "periodic-block": 'APT { Periodic { Unattended-Upgrade "1"; Update-Package-Lists "1"; }; };\n',
    "periodic-mixed": 'APT::Periodic {\n  Unattended-Upgrade "1";\n};\napt::periodic::enable "0";\n',
    "comments": (
        '// a comment\nAPT::Periodic::Enable "1"; # trailing hash comment\n/* a block\n'
        'APT::Periodic::Enable "0";\n*/ APT::Periodic::Unattended-Upgrade "1"; // end\n'
        'Q "a#b//c/*d*/";\n'
    ),
    "clear": 'Zap { a "1"; b "2"; };\n#clear Zap::a;\nL:: "x"; L:: "y";\n#clear L;\nL:: "z";\n',
    "brace-ends-statement": 'A { B "1" };\n',
    "concatenated-and-bare": 'C "x" "y";\nD bare;\nE "%41";\nF %41;\n',
    "later-wins": 'APT::Periodic::Unattended-Upgrade "1";\nAPT { Periodic { Unattended-Upgrade "0"; }; };\n',
}


def _ours(text: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    conf = AptConfig()
    assert parse_apt_conf(text, "/t.conf", conf), conf.issues
    return (
        {k: s.value for k, s in conf.values.items()},
        {k: [s.value for s in v] for k, v in conf.lists.items()},
    )


def test_manual_block_and_scoped_forms_are_one_setting() -> None:
    assert _ours(CASES["manual-block"]) == _ours(CASES["manual-scoped"])
    values, _ = _ours(CASES["manual-block"])
    assert values == {"apt::get::assume-yes": "true", "apt::get::fix-broken": "true"}


def test_periodic_block_syntax_is_read() -> None:
    values, _ = _ours(CASES["periodic-block"])
    assert values["apt::periodic::unattended-upgrade"] == "1"
    conf = AptConfig()
    parse_apt_conf(CASES["periodic-mixed"], "/etc/apt/apt.conf.d/20auto-upgrades", conf)
    setting = conf.get("APT::Periodic::Unattended-Upgrade")
    assert setting is not None and setting.where() == "/etc/apt/apt.conf.d/20auto-upgrades:2"
    assert conf.get("APT::Periodic::Enable") is not None and conf.get("APT::Periodic::Enable").value == "0"  # type: ignore[union-attr]


def test_comments_quotes_clear_and_lists() -> None:
    values, _ = _ours(CASES["comments"])
    assert values == {
        "apt::periodic::enable": "1",
        "apt::periodic::unattended-upgrade": "1",
        "q": "a#b//c/*d*/",
    }
    values, lists = _ours(CASES["clear"])
    assert values == {"zap::b": "2"} and lists == {"l": ["z"]}
    _, lists = _ours(CASES["manual-list"])
    assert lists == {"dpkg::pre-install-pkgs": ["/usr/sbin/dpkg-preconfigure --apt"]}
    values, _ = _ours(CASES["concatenated-and-bare"])
    assert values == {"c": "x y", "d": "bare", "e": "%41", "f": "A"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('APT::Periodic::Enable "1" junk;\n', "extra junk after value"),
        ('APT::Periodic::Enable "1"\n', "extra junk at end of file"),
        ('{ "x"; };\n', "block starts with no name"),
        ("A { #clear B; };\n", "directives can only be done at the top level"),
        ("#includes x;\n", "unsupported directive"),
    ],
)
def test_what_apt_refuses_is_an_issue(text: str, message: str) -> None:
    conf = AptConfig()
    assert not parse_apt_conf(text, "/t.conf", conf)
    assert conf.issues and message in conf.issues[0][2]


def test_parts_order_is_apts() -> None:
    names = [
        "99z.conf",
        "20auto-upgrades",
        "50x.dpkg-old",
        "10a.bak",
        "x~",
        "bad name",
        "30y.txt",
        "05b",
        ".h",
    ]
    assert apt_parts_order(names) == ["05b", "20auto-upgrades", "99z.conf"]


def _apt_config_dump(tmp_path: Path, text: str, parts: dict[str, str] | None = None) -> dict[str, str]:
    """``apt-config dump`` of a configuration made of ``text`` (and a parts directory), nothing else."""
    partdir = tmp_path / "parts"
    partdir.mkdir(exist_ok=True)
    for name, body in (parts or {}).items():
        (partdir / name).write_text(body)
    conf = tmp_path / "apt.conf"
    conf.write_text(f'Dir::Etc::parts "{partdir}/";\nDir::Etc::main "/nonexistent";\n')
    main = tmp_path / "main.conf"
    main.write_text(text)
    env = {**os.environ, "APT_CONFIG": str(conf), "LC_ALL": "C"}
    done = subprocess.run(
        ["apt-config", "-c", str(main), "dump"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and not done.stderr.startswith("E:"), done.stderr
    out: dict[str, str] = {}
    for line in done.stdout.splitlines():
        key, _, rest = line.partition(" ")
        if key.endswith("::") or not rest.endswith('";'):
            continue
        out[key.lower()] = rest[1:-2]
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_values_as_real_apt_config(name: str, tmp_path: Path) -> None:
    if shutil.which("apt-config") is None:
        pytest.skip("apt-config not installed")
    dump = _apt_config_dump(tmp_path, CASES[name])
    values, _ = _ours(CASES[name])
    for key, value in values.items():
        assert dump.get(key) == value, f"{key}: apt-config says {dump.get(key)!r}, hvguard {value!r}"
    if name == "clear":
        assert "zap::a" not in dump or dump["zap::a"] == ""


def test_parts_order_and_last_setting_win_as_in_real_apt(tmp_path: Path) -> None:
    """Which files of apt.conf.d apt reads, in which order: the setting each file makes last wins."""
    if shutil.which("apt-config") is None:
        pytest.skip("apt-config not installed")
    names = ["10a", "20b.conf", "30c.txt", "40d.bak", ".50e", "60f.dpkg-dist", "70g~", "80h.conf.save", "05i"]
    parts = {n: f'HvgTest::Seen::{i} "{n}";\nHvgTest::Last "{n}";\n' for i, n in enumerate(names)}
    dump = _apt_config_dump(tmp_path, "", parts)
    seen = sorted(v for k, v in dump.items() if k.startswith("hvgtest::seen::"))
    order = apt_parts_order(names)
    assert sorted(order) == seen
    assert dump["hvgtest::last"] == order[-1]
