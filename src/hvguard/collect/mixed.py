"""Collecting a mixed target list: ``ssh://`` targets concurrently in a worker thread, the others one by
one meanwhile, results in the order given.

Imports no SSH library itself, so ``hvguard --help`` and local scans stay fast; asyncssh is loaded only
when an ``ssh://`` target is collected. Progress is reported through callbacks: showing it is the command
line's business.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from hvguard.collect.ssh.target import SshOptions, is_ssh_target
from hvguard.collect.targets import TargetError, collect_target
from hvguard.collect.vsphere.target import VsphereOptions
from hvguard.facts import TargetFacts


def _ignore(_text: str) -> None:
    """A callback that does nothing."""


def collect_mixed(
    targets: Sequence[str],
    root: Path | None,
    ssh: SshOptions | None,
    *,
    vsphere: VsphereOptions | None = None,
    describe: Callable[[str], None] = _ignore,
    advance: Callable[[], None] = lambda: None,
    notify: Callable[[str], None] = _ignore,
) -> list[TargetFacts]:
    """Collect ``targets`` (already validated) in order.

    ``describe(text)`` names what is being collected now, ``advance()`` is called once per finished
    target (from the SSH worker thread too), and ``notify(line)`` receives the transport's notices (a
    host key added to known_hosts), after every SSH target is done. Raises what collection raised
    (:class:`~hvguard.collect.ssh.target.SshOptionError` for unusable SSH options).
    """
    ssh_targets = [t for t in targets if is_ssh_target(t)]
    others = [t for t in targets if not is_ssh_target(t)]
    if ssh_targets and root is not None:
        raise TargetError("--root cannot be combined with ssh:// targets (their files come from the target)")
    from hvguard.collect.ssh.transport import collect_ssh_targets  # asyncssh: only now

    results: dict[str, TargetFacts] = {}
    failure: list[BaseException] = []
    notices: list[str] = []

    def done(_target: str) -> None:
        advance()

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
        describe(f"collecting {target}")
        results[target] = collect_target(target, root=root, vsphere=vsphere)
        advance()
    describe(f"collecting {len(ssh_targets)} ssh:// target(s)")
    worker.join()
    for line in notices:
        notify(line)
    if failure:
        raise failure[0]
    return [results[t] for t in targets]
