"""The ``hvguard`` command line: parses arguments, calls the pipeline, picks the exit code.

Exit codes (contract): 0 — nothing at or above ``--fail-on``; 1 — findings at or above it; 2 — usage or
input error, with a one-line message on stderr and no traceback.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import date
from importlib import import_module
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from hvguard import __version__
from hvguard.cli_workflow import load_workflow, workflow_options
from hvguard.collect.bundle import BundleError, make_bundle, read_bundle, write_bundle
from hvguard.collect.linux.access_probe import attach_probes, probe_specs_option
from hvguard.collect.ssh.cli import collect_mixed, ssh_options
from hvguard.collect.ssh.target import SshOptions, is_ssh_target
from hvguard.collect.targets import LOCAL, TargetError, collect_target, validate_target
from hvguard.engine import FAIL_ON_LEVELS, Evaluation, evaluate
from hvguard.facts import TargetFacts
from hvguard.history.record import history_options, recording, warm_history_store
from hvguard.profile import ProfileError, load_profile
from hvguard.report import FORMATS, renderer
from hvguard.workflow.registerfile import RegisterError

F = TypeVar("F", bound=Callable[..., Any])


class InputError(Exception):
    """Bad input from the user: reported as one line, exit 2."""


def _die(message: str) -> NoReturn:
    click.echo(f"hvguard: error: {message}", err=True)
    sys.exit(2)


def _write_output(text: str, output: Path | None, *, force: bool) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    if output.exists() and not force:
        raise InputError(f"{output} exists; pass --force to replace it")
    folder = output.parent if str(output.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=folder)
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, output)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"cannot write {output}: {exc.strerror or exc}") from exc


def _collect_all(
    targets: Sequence[str], root: Path | None, ssh: SshOptions | None = None
) -> list[TargetFacts]:
    for t in targets:
        validate_target(t)
    err = Console(stderr=True)
    if any(is_ssh_target(t) for t in targets):
        # ssh:// targets run concurrently (--concurrency), each bounded by --ssh-timeout.
        return collect_mixed(targets, root, ssh, err)
    if not err.is_terminal:
        return [collect_target(t, root=root) for t in targets]
    out: list[TargetFacts] = []
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True
    ) as progress:
        task = progress.add_task("collecting", total=len(targets))
        for t in targets:
            progress.update(task, description=f"collecting {t}")
            out.append(collect_target(t, root=root))
            progress.advance(task)
    return out


def _emit(ev: Evaluation, fmt: str, output: Path | None, force: bool, fail_on: str) -> NoReturn:
    if fmt == "table" and output is None:
        from hvguard.report.table import print_report

        console = Console()
        if not console.is_terminal:
            console = Console(width=160)  # piped or redirected: don't wrap at 80 columns
        print_report(ev, console)
    else:
        _write_output(renderer(fmt)(ev), output, force=force)
    sys.exit(ev.exit_code(fail_on))


def _report_options(fn: F) -> F:
    decorators = [
        click.option("--profile", "profile_path", type=click.Path(path_type=Path), help="Profile YAML file."),
        click.option(
            "--format",
            "fmt",
            type=click.Choice(sorted(FORMATS)),
            default="table",
            show_default=True,
            help="Report format.",
        ),
        click.option("--output", type=click.Path(path_type=Path), help="Write the report to FILE."),
        click.option("--force", is_flag=True, help="Replace an existing --output file."),
        click.option(
            "--fail-on",
            type=click.Choice(sorted(FAIL_ON_LEVELS)),
            default="fail",
            show_default=True,
            help="Exit 1 when a finding is at or above this level (fail also covers error).",
        ),
    ]
    for deco in reversed(decorators):
        fn = deco(fn)
    return fn


#: Commands that live in their own modules, imported only when invoked (start-up stays fast):
#: name → "module:attribute". Add one line per command group.
LAZY_COMMANDS: dict[str, str] = {
    "exceptions": "hvguard.cli_workflow:exceptions_group",
    "attestations": "hvguard.cli_workflow:attestations_group",
    "history": "hvguard.cli_history:history",
    "diff": "hvguard.cli_history:diff",
    "watch": "hvguard.cli_watch:watch",
    "baseline": "hvguard.cli_baseline:baseline",
    "remediate": "hvguard.cli_baseline:remediate",
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


@cli.command()
@click.argument("targets", nargs=-1)
@click.option(
    "--root", type=click.Path(path_type=Path, file_okay=False, exists=True), help="Read host files from DIR."
)
@_report_options
@history_options
@workflow_options
@click.option(
    "--baseline",
    "baseline_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Gold configuration (hvguard baseline) that decides 11.4.7.",
)
@click.option(
    "--probe-acl",
    "probe_acl",
    multiple=True,
    metavar="USER:VM",
    callback=probe_specs_option,
    help="Run a read-only libvirt call (virsh dominfo) as USER on VM and record allowed/denied (11.2.2, "
    "11.2.3). Repeatable; needs root and this machine's libvirtd.",
)
@ssh_options
def scan(
    targets: tuple[str, ...],
    root: Path | None,
    profile_path: Path | None,
    fmt: str,
    output: Path | None,
    force: bool,
    fail_on: str,
    db: str | None,
    no_history: bool,
    exceptions_path: Path | None,
    attestations_path: Path | None,
    as_of: date | None,
    baseline_path: Path | None,
    probe_acl: list[tuple[str, str]],
    ssh: SshOptions,
) -> None:
    """Collect facts from TARGETs and evaluate them (default target: local)."""
    warm_history_store(not no_history)
    profile = load_profile(profile_path)
    workflow = load_workflow(exceptions_path, attestations_path, as_of)
    gold = None
    if baseline_path is not None:
        from hvguard.baseline.schema import BaselineError, load_baseline

        try:
            gold = load_baseline(baseline_path)
        except BaselineError as exc:
            raise InputError(str(exc)) from exc
    facts = attach_probes(_collect_all(targets or (LOCAL,), root, ssh), probe_acl)
    checks = None
    if gold is not None:
        from hvguard.baseline.measure import checks_with_baseline

        checks = checks_with_baseline(gold, facts)
    ev = evaluate(facts, profile, checks=checks, **workflow.kwargs())
    with recording(ev, command="scan", inputs=targets or (LOCAL,), db=db, enabled=not no_history):
        _emit(ev, fmt, output, force, fail_on)


@cli.command()
@click.argument("targets", nargs=-1)
@click.option("--output", type=click.Path(path_type=Path), help="Bundle file to write (required).")
@click.option(
    "--root", type=click.Path(path_type=Path, file_okay=False, exists=True), help="Read host files from DIR."
)
@click.option("--force", is_flag=True, help="Replace an existing bundle file.")
@click.option(
    "--probe-acl",
    "probe_acl",
    multiple=True,
    metavar="USER:VM",
    callback=probe_specs_option,
    help="Record a read-only libvirt access probe as USER on VM in the bundle (see scan).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the manifest (every command run and file read on a host, and the ssh:// script) and "
    "contact nothing.",
)
@ssh_options
def collect(
    targets: tuple[str, ...],
    output: Path | None,
    root: Path | None,
    force: bool,
    probe_acl: list[tuple[str, str]],
    dry_run: bool,
    ssh: SshOptions,
) -> None:
    """Collect facts from TARGETs into an offline evidence BUNDLE (no evaluation)."""
    if dry_run:
        from hvguard.collect.ssh.script import describe_manifest

        for t in targets:
            validate_target(t)
        sys.stdout.write(describe_manifest(sudo=ssh.sudo, targets=targets))
        return
    if not targets:
        raise click.UsageError("missing TARGET (or use --dry-run to print the manifest)")
    if output is None:
        raise click.UsageError("missing --output BUNDLE")
    if output.exists() and not force:
        raise InputError(f"{output} exists; pass --force to replace it")
    bundle = make_bundle(attach_probes(_collect_all(targets, root, ssh), probe_acl))
    write_bundle(bundle, output, overwrite=force)
    vms = sum(len(t.hypervisor.vms) for t in bundle.targets if t.hypervisor)
    problems = sum(len(t.problems) for t in bundle.targets)
    unreachable = [t.id for t in bundle.targets if t.unreachable]
    click.echo(
        f"wrote {output}: {len(bundle.targets)} target(s), {vms} VM(s), {problems} collection problem(s)"
        + (f", unreachable: {', '.join(unreachable)}" if unreachable else ""),
        err=True,
    )


@cli.command("evaluate")
@click.argument("bundle", type=click.Path(path_type=Path, dir_okay=False))
@_report_options
@history_options
@workflow_options
def evaluate_cmd(
    bundle: Path,
    profile_path: Path | None,
    fmt: str,
    output: Path | None,
    force: bool,
    fail_on: str,
    db: str | None,
    no_history: bool,
    exceptions_path: Path | None,
    attestations_path: Path | None,
    as_of: date | None,
) -> None:
    """Evaluate an offline evidence BUNDLE written by ``hvguard collect``."""
    profile = load_profile(profile_path)
    workflow = load_workflow(exceptions_path, attestations_path, as_of)
    facts = read_bundle(bundle)
    ev = evaluate(facts.targets, profile, **workflow.kwargs())
    with recording(ev, command="evaluate", inputs=[str(bundle)], db=db, enabled=not no_history):
        _emit(ev, fmt, output, force, fail_on)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def catalog(fmt: str) -> None:
    """List the 36 SS-009 measures."""
    from hvguard.catalog import load_catalog

    cat = load_catalog()
    if fmt == "json":
        import msgspec

        data = [
            {
                "id": m.id,
                "section": m.section,
                "title": m.title,
                "text": m.text,
                "modality": m.modality,
                "nist": list(m.nist),
                "automation": m.automation,
                "advisory_preamble": m.advisory_preamble,
                "notes": m.notes,
                "manual_evidence": m.manual_evidence,
            }
            for m in cat.measures
        ]
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(data), indent=2).decode() + "\n")
        return
    from rich.table import Table

    table = Table(title=f"{cat.id} v{cat.version} — {cat.title}", title_justify="left")
    for col in ("Measure", "Modality", "Automation", "NIST CSF 1.1", "Title"):
        table.add_column(col)
    for m in cat.measures:
        table.add_row(m.id, m.modality, m.automation, " ".join(m.nist), m.title)
    Console().print(table)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the CLI, turning input errors into one line and exit 2."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="hvguard", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        _die("aborted")
    except click.ClickException as exc:
        _die(exc.format_message())
    except (InputError, BundleError, ProfileError, TargetError, RegisterError) as exc:
        _die(str(exc))
    except BrokenPipeError:
        sys.exit(2)
    except KeyboardInterrupt:
        _die("interrupted")
    except Exception as exc:  # the promise is one line and exit 2, never a traceback
        if os.environ.get("HVGUARD_DEBUG"):
            raise
        _die(f"internal error: {type(exc).__name__}: {exc} (set HVGUARD_DEBUG=1 for details)")
    sys.exit(0)
