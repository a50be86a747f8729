"""The rich consoles the commands print tables on."""

from __future__ import annotations

from rich.console import Console


def wide_console(width: int = 160) -> Console:
    """A console on standard output; ``width`` columns when it is not a terminal (piped or redirected
    output is not wrapped at 80 columns)."""
    console = Console()
    return console if console.is_terminal else Console(width=width)


def error_console() -> Console:
    """A console on standard error (progress bars and notices)."""
    return Console(stderr=True)
