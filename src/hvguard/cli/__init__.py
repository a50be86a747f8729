"""The ``hvguard`` command line: every click and rich import of hvguard lives in this package.

``app`` holds the group, which imports each command's module only when that command runs (start-up
stays fast); one module per command family (``scan``: scan/collect/evaluate, ``catalog``, ``baseline``:
baseline/remediate, ``history``: history/diff, ``watch``, ``workflow``: exceptions/attestations);
``options`` the options several commands share; ``output`` the one ``--output`` writer; ``errors`` the
one user-error class and the error → exit mapping. Commands return their exit code; :func:`main` exits
with it.
"""

from hvguard.cli.app import cli, main

__all__ = ["cli", "main"]
