"""Options shared by several commands: report, ``--root``, SSH, vSphere, history, ``--probe-acl`` and workflow
(``--exceptions``, ``--attestations``, ``--as-of``) options.

Light to import on purpose (every command module imports it): what an option needs to convert its value
is imported when the value is converted, not here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click

from hvguard.collect.ssh.target import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT_S, SshOptions, default_known_hosts

F = TypeVar("F", bound=Callable[..., Any])


def _stack(fn: F, decorators: Sequence[Callable[[F], F]]) -> F:
    """Apply ``decorators`` so the options show in their listed order."""
    for deco in reversed(decorators):
        fn = deco(fn)
    return fn


# --------------------------------------------------------------------------------------------------------
# report options (scan, evaluate)


def report_options(fn: F) -> F:
    """``--profile``, ``-o/--output``, ``--format``, ``--force`` and ``--fail-on``; the command receives
    the outputs as one ``outputs: tuple[OutputSpec, ...]`` (:func:`hvguard.cli.output.parse_outputs`),
    checked before anything is collected or evaluated."""
    from hvguard.engine import FAIL_ON_LEVELS
    from hvguard.report import FORMATS

    @functools.wraps(fn)
    def wrapper(*args: Any, output_values: tuple[str, ...], formats: tuple[str, ...], **kwargs: Any) -> Any:
        from hvguard.cli.output import parse_outputs

        source = click.get_current_context().get_parameter_source("formats")
        if formats and source is not click.core.ParameterSource.COMMANDLINE:
            # A format from HVGUARD_FORMAT or a configuration file is a default, not a --format given on
            # this command line: -o FORMAT:PATH values replace it instead of clashing with it.
            kwargs["outputs"] = parse_outputs(output_values, (), FORMATS, default_format=formats[-1])
        else:
            kwargs["outputs"] = parse_outputs(output_values, formats, FORMATS)
        return fn(*args, **kwargs)

    wrapped: Any = wrapper  # the wrapper takes -o/--format where ``fn`` takes ``outputs``
    stacked: F = _stack(
        wrapped,
        [
            click.option(
                "--profile", "profile_path", type=click.Path(path_type=Path), help="Profile YAML file."
            ),
            click.option(
                "-o",
                "--output",
                "output_values",
                multiple=True,
                metavar="[FORMAT:]PATH",
                help="Write the report to PATH (- is standard output). FORMAT:PATH names the format: "
                "repeat for several outputs of the same evaluation (-o html:r.html -o sarif:r.sarif "
                f"-o json:-). Formats: {', '.join(sorted(FORMATS))}.",
            ),
            click.option(
                "--format",
                "formats",
                type=click.Choice(sorted(FORMATS)),
                multiple=True,
                help="Format of the one report (--output PATH or standard output) [default: table].",
            ),
            click.option("--force", is_flag=True, help="Replace existing --output files."),
            click.option(
                "--fail-on",
                type=click.Choice(sorted(FAIL_ON_LEVELS)),
                default="fail",
                show_default=True,
                help="Exit 1 when a finding shown is at or above this level (fail also covers error).",
            ),
        ],
    )
    return stacked


# --------------------------------------------------------------------------------------------------------
# selection options (every command that renders a report)


def _measure_keys(ctx: click.Context, param: click.Parameter, value: Sequence[str]) -> tuple[str, ...]:
    """Check every ``--measure``/``--skip-measure`` value against the catalog (a typo is exit 2)."""
    from hvguard.catalog import load_catalog
    from hvguard.report.selection import SelectionError, measure_key

    if not value:
        return ()
    catalog = load_catalog()
    try:
        return tuple(dict.fromkeys(measure_key(v, catalog) for v in value))
    except SelectionError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc


def _statuses(ctx: click.Context, param: click.Parameter, value: Sequence[str]) -> tuple[str, ...]:
    from hvguard.report.selection import SelectionError, parse_statuses

    try:
        return tuple(s.value for s in parse_statuses(value))
    except SelectionError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc


def selection_options(fn: F) -> F:
    """``--measure``, ``--skip-measure``, ``--vm``, ``--skip-host`` and ``--status``; the command receives
    them as one ``selection: Selection`` (:mod:`hvguard.report.selection`)."""

    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        measures: tuple[str, ...],
        skip_measures: tuple[str, ...],
        vms: tuple[str, ...],
        skip_host: bool,
        statuses: tuple[str, ...],
        **kwargs: Any,
    ) -> Any:
        from hvguard.findings import Status
        from hvguard.report.selection import Selection

        kwargs["selection"] = Selection(
            measures=measures,
            skip_measures=skip_measures,
            vms=tuple(dict.fromkeys(vms)),
            skip_host=skip_host,
            statuses=tuple(Status(s) for s in statuses),
        )
        return fn(*args, **kwargs)

    wrapped: Any = wrapper  # the wrapper takes the filters where ``fn`` takes ``selection``
    stacked: F = _stack(
        wrapped,
        [
            click.option(
                "--measure",
                "measures",
                multiple=True,
                metavar="ID|SECTION",
                callback=_measure_keys,
                help="Show only this measure (11.3.10) or section (11.3). Repeatable.",
            ),
            click.option(
                "--skip-measure",
                "skip_measures",
                multiple=True,
                metavar="ID|SECTION",
                callback=_measure_keys,
                help="Leave out this measure or section. Repeatable.",
            ),
            click.option(
                "--vm",
                "vms",
                multiple=True,
                metavar="GLOB",
                help="Show only VMs whose name matches this shell glob (host findings stay unless "
                "--skip-host). Repeatable.",
            ),
            click.option("--skip-host", is_flag=True, help="Leave out findings that are not about a VM."),
            click.option(
                "--status",
                "statuses",
                multiple=True,
                metavar="LIST",
                callback=_statuses,
                help="Show only these statuses, comma-separated (fail,error). Repeatable. The exit code "
                "follows the findings shown; the evaluation and history stay complete.",
            ),
        ],
    )
    return stacked


#: ``--root DIR``: read host files (and /proc, /sys) from DIR — offline roots and tests.
root_option = click.option(
    "--root", type=click.Path(path_type=Path, file_okay=False, exists=True), help="Read host files from DIR."
)


# --------------------------------------------------------------------------------------------------------
# SSH options (scan, collect)


def ssh_options(fn: F) -> F:
    """Add the SSH options to a click command; the command receives them as one ``ssh: SshOptions``."""

    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        known_hosts: Path | None,
        accept_new_host_key: bool,
        identity: Path | None,
        sudo: bool,
        ssh_timeout: float,
        concurrency: int,
        **kwargs: Any,
    ) -> Any:
        kwargs["ssh"] = SshOptions(
            known_hosts=known_hosts or default_known_hosts(),
            accept_new_host_key=accept_new_host_key,
            identity=identity,
            sudo=sudo,
            timeout_s=ssh_timeout,
            concurrency=concurrency,
        )
        return fn(*args, **kwargs)

    wrapped: Any = wrapper  # the wrapper takes the SSH options where ``fn`` takes ``ssh``
    decorators = [
        click.option(
            "--known-hosts",
            type=click.Path(path_type=Path, dir_okay=False),
            help="known_hosts file for ssh:// targets [default: ~/.ssh/known_hosts]. Host keys are checked "
            "strictly: an unknown or changed key refuses the target.",
        ),
        click.option(
            "--accept-new-host-key",
            is_flag=True,
            help="Trust an ssh:// host whose key is not yet in --known-hosts, and append its key there "
            "(a changed key is still refused).",
        ),
        click.option(
            "--identity",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            help="Private key for ssh:// targets, besides ssh-agent and the default keys.",
        ),
        click.option(
            "--sudo",
            is_flag=True,
            help="Run the read-only collection script on ssh:// targets as root with 'sudo -n'.",
        ),
        click.option(
            "--ssh-timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=DEFAULT_TIMEOUT_S,
            show_default=True,
            metavar="SECONDS",
            help="Per ssh:// target: connect, authenticate and collect within this time.",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(min=1),
            default=DEFAULT_CONCURRENCY,
            show_default=True,
            help="ssh:// targets collected at the same time.",
        ),
    ]
    stacked: F = _stack(wrapped, decorators)
    return stacked


# --------------------------------------------------------------------------------------------------------
# vSphere options (scan, collect)


def vsphere_options(fn: F) -> F:
    """Add the vsphere:// options; the command receives them as one ``vsphere: VsphereOptions``. The
    password itself is never an option (it would show in ``ps`` and shell history)."""

    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        password_file: Path | None,
        credentials: Path | None,
        tls_ca: Path | None,
        tls_insecure: bool,
        **kwargs: Any,
    ) -> Any:
        from hvguard.cli.console import error_console
        from hvguard.cli.errors import UserError
        from hvguard.collect.vsphere.target import VsphereOptions, VsphereTargetError

        try:
            kwargs["vsphere"] = VsphereOptions(
                password_file=password_file, credentials=credentials, tls_ca=tls_ca, tls_insecure=tls_insecure
            )
        except VsphereTargetError as exc:
            raise UserError(str(exc)) from exc
        if tls_insecure:
            error_console().print(
                "hvguard: WARNING: --tls-insecure: the certificates of vsphere:// targets are NOT verified; "
                "anyone on the path can impersonate them and read the password"
                + ("." if click.get_current_context().info_name == "watch" else "; the report records it."),
                style="bold red",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        return fn(*args, **kwargs)

    wrapped: Any = wrapper
    decorators = [
        click.option(
            "--password-file",
            type=click.Path(path_type=Path, dir_okay=False),
            help="File holding the password of vsphere:// targets (mode 0600; else "
            "$HVGUARD_VSPHERE_PASSWORD).",
        ),
        click.option(
            "--credentials",
            type=click.Path(path_type=Path, dir_okay=False),
            help="YAML file (mode 0600) mapping each vsphere:// target, as typed, to its password file.",
        ),
        click.option(
            "--tls-ca",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            help="Also trust this CA (PEM) for vsphere:// targets' certificates.",
        ),
        click.option(
            "--tls-insecure",
            is_flag=True,
            help="Do not verify vsphere:// targets' certificates (reported loudly and recorded in the "
            "report).",
        ),
    ]
    stacked: F = _stack(wrapped, decorators)
    return stacked


# --------------------------------------------------------------------------------------------------------
# history options (scan, evaluate; --db also history, diff)

#: Environment variable naming the history database (a URL or a SQLite file path).
DB_ENV = "HVGUARD_DB"

DB_HELP = (
    "History database: a SQLite file path or a SQLAlchemy URL (postgresql+psycopg://USER@HOST/DB). "
    f"Default: ${DB_ENV}, else history.sqlite3 in the user data directory."
)


def db_option(fn: F) -> F:
    """The ``--db URL`` option (also read from ``$HVGUARD_DB``)."""
    return click.option("--db", "db", envvar=DB_ENV, metavar="URL", help=DB_HELP)(fn)


def history_options(fn: F) -> F:
    """``--db URL`` and ``--no-history`` for the commands that store their result (scan, evaluate)."""
    fn = click.option(
        "--no-history", is_flag=True, help="Do not store this run in the scan history (hvguard history)."
    )(fn)
    return db_option(fn)


# --------------------------------------------------------------------------------------------------------
# --probe-acl (scan, collect)


def _probe_specs(ctx: click.Context, param: click.Parameter, value: Sequence[str]) -> list[tuple[str, str]]:
    """Validate every USER:VM of ``--probe-acl``."""
    from hvguard.collect.linux.access_probe import parse_probe_spec

    out: list[tuple[str, str]] = []
    for spec in value:
        try:
            out.append(parse_probe_spec(spec))
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc
    return out


def probe_acl_option(help_text: str) -> Callable[[F], F]:
    """``--probe-acl USER:VM`` (repeatable); the command receives ``probe_acl: list[(user, vm)]``."""
    return click.option(
        "--probe-acl", "probe_acl", multiple=True, metavar="USER:VM", callback=_probe_specs, help=help_text
    )


# --------------------------------------------------------------------------------------------------------
# workflow options (scan, evaluate; --as-of also the exceptions/attestations commands)


class CalendarDate(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click
    """A ``YYYY-MM-DD`` option value."""

    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        """Parse strictly; a bad value is a usage error (exit 2)."""
        from hvguard.workflow.dates import DateFormatError, parse_calendar_date

        if isinstance(value, date):
            return value
        try:
            return parse_calendar_date(value)
        except DateFormatError as exc:
            self.fail(str(exc), param, ctx)


AS_OF_HELP = (
    "Judge exceptions and attestations as of this date (YYYY-MM-DD; default: today, local time) — "
    "e.g. the audit date when re-evaluating a bundle."
)


def workflow_options(fn: F) -> F:
    """Add ``--exceptions``, ``--attestations`` and ``--as-of`` to a command."""
    return _stack(
        fn,
        [
            click.option(
                "--exceptions",
                "exceptions_path",
                type=click.Path(path_type=Path, dir_okay=False),
                help="Exceptions register (YAML): active entries waive matching fail/warn findings.",
            ),
            click.option(
                "--attestations",
                "attestations_path",
                type=click.Path(path_type=Path, dir_okay=False),
                help="Attestations (YAML): valid entries turn matching manual findings into pass.",
            ),
            click.option("--as-of", "as_of", type=CalendarDate(), help=AS_OF_HELP),
        ],
    )
