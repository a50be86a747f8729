"""The libvirt config-file parser accepts exactly what libvirt's virconf.c accepts.

Expected outcomes were cross-checked against libvirt 9.0's own compiled parser (virConfReadString):
same values, same error wording, same line numbers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hvguard.collect.hostfs import resolve_in_root
from hvguard.collect.libvirt import config as libvirt_config
from hvguard.collect.libvirt.config import parse_libvirt_conf, read_libvirt_conf
from hvguard.facts import ConfFile, ConfValue

PATH = "/etc/libvirt/qemu.conf"


def values(text: str) -> dict[str, object]:
    """Parse ``text`` and return ``{name: value}``, failing on a parse error."""
    conf = parse_libvirt_conf(text, PATH)
    assert conf.error is None, conf.error
    return {name: item.value for name, item in conf.values.items()}


def error(text: str) -> str | None:
    return parse_libvirt_conf(text, PATH).error


# --------------------------------------------------------------------------------------------------------
# Values


def test_real_world_qemu_conf_shape() -> None:
    text = """# Master configuration file for the QEMU driver.
#
user = "qemu"   # the account QEMU runs as
group = "kvm"

cgroup_device_acl = [
    "/dev/null", "/dev/full", "/dev/zero",
    "/dev/random", "/dev/urandom",
    "/dev/ptmx", "/dev/kvm",
]
namespaces = [ "mount" ]
security_default_confined = 1
max_files = -1
"""
    conf = parse_libvirt_conf(text, PATH)
    assert conf == ConfFile(
        path=PATH,
        present=True,
        values={
            "user": ConfValue(value="qemu", line=3),
            "group": ConfValue(value="kvm", line=4),
            "cgroup_device_acl": ConfValue(
                value=[
                    "/dev/null",
                    "/dev/full",
                    "/dev/zero",
                    "/dev/random",
                    "/dev/urandom",
                    "/dev/ptmx",
                    "/dev/kvm",
                ],
                line=6,
            ),
            "namespaces": ConfValue(value=["mount"], line=11),
            "security_default_confined": ConfValue(value=1, line=12),
            "max_files": ConfValue(value=-1, line=13),
        },
    )


def test_integers_keep_their_sign_and_booleans_stay_integers() -> None:
    assert values("a = -5\nb = +7\nc = 0\nd = 1\n") == {"a": -5, "b": 7, "c": 0, "d": 1}


def test_single_quotes_hold_double_quotes_and_the_reverse() -> None:
    assert values('a = \'say "hi"\'\nb = "it\'s"\n') == {"a": 'say "hi"', "b": "it's"}


def test_strings_have_no_escapes() -> None:
    # virConfParseString copies the bytes between the quotes: a backslash is just a backslash.
    assert values('a = "C:\\path\\n"\n') == {"a": "C:\\path\\n"}


def test_a_backslash_does_not_protect_a_quote() -> None:
    assert error('a = "x\\"y"\n') == f"{PATH} line 1: expecting a separator"


def test_triple_quoted_strings_span_lines_and_keep_line_numbers_right() -> None:
    conf = parse_libvirt_conf('a = """first\nsecond"""\nb = 2\n', PATH)
    assert conf.values == {
        "a": ConfValue(value="first\nsecond", line=1),
        "b": ConfValue(value=2, line=3),
    }


def test_empty_list_and_trailing_comma() -> None:
    assert values('a = []\nb = [ "x", ]\nc = [\n\n  "y"\n  ,\n  "z"\n]\n') == {
        "a": [],
        "b": ["x"],
        "c": ["y", "z"],
    }


def test_first_assignment_wins_like_virConfGetValue() -> None:
    conf = parse_libvirt_conf('security_driver = "none"\n\nsecurity_driver = "selinux"\n', PATH)
    assert conf.values == {"security_driver": ConfValue(value="none", line=1)}


def test_comment_after_value_and_semicolon_separator() -> None:
    assert values("a = 1 # trailing comment\nb = 2; c = 'x'\n") == {"a": 1, "b": 2, "c": "x"}


def test_indentation_crlf_and_no_final_newline() -> None:
    assert values("  a = 1\r\n\tb = 'x'\r\nc = [ \"y\" ]") == {"a": 1, "b": "x", "c": ["y"]}


@pytest.mark.parametrize("text", ["", "# only\n# comments\n", "   \n# indented blank line first\n"])
def test_files_without_settings(text: str) -> None:
    assert parse_libvirt_conf(text, PATH) == ConfFile(path=PATH, present=True)


# --------------------------------------------------------------------------------------------------------
# Errors (file and line in the message, no values: libvirt refuses the whole file)


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ('user = "qemu"\ngroup = "kvm"\nvnc_listen = "0.0.0.0\n', 3, "unterminated string"),
        ("a = 'x\n", 1, "unterminated string"),
        ('a = """never closed\n\n', 1, "unterminated string"),
        ("a = 1\nb 2\n", 2, "expecting an assignment"),
        ("a\n= 1\n", 1, "expecting an assignment"),
        ("a = true\n", 1, "expecting a value"),
        ("a = \n1\n", 1, "expecting a value"),
        ("a = -\n", 1, "unterminated number"),
        ("a = 12abc\n", 1, "expecting a separator"),
        ("1a = 2\n", 1, "expecting a name"),
        ("a-b = 3\n", 1, "expecting an assignment"),
        ('a = [ "x" "y" ]\n', 1, "expecting a separator in list"),
        ('a = [ "x",\n', 2, "expecting a value"),
        ('a = [ "x"', 1, "list is not closed with ]"),
        # libvirt has no comments inside lists: the template's commented examples are outside them.
        ('a = [\n  "x",\n  # comment\n  "y",\n]\n', 3, "expecting a value"),
        ('a = [\n  "x", "y" # comment\n]\n', 2, "expecting a separator in list"),
        # A file of blank lines only is refused by libvirt ("expecting a name" at the end).
        ("\n\n", 3, "expecting a name"),
    ],
)
def test_syntax_errors_name_file_and_line(text: str, line: int, reason: str) -> None:
    assert parse_libvirt_conf(text, PATH) == ConfFile(
        path=PATH, present=True, error=f"{PATH} line {line}: {reason}"
    )


def test_number_libvirt_would_wrap_is_an_error() -> None:
    assert error("a = 1\nb = 99999999999999999999\n") == (
        f"{PATH} line 2: number out of range (libvirt would wrap it)"
    )
    assert values(f"a = {2**63 - 1}\nb = {-(2**63)}\n") == {"a": 2**63 - 1, "b": -(2**63)}


def test_list_with_non_string_items_is_an_error() -> None:
    assert (
        error('a = 1\nb = [ "x", 2 ]\n')
        == f"{PATH} line 2: 'b' is a list with non-string items (libvirt expects strings)"
    )


# --------------------------------------------------------------------------------------------------------
# Reading files


def test_missing_file_is_not_present(tmp_path: Path) -> None:
    conf = read_libvirt_conf(tmp_path, "etc/libvirt/qemu.conf")
    assert conf == ConfFile(path=str(tmp_path / "etc/libvirt/qemu.conf"), present=False)


def test_read_file_with_values(tmp_path: Path) -> None:
    path = tmp_path / "etc/libvirt/qemu.conf"
    path.parent.mkdir(parents=True)
    path.write_text('\nuser = "qemu"\n')
    assert read_libvirt_conf(tmp_path, "etc/libvirt/qemu.conf") == ConfFile(
        path=str(path), present=True, values={"user": ConfValue(value="qemu", line=2)}
    )


def test_directory_in_place_of_the_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "etc/libvirt/qemu.conf").mkdir(parents=True)
    conf = read_libvirt_conf(tmp_path, "etc/libvirt/qemu.conf")
    assert conf.present is True
    assert conf.values == {}
    assert conf.error == f"{tmp_path}/etc/libvirt/qemu.conf: is a directory, not a file"


def test_invalid_utf8_is_an_error_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "qemu.conf"
    path.write_bytes(b'user = "qemu"\ngroup = "\xff"\n')
    assert read_libvirt_conf(tmp_path, "qemu.conf").error == f"{path} line 2: not valid UTF-8 text"


def test_file_over_libvirts_size_limit_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(libvirt_config, "MAX_CONF_BYTES", 16)
    (tmp_path / "qemu.conf").write_text('user = "qemu"\ngroup = "qemu"\n')
    error_text = read_libvirt_conf(tmp_path, "qemu.conf").error
    assert error_text is not None
    assert "larger than 16 bytes" in error_text


def test_symlinks_stay_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc/libvirt").mkdir(parents=True)
    (root / "srv").mkdir()
    (root / "srv/qemu.conf").write_text('user = "inside"\n')
    (tmp_path / "outside.conf").write_text('user = "outside"\n')
    # An absolute target means "in the root", as under chroot.
    (root / "etc/libvirt/qemu.conf").symlink_to("/srv/qemu.conf")
    assert read_libvirt_conf(root, "etc/libvirt/qemu.conf").values["user"].value == "inside"
    # ".." cannot climb out of the root.
    (root / "etc/libvirt/libvirtd.conf").symlink_to("../../../outside.conf")
    assert read_libvirt_conf(root, "etc/libvirt/libvirtd.conf").present is False
    assert resolve_in_root(root, "etc/libvirt/libvirtd.conf") == root / "outside.conf"


def test_symlink_loop_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.conf").symlink_to("b.conf")
    (tmp_path / "b.conf").symlink_to("/a.conf")
    conf = read_libvirt_conf(tmp_path, "a.conf")
    assert conf.present is True
    assert conf.error == f"{tmp_path}/a.conf: cannot read: too many levels of symbolic links"


def test_root_slash_is_used_as_is() -> None:
    assert resolve_in_root(Path("/"), "etc/libvirt/qemu.conf") == Path("/etc/libvirt/qemu.conf")


@pytest.mark.parametrize("name", ["qemu.conf", "libvirtd.conf"])
def test_shipped_templates_on_this_machine_parse_to_nothing(name: str) -> None:
    relpath = f"etc/libvirt/{name}"
    if not os.path.isfile(f"/{relpath}"):
        pytest.skip(f"/{relpath} is not installed here")
    conf = read_libvirt_conf(Path("/"), relpath)
    # Debian/Fedora ship every setting commented out.
    assert conf == ConfFile(path=f"/{relpath}", present=True)
