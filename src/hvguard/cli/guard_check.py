"""``hvguard guard check DOMAIN.xml …``: the guard's admission decision without libvirt, for pipelines
(virt-install, the Terraform libvirt provider, Ansible) before a domain is defined.

Each file is judged as the installed hook would judge it at start (:mod:`hvguard.guard.decide`): against
this machine's host facts (collected now), ``--host-facts BUNDLE`` (any one-host bundle, e.g. one
``hvguard collect`` wrote on the target hypervisor), or ``--no-host`` (no host at all: measures that need
the host are ``error``). Exit codes: 0 every domain allowed; 1 one is refused; 2 bad input (a file that
cannot be read, malformed or hostile XML — one line, nothing judged), or with ``--no-host`` a domain
whose only violations are measures that need the host (the decision is not possible without it).
``--format json`` prints the ``hvguard.guard-decision/1`` record (an array for several files).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hvguard.cli.errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, UserError
from hvguard.cli.options import workflow_options

if TYPE_CHECKING:
    from hvguard.facts import TargetFacts, VmFacts
    from hvguard.guard.record import GuardDecision


def _read_domains(paths: tuple[Path, ...]) -> list[tuple[Path, VmFacts]]:
    from hvguard.filekind import InputFileError, read_regular_file
    from hvguard.guard.domain import MAX_XML_BYTES, DomainXmlError, parse_domain

    out = []
    for path in paths:
        try:
            data = read_regular_file(path, MAX_XML_BYTES)
        except InputFileError as exc:
            raise UserError(f"cannot read domain XML {path}: {exc.reason}") from exc
        try:
            out.append((path, parse_domain(data, str(path))))
        except DomainXmlError as exc:
            raise UserError(str(exc)) from exc
    return out


def _host(host_facts: Path | None, no_host: bool) -> tuple[TargetFacts, str | None]:
    """The host facts to judge against and the bundle's sha256 (None when collected now / no host)."""
    from hvguard.guard.decide import no_host_facts
    from hvguard.guard.snapshot import SnapshotError, collect, load

    if no_host:
        if host_facts is not None:
            raise UserError("--host-facts and --no-host exclude each other")
        return no_host_facts(), None
    try:
        if host_facts is not None:
            from hvguard.digest import sha256_file

            return load(host_facts), sha256_file(host_facts)
        return collect("local"), None
    except SnapshotError as exc:
        raise UserError(str(exc)) from exc


def _text(record: GuardDecision) -> str:
    head = {"allowed": "ALLOWED", "refused": "REFUSED", "would-refuse": "WOULD REFUSE"}[record.outcome]
    lines = [f"{head} {record.domain} ({record.source}): {record.reason}"]
    for v in record.violations:
        lines.append(f"  {v.measure} {v.status}: {' '.join(v.message.split())}")
        for n, fix_line in enumerate((v.fix or "").strip().splitlines()):
            lines.append(f"      {'fix: ' if n == 0 else '     '}{fix_line}")
    for c in record.covered:
        until = f", expires {c.expires_on}" if c.expires_on else ""
        lines.append(f"  {c.measure} {c.status}: covered by exception {c.exception}{until}")
    if record.host_findings:
        measures = ", ".join(dict.fromkeys(h.measure for h in record.host_findings))
        lines.append(f"  host findings (not blocking): {len(record.host_findings)} ({measures})")
    return "\n".join(lines)


def _needs_host(record: GuardDecision) -> bool:
    """With --no-host: the domain is refused only for measures that could not be judged."""
    return record.outcome == "refused" and all(v.status == "error" for v in record.violations)


@click.command("check")
@click.argument("domain_xml", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--host-facts",
    "host_facts",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Judge against the host in this bundle (hvguard collect of the hypervisor) instead of this machine.",
)
@click.option(
    "--no-host",
    is_flag=True,
    help="Use no host facts: measures that need the host are error, and a domain refused only for "
    "those exits 2.",
)
@click.option(
    "--profile", "profile_path", type=click.Path(path_type=Path, dir_okay=False), help="Profile YAML file."
)
@workflow_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text, or json: the hvguard.guard-decision/1 record (an array for several files).",
)
def check(
    domain_xml: tuple[Path, ...],
    host_facts: Path | None,
    no_host: bool,
    profile_path: Path | None,
    exceptions_path: Path | None,
    attestations_path: Path | None,
    as_of: date | None,
    fmt: str,
) -> int:
    """Decide whether each DOMAIN_XML may start, as the installed guard would (0 allowed, 1 refused)."""
    import json

    from hvguard.digest import sha256_file
    from hvguard.guard.decide import decide
    from hvguard.guard.policy import load_policy
    from hvguard.guard.record import PolicyPins, to_builtins

    domains = _read_domains(domain_xml)
    policy = load_policy(profile_path, exceptions_path, attestations_path)
    host, host_sha = _host(host_facts, no_host)
    pins = PolicyPins(
        profile_sha256=sha256_file(profile_path) if profile_path else None,
        exceptions_sha256=sha256_file(exceptions_path) if exceptions_path else None,
        attestations_sha256=sha256_file(attestations_path) if attestations_path else None,
        host_facts_sha256=host_sha,
        profile=policy.profile.name,
    )
    records = [
        decide(
            host,
            vm,
            policy,
            mode="check",
            operation="check",
            pins=pins,
            source=str(path),
            as_of=as_of,
            no_host=no_host,
        )
        for path, vm in domains
    ]
    if fmt == "json":
        data = [to_builtins(r) for r in records]
        click.echo(json.dumps(data[0] if len(data) == 1 else data, indent=2, ensure_ascii=False))
    else:
        click.echo("\n".join(_text(r) for r in records))
    undecided = [r for r in records if no_host and _needs_host(r)]
    if undecided:
        need = ", ".join(dict.fromkeys(v.measure for r in undecided for v in r.violations))
        click.echo(
            f"hvguard: error: {', '.join(str(r.source) for r in undecided)}: cannot be decided without "
            f"host facts ({need}); give --host-facts BUNDLE",
            err=True,
        )
        return EXIT_USAGE
    return EXIT_FINDINGS if any(r.outcome == "refused" for r in records) else EXIT_OK
