"""The ``hvguard`` group and the entry point.

Exit codes (contract): 0 — nothing at or above ``--fail-on``; 1 — findings at or above it; 2 — usage or
input error, with a one-line message on stderr and no traceback (see :mod:`hvguard.cli.errors`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib import import_module
from typing import Any, NoReturn

import click

from hvguard.cli import verbosity
from hvguard.cli.errors import EXIT_OK, exit_code_for

#: Every command lives in its own module, imported only when invoked (start-up stays fast):
#: name → "module:attribute". Add one line per command.
LAZY_COMMANDS: dict[str, str] = {
    "scan": "hvguard.cli.scan:scan",
    "collect": "hvguard.cli.scan:collect",
    "evaluate": "hvguard.cli.scan:evaluate_cmd",
    "catalog": "hvguard.cli.catalog:catalog",
    "exceptions": "hvguard.cli.workflow:exceptions_group",
    "attestations": "hvguard.cli.workflow:attestations_group",
    "history": "hvguard.cli.history:history",
    "diff": "hvguard.cli.history:diff",
    "watch": "hvguard.cli.watch:watch",
    "baseline": "hvguard.cli.baseline:baseline",
    "remediate": "hvguard.cli.baseline:remediate",
    "config": "hvguard.cli.config:config",
    "schema": "hvguard.cli.schema:schema",
    "library": "hvguard.cli.library_commands:library",
    "guard": "hvguard.cli.guard:guard",
    "serve": "hvguard.cli.serve:serve",
}


class LazyGroup(click.Group):
    """A click group that imports the modules of ``LAZY_COMMANDS`` only when one is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Eager and lazy command names, sorted."""
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, importing its module on first use."""
        if cmd_name in LAZY_COMMANDS:
            module, _, attr = LAZY_COMMANDS[cmd_name].partition(":")
            command = getattr(import_module(module), attr)
            assert isinstance(command, click.Command)
            verbosity.add_verbosity(command)  # -q/-v also after the command name
            return command
        return super().get_command(ctx, cmd_name)

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        """Start every command line from the default verbosity (``-q``/``-v`` apply to one run)."""
        if parent is None:
            verbosity.reset()
        return super().make_context(info_name, args, parent=parent, **extra)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from hvguard.cli.version import version_text

    click.echo(version_text())
    ctx.exit()


#: Where ``cli`` keeps the configuration layers it read, for ``hvguard config show``.
CONFIG_META = "hvguard.config_layers"


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version, the catalog and the optional components, and exit.",
)
@click.option(
    "--no-config",
    is_flag=True,
    help="Read no configuration file (/etc/hvguard/config.yaml, ~/.config/hvguard/config.yaml).",
)
@verbosity.verbosity_options
@click.pass_context
def cli(ctx: click.Context, no_config: bool) -> None:
    """Audit hypervisor hosts and every VM on them against SS-009, with evidence.

    Option defaults come from HVGUARD_<OPTION> variables, then ~/.config/hvguard/config.yaml, then
    /etc/hvguard/config.yaml (`hvguard config show`).
    """
    name = ctx.invoked_subcommand
    if name is None:
        return
    from hvguard.cli.defaults import default_map, file_layers

    layers = file_layers(no_config=no_config, environ=os.environ)
    ctx.meta[CONFIG_META] = layers
    command = cli.get_command(ctx, name)
    if command is not None:
        # The subcommand's context takes its defaults from default_map[name] when it is created, after
        # this callback.
        ctx.default_map = {name: default_map(command, name, layers, os.environ)}


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code: the command's own, or the one its error maps
    to (the error reported in one line on stderr)."""
    try:
        try:
            code = cli.main(
                args=list(argv) if argv is not None else None, prog_name="hvguard", standalone_mode=False
            )
        except (Exception, KeyboardInterrupt) as exc:
            return exit_code_for(exc)
        # A command returns its exit code; --help, --version and a command with nothing to report
        # return None or 0.
        return code if isinstance(code, int) else EXIT_OK
    finally:
        verbosity.release()


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point: run the command line and exit with its code."""
    sys.exit(run(argv))
