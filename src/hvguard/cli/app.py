"""The ``hvguard`` group and the entry point.

Exit codes (contract): 0 — nothing at or above ``--fail-on``; 1 — findings at or above it; 2 — usage or
input error, with a one-line message on stderr and no traceback (see :mod:`hvguard.cli.errors`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import import_module
from typing import NoReturn

import click

from hvguard import __version__
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
    "library": "hvguard.cli.library:library",
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
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hvguard")
def cli() -> None:
    """Audit hypervisor hosts and every VM on them against SS-009, with evidence."""


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code: the command's own, or the one its error maps
    to (the error reported in one line on stderr)."""
    try:
        code = cli.main(
            args=list(argv) if argv is not None else None, prog_name="hvguard", standalone_mode=False
        )
    except (Exception, KeyboardInterrupt) as exc:
        return exit_code_for(exc)
    # A command returns its exit code; --help, --version and a command with nothing to report return
    # None or 0.
    return code if isinstance(code, int) else EXIT_OK


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point: run the command line and exit with its code."""
    sys.exit(run(argv))
