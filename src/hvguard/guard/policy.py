"""The installed guard's state and pinned policy: read ``state.json``, verify every pinned file by its
sha256, load the policy, and (``compile``) precompute all of it for a fast hook.

``state.json`` (``hvguard.guard-state/1``) is written by ``hvguard guard install``; this module only reads
it. Each pinned file (``policy/profile.yaml``, ``policy/exceptions.yaml``, ``policy/attestations.yaml``,
``host-facts.json``) is hashed and compared with the sha256 the state recorded before it is used: a
missing, unreadable or changed file is a :class:`GuardError` (the hook then applies ``on_error``).

The compiled form (``compiled.pickle``) holds the parsed catalog, profile, registers, the host snapshot
and the check list, so a hook does not parse YAML or the bundle again on every VM start; it also holds
the findings of every check that judges the host alone (:func:`host_replays`), so the hook imports and
runs only the checks that can see the starting VM. It records the
sha256 of every source it was built from and is used only when those equal the state's pins and the file
belongs to this user and is writable by no one else; otherwise the hook loads the pinned files directly
(slower, same result).
"""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

# The pin digest and the state directory's names: stdlib only, so cheap on the hook's path.
from hvguard.digest import sha256_file
from hvguard.guard.statefile import POLICY_KINDS, STATE_FILE, STATE_SCHEMA

if TYPE_CHECKING:
    from hvguard.catalog import Catalog
    from hvguard.checks.base import Check
    from hvguard.facts import TargetFacts
    from hvguard.findings import Finding
    from hvguard.profile import Profile
    from hvguard.workflow.attestations import AttestationSet
    from hvguard.workflow.exceptions import ExceptionRegister

COMPILED_FILE = "compiled.pickle"
COMPILED_FORMAT = "hvguard.guard-compiled/4"
MODES = ("audit", "enforce")
ON_ERROR = ("deny", "allow")
#: Largest state or policy file read (a pinned file is small; this bounds a hostile one).
MAX_FILE_BYTES = 64 * 1024 * 1024


class GuardError(Exception):
    """The guard's own state or policy cannot be used; the message is one line."""


# msgspec structs rather than dataclasses: a dataclass costs about a millisecond to create at import, and
# this module is on the hook's path (every VM start).
class Pinned(msgspec.Struct, frozen=True, kw_only=True):
    """A file copied and pinned at install: where it is now, its sha256, and where it came from."""

    path: Path
    sha256: str
    source: str | None = None


class GuardState(msgspec.Struct, frozen=True, kw_only=True):
    """What the hook needs from ``state.json``."""

    mode: str
    on_error: str
    domains: str
    policy: dict[str, Pinned | None]
    host_facts: Pinned
    timeout_seconds: float = 10.0
    warm: bool = True
    """Whether a warm decider may serve later hook runs (:mod:`hvguard.guard.warm`)."""
    raw: dict[str, Any] = {}


def on_error_of(state_dir: Path) -> str:
    """The ``on_error`` policy from ``state.json``, ``deny`` when the state cannot be read (fail safe)."""
    try:
        raw = msgspec.json.decode((state_dir / STATE_FILE).read_bytes()[:MAX_FILE_BYTES])
        value = raw.get("on_error") if isinstance(raw, dict) else None
    except (OSError, msgspec.DecodeError):
        return "deny"
    return value if value in ON_ERROR else "deny"


def _pinned(state_dir: Path, entry: Any, what: str, path_key: str) -> Pinned | None:
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise GuardError(f"state.json: {what} is not an object")
    rel, digest = entry.get(path_key), entry.get("sha256")
    if rel is None and digest is None:
        return None  # e.g. the built-in default profile: nothing was copied
    if not isinstance(rel, str) or not rel or not isinstance(digest, str) or len(digest) != 64:
        raise GuardError(f"state.json: {what} needs {path_key!r} and a sha256")
    path = Path(rel) if os.path.isabs(rel) else state_dir / rel
    source = entry.get("source")
    return Pinned(path=path, sha256=digest.lower(), source=source if isinstance(source, str) else None)


def read_state(state_dir: Path) -> GuardState:
    """Parse ``STATE_DIR/state.json``; :class:`GuardError` (one line) when it is missing or malformed."""
    path = state_dir / STATE_FILE
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GuardError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise GuardError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("schema") != STATE_SCHEMA:
        raise GuardError(f"{path} is not a {STATE_SCHEMA} document")
    mode, on_error, domains = raw.get("mode"), raw.get("on_error", "deny"), raw.get("domains", "*")
    if mode not in MODES:
        raise GuardError(f"{path}: mode must be audit or enforce, not {mode!r}")
    if on_error not in ON_ERROR:
        raise GuardError(f"{path}: on_error must be deny or allow, not {on_error!r}")
    if not isinstance(domains, str) or not domains:
        raise GuardError(f"{path}: domains must be a glob")
    policy_raw = raw.get("policy") or {}
    if not isinstance(policy_raw, dict):
        raise GuardError(f"{path}: policy is not an object")
    policy = {k: _pinned(state_dir, policy_raw.get(k), f"policy.{k}", "copied") for k in POLICY_KINDS}
    host = _pinned(state_dir, raw.get("host_facts"), "host_facts", "path")
    if host is None:
        raise GuardError(f"{path}: no host_facts snapshot recorded (run hvguard guard refresh)")
    timeout = raw.get("timeout_seconds", 10)
    warm = raw.get("warm", True)
    if not isinstance(warm, bool):
        raise GuardError(f"{path}: warm must be true or false")
    return GuardState(
        warm=warm,
        mode=mode,
        on_error=on_error,
        domains=domains,
        policy=policy,
        host_facts=host,
        timeout_seconds=float(timeout) if isinstance(timeout, int | float) else 10.0,
        raw=raw,
    )


def verify(state: GuardState) -> dict[str, str | None]:
    """Hash every pinned file and compare with the state: the verified sha256 per kind (``profile``,
    ``exceptions``, ``attestations``, ``host_facts``; None when not pinned). :class:`GuardError` naming
    the file on a mismatch or a file that cannot be read."""
    pins: dict[str, str | None] = {}
    for kind, pin in [*state.policy.items(), ("host_facts", state.host_facts)]:
        if pin is None:
            pins[kind] = None
            continue
        try:
            actual = sha256_file(pin.path)
        except OSError as exc:
            raise GuardError(f"pinned {kind} file {pin.path}: {exc.strerror or exc}") from exc
        if actual != pin.sha256:
            raise GuardError(
                f"pinned {kind} file {pin.path} changed since install: sha256 {actual[:16]}… is not the "
                f"pinned {pin.sha256[:16]}… (hvguard guard install --update re-pins it)"
            )
        pins[kind] = actual
    return pins


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a decision is judged with, besides the VM and the host facts."""

    catalog: Catalog
    profile: Profile
    checks: tuple[Check, ...]
    exceptions: ExceptionRegister | None = None
    attestations: AttestationSet | None = None


def load_policy(
    profile: Path | None,
    exceptions: Path | None,
    attestations: Path | None,
    *,
    evidence_root: Path | None = None,
) -> Policy:
    """Load and validate the policy files as ``scan`` does (``ProfileError``/``RegisterError`` on bad
    input). ``evidence_root`` is where an attestation's relative evidence paths are resolved (the
    original file's folder for a pinned copy)."""
    from hvguard.catalog import load_catalog
    from hvguard.checks.registry import registered_checks
    from hvguard.profile import load_profile
    from hvguard.workflow.attestations import load_attestations
    from hvguard.workflow.dates import local_today
    from hvguard.workflow.exceptions import load_exceptions

    today = local_today()
    atts = load_attestations(attestations, today=today) if attestations is not None else None
    if atts is not None and evidence_root is not None:
        atts = msgspec.structs.replace(atts, evidence_root=evidence_root)
    return Policy(
        catalog=load_catalog(),
        profile=load_profile(profile),
        checks=tuple(registered_checks()),
        exceptions=load_exceptions(exceptions, today=today) if exceptions is not None else None,
        attestations=atts,
    )


def _evidence_root(pin: Pinned | None) -> Path | None:
    if pin is None or pin.source is None:
        return None
    return Path(pin.source).parent


def load_pinned(state: GuardState) -> tuple[Policy, TargetFacts]:
    """The policy and host snapshot from the pinned files (the slow path: YAML and the bundle parsed).
    Call :func:`verify` first."""
    from hvguard.guard.snapshot import load as load_snapshot

    p = state.policy
    policy = load_policy(
        p["profile"].path if p["profile"] else None,
        p["exceptions"].path if p["exceptions"] else None,
        p["attestations"].path if p["attestations"] else None,
        evidence_root=_evidence_root(p["attestations"]),
    )
    return policy, load_snapshot(state.host_facts.path)


# ----------------------------------------------------------------------------------------------------
# The compiled form


def _check_specs(
    checks: tuple[Check, ...], replays: dict[str, list[tuple[Profile, list[Finding]]]]
) -> list[dict[str, Any]]:
    return [
        {
            "id": c.id,
            "measure": c.measure,
            "reads": c.reads,
            "module": c.fn.__module__,
            "doc": c.doc,
            "platforms": c.platforms,
            "replay": replays.get(c.id),
        }
        for c in checks
    ]


#: Two domains as unlike as the checks can tell apart (hardware-assisted and small / emulated, large,
#: with a network disk and a NIC): a check whose findings are the same with either starting is judged
#: on the host alone.
_PROBES = (
    "<domain type='kvm'><name>hvguard-probe-a</name><uuid>00000000-0000-4000-8000-00000000000a</uuid>"
    "<memory unit='KiB'>1048576</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>",
    "<domain type='qemu'><name>hvguard-probe-b</name><memory unit='GiB'>512</memory><vcpu>512</vcpu>"
    "<os><type>hvm</type></os><devices><disk type='network' device='disk'><source protocol='nbd' "
    "name='probe'><host name='probe.invalid'/></source><target dev='vda' bus='virtio'/></disk>"
    "<interface type='user'><model type='virtio'/></interface></devices></domain>",
)


def _reads_vms(chk: Check) -> bool:
    """The check declares it reads the VMs (or the whole hypervisor, which holds them)."""
    return any(r.startswith("hypervisor.vms") or r in ("hypervisor", "hypervisor.*") for r in chk.reads)


def host_replays(policy: Policy, snapshot: TargetFacts) -> dict[str, list[tuple[Profile, list[Finding]]]]:
    """The findings of every check that judges the host alone, per profile the engine runs it with (the
    policy's and, when a threshold is loosened, the default-threshold baseline), computed once here so
    the hook replays them instead of importing and running those checks on every VM start.

    A check qualifies when it applies to the snapshot's platform, does not declare that it reads the VMs,
    and gives the very same findings whichever of two unlike probe domains is starting (a check that
    reads more than it declares stays live)."""
    from hvguard.engine import baseline_profile, run_check
    from hvguard.guard.domain import parse_domain, with_vm

    profiles = [policy.profile]
    baseline = baseline_profile(policy.profile)
    if baseline is not None:
        profiles.append(baseline)
    probes = [with_vm(snapshot, parse_domain(xml, "probe")) for xml in _PROBES]
    out: dict[str, list[tuple[Profile, list[Finding]]]] = {}
    for chk in policy.checks:
        if not chk.applies_to(snapshot.platform) or _reads_vms(chk):
            continue
        runs = []
        for profile in profiles:
            found = [run_check(chk, facts, profile) for facts in probes]
            if any(f != found[0] for f in found[1:]):
                break
            runs.append((profile, found[0]))
        else:
            out[chk.id] = runs
    return out


def compile(state_dir: Path) -> Path:
    """(Re)build ``STATE_DIR/compiled.pickle`` from the verified pinned files and return its path.

    Called by ``guard install``, ``install --update`` and ``refresh`` after they write ``state.json``.
    :class:`GuardError` when the state or a pinned file cannot be used; the policy loaders' own errors
    (a bad profile or register) propagate."""
    from hvguard import __version__
    from hvguard.catalog.checks import load_check_map

    state = read_state(state_dir)
    pins = verify(state)
    policy, snapshot = load_pinned(state)
    payload = {
        "format": COMPILED_FORMAT,
        "tool_version": __version__,
        "sources": pins,
        "package": _package_digests(),
        "catalog": policy.catalog,
        "profile": policy.profile,
        "exceptions": policy.exceptions,
        "attestations": policy.attestations,
        "checks": _check_specs(policy.checks, host_replays(policy, snapshot)),
        "check_map": load_check_map(),
        "snapshot": snapshot,
    }
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    target = state_dir / COMPILED_FILE
    tmp = state_dir / f".{COMPILED_FILE}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


#: The packaged data files a compiled policy was built from (the catalog, the check map, the default
#: profile): an upgrade that changes any of them makes the compiled form stale.
_PACKAGE_FILES = ("catalog/ss009.yaml", "catalog/checks.yaml", "profiles/default.yaml")


def _package_digests() -> dict[str, str] | None:
    """The sha256 of each of :data:`_PACKAGE_FILES` as installed now (None when they cannot be read)."""
    import hvguard

    base = Path(hvguard.__file__).parent
    try:
        return {rel: sha256_file(base / rel) for rel in _PACKAGE_FILES}
    except OSError:
        return None


def _trusted(path: Path) -> bool:
    """The compiled file may be unpickled: a regular file of this user, writable by no one else."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return (
        stat.S_ISREG(st.st_mode)
        and st.st_uid == os.geteuid()
        and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def load_compiled(state_dir: Path, pins: dict[str, str | None]) -> tuple[Policy, TargetFacts] | None:
    """The compiled policy and snapshot when ``compiled.pickle`` is trusted and was built from exactly
    the files ``pins`` verified (and by this hvguard version); None otherwise (use :func:`load_pinned`)."""
    from hvguard import __version__

    path = state_dir / COMPILED_FILE
    if not _trusted(path):
        return None
    try:
        payload = pickle.loads(path.read_bytes())  # noqa: S301  (root-owned, 0600, pins re-checked)
    except Exception:
        return None  # a stale or damaged compiled form: the pinned files are the truth
    if (
        not isinstance(payload, dict)
        or payload.get("format") != COMPILED_FORMAT
        or payload.get("tool_version") != __version__
        or payload.get("sources") != pins
        or payload.get("package") != _package_digests()
    ):
        return None
    from hvguard.catalog.checks import CheckMap, preload_check_map
    from hvguard.facts import TargetFacts

    snapshot, check_map = payload["snapshot"], payload.get("check_map")
    if not isinstance(snapshot, TargetFacts) or not isinstance(check_map, CheckMap):
        return None
    # The check modules read their static remediation texts from the check map while they are imported.
    preload_check_map(check_map)
    try:
        checks = _checks_from_specs(payload["checks"], snapshot.platform)
    except (ImportError, KeyError):
        return None  # the installed checks are not those compiled: judge from the pinned files
    policy = Policy(
        catalog=payload["catalog"],
        profile=payload["profile"],
        checks=checks,
        exceptions=payload["exceptions"],
        attestations=payload["attestations"],
    )
    return policy, snapshot


class _Replay:
    """Stands for a check that judges the host alone (:func:`host_replays`): gives a fresh copy of the
    findings computed at compile time for the profile it is run with (the engine changes findings in
    place when it applies modality, exceptions and attestations)."""

    __slots__ = ("runs",)

    def __init__(self, runs: list[tuple[Profile, list[Finding]]]) -> None:
        self.runs = runs

    def __call__(self, ctx: Any) -> list[Finding]:
        import msgspec

        for profile, found in self.runs:
            if ctx.profile is profile or ctx.profile == profile:
                return [msgspec.structs.replace(f) for f in found]
        # Not reached by the engine (it runs a check with the policy's profile or its baseline only);
        # the engine turns this into an internal-error finding rather than a wrong verdict.
        raise RuntimeError("a replayed host check was run with a profile it was not compiled for")


def _not_loaded(_ctx: Any) -> Any:
    """Stands for a check of another platform family, whose module the hook does not import (the engine
    never runs a check that does not apply to the target's platform)."""
    raise RuntimeError("a check of another platform was run")


def _checks_from_specs(specs: list[dict[str, Any]], platform: str) -> tuple[Check, ...]:
    """The check list in the check map's order. Only modules of checks that apply to ``platform`` and
    can see the starting VM are imported (that is most of the hook's start-up); a host-only check
    replays its compiled findings (:class:`_Replay`); the others keep their id, measure and platforms,
    which is all the engine reads of a check that does not apply."""
    import importlib

    from hvguard.checks.base import Check, defined_checks

    stubs = [
        Check(
            id=spec["id"],
            measure=spec["measure"],
            reads=tuple(spec["reads"]),
            fn=_not_loaded,
            doc=spec["doc"],
            platforms=tuple(spec["platforms"]),
        )
        for spec in specs
    ]
    applies = [stub.applies_to(platform) for stub in stubs]
    live = [used and not spec.get("replay") for spec, used in zip(specs, applies, strict=True)]
    for spec, used in zip(specs, live, strict=True):
        if used:
            importlib.import_module(spec["module"])
    defined = defined_checks()
    return tuple(
        msgspec.structs.replace(defined[stub.id], platforms=stub.platforms)
        if used
        else msgspec.structs.replace(stub, fn=_Replay(spec["replay"]))
        if spec.get("replay")
        else stub
        for stub, spec, used in zip(stubs, specs, live, strict=True)
    )
