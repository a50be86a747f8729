"""``hvguard baseline capture|check`` and ``hvguard remediate``: the gold configuration of SS-009 11.4.7.

Exit codes: ``baseline check`` and a dry-run ``remediate`` give 0 (no drift), 1 (drift) or 2 (usage or
input error, or something governed could not be read); ``remediate --apply`` gives 0 when the target
now matches the baseline, 1 when something is left (manual items, the Ansible playbook, failures) and
``remediate --undo`` 0 when every domain was restored and verified.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from hvguard.baseline.schema import BaselineError, HostSettings, LoadedBaseline, load_baseline
from hvguard.cli.console import error_console, wide_console
from hvguard.cli.errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, UserError
from hvguard.cli.options import root_option, vsphere_options
from hvguard.cli.output import WORLD_READABLE, describe, destination, to_stdout, write_output
from hvguard.collect.targets import LOCAL, LOCAL_URI, TargetError, collect_target, validate_target
from hvguard.collect.vsphere.target import VsphereOptions, VsphereTargetError, is_vsphere_target
from hvguard.facts import TargetFacts
from hvguard.yamlsafe import YamlInputError, read_yaml_file

_FORMAT = click.Choice(["table", "json"])


def _write(text: str, output: Path | None, *, force: bool) -> None:
    """Standard output, or ``output`` (shareable: mode 0644) by the rules of the one writer."""
    write_output(text, output, force=force, mode=WORLD_READABLE)


def _load(path: Path) -> LoadedBaseline:
    try:
        loaded = load_baseline(path)
    except BaselineError as exc:
        raise UserError(str(exc)) from exc
    for warning in loaded.warnings:
        click.echo(f"hvguard: warning: {warning}", err=True)
    return loaded


def _collect(target: str, root: Path | None, vsphere: VsphereOptions | None = None) -> TargetFacts:
    try:
        validate_target(target)
        err = error_console()
        if not err.is_terminal:
            return collect_target(target, root=root, vsphere=vsphere)
        with err.status(f"collecting {target}"):
            return collect_target(target, root=root, vsphere=vsphere)
    except (TargetError, VsphereTargetError) as exc:
        raise UserError(str(exc)) from exc


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


# --------------------------------------------------------------------------------------------------------
# baseline


@click.group("baseline")
def baseline() -> None:
    """Gold configuration (SS-009 11.4.7): capture it from a target, check a target against it."""


@baseline.command("capture")
@click.argument("target")
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), help="Write the YAML to FILE.")
@click.option("--match", "pattern", help="Only VMs whose name matches this shell pattern (default: all).")
@click.option("--no-host", is_flag=True, help="Leave host settings out.")
@root_option
@click.option("--force", is_flag=True, help="Replace an existing --output file.")
@vsphere_options
def capture_cmd(
    target: str,
    output: Path | None,
    pattern: str | None,
    no_host: bool,
    root: Path | None,
    force: bool,
    vsphere: VsphereOptions,
) -> int:
    """Write TARGET's current settings as a gold configuration (one class per VM, exact-name match)."""
    from hvguard.baseline.capture import capture, render

    destination(output, force=force)  # refuse before collecting, not after
    facts = _collect(target, root, vsphere)
    if facts.unreachable is not None:
        raise UserError(f"{target}: {facts.unreachable}")
    doc = capture(facts, match=pattern, host=not no_host)
    hv, vs = facts.hypervisor, facts.vsphere
    unread = [(vm.name, vm.error) for vm in (hv.vms if hv is not None else [])]
    unread += [(vm.name, vm.error) for vm in (vs.vms if vs is not None else [])]
    for name, error in unread:
        if error is not None:
            click.echo(f"hvguard: warning: vm:{name} left out (cannot read it: {error})", err=True)
    captured_hosts = {c["name"] for c in doc.get("vsphere_hosts", [])}
    for h in vs.hosts if vs is not None and not no_host else []:
        if h.options is None:
            click.echo(f"hvguard: warning: host:{h.name} left out (advanced options not read)", err=True)
        elif h.name not in captured_hosts:
            click.echo(
                f"hvguard: warning: host:{h.name} left out (none of the advanced options hvguard judges is "
                "set; add a vsphere_hosts class by hand to govern others)",
                err=True,
            )
    if not no_host and facts.host is None and vs is None:
        click.echo(
            f"hvguard: warning: no host settings captured: host facts not collected for {target}", err=True
        )
    when = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    _write(render(doc, target=target, when=when), output, force=force)
    if not to_stdout(output):
        click.echo(
            f"wrote {output}: {len(doc['vm_classes'])} VM class(es)"
            + (", host settings" if "host" in doc else "")
            + (f", {len(doc['vsphere_hosts'])} host class(es)" if "vsphere_hosts" in doc else ""),
            err=True,
        )
    return EXIT_OK


@baseline.command("check")
@click.argument("target")
@click.option("--baseline", "baseline_path", required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", type=_FORMAT, default="table", show_default=True)
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), help="Write the report to FILE.")
@click.option("--force", is_flag=True, help="Replace an existing --output file.")
@root_option
@vsphere_options
def check_cmd(
    target: str,
    baseline_path: Path,
    fmt: str,
    output: Path | None,
    force: bool,
    root: Path | None,
    vsphere: VsphereOptions,
) -> int:
    """Report every value where TARGET drifted from the gold configuration (exit 1 on drift)."""
    from hvguard.baseline.drift import target_drift

    loaded = _load(baseline_path)
    destination(output, force=force)  # refuse before collecting, not after
    report = target_drift(loaded.baseline, _collect(target, root, vsphere), loaded.source)
    if fmt == "json":
        _write(_json(report.to_json()), output, force=force)
    else:
        console = wide_console()
        if not to_stdout(output):
            console = Console(file=open(os.devnull, "w"), record=True, width=160)  # noqa: SIM115
        table = Table(title=f"drift of {target} against {loaded.source}", title_justify="left")
        for col in ("Subject", "Setting", "Expected", "Actual", "Class"):
            table.add_column(col, overflow="fold")
        for item in report.items:
            table.add_row(
                item.subject, item.path, _show(item.expected), _show(item.actual), item.vm_class or ""
            )
        if report.items:
            console.print(table)
        for e in report.errors:
            console.print(f"[bold red]ERROR[/] {e.subject}: {e.message}")
        for w in report.warnings:
            console.print(f"[yellow]warning[/] {w}")
        console.print(
            f"{len(report.items)} drift item(s); {len(report.governed)} VM(s) governed, "
            f"{len(report.ungoverned)} not governed; "
            f"host {'checked' if report.host_checked else 'not checked'}"
        )
        if not to_stdout(output):
            _write(console.export_text(), output, force=force)
    if report.errors:
        click.echo(f"hvguard: error: {len(report.errors)} governed subject(s) could not be checked", err=True)
    return report.exit_code()


# --------------------------------------------------------------------------------------------------------
# remediate


def _host_facts(uri: str, root: Path | None) -> tuple[Any, str | None]:
    from hvguard.collect.linux.source import LocalSource, RootSource
    from hvguard.collect.targets import collect_host_facts, is_local_uri

    if root is None and not is_local_uri(uri):
        return None, "host files cannot be read through this libvirt URI; pass --root DIR"
    problems: list[Any] = []
    source = LocalSource() if root is None else RootSource(root)
    return collect_host_facts(source, problems=problems), None


def _print_plan(plan: Any, console: Console) -> None:
    table = Table(title=f"remediation plan for {plan.target}", title_justify="left")
    for col in ("Subject", "Setting", "Now", "Baseline", "How", "Scope", "Note"):
        table.add_column(col, overflow="fold")
    for a in plan.all_actions():
        i = a.item
        table.add_row(i.subject, i.path, _show(i.actual), _show(i.expected), a.method, a.scope, a.note)
    if plan.all_actions():
        console.print(table)
    for e in plan.errors:
        console.print(f"[bold red]ERROR[/] {e}")
    for w in plan.warnings:
        console.print(f"[yellow]warning[/] {w}")


def _remediate_vsphere(
    target: str,
    baseline_path: Path,
    emit_powercli: Path | None,
    force: bool,
    fmt: str,
    vsphere: VsphereOptions,
) -> int:
    """The dry-run plan of a vSphere target and, when asked, the PowerCLI script for it."""
    from hvguard.baseline.drift import target_drift
    from hvguard.baseline.powercli import powercli_script

    loaded = _load(baseline_path)
    if emit_powercli is not None:
        destination(emit_powercli, force=force)  # refuse before connecting, not after
    facts = _collect(target, None, vsphere)
    report = target_drift(loaded.baseline, facts, loaded.source)
    if emit_powercli is not None:
        _write(
            powercli_script(report, loaded.baseline, facts, source=loaded.source), emit_powercli, force=force
        )
        click.echo(
            f"wrote {describe(emit_powercli)}: PowerCLI for {len(report.items)} drift item(s)", err=True
        )
    note = "remediation through the vSphere API is not available yet: nothing was changed"
    if fmt == "json":
        doc = {**report.to_json(), "mode": "dry-run", "note": note}
        sys.stdout.write(_json(doc))
    else:
        console = wide_console()
        table = Table(title=f"remediation plan for {target}", title_justify="left")
        for col in ("Subject", "Setting", "Now", "Baseline", "How"):
            table.add_column(col, overflow="fold")
        for i in report.items:
            how = "powercli" if i.path.startswith(("advanced_options.", "resources.")) else "manual"
            table.add_row(i.subject, i.path, _show(i.actual), _show(i.expected), how)
        if report.items:
            console.print(table)
        for e in report.errors:
            console.print(f"[bold red]ERROR[/] {e.subject}: {e.message}")
        for w in report.warnings:
            console.print(f"[yellow]warning[/] {w}")
        console.print(
            f"dry run: {len(report.items)} change(s) planned; {note}"
            + (
                ""
                if emit_powercli is not None or not report.items
                else " (--emit-powercli FILE writes a script)"
            )
            if report.items
            else "no drift: nothing to do"
        )
    return report.exit_code()


@click.command("remediate")
@click.argument("target", required=False)
@click.option("--baseline", "baseline_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--apply", "do_apply", is_flag=True, help="Perform the changes (default: show the plan only).")
@click.option("--undo", "undo_id", metavar="RUN_ID", help="Restore the domains changed by run RUN_ID.")
@click.option("--force", is_flag=True, help="Undo even if domains changed since the run; replace files.")
@click.option(
    "--emit-ansible", type=click.Path(path_type=Path, dir_okay=False), help="Write the host playbook."
)
@click.option(
    "--emit-powercli",
    type=click.Path(path_type=Path, dir_okay=False),
    help="vsphere:// targets: write a PowerCLI script that fixes the drift.",
)
@click.option("--ansible-hosts", default="all", show_default=True, help="The playbook's hosts pattern.")
@click.option("--config-only", is_flag=True, help="Change persistent definitions only, never running VMs.")
@click.option(
    "--data-dir", type=click.Path(path_type=Path, file_okay=False), help="Where undo records are kept."
)
@click.option("--format", "fmt", type=_FORMAT, default="table", show_default=True)
@root_option
@vsphere_options
def remediate(
    target: str | None,
    baseline_path: Path | None,
    do_apply: bool,
    undo_id: str | None,
    force: bool,
    emit_ansible: Path | None,
    emit_powercli: Path | None,
    ansible_hosts: str,
    config_only: bool,
    data_dir: Path | None,
    fmt: str,
    root: Path | None,
    vsphere: VsphereOptions,
) -> int:
    """Bring TARGET back to the gold configuration: a dry run by default, --apply to change VMs
    through libvirt (with an undo record), --emit-ansible for host settings, --undo RUN_ID to revert.
    vsphere:// targets: the plan only, and --emit-powercli FILE for a script that fixes the drift."""
    from hvguard.baseline import apply as ap
    from hvguard.baseline.runs import RunError, RunStore
    from hvguard.baseline.runs import data_dir as resolve_data_dir

    store = RunStore(resolve_data_dir(data_dir))
    if undo_id is not None:
        if do_apply or baseline_path is not None or emit_ansible is not None:
            raise UserError("--undo takes only a RUN_ID (and optionally TARGET, --force, --data-dir)")
        uri = None if target is None else (LOCAL_URI if target == LOCAL else target)
        try:
            undone = ap.undo_run(store, undo_id, force=force, uri=uri)
        except ap.UndoRefused as exc:
            click.echo(exc.details)
            raise UserError(str(exc)) from exc
        except (ap.RemediationError, RunError) as exc:
            raise UserError(str(exc)) from exc
        if fmt == "json":
            sys.stdout.write(_json(dataclasses.asdict(undone)))
        else:
            names = ", ".join(undone.restored)
            click.echo(f"run {undone.run_id}: restored {len(undone.restored)} domain(s): {names}")
            for note in undone.notes:
                click.echo(f"  note: {note}")
        return EXIT_OK
    if target is None or baseline_path is None:
        raise UserError("remediate needs TARGET and --baseline FILE (or --undo RUN_ID)")
    if is_vsphere_target(target):
        if do_apply or emit_ansible is not None or config_only:
            raise UserError(
                f"{target}: remediation through the vSphere API is not available yet "
                "(--apply, --emit-ansible and --config-only are for libvirt targets); "
                "use the dry run and --emit-powercli FILE"
            )
        return _remediate_vsphere(target, baseline_path, emit_powercli, force, fmt, vsphere)
    if emit_powercli is not None:
        raise UserError("--emit-powercli is for vsphere:// targets")
    if emit_ansible is not None:
        destination(emit_ansible, force=force)  # refuse before connecting, not after
    try:
        validate_target(target)
    except TargetError as exc:
        raise UserError(str(exc)) from exc
    loaded = _load(baseline_path)
    uri = LOCAL_URI if target == LOCAL else target
    host, host_problem = (None, None)
    if isinstance(loaded.baseline.host, HostSettings):
        host, host_problem = _host_facts(uri, root)
    try:
        conn = ap.connect(uri)
    except ap.RemediationError as exc:
        raise UserError(str(exc)) from exc
    try:
        planned = ap.build_plan(conn, uri, loaded, host, host_problem)
        plan = planned.plan
        if emit_ansible is not None:
            from hvguard.baseline.ansible import playbook

            _write(
                playbook(planned.host_items, hosts=ansible_hosts, source=loaded.source),
                emit_ansible,
                force=force,
            )
            tasks = sum(1 for a in plan.host if a.method == "ansible")
            click.echo(f"wrote {describe(emit_ansible)}: {tasks} host setting(s)", err=True)
        if not do_apply:
            if fmt == "json":
                sys.stdout.write(_json({**plan.to_json(), "mode": "dry-run"}))
            else:
                console = wide_console()
                _print_plan(plan, console)
                n = len(plan.all_actions())
                auto = sum(1 for a in plan.all_actions() if a.automatic)
                console.print(
                    f"dry run: {n} change(s) planned, {auto} automatic with --apply; nothing was changed"
                    if n
                    else "no drift: nothing to do"
                )
            return EXIT_USAGE if plan.errors else (EXIT_FINDINGS if plan.all_actions() else EXIT_OK)
        try:
            baseline_text = read_yaml_file(baseline_path)
        except YamlInputError as exc:
            raise UserError(str(exc)) from exc
        try:
            result = ap.apply_plan(planned, store, live=not config_only, baseline_text=baseline_text)
        except (ap.RemediationError, RunError, OSError) as exc:
            raise UserError(str(exc)) from exc
    finally:
        with contextlib.suppress(Exception):  # best effort: the outcome is already decided
            conn.close()
    left = [a for a in plan.all_actions() if not a.automatic]
    if fmt == "json":
        sys.stdout.write(
            _json(
                {
                    **plan.to_json(),
                    "mode": "apply",
                    "run_id": result.run_id,
                    "run_dir": result.run_dir,
                    "results": [d.to_json() for d in result.domains],
                    "complete": result.complete,
                }
            )
        )
    else:
        console = wide_console()
        _print_plan(plan, console)
        for d in result.domains:
            console.print(f"vm:{d.name}: {len(d.applied)} change(s) applied")
            for f in d.failed:
                console.print(f"  [bold red]FAILED[/] {f['path']} ({f['call']}): {f['error']}")
            for i in d.remaining:
                console.print(
                    f"  [bold red]NOT APPLIED[/] {i.path}: still {_show(i.actual)}, want {_show(i.expected)}"
                )
        console.print(
            f"run {result.run_id} (undo: hvguard remediate --undo {result.run_id}); "
            f"{len(left)} item(s) left for Ansible or by hand"
        )
    if plan.errors:
        return EXIT_USAGE
    return EXIT_OK if result.complete and not left else EXIT_FINDINGS
