"""Defaults for command options from the environment and configuration files.

Where an option's value comes from, first match wins:

1. the command line;
2. an ``HVGUARD_<OPTION>`` environment variable (``--fail-on`` → ``HVGUARD_FAIL_ON``);
3. the user file ``~/.config/hvguard/config.yaml`` (``$XDG_CONFIG_HOME/hvguard/config.yaml``);
4. the system file ``/etc/hvguard/config.yaml``;
5. the option's own default.

``HVGUARD_CONFIG=FILE`` reads FILE instead of both files; ``HVGUARD_CONFIG=`` (empty) or ``--no-config``
reads no file (tests and one-off runs). A file is a YAML mapping of option names (as on the command line,
without ``--``) to values, applying to every command that has the option, plus an optional ``commands``
mapping of command names (``scan``, ``"exceptions export"``) to options for that command only::

    profile: /etc/hvguard/profile.yaml
    exceptions: /etc/hvguard/exceptions.yaml
    db: sqlite:////var/lib/hvguard/history.db
    commands:
      scan:
        fail-on: warn

A configuration file decides what hvguard trusts (profiles, exception registers), so one that a group or
other users may write, or that belongs to another user than root or the caller, is refused, as sudo
refuses such a sudoers file. Unknown option names, a value of the wrong shape and a file that cannot be
read are one line and exit 2: a typo in a nightly job's defaults must not silently drop a setting.
Relative paths in a file are relative to the file's directory.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from hvguard.cli.errors import UserError
from hvguard.schemas.config_keys import NOT_CONFIGURABLE, OPTION_NAMES

#: The configuration file read by every user, then the one of the calling user (overrides it).
SYSTEM_FILE = Path("/etc/hvguard/config.yaml")
#: Names this file or the environment to use instead of the two files; empty means none.
CONFIG_ENV = "HVGUARD_CONFIG"
#: Environment variables of option values: this prefix and the option's name in upper case.
ENV_PREFIX = "HVGUARD_"
#: A configuration file is small; anything larger is refused unread.
MAX_CONFIG_BYTES = 1024 * 1024
#: Variables with a meaning of their own that an option's name would collide with (``--config`` of
#: ``watch`` and ``HVGUARD_CONFIG``).
RESERVED_ENV = frozenset({CONFIG_ENV})


def user_file() -> Path:
    """``$XDG_CONFIG_HOME/hvguard/config.yaml``, else ``~/.config/hvguard/config.yaml``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "hvguard" / "config.yaml"


@dataclass(frozen=True)
class Layer:
    """One source of defaults: a configuration file or the environment."""

    source: str
    """How ``config show`` names it: ``system file /etc/hvguard/config.yaml``, ``environment``…"""
    options: dict[str, Any] = field(default_factory=dict)
    """Option name (``fail-on``) → value, for every command that has the option."""
    commands: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Command path (``scan``, ``exceptions export``) → option name → value."""
    base: Path | None = None
    """The directory relative paths are resolved against (a file's own directory)."""


@dataclass(frozen=True)
class Default:
    """The effective default of one option and the layer it came from."""

    value: Any
    source: str


def option_name(param: click.Parameter) -> str | None:
    """The name an option has in files and variables: its first long flag without ``--``."""
    if not isinstance(param, click.Option):
        return None
    for opt in param.opts:
        if opt.startswith("--"):
            return opt[2:]
    return None


def env_name(name: str) -> str:
    """``fail-on`` → ``HVGUARD_FAIL_ON``."""
    return ENV_PREFIX + name.upper().replace("-", "_")


def _norm(key: Any, where: str) -> str:
    if not isinstance(key, str):
        raise UserError(f"{where}: option names are text; got {key!r}")
    name = key.replace("_", "-")
    if name in NOT_CONFIGURABLE:
        raise UserError(f"{where}: {key!r} acts on one run only; give it on the command line")
    if name not in OPTION_NAMES:
        raise UserError(f"{where}: unknown option {key!r} (`hvguard config show --keys` lists them)")
    return name


def _check_file(path: Path) -> None:
    """Refuse a file that others could have written: writable by group or others, or owned by
    someone other than root or the caller."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise UserError(f"configuration file {path}: cannot read: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(st.st_mode):
        return  # the reader names the file type
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UserError(
            f"configuration file {path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o});"
            f" refused: chmod go-w {path}"
        )
    if st.st_uid not in (0, os.geteuid()):
        raise UserError(f"configuration file {path} belongs to uid {st.st_uid}, not root or you; refused")


def read_file(path: Path, source: str) -> Layer:
    """The layer of the configuration file at ``path`` (see the module docstring for its form)."""
    from hvguard.yamlsafe import YamlInputError, load_yaml_file

    _check_file(path)
    try:
        data = load_yaml_file(path, limit=MAX_CONFIG_BYTES)
    except YamlInputError as exc:
        raise UserError(f"configuration file {exc}") from exc
    where = f"configuration file {path}"
    if data is None:
        return Layer(source, base=path.parent)
    if not isinstance(data, Mapping):
        raise UserError(f"{where}: expected a mapping of option names to values")
    options: dict[str, Any] = {}
    commands: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if key == "commands":
            if not isinstance(value, Mapping):
                raise UserError(f"{where}: 'commands' maps command names to options")
            for command, opts in value.items():
                if not isinstance(command, str) or not isinstance(opts, Mapping):
                    raise UserError(f"{where}: commands.{command}: expected a mapping of options")
                path_key = " ".join(command.split())
                commands[path_key] = {_norm(k, f"{where}: commands.{command}"): v for k, v in opts.items()}
            continue
        options[_norm(key, where)] = value
    return Layer(source, options, commands, path.parent)


def env_layer(names: Iterable[str], environ: Mapping[str, str]) -> Layer:
    """The layer of the ``HVGUARD_<OPTION>`` variables set for ``names``."""
    found = {
        name: environ[var] for name in names if (var := env_name(name)) in environ and var not in RESERVED_ENV
    }
    return Layer("environment", found)


def file_layers(*, no_config: bool, environ: Mapping[str, str]) -> list[Layer]:
    """The configuration files to read, lowest priority first."""
    if no_config:
        return []
    if CONFIG_ENV in environ:
        named = environ[CONFIG_ENV]
        if not named:
            return []
        path = Path(named)
        if not path.exists():
            raise UserError(f"{CONFIG_ENV}={named}: no such file")
        return [read_file(path, f"{CONFIG_ENV} file {named}")]
    layers = []
    for path, label in ((SYSTEM_FILE, "system file"), (user_file(), "user file")):
        if path.exists() or path.is_symlink():
            layers.append(read_file(path, f"{label} {path}"))
    return layers


def _shape(param: click.Option, value: Any, layer: Layer) -> Any:
    """``value`` as click expects a default: a list for a repeatable option (one value given alone is a
    list of one, also from a variable), paths in a file resolved against the file's directory; other
    values are left for click to convert."""
    base = layer.base

    def one(item: Any) -> Any:
        if (
            base is not None
            and isinstance(param.type, click.Path)
            and isinstance(item, str)
            and item
            and "://" not in item
        ):
            p = Path(item).expanduser()
            return str(p if p.is_absolute() else base / p)
        return item

    if param.multiple:
        items = value if isinstance(value, list) else [value]
        return [one(i) for i in items]
    if isinstance(value, (list, dict)):
        raise UserError(
            f"{layer.source}: option {option_name(param)!r} takes one value, not a {type(value).__name__}"
        )
    return one(value)


def effective_defaults(
    command: click.Command, command_path: str, layers: list[Layer], environ: Mapping[str, str]
) -> dict[str, Default]:
    """Param name → the default the layers give ``command`` (only options some layer sets)."""
    by_name = {
        n: p for p in command.params if (n := option_name(p)) is not None and n not in NOT_CONFIGURABLE
    }
    chosen: dict[str, Default] = {}
    env = env_layer(by_name, environ)
    for layer in [*layers, env]:
        values = {**layer.options, **layer.commands.get(command_path, {})}
        for name, value in values.items():
            param = by_name.get(name)
            if param is None or param.name is None:
                continue  # an option of other commands: applies where it exists
            if layer is env and param.envvar:
                continue  # the option reads its own variable (e.g. --db and HVGUARD_DB): click does
            assert isinstance(param, click.Option)
            chosen[param.name] = Default(_shape(param, value, layer), layer.source)
    return chosen


def default_map(
    command: click.Command, command_path: str, layers: list[Layer], environ: Mapping[str, str]
) -> dict[str, Any]:
    """click's ``default_map`` for ``command``, nested for the subcommands of a group."""
    mapping: dict[str, Any] = {
        k: d.value for k, d in effective_defaults(command, command_path, layers, environ).items()
    }
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            mapping[name] = default_map(sub, f"{command_path} {name}", layers, environ)
    return mapping
