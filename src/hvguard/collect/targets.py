"""Turn a TARGET argument into collected facts: pick the collectors, run them, record every gap.

TARGET forms (CLI contract): ``local`` (this host, plus ``qemu:///system`` when it answers), any libvirt
URI, ``ssh://[user@]host[:port]`` (:mod:`hvguard.collect.ssh.transport`) and
``vsphere://USER@HOST[:PORT]`` (an ESXi host or a vCenter, :mod:`hvguard.collect.vsphere.collector`;
pyVmomi loads only for those). A target that cannot be used at all — not a URI, an unknown scheme,
driver or transport, a qemu path the driver does not serve, a test-driver file that does not exist
(:mod:`hvguard.collect.libvirt.uri`) — is a :class:`TargetError` from :func:`validate_target`, which the
CLI runs over the whole list before collecting anything. A target that cannot be reached becomes
``TargetFacts`` with ``unreachable`` set, so one bad target never stops the others (the engine calls it
*not assessed*). A target whose hypervisor does not answer but whose host files were read is *partial*
(:func:`is_partial`): its host facts are kept and the hypervisor's absence is a ``hypervisor`` problem.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from hvguard import __version__
from hvguard.collect.collectors import HYPERVISOR, collect_host_facts, platform_of
from hvguard.collect.hostfs import HostFS
from hvguard.collect.interface import CollectError
from hvguard.collect.libvirt.conn import TargetUnreachable
from hvguard.collect.libvirt.files import stored_definitions_instead
from hvguard.collect.libvirt.resources import with_neutral_facts
from hvguard.collect.libvirt.uri import LibvirtUriError, check_libvirt_uri, shown
from hvguard.collect.linux.source import HostSource, LocalSource, RootSource
from hvguard.collect.ssh.target import SshTargetError, is_ssh_target, parse_ssh_target
from hvguard.collect.vsphere.target import VsphereTargetError, is_vsphere_target, parse_vsphere_target
from hvguard.facts import CollectionInfo, HostFacts, HypervisorFacts, Problem, TargetFacts

if TYPE_CHECKING:
    from hvguard.collect.ssh.target import SshOptions
    from hvguard.collect.vsphere.target import VsphereOptions

__all__ = [
    "LOCAL",
    "LOCAL_URI",
    "TargetError",
    "collect_host_facts",
    "collect_target",
    "is_local_uri",
    "is_partial",
    "platform_of",
    "validate_target",
]

LOCAL = "local"
LOCAL_URI = "qemu:///system"


class TargetError(CollectError, ValueError):
    """A TARGET argument hvguard cannot use (a usage error, exit 2)."""


def validate_target(target: str) -> None:
    """Raise :class:`TargetError` (one line) for a target hvguard cannot use, before anything is collected:
    a string that is not a URI, an unknown scheme, driver or transport, a path the qemu driver does not
    serve (``qemu:///sytem``), a test-driver file that does not exist, a malformed ``ssh://`` target."""
    if target == LOCAL:
        return
    name = shown(target)
    if name != target:  # urlsplit would silently drop a tab or newline; libvirt and reports would not
        raise TargetError(f"{name}: a target cannot contain control characters")
    try:
        parts = urlsplit(target)
    except ValueError as exc:  # e.g. an unclosed "[" of an IPv6 address
        raise TargetError(f"{name}: not a valid URI ({exc})") from None
    if is_ssh_target(target):
        try:
            parse_ssh_target(target)
        except SshTargetError as exc:
            raise TargetError(shown(str(exc))) from None
        return
    if is_vsphere_target(target):
        try:
            parse_vsphere_target(target)
        except VsphereTargetError as exc:
            raise TargetError(str(exc)) from None
        return
    if not parts.scheme or "://" not in target:
        raise TargetError(
            f"{name}: not a target (use 'local', ssh://[user@]host[:port] or a libvirt URI such as "
            "qemu:///system)"
        )
    try:
        check_libvirt_uri(target, parts)
    except LibvirtUriError as exc:
        raise TargetError(str(exc)) from None


def is_local_uri(uri: str) -> bool:
    """True for libvirt URIs that talk to this machine's daemon (so host files are this machine's)."""
    parts = urlsplit(uri)
    return parts.scheme in {"qemu", "kvm"} and not parts.netloc


def is_partial(facts: TargetFacts) -> bool:
    """True when the target was reached in part: host facts were read but the hypervisor did not answer."""
    return (
        facts.unreachable is None
        and facts.host is not None
        and facts.hypervisor is None
        and any(p.area == "hypervisor" and p.source == facts.id for p in facts.problems)
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def collect_target(
    target: str,
    *,
    root: Path | None = None,
    ssh: SshOptions | None = None,
    vsphere: VsphereOptions | None = None,
) -> TargetFacts:
    """Collect every fact hvguard can read for ``target``.

    ``root`` (``--root``) makes host files come from that directory; with a libvirt URI it also pairs
    those host files with the connection (useful for test-driver estates and offline roots). ``ssh``
    says how ``ssh://`` targets are reached (default: ~/.ssh/known_hosts, strict host keys); ``vsphere``
    how ``vsphere://`` targets are (password source, CA).
    """
    validate_target(target)
    if is_vsphere_target(target):
        if root is not None:
            raise TargetError(f"{target}: --root cannot be combined with a vsphere:// target")
        from hvguard.collect.vsphere.collector import collect_vsphere_target  # pyVmomi: only now

        return collect_vsphere_target(target, vsphere)
    if is_ssh_target(target):
        if root is not None:
            raise TargetError(f"{target}: --root cannot be combined with an ssh:// target")
        from hvguard.collect.ssh.transport import collect_ssh_target  # asyncssh loads only for ssh:// targets

        return collect_ssh_target(target, ssh)
    started = time.monotonic()
    collected_at = _now()
    problems: list[Problem] = []
    collectors: list[str] = []
    host: HostFacts | None = None
    hv: HypervisorFacts | None = None
    unreachable: str | None = None

    sources: list[HostSource] = []
    if target == LOCAL:
        source = _source(root)
        sources.append(source)
        host = collect_host_facts(source, problems=problems)
        collectors.append(f"linux-host:{source.label}")
        hv, how = _local_hypervisor(source.fs, live=source.live, problems=problems)
        if how:
            collectors.append(how)
    else:
        # The host source first: a live one starts its slow commands (the package manager) now, so
        # they run while libvirt answers.
        host_source = _source(root) if root is not None or is_local_uri(target) else None
        if host_source is not None:
            sources.append(host_source)
        try:
            hv = HYPERVISOR.collect(target, problems)
            collectors.append(f"libvirt:{target}")
        except TargetUnreachable as exc:
            if host_source is None:
                unreachable = exc.message  # nothing of this target can be collected
            else:
                # Partial: the host's files are still facts; only the hypervisor's measures lack theirs.
                problems.append(Problem(area="hypervisor", source=target, message=exc.message))
        if host_source is not None:
            host = collect_host_facts(host_source, problems=problems)
            collectors.append(f"linux-host:{host_source.label}")
        else:
            problems.append(
                Problem(
                    area="host",
                    source=target,
                    message="host files cannot be read through this libvirt URI "
                    "(remote or test driver); pass --root DIR to supply them",
                )
            )
    return TargetFacts(
        id=target,
        platform=platform_of(hv),
        collection=CollectionInfo(
            collected_at=collected_at,
            tool_version=__version__,
            collectors=collectors,
            duration_s=round(time.monotonic() - started, 3),
            privileged=os.geteuid() == 0,
            unreadable=sorted({path for src in sources for path in src.fs.unreadable}),
        ),
        host=host,
        hypervisor=with_neutral_facts(hv),
        problems=problems,
        unreachable=unreachable,
    )


def _source(root: Path | None) -> HostSource:
    """The live host, or an offline root when ``--root`` was given."""
    return LocalSource() if root is None else RootSource(root)


def _local_hypervisor(
    fs: HostFS, *, live: bool, problems: list[Problem]
) -> tuple[HypervisorFacts | None, str | None]:
    """The local hypervisor: the running daemon when it answers, else its stored definitions."""
    reason = "an offline root has no running daemon"
    if live:
        try:
            return HYPERVISOR.collect(LOCAL_URI, problems), f"libvirt:{LOCAL_URI}"
        except TargetUnreachable as exc:
            reason = exc.message
    return stored_definitions_instead(fs, uri=LOCAL_URI, reason=reason, problems=problems, say_why=live)
