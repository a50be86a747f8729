"""The active libvirt ACL probe: ``hvguard scan --probe-acl USER:VM``.

It runs one read-only libvirt call as USER — ``runuser -u USER -- virsh -c qemu:///system dominfo
--domain VM`` (an argument vector, no shell, a timeout) — and records whether libvirt allowed it. The
probe changes nothing on the host; it is still an explicit opt-in because it acts as another user. It
needs root (runuser) and runs against this machine's libvirtd, so it applies to the ``local`` target and
local libvirt URIs without ``--root``.

Outcomes: ``allowed`` (exit 0), ``denied`` (libvirt's "access denied", polkit's "authentication
unavailable"/"not authorized", the socket's "Permission denied", or polkit unreachable — libvirt then
fails closed for every non-root client), ``error`` (anything else: no such user, no such VM, timeout,
daemon down) — an error never counts as a deny.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec

from hvguard.collect.linux.source import _SEARCH_PATH
from hvguard.facts import AccessFacts, AclProbe, Problem, TargetFacts

PROBE_URI = "qemu:///system"
PROBE_TIMEOUT_S = 30.0
MAX_OUTPUT = 2000
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?")
#: Output markers of a refusal, and what each means.
_DENIED = (
    ("access denied", "libvirt's access control denied the call"),
    ("permission denied", "the libvirt socket refused the user (file permissions)"),
    ("authentication unavailable", "polkit could not authorise the user (no agent): libvirt refused"),
    ("not authorized", "polkit did not authorise the user"),
    ("authorization failed", "polkit did not authorise the user"),
    ("authentication failed", "authentication failed"),
    (
        "unable to get system bus connection",
        "polkit cannot be asked (no system D-Bus), so libvirt refuses every non-root client (fails closed)",
    ),
)


class ProbeTargetError(ValueError):
    """``--probe-acl`` was given, but no target is this machine (the probe would describe another host)."""


def probe_argv(user: str, vm: str, uri: str = PROBE_URI) -> list[str]:
    """The probe's argument vector (``--domain`` keeps a VM name from being read as an option)."""
    return ["runuser", "-u", user, "--", "virsh", "-c", uri, "dominfo", "--domain", vm]


def parse_probe_spec(spec: str) -> tuple[str, str]:
    """``USER:VM`` → (user, vm); raises ValueError with a one-line reason."""
    user, sep, vm = spec.partition(":")
    if not sep or not user or not vm:
        raise ValueError(f"{spec!r}: expected USER:VM")
    if not _USER.fullmatch(user):
        raise ValueError(f"{spec!r}: {user!r} is not a valid user name")
    if "\0" in vm or "\n" in vm:
        raise ValueError(f"{spec!r}: the VM name contains a control character")
    return user, vm


def classify(returncode: int | None, output: str) -> tuple[str, str]:
    """(outcome, reason) from the probe's exit code and output."""
    low = output.lower()
    if returncode == 0:
        return "allowed", "the read-only libvirt call succeeded"
    if "does not exist" in low and "runuser" in low:
        return "error", "no such user on this host"
    for marker, meaning in _DENIED:
        if marker in low:
            return "denied", meaning
    if "domain not found" in low or "failed to get domain" in low:
        return "error", "libvirt has no such VM (check the name)"
    return "error", f"exit {returncode}: the outcome is not recognisable as allow or deny"


def run_probe(user: str, vm: str, *, uri: str = PROBE_URI, timeout: float = PROBE_TIMEOUT_S) -> AclProbe:
    """Run one probe now and record what happened."""
    argv = probe_argv(user, vm, uri)
    ran_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    def result(outcome: str, reason: str, returncode: int | None = None, output: str = "") -> AclProbe:
        return AclProbe(
            user=user,
            vm=vm,
            uri=uri,
            argv=argv,
            outcome=outcome,
            returncode=returncode,
            output=output,
            reason=reason,
            ran_at=ran_at,
        )

    if os.geteuid() != 0:
        return result("error", "the probe needs root (runuser switches user)")
    exe = shutil.which("runuser", path=_SEARCH_PATH)
    if exe is None or shutil.which("virsh", path=_SEARCH_PATH) is None:
        return result("error", "runuser or virsh is not installed")
    try:
        done = subprocess.run(  # noqa: S603 (fixed argv; USER and VM are single validated arguments)
            [exe, *argv[1:]],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
            env={"PATH": _SEARCH_PATH, "LC_ALL": "C"},
        )
    except subprocess.TimeoutExpired:
        return result("error", f"timed out after {timeout:g} s")
    except OSError as exc:
        return result("error", f"cannot run runuser: {exc.strerror or exc}")
    output = (done.stdout + done.stderr).decode("utf-8", "replace").strip()[-MAX_OUTPUT:]
    outcome, reason = classify(done.returncode, output)
    return result(outcome, reason, done.returncode, output)


def _probes_this_machine(target: TargetFacts) -> bool:
    """True when the target's host facts are this machine's (so a local probe speaks for it)."""
    host = target.host
    if host is None or host.root != "/":
        return False
    return target.id == "local" or target.id.split("?")[0] in ("qemu:///system", "qemu:///session")


def attach_probes(targets: list[TargetFacts], specs: Sequence[tuple[str, str]]) -> list[TargetFacts]:
    """Run the probes once and store them in the access facts of every target on this machine.

    Raises :class:`ProbeTargetError` when no target is this machine (the probe would describe another
    host).
    """
    if not specs:
        return targets
    eligible = [t for t in targets if _probes_this_machine(t)]
    if not eligible:
        raise ProbeTargetError(
            "--probe-acl runs libvirt on this machine: it needs the 'local' target (or qemu:///system) "
            "without --root"
        )
    probes = [run_probe(user, vm) for user, vm in specs]
    out: list[TargetFacts] = []
    for target in targets:
        if target not in eligible or target.host is None:
            out.append(
                msgspec.structs.replace(
                    target,
                    problems=[
                        *target.problems,
                        Problem(
                            area="host.access.probes",
                            source="--probe-acl",
                            message="not run for this target: the probe only speaks for this machine's "
                            "libvirtd",
                        ),
                    ],
                )
            )
            continue
        access = target.host.access or AccessFacts()
        access = msgspec.structs.replace(access, probes=[*access.probes, *probes])
        out.append(msgspec.structs.replace(target, host=msgspec.structs.replace(target.host, access=access)))
    return out
