"""``hvguard scan``, ``collect`` and ``evaluate``: collect facts, evaluate them, write the report.

Each returns its exit code: 0 — nothing at or above ``--fail-on``; 1 — findings at or above it; input
errors raise and end as exit 2. ``collect`` returns 0 when every target was collected whole, 1 when the
bundle was written but a target is partial (host facts, no hypervisor answer) or unreachable, and ends as
exit 2 with nothing written when nothing at all could be collected. A target that cannot be used (a URI
that does not parse, an unknown scheme or driver, a missing test-driver file) is exit 2 before anything
is collected. A single-target ``scan`` of an unreachable target is one line and exit 2 (nothing
written); in a multi-target run an unreachable target is ``not_assessed``: it is in the report with its
cause, the measures roll up the assessed targets, and the exit code is 1 unless ``--fail-on never``.
``evaluate`` of many bundles (or directories of them) is one estate report under the same multi-target
rules; a bundle that cannot be read or verified, or a target in two bundles, is exit 2 with nothing
evaluated (``hvguard.collect.estate``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import click
import msgspec

from hvguard.cli.bundle_keys import load_estate, sign_option, signer, verify_option, write_signature
from hvguard.cli.console import error_console
from hvguard.cli.errors import EXIT_FINDINGS, EXIT_OK, UserError
from hvguard.cli.inventory import (
    inventory_option,
    inventory_targets,
    limit_option,
    with_groups,
)
from hvguard.cli.library_scan import library_options
from hvguard.cli.options import (
    history_options,
    probe_acl_option,
    report_options,
    root_option,
    selection_options,
    ssh_options,
    vsphere_options,
    workflow_options,
)
from hvguard.cli.output import OWNER_ONLY, OutputSpec, check_destinations, describe, destination, write_output
from hvguard.cli.reporting import report_and_store
from hvguard.cli.verbosity import info, is_quiet
from hvguard.cli.workflow import load_workflow
from hvguard.collect.bundle import encode_bundle, make_bundle
from hvguard.collect.library import LibrarySource, attach_library
from hvguard.collect.linux.access_probe import attach_probes
from hvguard.collect.ssh.target import SshOptions, is_ssh_target
from hvguard.collect.targets import LOCAL, collect_target, is_partial, validate_target
from hvguard.collect.timing import timed
from hvguard.collect.vsphere.target import VsphereOptions
from hvguard.engine import evaluate
from hvguard.facts import TargetFacts
from hvguard.history.record import warm_history_store
from hvguard.profile import load_profile
from hvguard.report.build import utc_stamp
from hvguard.report.selection import Selection, select

if TYPE_CHECKING:
    from hvguard.collect.inventory import InventoryHost


def _timed_collect(target: str, root: Path | None, vsphere: VsphereOptions | None) -> TargetFacts:
    with timed(f"collect {target}"):
        return collect_target(target, root=root, vsphere=vsphere)


def _collect_all(
    targets: Sequence[str],
    root: Path | None,
    ssh: SshOptions | None = None,
    vsphere: VsphereOptions | None = None,
) -> list[TargetFacts]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    for t in targets:
        validate_target(t)
    err = error_console()
    if any(is_ssh_target(t) for t in targets):
        from hvguard.collect.mixed import collect_mixed

        # ssh:// targets run concurrently (--concurrency), each bounded by --ssh-timeout.
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal or is_quiet(),
        )
        with bar:
            task = bar.add_task("collecting", total=len(targets))
            return collect_mixed(
                targets,
                root,
                ssh,
                vsphere=vsphere,
                describe=lambda text: bar.update(task, description=text),
                advance=lambda: bar.advance(task),
                notify=lambda line: err.print(f"hvguard: {line}", highlight=False, markup=False),
            )
    if not err.is_terminal or is_quiet():
        return [_timed_collect(t, root, vsphere) for t in targets]
    out: list[TargetFacts] = []
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True
    ) as progress:
        task = progress.add_task("collecting", total=len(targets))
        for t in targets:
            progress.update(task, description=f"collecting {t}")
            out.append(_timed_collect(t, root, vsphere))
            progress.advance(task)
    return out


def _refuse_nothing_collected(facts: Sequence[TargetFacts]) -> None:
    """One line and exit 2 (nothing written) when no target could be collected at all (``collect``; a
    single-target ``scan``): the target and its cause, or every target's cause."""
    if not facts or any(t.unreachable is None for t in facts):
        return
    causes = "; ".join(f"{t.id}: unreachable: {t.unreachable}" for t in facts)
    raise UserError(causes if len(facts) == 1 else f"nothing collected: {causes}")


@click.command()
@click.argument("targets", nargs=-1)
@inventory_option
@limit_option
@root_option
@report_options
@selection_options
@history_options
@workflow_options
@click.option(
    "--baseline",
    "baseline_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Gold configuration (hvguard baseline) that decides 11.4.7.",
)
@probe_acl_option(
    "Run a read-only libvirt call (virsh dominfo) as USER on VM and record allowed/denied (11.2.2, "
    "11.2.3). Repeatable; needs root and this machine's libvirtd."
)
@ssh_options
@vsphere_options
@library_options
def scan(
    targets: tuple[str, ...],
    inventory: tuple[Path, ...],
    limit: str | None,
    root: Path | None,
    profile_path: Path | None,
    outputs: tuple[OutputSpec, ...],
    force: bool,
    fail_on: str,
    selection: Selection,
    db: str | None,
    no_history: bool,
    exceptions_path: Path | None,
    attestations_path: Path | None,
    as_of: date | None,
    baseline_path: Path | None,
    probe_acl: list[tuple[str, str]],
    ssh: SshOptions,
    vsphere: VsphereOptions,
    library: LibrarySource | None,
) -> int:
    """Collect facts from TARGETs and inventory hosts and evaluate them (default target: local)."""
    check_destinations(outputs, force=force)  # refuse before collecting, not after
    estate = inventory_targets(targets, inventory, limit, ssh)
    targets, ssh = estate.targets or (LOCAL,), estate.ssh
    warm_history_store(not no_history)
    profile = load_profile(profile_path)
    workflow = load_workflow(exceptions_path, attestations_path, as_of)
    gold = None
    if baseline_path is not None:
        from hvguard.baseline.schema import BaselineError, load_baseline

        try:
            gold = load_baseline(baseline_path)
        except BaselineError as exc:
            raise UserError(str(exc)) from exc
    facts = with_groups(
        attach_library(attach_probes(_collect_all(targets, root, ssh, vsphere), probe_acl), library),
        estate.groups,
    )
    if len(facts) == 1:
        _refuse_nothing_collected(facts)
    checks = None
    if gold is not None:
        from hvguard.baseline.measure import checks_with_baseline

        checks = checks_with_baseline(gold, facts)
    with timed("evaluate"):
        ev = evaluate(facts, profile, checks=checks, **workflow.kwargs())
    return report_and_store(
        select(ev, selection, generated_at=utc_stamp()),
        outputs=outputs,
        force=force,
        fail_on=fail_on,
        command="scan",
        inputs=targets,
        db=db,
        store=not no_history,
    )


@click.command()
@click.argument("targets", nargs=-1)
@click.option("--output", type=click.Path(path_type=Path), help="Bundle file to write (required).")
@root_option
@click.option("--force", is_flag=True, help="Replace an existing bundle file.")
@probe_acl_option("Record a read-only libvirt access probe as USER on VM in the bundle (see scan).")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the manifest (every command run and file read on a host, and the ssh:// script) and "
    "contact nothing.",
)
@ssh_options
@vsphere_options
@sign_option
@library_options
def collect(
    targets: tuple[str, ...],
    output: Path | None,
    root: Path | None,
    force: bool,
    probe_acl: list[tuple[str, str]],
    dry_run: bool,
    ssh: SshOptions,
    vsphere: VsphereOptions,
    library: LibrarySource | None,
    sign_key: str | None = None,
) -> int:
    """Collect facts from TARGETs into an offline evidence BUNDLE (no evaluation)."""
    if dry_run:
        from hvguard.collect.ssh.script import describe_manifest

        for t in targets:
            validate_target(t)
        from hvguard.collect.vsphere.target import is_vsphere_target

        vsphere_targets = [t for t in targets if is_vsphere_target(t)]
        if not targets or len(vsphere_targets) < len(targets):
            others = [t for t in targets if t not in vsphere_targets]
            sys.stdout.write(describe_manifest(sudo=ssh.sudo, targets=others))
        if vsphere_targets:
            from hvguard.collect.vsphere.manifest import describe_calls

            sys.stdout.write(describe_calls(vsphere_targets))
        return EXIT_OK
    if not targets:
        raise UserError("missing TARGET (or use --dry-run to print the manifest)")
    if output is None:
        raise UserError("missing --output BUNDLE")
    destination(output, force=force)  # refuse before collecting, not after
    private = signer(sign_key, output, force=force)
    collected = attach_library(attach_probes(_collect_all(targets, root, ssh, vsphere), probe_acl), library)
    _refuse_nothing_collected(collected)
    bundle = make_bundle(collected)
    data = encode_bundle(bundle, output.name)
    write_output(data, output, force=force, mode=OWNER_ONLY)
    write_signature(private, data, output, force=force)
    vms = sum(len(t.hypervisor.vms) for t in bundle.targets if t.hypervisor) + sum(
        len(t.vsphere.vms) for t in bundle.targets if t.vsphere
    )
    problems = sum(len(t.problems) for t in bundle.targets)
    unreachable = [t.id for t in bundle.targets if t.unreachable]
    partial = [t.id for t in bundle.targets if is_partial(t)]
    info(
        f"wrote {describe(output)}: {len(bundle.targets)} target(s), {vms} VM(s), "
        f"{problems} collection problem(s)"
        + (f", partial (no hypervisor answer): {', '.join(partial)}" if partial else "")
        + (f", unreachable: {', '.join(unreachable)}" if unreachable else "")
    )
    return EXIT_FINDINGS if partial or unreachable else EXIT_OK


def _inventory_hosts(paths: Sequence[Path]) -> list[InventoryHost] | None:
    """The hosts of ``evaluate --inventory`` (None without one), read before any bundle."""
    if not paths:
        return None
    from hvguard.collect.inventory import InventoryError, load_inventories

    err = error_console()
    try:
        return load_inventories(
            paths, None, warn=lambda line: err.print(f"hvguard: {line}", highlight=False, markup=False)
        )
    except InventoryError as exc:
        raise UserError(str(exc)) from exc


@click.command("evaluate")
@click.argument(
    "bundles", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="BUNDLE_OR_DIR..."
)
@inventory_option
@report_options
@selection_options
@history_options
@workflow_options
@verify_option
def evaluate_cmd(
    bundles: tuple[Path, ...],
    inventory: tuple[Path, ...],
    profile_path: Path | None,
    outputs: tuple[OutputSpec, ...],
    force: bool,
    fail_on: str,
    selection: Selection,
    db: str | None,
    no_history: bool,
    exceptions_path: Path | None,
    attestations_path: Path | None,
    as_of: date | None,
    verify_key: str | None = None,
) -> int:
    """Evaluate offline evidence bundles written by ``hvguard collect`` (or the Ansible role) as one report.

    Give bundle files or directories of them (their *.json and *.json.gz files): the report is the one a
    multi-target scan of the same hosts gives. A bundle that cannot be read or verified, or a target in
    two bundles, is exit 2 with nothing evaluated."""
    check_destinations(outputs, force=force)  # refuse before reading the bundles, not after
    profile = load_profile(profile_path)
    workflow = load_workflow(exceptions_path, attestations_path, as_of)
    hosts = _inventory_hosts(inventory)
    with timed("read bundles"):
        facts, sources = load_estate(bundles, verify_key)
    if hosts is not None:
        from hvguard.collect.estate import attach_groups

        bundle_of = {tid: Path(src.path) for src in sources for tid in src.targets}
        facts, ungrouped = attach_groups(facts, bundle_of, hosts)
        if ungrouped:
            info(f"{len(ungrouped)} target(s) in no inventory group: {', '.join(ungrouped)}")
    with timed("evaluate"):
        ev = msgspec.structs.replace(
            evaluate(facts, profile, **workflow.kwargs()),
            bundle=sources[0] if len(sources) == 1 else None,
            bundles=tuple(sources),
        )
    return report_and_store(
        select(ev, selection, generated_at=utc_stamp()),
        outputs=outputs,
        force=force,
        fail_on=fail_on,
        command="evaluate",
        inputs=[str(b) for b in bundles],
        db=db,
        store=not no_history,
    )
