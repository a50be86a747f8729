"""The ``ssh://`` transport: collect a remote host's facts over one SSH session per target.

Per target: connect with asyncssh (ssh-agent, default keys, ``--identity``), check the host key against
a known_hosts file (strictly: an unknown key is refused unless ``--accept-new-host-key`` was given, a
changed key always), run ONE read-only script (``sh -s``, or ``sudo -n sh -s`` with ``--sudo``; see
:mod:`hvguard.collect.ssh.script`), then — locally — serve what it read from memory under the target's
own paths (:mod:`hvguard.collect.ssh.answer_fs`) to the very same host collectors a local scan runs, and
build the hypervisor facts from virsh's answers (:mod:`hvguard.collect.ssh.virsh`). Nothing the target
sent is written to this machine's disk.

Several targets run concurrently (asyncio, bounded by ``--concurrency``); a target that cannot be
reached, refuses the host key or answers garbage becomes ``TargetFacts.unreachable`` with a one-line
reason, and the others finish.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import msgspec

from hvguard import __version__
from hvguard.collect.collectors import collect_host_facts, platform_of
from hvguard.collect.interface import CollectError
from hvguard.collect.libvirt.files import STORED_DEFINITIONS, stored_definitions_instead
from hvguard.collect.libvirt.resources import with_neutral_facts
from hvguard.collect.linux.manifest import manifest_fetch
from hvguard.collect.linux.source import PrefetchedSource
from hvguard.collect.ssh.answer_fs import AnswerFS
from hvguard.collect.ssh.fetch import FetchIndex, follow_up_fetch, manifest_index, never_copied
from hvguard.collect.ssh.records import ProtocolError, RemoteAnswer, parse_answer
from hvguard.collect.ssh.script import (
    MAX_PASSES,
    REMOTE_LIBVIRT_URI,
    build_script,
    new_boundary,
    remote_command,
)
from hvguard.collect.ssh.target import SshOptionError, SshOptions, SshTarget, parse_ssh_target
from hvguard.collect.ssh.virsh import connection_error, hypervisor_facts
from hvguard.facts import CollectionInfo, HypervisorFacts, Problem, TargetFacts
from hvguard.yamlsafe import YamlInputError, read_input_file

#: The most a target may send back; far above a real host's answer (~0.1–5 MiB).
MAX_ANSWER_BYTES = 256 * 1024 * 1024
MAX_STDERR_BYTES = 64 * 1024

# asyncssh logs every connection at INFO; failures are reported per target by hvguard itself.
logging.getLogger("asyncssh").setLevel(logging.CRITICAL)


class _TargetFailed(CollectError):
    """One target could not be collected; ``str()`` is the one-line reason."""


# --------------------------------------------------------------------------------------------------------
# Host keys


class HostKeyPolicy:
    """Strict host-key checking against one known_hosts file, shared by every target of a run.

    asyncssh accepts a key listed for the host by itself; it asks :meth:`decide` only about a key the
    file does not list for that host. Then: if the file lists *any* key (or CA) for the host, the key
    has changed — refused, always. Otherwise the host is new — refused unless ``accept_new``, in which
    case the key is appended to the file (the only write hvguard makes, and only when asked).
    """

    def __init__(self, path: Path, *, accept_new: bool) -> None:
        self.path = path
        self.accept_new = accept_new
        self.known = _load_known_hosts(path)
        self.accepted: dict[str, asyncssh.SSHKey] = {}
        self.notices: list[str] = []

    def decide(self, target: SshTarget, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> str:
        """``accepted``, ``unknown`` or ``changed`` for a key the known_hosts file does not list."""
        name = target.known_hosts_name
        if name in self.accepted:
            return "accepted" if self.accepted[name] == key else "changed"
        listed = self.known.match(host, addr, None if port == 22 else port)
        if listed[0] or listed[1]:
            return "changed"
        if not self.accept_new:
            return "unknown"
        self._append(name, key)
        self.accepted[name] = key
        self.notices.append(f"added the host key of {name} ({key.get_fingerprint()}) to {self.path}")
        return "accepted"

    def _append(self, name: str, key: asyncssh.SSHKey) -> None:
        algorithm, data = key.export_public_key("openssh").decode("ascii").split()[:2]
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lead = "" if _empty_or_terminated(self.path) else "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="ascii") as out:
            out.write(f"{lead}{name} {algorithm} {data}\n")


def _empty_or_terminated(path: Path) -> bool:
    """True when appending a line to ``path`` needs no newline first."""
    try:
        with path.open("rb") as handle:
            if handle.seek(0, os.SEEK_END) == 0:
                return True
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"
    except FileNotFoundError:
        return True


#: A known_hosts file larger than this is not one (a line is a few hundred bytes).
KNOWN_HOSTS_LIMIT = 64 * 1024 * 1024


def _load_known_hosts(path: Path) -> asyncssh.SSHKnownHosts:
    """The file's entries; an absent file is an empty list (every host is then unknown)."""
    if not os.path.lexists(path):
        text = ""
    else:
        try:  # a regular file up to a cap: a FIFO or /dev/zero given as --known-hosts is refused
            text = read_input_file(path, limit=KNOWN_HOSTS_LIMIT).decode("utf-8")
        except YamlInputError as exc:
            raise SshOptionError(f"known_hosts file {exc}") from exc
        except UnicodeDecodeError as exc:
            raise SshOptionError(f"cannot read known_hosts file {path}: {exc}") from exc
    try:
        # Always an SSHKnownHosts object: an empty value would make asyncssh fall back to its own default.
        return asyncssh.SSHKnownHosts(text)
    except (ValueError, asyncssh.KeyImportError) as exc:
        raise SshOptionError(f"known_hosts file {path}: {exc}") from exc


def _load_identity(path: Path | None, label: str = "--identity") -> list[asyncssh.SSHKey] | None:
    if path is None:
        return None
    try:
        return [asyncssh.read_private_key(str(path))]
    except asyncssh.KeyImportError as exc:
        if "assphrase" in str(exc):
            raise SshOptionError(
                f"{label} {path} is passphrase-protected; load it into ssh-agent instead"
            ) from exc
        raise SshOptionError(f"{label} {path}: {exc}") from exc
    except OSError as exc:
        raise SshOptionError(f"{label} {path}: {exc.strerror or exc}") from exc


def _host_keys(targets: Sequence[SshTarget], options: SshOptions) -> dict[str, list[asyncssh.SSHKey]]:
    """The keys of the targets that have their own (inventory) key, each key file read once."""
    loaded: dict[Path, list[asyncssh.SSHKey]] = {}
    out: dict[str, list[asyncssh.SSHKey]] = {}
    for t in targets:
        own = options.hosts.get(t.text)
        if own is None or own.identity is None:
            continue
        if own.identity not in loaded:
            keys = _load_identity(own.identity, f"{t.text}: the inventory's private key")
            assert keys is not None  # a path was given
            loaded[own.identity] = keys
        out[t.text] = loaded[own.identity]
    return out


class _Client(asyncssh.SSHClient):
    """Routes asyncssh's question about an unlisted host key to the run's :class:`HostKeyPolicy`."""

    def __init__(self, policy: HostKeyPolicy, target: SshTarget) -> None:
        self.policy = policy
        self.target = target
        self.verdict: str | None = None
        self.fingerprint = ""

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        """True only for a new key the user told hvguard to accept."""
        self.verdict = self.policy.decide(self.target, host, addr, port, key)
        self.fingerprint = key.get_fingerprint()
        return self.verdict == "accepted"


# --------------------------------------------------------------------------------------------------------
# One target


@dataclass
class _Run:
    """What every target of one run shares."""

    options: SshOptions
    policy: HostKeyPolicy
    client_keys: list[asyncssh.SSHKey] | None
    host_keys: dict[str, list[asyncssh.SSHKey]] = field(default_factory=dict)
    """Keys of the targets with their own (inventory) key, by target text."""

    def keys_for(self, target: SshTarget) -> list[asyncssh.SSHKey] | None:
        """The client keys to offer ``target`` (None: ssh-agent and the default keys)."""
        return self.host_keys.get(target.text, self.client_keys)


async def _read_capped(stream: Any, limit: int, what: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while chunk := await stream.read(1024 * 1024):
        total += len(chunk)
        if total > limit:
            raise _TargetFailed(f"the target's {what} exceeds {limit // (1024 * 1024)} MiB; stopped reading")
        chunks.append(chunk)
    return b"".join(chunks)


async def _connect(target: SshTarget, run: _Run) -> asyncssh.SSHClientConnection:
    """Connect and authenticate, the host key checked against known_hosts."""
    client = _Client(run.policy, target)
    kwargs: dict[str, Any] = {
        "port": target.port,
        "known_hosts": run.policy.known,
        "client_factory": lambda: client,
        "connect_timeout": run.options.timeout_s,
        "preferred_auth": "publickey",
        # No ~/.ssh/config: a Hostname/Port/HostKeyAlias there would silently change which host is
        # contacted and which known_hosts entry vouches for it.
        "config": [],
    }
    if target.user is not None:
        kwargs["username"] = target.user
    keys = run.keys_for(target)
    if keys is not None:
        kwargs["client_keys"] = keys
    try:
        return await asyncssh.connect(target.host, **kwargs)
    except asyncssh.HostKeyNotVerifiable as exc:
        raise _TargetFailed(_host_key_refused(target, run.policy, client, exc)) from None


async def _run_script(
    conn: asyncssh.SSHClientConnection, run: _Run, target: SshTarget, script: bytes, boundary: str
) -> RemoteAnswer:
    """Run the script once in a new session of ``conn`` and parse its answer."""
    sudo = run.options.sudo_for(target.text)
    process = await conn.create_process(remote_command(sudo=sudo), encoding=None)
    process.stdin.write(script)
    process.stdin.write_eof()
    stdout, stderr = await asyncio.gather(
        _read_capped(process.stdout, MAX_ANSWER_BYTES, "answer"),
        _read_capped(process.stderr, MAX_STDERR_BYTES, "error output"),
    )
    completed = await process.wait()
    try:
        return parse_answer(stdout, boundary)
    except ProtocolError as exc:
        raise _TargetFailed(_remote_failure(stderr, completed.exit_status, exc)) from None


def _host_key_refused(
    target: SshTarget, policy: HostKeyPolicy, client: _Client, exc: asyncssh.HostKeyNotVerifiable
) -> str:
    # The hint (what to do) leads: the line is often read cut off at the terminal's width.
    name = target.known_hosts_name
    if client.verdict == "unknown":
        return (
            f"unknown host key: use --accept-new-host-key to trust it on first use, or add it to "
            f"{policy.path} (the host key of {name}, {client.fingerprint}, is not listed there)"
        )
    if client.verdict == "changed":
        return (
            f"host key changed: if the host was re-keyed, remove its old line from {policy.path} first; "
            f"refused as a possible man-in-the-middle (the host key of {name}, {client.fingerprint}, "
            "does NOT match the key listed for it)"
        )
    return f"host key refused: {exc.reason} (the host key of {name})"


def _failure(exc: BaseException, target: SshTarget, run: _Run) -> str:
    """A one-line reason for a failed target."""
    if isinstance(exc, _TargetFailed):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return f"timed out after {run.options.timeout_s:g} s (connect and collect, --ssh-timeout)"
    if isinstance(exc, asyncssh.PermissionDenied):
        if target.text in run.host_keys:
            tried = f"the inventory's key {run.options.identity_for(target.text)}"
        elif run.client_keys is not None:
            tried = f"--identity {run.options.identity}"
        else:
            tried = "ssh-agent and default keys"
        who = f"{target.user}@" if target.user else ""
        return f"{who}{target.address}: authentication refused ({tried})"
    if isinstance(exc, asyncssh.KeyExchangeFailed):
        return f"{target.address}: key exchange failed: {exc.reason}"
    if isinstance(exc, asyncssh.DisconnectError):
        return f"{target.address}: disconnected: {exc.reason}"
    if isinstance(exc, asyncssh.ChannelOpenError):
        return f"{target.address}: cannot open a session: {exc.reason}"
    if isinstance(exc, OSError):
        # asyncio words a refused connection "Connect call failed (addr)"; errno says it plainly.
        reason = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc))
        return f"cannot connect to {target.address}: {reason.lower()}"
    return f"{target.address}: {type(exc).__name__}: {exc}"


def _remote_failure(stderr: bytes, status: int | None, error: ProtocolError) -> str:
    said = " ".join(stderr.decode("utf-8", "replace").split())[-300:]
    status_text = "no exit status" if status is None else f"exit status {status}"
    detail = f"; its error output: {said}" if said else ""
    return f"{error} ({status_text}){detail}"


async def _collect_one(target: SshTarget, run: _Run) -> TargetFacts:
    started = time.monotonic()
    collected_at = _now()
    try:
        return await asyncio.wait_for(_passes(target, run, collected_at, started), run.options.timeout_s)
    except Exception as exc:
        return _unreachable(target, _failure(exc, target, run), collected_at, started)


async def _passes(target: SshTarget, run: _Run, collected_at: str, started: float) -> TargetFacts:
    """Connect once and collect in as many script runs as :func:`collect_in_passes` needs."""
    async with await _connect(target, run) as conn:

        async def execute(script: bytes, boundary: str) -> RemoteAnswer:
            return await _run_script(conn, run, target, script, boundary)

        facts = await collect_in_passes(target, execute, collected_at=collected_at, started=started)
    return facts


async def collect_in_passes(
    target: SshTarget,
    execute: Callable[[bytes, str], Awaitable[RemoteAnswer]],
    *,
    collected_at: str,
    started: float,
) -> TargetFacts:
    """The manifest in one script run (``execute(script, boundary)``); then what the target's own
    configuration named outside it (an ``Include`` elsewhere, a storage pool's directory), until the
    collectors look for nothing new or :data:`MAX_PASSES` runs were made. Whatever is still missing
    then is named in a ``transport`` problem."""
    boundary = new_boundary()
    items = manifest_fetch()
    answer = await execute(build_script(boundary), boundary)
    for passes in range(1, MAX_PASSES + 1):
        index = manifest_index() if passes == 1 else FetchIndex((*items, STORED_DEFINITIONS))
        files = AnswerFS(answer, index)
        facts = build_target_facts(
            target, answer, boundary, collected_at=collected_at, started=started, files=files
        )
        wanted = tuple(item for item in follow_up_fetch(files.unfetched) if item not in items)
        if not wanted or passes == MAX_PASSES:
            break
        more = new_boundary()  # virsh's sections keep the first boundary: they come from the first run
        answer.merge(await execute(build_script(more, wanted, commands=[], virsh=False), more))
        items += wanted
    if passes > 1:
        added = len(items) - len(manifest_fetch())
        note = f"ssh follow-up: {passes - 1} more pass(es), {added} item(s) the target's configuration named"
        collection = msgspec.structs.replace(
            facts.collection, collectors=[*facts.collection.collectors, note]
        )
        facts = msgspec.structs.replace(facts, collection=collection)
    return _with_unfetched(facts, files.unfetched, passes)


def _with_unfetched(facts: TargetFacts, unfetched: dict[str, set[str]], passes: int) -> TargetFacts:
    """Name every path the collectors looked for that was never fetched: read as absent, so the facts
    that depend on it may be incomplete — said, not silent."""
    if not unfetched:
        return facts
    extra = [
        Problem(
            area="transport",
            source=path,
            message=f"looked for by the collectors outside what was fetched over SSH "
            f"({_why_unfetched(path, passes)}): taken as absent, or with unknown owner and mode, so facts "
            "that depend on it may be incomplete",
        )
        for path in sorted(unfetched)
    ]
    return msgspec.structs.replace(facts, problems=[*facts.problems, *extra])


def _why_unfetched(path: str, passes: int) -> str:
    if never_copied(path):
        return "hvguard never copies its contents"
    if any(ch in path for ch in "*?["):
        return "its name holds glob characters"
    return f"still outside the request after {passes} passes"


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _unreachable(target: SshTarget, reason: str, collected_at: str, started: float) -> TargetFacts:
    return TargetFacts(
        id=target.text,
        platform=platform_of(None),
        collection=CollectionInfo(
            collected_at=collected_at,
            tool_version=__version__,
            collectors=[f"ssh:{target.address}"],
            duration_s=round(time.monotonic() - started, 3),
        ),
        unreachable=reason,
    )


# --------------------------------------------------------------------------------------------------------
# From the answer to facts


def build_target_facts(
    target: SshTarget,
    answer: RemoteAnswer,
    boundary: str,
    *,
    collected_at: str,
    started: float,
    files: AnswerFS | None = None,
) -> TargetFacts:
    """Run the host collectors on the answer's files (in memory, under the target's own paths: ``files``,
    by default the answer as it is) and turn virsh's output, or the stored definitions, into hypervisor
    facts."""
    collectors = [f"ssh:{target.address}", f"linux-host:{target.text}"]
    files = files if files is not None else AnswerFS(answer)
    problems: list[Problem] = list(files.problems)
    host = collect_host_facts(PrefetchedSource(files, answer.commands, label=target.text), problems=problems)
    hv: HypervisorFacts | None
    if answer.virsh.mode in {"rw", "ro"}:
        hv = hypervisor_facts(answer.virsh, boundary, problems)
        collectors.append(f"libvirt:{REMOTE_LIBVIRT_URI} (virsh over ssh)")
    else:
        reason = connection_error(answer.virsh)
        hv, how = stored_definitions_instead(files, uri=REMOTE_LIBVIRT_URI, reason=reason, problems=problems)
        if how:
            collectors.append(how)
    return TargetFacts(
        id=target.text,
        platform=platform_of(hv),
        collection=CollectionInfo(
            collected_at=collected_at,
            tool_version=__version__,
            collectors=collectors,
            duration_s=round(time.monotonic() - started, 3),
            privileged=None if answer.euid is None else answer.euid == 0,
            unreadable=files.unreadable,
        ),
        host=host,
        hypervisor=with_neutral_facts(hv),
        problems=problems,
    )


# --------------------------------------------------------------------------------------------------------
# Many targets


async def _collect_all(
    targets: Sequence[SshTarget], run: _Run, on_done: Callable[[str], None] | None
) -> list[TargetFacts]:
    limit = asyncio.Semaphore(run.options.concurrency)

    async def one(target: SshTarget) -> TargetFacts:
        async with limit:
            facts = await _collect_one(target, run)
        if on_done is not None:
            on_done(target.text)
        return facts

    return list(await asyncio.gather(*(one(t) for t in targets)))


def collect_ssh_targets(
    targets: Sequence[str],
    options: SshOptions | None = None,
    *,
    on_done: Callable[[str], None] | None = None,
    notify: Callable[[str], None] | None = None,
) -> list[TargetFacts]:
    """Collect every ``ssh://`` target concurrently (at most ``options.concurrency`` at once).

    Returns one :class:`TargetFacts` per target, in the given order; a target that failed has
    ``unreachable`` set. ``on_done(target)`` is called as each finishes (progress), ``notify(line)`` for
    each host key added to known_hosts. Raises :class:`SshOptionError` for unusable options.
    """
    options = options or SshOptions()
    parsed = [parse_ssh_target(t) for t in targets]
    run = _Run(
        options=options,
        policy=HostKeyPolicy(options.known_hosts, accept_new=options.accept_new_host_key),
        client_keys=_load_identity(options.identity),
        host_keys=_host_keys(parsed, options),
    )
    results = asyncio.run(_collect_all(parsed, run, on_done))
    if notify is not None:
        for line in run.policy.notices:
            notify(line)
    return results


def collect_ssh_target(target: str, options: SshOptions | None = None) -> TargetFacts:
    """Collect one ``ssh://`` target (see :func:`collect_ssh_targets`)."""
    return collect_ssh_targets([target], options)[0]
