"""The rich consoles the commands print tables on."""

from __future__ import annotations

from rich.console import Console


def wide_console(width: int | None = None) -> Console:
    """A console on standard output: the terminal's width (``$COLUMNS`` overrides it), or — piped or
    redirected — ``$COLUMNS``, else ``width`` (default 160) columns, as the text report file."""
    from hvguard.report.table import PIPE_WIDTH, columns

    console = Console()
    return console if console.is_terminal else Console(width=columns(width or PIPE_WIDTH))


def error_console() -> Console:
    """A console on standard error (progress bars and notices)."""
    return Console(stderr=True)
