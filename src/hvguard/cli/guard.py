"""``hvguard guard …``: admission control for libvirt — install the qemu hook that refuses (or, in audit
mode, records) a VM whose definition breaks SS-009, and look after it.

``install`` / ``install --update`` / ``refresh`` / ``uninstall`` / ``status`` / ``break-glass`` live here
(:mod:`hvguard.guard.install`, :mod:`hvguard.guard.status`, :mod:`hvguard.guard.breakglass`); ``check``
(the same decision on a domain XML file, for pipelines) is :mod:`hvguard.cli.guard_check`. Exit codes:
0 done, 2 a usage or input error (one line on stderr); ``check`` adds 1 (refused).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from hvguard.cli.errors import EXIT_OK, UserError

STATE_DIR_HELP = (
    "The guard's state directory (default /var/lib/hvguard/guard, or $HVGUARD_GUARD_DIR): pinned policy, "
    "host snapshot, decisions.jsonl, break-glass.jsonl."
)


def _state_dir_option(f: Any) -> Any:
    return click.option(
        "--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help=STATE_DIR_HELP
    )(f)


def _state_dir(value: Path | None) -> Path:
    from hvguard.guard.statefile import state_dir

    return state_dir(value)


def _user_errors() -> tuple[type[Exception], ...]:
    from hvguard.guard.breakglass import BreakGlassError
    from hvguard.guard.hookdir import HookDirError
    from hvguard.guard.install import InstallError
    from hvguard.guard.statefile import StateError

    return InstallError, StateError, HookDirError, BreakGlassError


def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; the guard's own errors, and permission errors, become one-line user errors."""
    try:
        return fn(*args, **kwargs)
    except _user_errors() as e:
        raise UserError(str(e)) from e
    except PermissionError as e:
        raise UserError(f"{e.filename or 'permission denied'}: {e.strerror} (run as root)") from e


class _GuardGroup(click.Group):
    """The guard group; ``check`` is G1's command, imported only when used (start-up stays lean)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Own commands plus ``check``."""
        return sorted([*super().list_commands(ctx), "check"])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """``check`` from :mod:`hvguard.cli.guard_check`, the others from this module."""
        if cmd_name == "check":
            from hvguard.cli.guard_check import check

            assert isinstance(check, click.Command)
            return check
        return super().get_command(ctx, cmd_name)


@click.group(cls=_GuardGroup)
def guard() -> None:
    """Refuse to start a VM that breaks SS-009: a libvirt qemu hook (admission control).

    `guard install` puts the hook in /etc/libvirt/hooks/qemu.d/ (audit mode by default: decisions are
    only recorded; `--mode enforce` refuses). Every decision goes to syslog and decisions.jsonl.
    """


@guard.command("install")
@click.option(
    "--mode",
    type=click.Choice(["audit", "enforce"]),
    default=None,
    help="audit (default): allow and record would-be refusals; enforce: refuse violating VMs.",
)
@click.option(
    "--on-error",
    "on_error",
    type=click.Choice(["deny", "allow"]),
    default=None,
    help="What the hook does when hvguard itself fails or times out (default deny).",
)
@click.option(
    "--profile",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Profile YAML (default: the packaged profile); copied and pinned by sha256.",
)
@click.option(
    "--exceptions",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Exceptions register; copied and pinned by sha256.",
)
@click.option(
    "--attestations",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Attestations file; copied and pinned (evidence stays relative to the original).",
)
@click.option(
    "--no-exceptions",
    "no_exceptions",
    is_flag=True,
    help="With --update: stop applying the pinned exceptions register (its copy is removed).",
)
@click.option(
    "--no-attestations",
    "no_attestations",
    is_flag=True,
    help="With --update: stop applying the pinned attestations file (its copy is removed).",
)
@click.option(
    "--warm/--no-warm",
    default=None,
    help="Let a warm decider (a process with hvguard loaded, gone after 10 idle minutes) answer the hook "
    "after the first VM start (default on); --no-warm: every start runs a cold hook.",
)
@click.option(
    "--domains", default=None, help="Only domains whose name matches this glob are judged (default *)."
)
@_state_dir_option
@click.option(
    "--hook-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="libvirt's hook directory (default /etc/libvirt/hooks).",
)
@click.option("--timeout", type=int, default=None, help="Hard limit of one hook run in seconds (default 10).")
@click.option(
    "--syslog-socket",
    default=None,
    help="Unix socket of the syslog daemon for the hook's lines (default /dev/log).",
)
@click.option(
    "--update",
    is_flag=True,
    help="Change an installed guard: re-copy and re-pin the policy files, apply given options.",
)
@click.option(
    "--force", is_flag=True, help="Replace a hook file that is not hvguard's (uninstall puts it back)."
)
@click.option(
    "--reload-libvirtd",
    is_flag=True,
    help="SIGHUP libvirtd so it finds the new hook (libvirt looks for hooks only at start and reload).",
)
def install_cmd(
    mode: str | None, on_error: str | None, profile: Path | None, exceptions: Path | None,
    attestations: Path | None, no_exceptions: bool, no_attestations: bool, warm: bool | None,
    domains: str | None, state_dir: Path | None, hook_dir: Path | None, timeout: int | None,
    syslog_socket: str | None, update: bool, force: bool, reload_libvirtd: bool,
) -> int:  # fmt: skip
    """Install the libvirt qemu hook, or change it (--update)."""
    from hvguard.guard import hookdir
    from hvguard.guard.install import InstallOptions, install

    asked_to_drop = {"exceptions": no_exceptions, "attestations": no_attestations}
    opts = InstallOptions(
        state_dir=_state_dir(state_dir),
        hook_dir=hook_dir or hookdir.DEFAULT_HOOK_DIR,
        mode=mode, on_error=on_error, profile=profile, exceptions=exceptions, attestations=attestations,
        drop=frozenset(k for k, no in asked_to_drop.items() if no), warm=warm,
        domains=domains, timeout=timeout, syslog_socket=syslog_socket,
        update=update, force=force, reload_libvirtd=reload_libvirtd,
    )  # fmt: skip
    result = _run(install, opts)
    state = result.state
    verb = "updated" if update else "installed"
    click.echo(
        f"hvguard guard {verb}: {result.hook} (mode {state['mode']}, on-error {state['on_error']}, "
        f"domains {state['domains']}); state {opts.state_dir}"
    )
    from hvguard.guard.status import hook_status

    hs = hook_status(state)
    if hs["libvirt_calls_hook"] != "yes":
        click.echo(
            f"hvguard: warning: libvirt calls the hook: {hs['libvirt_calls_hook']} — {hs['why']}", err=True
        )
    return EXIT_OK


@guard.command("uninstall")
@_state_dir_option
@click.option("--purge", is_flag=True, help="Remove decisions.jsonl too (kept by default: it is evidence).")
@click.option("--force", is_flag=True, help="Restore the hook directory even if the hook was changed since.")
def uninstall_cmd(state_dir: Path | None, purge: bool, force: bool) -> int:
    """Remove the hook and put the hook directory back exactly as it was; remove the state."""
    from hvguard.guard.install import uninstall

    sd = _state_dir(state_dir)
    for warning in _run(uninstall, sd, purge=purge, force=force):
        click.echo(f"hvguard: warning: {warning}", err=True)
    kept = "" if purge else f" (decisions kept in {sd}/decisions.jsonl)"
    click.echo(f"hvguard guard uninstalled{kept}")
    return EXIT_OK


@guard.command("refresh")
@_state_dir_option
def refresh_cmd(state_dir: Path | None) -> int:
    """Take a new snapshot of this host's facts (cores, hardware assist, security driver, memory)."""
    from hvguard.guard.install import refresh

    state = _run(refresh, _state_dir(state_dir))
    click.echo(f"hvguard guard: host snapshot renewed at {state['host_facts']['taken_at']}")
    return EXIT_OK


@guard.command("status")
@_state_dir_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", help="Output format.")
@click.option("--last", type=click.IntRange(0, 1000), default=10, help="How many recent decisions to show.")
def status_cmd(state_dir: Path | None, fmt: str, last: int) -> int:
    """Mode, hook, pinned policy files (sha256), snapshot age, active break-glass, last decisions."""
    from hvguard.guard.status import render_text, status

    doc = _run(status, _state_dir(state_dir), last=last)
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(render_text(doc), nl=False)
    return EXIT_OK


@guard.command("break-glass")
@click.option("--domain", required=True, help="The libvirt domain allowed to start.")
@click.option("--minutes", type=int, required=True, help="How long the bypass lasts (1..1440).")
@click.option("--reason", required=True, help="Why (logged with the entry).")
@_state_dir_option
def break_glass_cmd(domain: str, minutes: int, reason: str, state_dir: Path | None) -> int:
    """Let one domain start for a while whatever the guard decides (root only; logged)."""
    from hvguard.guard.breakglass import grant

    entry, warning = _run(grant, _state_dir(state_dir), domain, minutes, reason)
    if warning:
        click.echo(f"hvguard: warning: not sent to syslog: {warning}", err=True)
    click.echo(f"hvguard guard: break-glass for {entry['domain']} until {entry['until']} (logged)")
    return EXIT_OK
