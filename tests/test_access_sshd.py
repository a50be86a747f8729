"""hvguard's sshd_config reader: Include, Match, first-value-wins, accumulation, errors with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from hvguard.collect.linux.access_files import HostFiles
from hvguard.collect.linux.access_sshd import (
    collect_sshd,
    merge_effective,
    parse_sshd_config,
    parse_sshd_t,
    split_args,
)
from hvguard.collect.linux.source import CommandResult, PrefetchedSource, RootSource
from hvguard.facts import SshdFacts

DATA = Path(__file__).parent / "data" / "roots"


def write_root(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def parse(tmp_path: Path, main: str, extra: dict[str, str] | None = None) -> SshdFacts:
    files = {"etc/ssh/sshd_config": main, **(extra or {})}
    return parse_sshd_config(HostFiles(write_root(tmp_path, files)))


def test_split_args_follows_openssh_quoting() -> None:
    assert split_args("a \"b c\" 'd e' f\\ g # comment") == ["a", "b c", "d e", "f g"]
    assert split_args('x\\"y') == ['x"y']


def test_first_value_wins_and_keywords_are_case_insensitive(tmp_path: Path) -> None:
    f = parse(tmp_path, "permitrootlogin no\nPermitRootLogin yes\nPASSWORDAUTHENTICATION No\n")
    assert f.effective["permitrootlogin"].values == ["no"]
    assert (f.effective["permitrootlogin"].file, f.effective["permitrootlogin"].line) == (
        "/etc/ssh/sshd_config",
        1,
    )
    assert f.effective["passwordauthentication"].values == ["no"]  # choices are case-folded like sshd
    assert f.errors == []


def test_accumulating_keywords_keep_every_value_across_files(tmp_path: Path) -> None:
    f = parse(
        tmp_path,
        "AllowUsers alice\nInclude sshd_config.d/*.conf\nAllowUsers bob@10.0.0.0/8\nPort 22\nPort 2222\n",
        {
            "etc/ssh/sshd_config.d/b.conf": "AllowUsers dave\n",
            "etc/ssh/sshd_config.d/a.conf": "AllowUsers carol\n",
        },
    )
    # Include globs are relative to /etc/ssh and read in sorted order (a.conf before b.conf).
    assert f.effective["allowusers"].values == ["alice", "carol", "dave", "bob@10.0.0.0/8"]
    assert f.effective["port"].values == ["22", "2222"]
    assert f.files == [
        "/etc/ssh/sshd_config",
        "/etc/ssh/sshd_config.d/a.conf",
        "/etc/ssh/sshd_config.d/b.conf",
    ]


def test_include_before_main_settings_wins_like_debian(tmp_path: Path) -> None:
    f = parse(
        tmp_path,
        "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin yes\n",
        {"etc/ssh/sshd_config.d/10-hardening.conf": "PermitRootLogin no\n"},
    )
    setting = f.effective["permitrootlogin"]
    assert setting.values == ["no"] and setting.file == "/etc/ssh/sshd_config.d/10-hardening.conf"


def test_match_blocks_are_recorded_and_do_not_change_the_global_values(tmp_path: Path) -> None:
    f = parse(
        tmp_path,
        "PermitRootLogin no\nMatch User backup Address 10.0.0.0/8\n  PermitRootLogin yes\n"
        "  AuthenticationMethods publickey\nMatch all\n  X11Forwarding no\n",
    )
    assert f.effective["permitrootlogin"].values == ["no"]
    first, second = f.matches
    assert first.criteria == [["user", "backup"], ["address", "10.0.0.0/8"]]
    assert (first.file, first.line, first.applies_globally) == ("/etc/ssh/sshd_config", 2, False)
    assert first.settings["permitrootlogin"].values == ["yes"]
    assert first.settings["authenticationmethods"].line == 4
    # "Match all" applies without connection details, as sshd -T shows.
    assert second.applies_globally and f.effective["x11forwarding"].values == ["no"]


def test_match_in_an_included_file_ends_with_that_file(tmp_path: Path) -> None:
    f = parse(
        tmp_path,
        "Include /etc/ssh/extra.conf\nX11Forwarding yes\n",
        {"etc/ssh/extra.conf": "Match User bob\n  X11Forwarding no\n"},
    )
    assert f.effective["x11forwarding"].values == ["yes"]
    assert f.matches[0].file == "/etc/ssh/extra.conf"


def test_include_inside_an_inactive_match_applies_only_there(tmp_path: Path) -> None:
    f = parse(
        tmp_path,
        "Match User bob\n  Include /etc/ssh/bob.conf\n",
        {"etc/ssh/bob.conf": "Match all\nPasswordAuthentication no\n"},
    )
    assert f.effective["passwordauthentication"].file is None  # still sshd's default
    assert not any(m.applies_globally for m in f.matches)


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("PermitRootLogin no\nPermitRootLogn no\n", 2, "Bad configuration option: PermitRootLogn"),
        ("PermitRootLogin\n", 1, 'no argument after keyword "PermitRootLogin"'),
        ("PermitRootLogin maybe\n", 1, 'unsupported option "maybe"'),
        ('AllowUsers "alice\n', 1, "invalid quotes"),
        ("Match Usr alice\n", 1, "Unsupported Match attribute Usr"),
        ("Match\n", 1, "no argument after keyword"),
        ("Match User bob\n  Port 2222\n", 2, "Directive 'Port' is not allowed within a Match block"),
        ("Match all User bob\n", 1, "'all' cannot be combined"),
        ("AuthenticationMethods any publickey\n", 1, '"any" must appear alone'),
    ],
)
def test_lines_sshd_refuses_are_errors_with_file_and_line(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    f = parse(tmp_path, text)
    assert len(f.errors) == 1, f.errors
    assert f.errors[0].startswith(f"/etc/ssh/sshd_config line {line}: ") and reason in f.errors[0]


def test_deprecated_keywords_are_accepted_and_aliases_fold(tmp_path: Path) -> None:
    f = parse(tmp_path, "UsePrivilegeSeparation sandbox\nChallengeResponseAuthentication no\n")
    assert f.errors == []
    assert f.effective["kbdinteractiveauthentication"].values == ["no"]
    assert f.effective["kbdinteractiveauthentication"].line == 2


def test_defaults_fill_what_the_file_does_not_set(tmp_path: Path) -> None:
    f = parse(tmp_path, "X11Forwarding no\n")
    assert f.effective["permitrootlogin"].values == ["prohibit-password"]
    assert f.effective["permitrootlogin"].file is None
    assert f.effective["authenticationmethods"].values == ["any"]


def test_include_loop_stops_at_sshds_depth_limit(tmp_path: Path) -> None:
    f = parse(tmp_path, "Include /etc/ssh/sshd_config\n")
    assert any("nested too deep" in e for e in f.errors)


def test_sshd_t_values_keep_the_file_and_line_of_the_parsed_config(tmp_path: Path) -> None:
    parsed = parse(tmp_path, "PermitRootLogin no\nAllowGroups hv-admins\n")
    merged = merge_effective(
        parsed, parse_sshd_t("permitrootlogin no\nallowgroups hv-admins\nport 22\nusepam yes\n")
    )
    assert (merged["allowgroups"].values, merged["allowgroups"].line) == (["hv-admins"], 2)
    assert merged["usepam"].file is None


def test_collect_prefers_sshd_t_and_says_why_when_it_cannot(tmp_path: Path) -> None:
    root = write_root(tmp_path, {"etc/ssh/sshd_config": "PermitRootLogin no\n", "usr/sbin/sshd": ""})
    offline = collect_sshd(RootSource(root))
    assert offline.source == "config files" and offline.installed is True
    assert offline.effective_note and "offline root" in offline.effective_note
    dump = CommandResult(
        name="sshd-effective-config", argv=["sshd", "-T"], returncode=0, stdout="permitrootlogin no\n"
    )
    remote = collect_sshd(PrefetchedSource(root, {"sshd-effective-config": dump}, label="ssh://hv1"))
    assert remote.source == "sshd -T" and remote.effective["permitrootlogin"].line == 1
    failed = CommandResult(
        name="sshd-effective-config",
        argv=["sshd", "-T"],
        returncode=255,
        stderr="Missing privilege separation directory: /run/sshd\n",
    )
    fallback = collect_sshd(PrefetchedSource(root, {"sshd-effective-config": failed}, label="ssh://hv1"))
    assert fallback.source == "config files" and "Missing privilege separation" in (
        fallback.effective_note or ""
    )
    missing = CommandResult(name="sshd-effective-config", argv=["sshd", "-T"], error="sshd is not installed")
    none = collect_sshd(PrefetchedSource(tmp_path / "empty", {"sshd-effective-config": missing}, label="x"))
    assert none.installed is False


def test_fixture_roots_parse_as_expected() -> None:
    good = parse_sshd_config(HostFiles(DATA / "access-good"))
    assert good.errors == []
    assert good.effective["allowusers"].file == "/etc/ssh/sshd_config.d/10-hvguard.conf"
    assert [m.text for m in good.matches] == ["Address *,!10.0.5.0/24", "Address 10.0.5.0/24 User breakglass"]
