"""Option defaults from HVGUARD_<OPTION> variables and configuration files (hvguard.cli.defaults).

In-process runs of the real command line, with the system file's path and the user's config directory
pointed at temporary files; the precedence is command line > variable > user file > system file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import click
import pytest

from hvguard.cli import defaults, verbosity
from hvguard.cli.app import LAZY_COMMANDS, run
from hvguard.schemas.config_keys import NOT_CONFIGURABLE, OPTION_NAMES

ROOT = Path(__file__).resolve().parent.parent
ESTATE = ROOT / "tests" / "data" / "testdriver" / "node.xml"


def _all_option_names() -> set[str]:
    names: set[str] = set()

    def walk(command: click.Command) -> None:
        for param in command.params:
            name = defaults.option_name(param)
            if name is not None:
                names.add(name)
        if isinstance(command, click.Group):
            for sub in command.commands.values():
                walk(sub)

    for spec in LAZY_COMMANDS.values():
        module, _, attr = spec.partition(":")
        command = getattr(import_module(module), attr)
        verbosity.add_verbosity(command)  # as the command group does when it loads a command
        walk(command)
    return names


def test_the_option_table_lists_every_option_of_every_command() -> None:
    real = _all_option_names()
    assert real == OPTION_NAMES, "update hvguard/schemas/config_keys.py to:\n" + repr(sorted(real))


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(system file, user file) paths, neither written yet; HVGUARD_CONFIG unset so both are read."""
    system = tmp_path / "etc" / "config.yaml"
    user_home = tmp_path / "xdg"
    system.parent.mkdir()
    (user_home / "hvguard").mkdir(parents=True)
    monkeypatch.setattr(defaults, "SYSTEM_FILE", system)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(user_home))
    monkeypatch.delenv("HVGUARD_CONFIG", raising=False)
    for var in [v for v in os.environ if v.startswith("HVGUARD_FAIL") or v.startswith("HVGUARD_FORMAT")]:
        monkeypatch.delenv(var)
    return system, user_home / "hvguard" / "config.yaml"


def _write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def _scan(*extra: str) -> int:
    return run(
        ["scan", f"test://{ESTATE}", "--format", "json", "--output", os.devnull, "--no-history", *extra]
    )


def test_a_failing_estate_exits_1_by_default(files: tuple[Path, Path]) -> None:
    assert _scan() == 1


def test_system_file_sets_a_default(files: tuple[Path, Path]) -> None:
    system, _ = files
    _write(system, "fail-on: never\n")
    assert _scan() == 0


def test_user_file_overrides_system_file(files: tuple[Path, Path]) -> None:
    system, user = files
    _write(system, "fail-on: never\n")
    _write(user, "fail-on: fail\n")
    assert _scan() == 1


def test_environment_overrides_files_and_command_line_overrides_all(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, user = files
    _write(user, "fail-on: fail\n")
    monkeypatch.setenv("HVGUARD_FAIL_ON", "never")
    assert _scan() == 0
    assert _scan("--fail-on", "fail") == 1


def test_command_section_applies_to_that_command_only(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    system, _ = files
    _write(system, "commands:\n  scan:\n    fail-on: never\n")
    assert _scan() == 0
    assert run(["config", "show", "evaluate"]) == 0
    out = capsys.readouterr().out
    assert "fail-on = fail    [built-in default]" in out


def test_no_config_and_empty_variable_read_no_file(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    system, _ = files
    _write(system, "fail-on: never\n")
    assert _scan() == 0
    assert (
        run(
            [
                "--no-config",
                "scan",
                f"test://{ESTATE}",
                "--format",
                "json",
                "--output",
                os.devnull,
                "--no-history",
            ]
        )
        == 1
    )
    monkeypatch.setenv("HVGUARD_CONFIG", "")
    assert _scan() == 1


def test_named_file_replaces_both(
    files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system, _ = files
    _write(system, "fail-on: never\n")
    named = _write(tmp_path / "named.yaml", "format: json\n")
    monkeypatch.setenv("HVGUARD_CONFIG", str(named))
    assert _scan() == 1


def test_group_writable_file_is_refused(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    system, _ = files
    _write(system, "fail-on: never\n", mode=0o664)
    assert _scan() == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "writable by group or others" in err[0] and str(system) in err[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_file_of_another_user_is_refused(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    system, _ = files
    _write(system, "fail-on: never\n")
    os.chown(system, 65534, 65534)
    assert _scan() == 2
    assert "belongs to uid 65534" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("fail_onn: never\n", "unknown option 'fail_onn'"),
        ("force: true\n", "acts on one run only"),
        ("- fail-on\n", "expected a mapping"),
        ("fail-on: [a, b]\n", "takes one value"),
        ("fail-on: never\nfail-on: fail\n", "duplicate key"),
        ("commands: [scan]\n", "'commands' maps command names"),
        ("fail-on: bogus\n", "Invalid value for '--fail-on'"),
    ],
)
def test_bad_file_is_one_line_and_exit_2(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], text: str, needle: str
) -> None:
    system, _ = files
    _write(system, text)
    assert _scan() == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_relative_paths_are_relative_to_the_file(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    system, _ = files
    _write(system, "profile: profiles/site.yaml\nexceptions: /abs/b.yaml\nattestations: ~/a.yaml\n")
    assert run(["config", "show", "scan"]) == 0
    out = capsys.readouterr().out
    assert f"profile = {system.parent / 'profiles' / 'site.yaml'}    [system file {system}]" in out
    assert "exceptions = /abs/b.yaml" in out
    assert f"attestations = {Path.home() / 'a.yaml'}" in out


def test_config_show_lists_values_and_sources(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    system, user = files
    _write(system, "db: sqlite:////srv/h.db\n")
    _write(user, "commands:\n  scan:\n    format: html\n")
    monkeypatch.setenv("HVGUARD_FAIL_ON", "warn")
    assert run(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert f"db = sqlite:////srv/h.db    [system file {system}]" in out
    assert f"scan: format = html    [user file {user}]" in out
    assert "fail-on = warn    [environment]" in out


def test_keys_lists_configurable_options_with_their_variables(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["config", "show", "--keys"]) == 0
    out = capsys.readouterr().out
    assert "fail-on  (HVGUARD_FAIL_ON)" in out
    assert "force" not in out.split()


def test_version_keeps_line_one_and_names_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    from hvguard import __version__

    assert run(["--version"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"hvguard, version {__version__}"
    assert lines[1].startswith("catalog: SS-009 2.0 (")
    assert "36 measures" in lines[1]
    assert any(line.startswith("hvguard[libvirt]: libvirt-python") for line in lines)


def test_bash_completion_script_is_generated() -> None:
    """The README's completion line works: click's completion for the installed entry point."""
    env = {**os.environ, "_HVGUARD_COMPLETE": "bash_source"}
    out = subprocess.run(
        [sys.executable, "-c", "from hvguard.cli import main; main()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "complete -o nosort -F _hvguard_completion hvguard" in out.stdout, out.stderr


def test_readme_lists_every_variable() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [
        defaults.env_name(n)
        for n in sorted(OPTION_NAMES - NOT_CONFIGURABLE)
        if defaults.env_name(n) not in defaults.RESERVED_ENV and f"`{defaults.env_name(n)}`" not in readme
    ]
    assert not missing, f"README's list of HVGUARD_<OPTION> variables lacks {missing}"


def test_configured_format_is_a_default_that_typed_outputs_replace(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`format: json` in a file makes JSON the default output; `-o html:FILE` on the command line then
    replaces it rather than clashing with it as a second --format would."""
    system, _ = files
    _write(system, "format: json\nfail-on: never\n")
    assert run(["scan", f"test://{ESTATE}", "--no-history"]) == 0
    assert capsys.readouterr().out.lstrip().startswith("{")
    out = tmp_path / "r.html"
    assert run(["scan", f"test://{ESTATE}", "--no-history", "-o", f"html:{out}"]) == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert run(["scan", f"test://{ESTATE}", "--no-history", "--format", "json", "-o", f"html:{out}"]) == 2


@pytest.mark.parametrize(
    "text",
    [
        "fail-on: never\n",
        "fail_on: never\nprofile: p.yaml\n",
        "commands:\n  scan:\n    format: json\n",
        "",
        "fail_onn: never\n",
        "force: true\n",
        "commands:\n  scan:\n    output: r.json\n",
        "commands:\n  scan:\n    nonsense: 1\n",
    ],
)
def test_the_config_schema_accepts_the_option_names_hvguard_accepts(
    files: tuple[Path, Path], text: str
) -> None:
    """`hvguard schema config` and the reader agree on which names a file may use."""
    import json

    import jsonschema
    import yaml

    from hvguard.schemas import shipped_text

    system, _ = files
    _write(system, text)
    try:
        defaults.read_file(system, "system file")
        ours = True
    except defaults.UserError:
        ours = False
    validator = jsonschema.Draft202012Validator(json.loads(shipped_text("config")))
    assert validator.is_valid(yaml.safe_load(text)) == ours
