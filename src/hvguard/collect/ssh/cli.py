"""Command-line glue for ``ssh://`` targets: the SSH options of ``scan``/``collect`` and collecting a
mixed target list (SSH targets concurrently, the others one by one) under one progress bar.

Imports no SSH library itself, so ``hvguard --help`` and local scans stay fast; asyncssh is loaded only
when an ``ssh://`` target is collected.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hvguard.collect.ssh.target import (
    DEFAULT_CONCURRENCY,
    DEFAULT_TIMEOUT_S,
    SshOptionError,
    SshOptions,
    default_known_hosts,
    is_ssh_target,
)
from hvguard.collect.targets import TargetError, collect_target
from hvguard.facts import TargetFacts

F = TypeVar("F", bound=Callable[..., Any])


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
    for deco in reversed(decorators):
        wrapper = deco(wrapper)
    return wrapper  # type: ignore[return-value]


def collect_mixed(
    targets: Sequence[str], root: Path | None, ssh: SshOptions | None, console: Console
) -> list[TargetFacts]:
    """Collect ``targets`` (already validated) in order: ``ssh://`` ones concurrently in a worker thread,
    the others one by one meanwhile; one progress bar on ``console`` when it is a terminal."""
    ssh_targets = [t for t in targets if is_ssh_target(t)]
    others = [t for t in targets if not is_ssh_target(t)]
    if ssh_targets and root is not None:
        raise TargetError("--root cannot be combined with ssh:// targets (their files come from the target)")
    from hvguard.collect.ssh.transport import collect_ssh_targets  # asyncssh: only now

    results: dict[str, TargetFacts] = {}
    failure: list[BaseException] = []
    notices: list[str] = []
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    with progress:
        task = progress.add_task("collecting", total=len(targets))

        def done(_target: str) -> None:
            progress.advance(task)

        def run_ssh() -> None:
            try:
                found = collect_ssh_targets(ssh_targets, ssh, on_done=done, notify=notices.append)
                results.update(zip(ssh_targets, found, strict=True))
            except BaseException as exc:  # re-raised in the calling thread
                failure.append(exc)

        # A daemon thread: an interrupted run exits without waiting for the SSH sessions.
        worker = threading.Thread(target=run_ssh, name="hvguard-ssh", daemon=True)
        worker.start()
        for target in others:
            progress.update(task, description=f"collecting {target}")
            results[target] = collect_target(target, root=root)
            progress.advance(task)
        progress.update(task, description=f"collecting {len(ssh_targets)} ssh:// target(s)")
        worker.join()
    for line in notices:
        console.print(f"hvguard: {line}", highlight=False, markup=False)
    if failure:
        if isinstance(failure[0], SshOptionError):
            raise click.UsageError(str(failure[0]))
        raise failure[0]
    return [results[t] for t in targets]
