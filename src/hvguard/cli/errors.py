"""The command line's one error → exit mapping, and its one user-error class.

Exit codes (contract): 0 — nothing at or above ``--fail-on``; 1 — findings at or above it; 2 — usage or
input error, with one line ``hvguard: error: MESSAGE`` on stderr and no traceback. Commands return their
exit code; whatever they raise ends here.
"""

from __future__ import annotations

import os

import click

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


class UserError(Exception):
    """Something the user can fix (bad input, an unusable target, an ``--output`` that must not be
    written): one line on stderr, exit 2. The only error class the command modules raise."""


def _lower_layer_user_errors() -> tuple[type[Exception], ...]:
    """The exceptions of the layers below the CLI that mean "bad input" (they cannot derive from
    :class:`UserError`: nothing imports upward). Imported only when an exception is being mapped, so
    start-up loads none of these modules."""
    from hvguard.collect.bundle import BundleError
    from hvguard.collect.inventory_model import InventoryError
    from hvguard.collect.linux.access_probe import ProbeTargetError
    from hvguard.collect.ssh.target import SshOptionError
    from hvguard.collect.targets import TargetError
    from hvguard.collect.vsphere.target import VsphereTargetError
    from hvguard.profile import ProfileError
    from hvguard.report.oscal import OscalUnavailable
    from hvguard.workflow.registerfile import RegisterError

    return (
        BundleError,
        ProfileError,
        TargetError,
        RegisterError,
        SshOptionError,
        VsphereTargetError,
        ProbeTargetError,
        OscalUnavailable,
        InventoryError,
    )


def _fail(message: str) -> int:
    click.echo(f"hvguard: error: {message}", err=True)
    return EXIT_USAGE


def exit_code_for(exc: BaseException) -> int:
    """Report ``exc`` as the contract says and return the exit code; ``SystemExit`` passes through.

    A usage error (click's), a :class:`UserError` or a lower layer's input error is its own message; a
    closed pipe is a silent 2; anything else is an internal error, still one line (the full traceback
    with ``HVGUARD_DEBUG=1``).
    """
    if isinstance(exc, SystemExit):
        raise exc
    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code
    if isinstance(exc, click.Abort):
        return _fail("aborted")
    if isinstance(exc, click.ClickException):
        return _fail(exc.format_message())
    if isinstance(exc, UserError):
        return _fail(str(exc))
    if isinstance(exc, BrokenPipeError):
        return EXIT_USAGE
    if isinstance(exc, KeyboardInterrupt):
        return _fail("interrupted")
    if not isinstance(exc, Exception):
        raise exc
    try:
        user_errors = _lower_layer_user_errors()
    except Exception:  # a broken install must not hide the original error behind an import error
        user_errors = ()
    if isinstance(exc, user_errors):
        return _fail(str(exc))
    if os.environ.get("HVGUARD_DEBUG"):
        raise exc
    return _fail(f"internal error: {type(exc).__name__}: {exc} (set HVGUARD_DEBUG=1 for details)")
