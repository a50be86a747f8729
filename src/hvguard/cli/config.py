"""``hvguard config show``: which defaults apply, and where each comes from."""

from __future__ import annotations

import os
from typing import Any

import click

from hvguard.cli.defaults import (
    CONFIG_ENV,
    SYSTEM_FILE,
    Layer,
    effective_defaults,
    env_layer,
    env_name,
    option_name,
    user_file,
)
from hvguard.schemas.config_keys import NOT_CONFIGURABLE


def _layers(ctx: click.Context) -> list[Layer]:
    from hvguard.cli.app import CONFIG_META

    layers = ctx.find_root().meta.get(CONFIG_META, [])
    assert isinstance(layers, list)
    return layers


#: click's marker for "no default" (``click.core.UNSET`` in click 8.3 and later).
_UNSET = getattr(click.core, "UNSET", object())


def _show(value: Any) -> str:
    if value is _UNSET:
        return "(unset)"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "(none)"
    if value is None:
        return "(unset)"
    return str(value)


def _resolve(ctx: click.Context, words: tuple[str, ...]) -> click.Command:
    from hvguard.cli.app import cli

    command: click.Command | None = cli
    for i, word in enumerate(words):
        sub = command.get_command(ctx, word) if isinstance(command, click.Group) else None
        if sub is None:
            raise click.UsageError(f"no command {' '.join(words[: i + 1])!r}")
        command = sub
    assert command is not None
    return command


@click.group("config")
def config() -> None:
    """Defaults for options: HVGUARD_<OPTION> variables and configuration files."""


@config.command("show")
@click.argument("command", nargs=-1)
@click.option("--keys", is_flag=True, help="List every option name a file or variable may set.")
@click.pass_context
def show(ctx: click.Context, command: tuple[str, ...], keys: bool) -> int:
    """Show the defaults in effect, and their source.

    Without COMMAND: the files read and every value they and the environment set. With COMMAND
    (`scan`, `exceptions export`): every option of that command with its effective default and where it
    comes from (command-line values are not shown: they are per run).
    """
    from hvguard.schemas.config_keys import OPTION_NAMES

    layers = _layers(ctx)
    if keys:
        for name in sorted(OPTION_NAMES - NOT_CONFIGURABLE):
            click.echo(f"{name}  ({env_name(name)})")
        return 0
    if not command:
        if CONFIG_ENV in os.environ:
            click.echo(f"{CONFIG_ENV}={os.environ[CONFIG_ENV]!r}")
        else:
            for path, label in ((SYSTEM_FILE, "system file"), (user_file(), "user file")):
                click.echo(f"{label}: {path}{'' if path.exists() else ' (absent)'}")
        env = env_layer(sorted(OPTION_NAMES - NOT_CONFIGURABLE), os.environ)
        rows = []
        for layer in [*layers, env]:
            rows += [(name, value, layer.source) for name, value in layer.options.items()]
            for cmd, opts in layer.commands.items():
                rows += [(f"{cmd}: {name}", value, layer.source) for name, value in opts.items()]
        if not rows:
            click.echo("No defaults set: every option has its built-in default.")
        for name, value, source in rows:
            click.echo(f"{name} = {_show(value)}    [{source}]")
        return 0
    target = _resolve(ctx, command)
    chosen = effective_defaults(target, " ".join(command), layers, os.environ)
    for param in target.params:
        opt = option_name(param)
        if opt is None or opt in NOT_CONFIGURABLE or param.name is None:
            continue
        if param.name in chosen:
            value, source = chosen[param.name].value, chosen[param.name].source
        elif (
            isinstance(param, click.Option)
            and param.envvar
            and isinstance(param.envvar, str)
            and param.envvar in os.environ
        ):
            value, source = os.environ[param.envvar], f"environment ({param.envvar})"
        else:
            value, source = param.default, "built-in default"
        click.echo(f"{opt} = {_show(value)}    [{source}]")
    return 0
