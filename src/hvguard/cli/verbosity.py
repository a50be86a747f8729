"""``-q/--quiet``, ``-v/--verbose`` and ``--log-level``: how much hvguard says on standard error.

Accepted before and after the command name (``hvguard -q scan …``, ``hvguard scan -q …``); the last one
given wins. Quiet drops progress bars and informational lines (``wrote r.html``), keeping warnings and
errors; ``-v`` adds timings (collectors, the commands they run, evaluation, rendering, writing) and
``-vv`` debug detail; ``--log-level`` sets the level of hvguard's log lines directly. Errors are always
one ``hvguard: error: …`` line (:mod:`hvguard.cli.errors`). Light to import: the entry point uses it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

#: The logger every hvguard module logs under (``hvguard.collect``, ``hvguard.timing`` …).
LOGGER = "hvguard"
LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


@dataclass
class _State:
    quiet: bool = False
    level: int = logging.WARNING


_STATE = _State()


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]  # generic only in newer typeshed
    """A handler on whatever ``sys.stderr`` is when a line is logged (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record`` to the current standard error."""
        self.setStream(sys.stderr)
        super().emit(record)


_HANDLER = _Stderr()
_HANDLER.setFormatter(logging.Formatter("hvguard: %(message)s"))


def _apply() -> None:
    logger = logging.getLogger(LOGGER)
    if _HANDLER not in logger.handlers:
        logger.addHandler(_HANDLER)
    logger.setLevel(_STATE.level)


def reset() -> None:
    """Back to the defaults (not quiet, warnings and errors), before a command line is parsed."""
    _STATE.quiet = False
    _STATE.level = logging.WARNING
    _apply()


def release() -> None:
    """Leave the ``hvguard`` logger as it was before any command line ran (no handler of ours, no level):
    a command run in-process (tests, a program embedding hvguard) must not change how the process logs
    after it returns."""
    _STATE.quiet = False
    _STATE.level = logging.WARNING
    logger = logging.getLogger(LOGGER)
    if _HANDLER in logger.handlers:
        logger.removeHandler(_HANDLER)
    logger.setLevel(logging.NOTSET)


def is_quiet() -> bool:
    """True under ``-q``: no progress bars and no informational lines."""
    return _STATE.quiet


def info(message: str) -> None:
    """Say ``message`` on standard error, unless ``-q``."""
    if not _STATE.quiet:
        click.echo(message, err=True)


def _on_quiet(_ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        _STATE.quiet = True
        _STATE.level = logging.ERROR
        _apply()


def _on_verbose(_ctx: click.Context, _param: click.Parameter, value: int) -> None:
    if value:
        _STATE.quiet = False
        _STATE.level = logging.INFO if value == 1 else logging.DEBUG
        _apply()


def _on_log_level(_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        _STATE.level = LEVELS[value]
        _apply()


def _params() -> list[click.Parameter]:
    return [
        click.Option(
            ["-q", "--quiet"],
            is_flag=True,
            expose_value=False,
            callback=_on_quiet,
            help="No progress bars or informational lines on stderr; warnings and errors only.",
        ),
        click.Option(
            ["-v", "--verbose"],
            count=True,
            expose_value=False,
            callback=_on_verbose,
            help="Timings of collectors, the commands they run and each step on stderr (-vv: debug).",
        ),
        click.Option(
            ["--log-level"],
            type=click.Choice(sorted(LEVELS)),
            expose_value=False,
            callback=_on_log_level,
            help="Level of hvguard's log lines on stderr [default: warning].",
        ),
    ]


_NAMES = frozenset({"quiet", "verbose", "log_level", "-q", "-v", "--quiet", "--verbose", "--log-level"})


def add_verbosity(command: click.Command) -> None:
    """Give ``command`` (every command of a group) ``-q``, ``-v`` and ``--log-level``, so they are also
    accepted after the command name; a command with options of those names keeps its own."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_verbosity(sub)
        if not command.invoke_without_command:
            return
        # A group that is also a command of its own (``history``) takes them too.
    taken = {p.name for p in command.params} | {o for p in command.params for o in p.opts}
    if not taken & _NAMES:
        command.params.extend(_params())


def verbosity_options(fn: F) -> F:
    """Add ``-q``, ``-v`` and ``--log-level`` to a command or group (the command does not receive them)."""
    params: list[click.Parameter] = getattr(fn, "__click_params__", [])
    params.extend(reversed(_params()))  # click lists decorator params in reverse
    fn.__click_params__ = params  # type: ignore[attr-defined]
    return fn
