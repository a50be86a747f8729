"""``guard install``, ``install --update``, ``refresh`` and ``uninstall``: the guard's life on a host.

Install copies and pins the policy files into the state directory, takes the host snapshot
(:func:`hvguard.guard.snapshot.take`), compiles the policy (:func:`hvguard.guard.policy.compile`),
writes ``state.json`` and, last, the hook script (:mod:`hvguard.guard.hookdir`), so a failure on the way
leaves the hook directory untouched. What the hook directory held before is recorded in ``state.json``
(``previous``) and put back byte for byte by :func:`uninstall`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import shutil
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hvguard import __version__
from hvguard.digest import sha256_file
from hvguard.guard import hookdir, warm
from hvguard.guard.statefile import (
    DECISIONS_FILE,
    POLICY_KINDS,
    STATE_SCHEMA,
    make_state_dir,
    read_state,
    write_atomic,
    write_state,
)

MODES = ("audit", "enforce")
ON_ERROR = ("deny", "allow")
DEFAULT_TIMEOUT = 10
MAX_TIMEOUT = 300
HOST_FACTS_FILE = "host-facts.json"


class InstallError(Exception):
    """The guard cannot be installed, updated or removed as asked; the message is one line."""


@dataclass
class InstallOptions:
    """What ``guard install`` was asked; None means "not given" (default, or unchanged on --update)."""

    state_dir: Path
    hook_dir: Path = hookdir.DEFAULT_HOOK_DIR
    mode: str | None = None
    on_error: str | None = None
    profile: Path | None = None
    exceptions: Path | None = None
    attestations: Path | None = None
    drop: frozenset[str] = frozenset()
    """Policy kinds (``exceptions``, ``attestations``) an update stops applying (``--no-exceptions`` …)."""
    warm: bool | None = None
    """Whether a warm decider may serve hook runs (default on; :mod:`hvguard.guard.warm`)."""
    domains: str | None = None
    timeout: int | None = None
    syslog_socket: str | None = None
    update: bool = False
    force: bool = False
    reload_libvirtd: bool = False


@dataclass
class InstallResult:
    """What install/update did: the hook path, whether libvirt will call it, and warnings."""

    state: dict[str, Any]
    hook: Path
    reloaded: bool = False
    warnings: list[str] = field(default_factory=list)


def now_iso() -> str:
    """Now, UTC, ISO 8601 with seconds."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _clean(value: str, what: str) -> str:
    if not value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InstallError(f"{what} must be non-empty text without control characters: {value!r}")
    return value


# ------------------------------------------------------------------------------------------------------
# The hook script
# ------------------------------------------------------------------------------------------------------
def shell_quote(value: str) -> str:
    """``value`` as one single-quoted POSIX sh word."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


#: How the hook script starts Python: isolated (``-I``: no environment variables, no user site, no
#: working directory on the path) and without the ``site`` module (``-S``): no site-packages ``.pth``
#: code runs on every VM start, and start-up is a few milliseconds shorter. The directories hvguard and
#: its dependencies live in are then given to the hook on its command line (:data:`HOOK_ENTRY`).
HOOK_PYTHON_FLAGS = "-I -S"
#: The hook script's ``python -c`` program: append the recorded directories to ``sys.path``, then run
#: :func:`hvguard.guard.warm.client_entry` (the warm decider, else the cold hook) with the remaining
#: arguments.
HOOK_ENTRY = (
    "import sys; sys.path.extend(sys.argv.pop(1).split(':')); "
    "from hvguard.guard.warm import client_entry; client_entry()"
)
#: What the hook imports beyond the standard library, checked at install with the recorded path.
_HOOK_IMPORTS = (
    "import sys; sys.path.extend(sys.argv[1].split(':')); "
    "import hvguard.guard.hook, hvguard.guard.warm, msgspec, defusedxml, yaml; print(hvguard.__file__)"
)


def interpreter() -> tuple[str, str, str]:
    """How the hook runs Python: (executable, flags, path). ``path`` is the ``:``-separated list of the
    directories the hook appends to ``sys.path``: this interpreter's site-packages directories (as the
    ``site`` module would add them, without running their ``.pth`` files) and the directory this very
    hvguard is imported from (a source checkout or an editable install lives outside site-packages).
    :class:`InstallError` when that interpreter, started as the hook starts it, does not import this
    hvguard and its dependencies (a directory name with ``:`` in it, for one)."""
    import site
    import subprocess

    import hvguard

    here = Path(hvguard.__file__).resolve().parent
    dirs: list[str] = []
    for d in [*site.getsitepackages(), str(here.parent)]:
        if os.path.isdir(d) and d not in dirs:
            dirs.append(d)
    path = ":".join(dirs)
    argv = [sys.executable, *HOOK_PYTHON_FLAGS.split(), "-c", _HOOK_IMPORTS, path]
    try:
        # this interpreter, a constant program and hvguard's own directories: no outside input
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, cwd="/")  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as e:
        raise InstallError(f"cannot run {sys.executable} as the hook would: {e}") from e
    if any(":" in d for d in dirs) or out.returncode != 0:
        why = (out.stderr.strip().splitlines() or ["a directory name contains ':'"])[-1]
        raise InstallError(f"{sys.executable} {HOOK_PYTHON_FLAGS} does not import hvguard from {path}: {why}")
    found = Path(out.stdout.strip()).resolve().parent
    if found != here:
        raise InstallError(
            f"{sys.executable} {HOOK_PYTHON_FLAGS} with {path} imports hvguard from {found}, not {here}"
        )
    return sys.executable, HOOK_PYTHON_FLAGS, path


def render_hook(state: dict[str, Any], state_dir: Path) -> str:
    """The hook script for ``state`` (the template ``hook_script.sh`` with its values baked in)."""
    template = resources.files("hvguard.guard").joinpath("hook_script.sh").read_text(encoding="utf-8")
    values = {
        "PYTHON": shell_quote(state["python"]),
        "PYFLAGS": shell_quote(state["python_flags"]),
        "PYTHONPATH": shell_quote(state["python_path"]),
        "ENTRY": shell_quote(HOOK_ENTRY),
        "STATE_DIR": shell_quote(str(state_dir)),
        "DOMAINS": shell_quote(state["domains"]),
        "TIMEOUT": shell_quote(str(state["timeout_seconds"])),
        "ON_ERROR": shell_quote(state["on_error"]),
        "MODE": shell_quote(state["mode"]),
        "SYSLOG_SOCKET": shell_quote(state.get("syslog_socket") or ""),
        "TOOL_VERSION": shell_quote(__version__),
    }
    for key, value in values.items():
        template = template.replace(f"@@{key}@@", value)
    return template


# ------------------------------------------------------------------------------------------------------
# Policy files, snapshot, compile
# ------------------------------------------------------------------------------------------------------
def _validate_policy(profile: Path | None, exceptions: Path | None, attestations: Path | None) -> None:
    """Load each file as ``scan`` would, so a broken policy is refused at install, not at every start."""
    from hvguard.profile import ProfileError, load_profile
    from hvguard.workflow.attestations import load_attestations
    from hvguard.workflow.exceptions import load_exceptions
    from hvguard.workflow.registerfile import RegisterError

    try:
        load_profile(profile)
        if exceptions is not None:
            load_exceptions(exceptions)
        if attestations is not None:
            load_attestations(attestations)
    except (ProfileError, RegisterError) as e:
        raise InstallError(str(e).splitlines()[0] if str(e) else type(e).__name__) from e


def _pin_policy(state_dir: Path, sources: dict[str, Path | None]) -> dict[str, Any]:
    """Copy each policy file into ``policy/`` (0600) and pin its sha256. The profile is always pinned:
    without ``--profile`` the packaged default is copied, so a package upgrade cannot change it unseen."""
    pinned: dict[str, Any] = {}
    for kind in POLICY_KINDS:
        src = sources.get(kind)
        rel = f"policy/{kind}.yaml"
        dest = state_dir / rel
        if src is None and kind != "profile":
            with contextlib.suppress(FileNotFoundError):
                dest.unlink()
            pinned[kind] = None
            continue
        try:
            if src is None:
                data = resources.files("hvguard").joinpath("profiles/default.yaml").read_bytes()
            else:
                data = src.read_bytes()
        except OSError as e:
            raise InstallError(f"cannot read {kind} file {src}: {e.strerror}") from e
        write_atomic(dest, data)
        pinned[kind] = {
            "source": str(src) if src is not None else None,
            "sha256": sha256_file(dest),
            "copied": rel,
        }
    return pinned


def _snapshot_and_compile(state_dir: Path, state: dict[str, Any]) -> None:
    """Take the host snapshot, pin it in ``state`` (written), and compile the policy."""
    from hvguard.guard import policy, snapshot

    try:
        path = Path(snapshot.take(state_dir))
    except Exception as e:  # the collector's own errors: one line for the user
        raise InstallError(f"cannot take the host snapshot: {e}") from e
    rel = os.path.relpath(path, state_dir) if path.is_absolute() else str(path)
    state["host_facts"] = {"path": rel, "sha256": sha256_file(state_dir / rel), "taken_at": now_iso()}
    write_state(state_dir, state)
    try:
        policy.compile(state_dir)
    except Exception as e:
        raise InstallError(f"cannot compile the guard's policy: {e}") from e


# ------------------------------------------------------------------------------------------------------
# install / update
# ------------------------------------------------------------------------------------------------------
def _resolved(opts: InstallOptions, old: dict[str, Any] | None) -> dict[str, Any]:
    """The settings after this call: given options, else the installed ones (--update), else defaults."""

    def pick(given: Any, key: str, default: Any) -> Any:
        if given is not None:
            return given
        return old.get(key, default) if old else default

    mode = pick(opts.mode, "mode", "audit")
    on_error = pick(opts.on_error, "on_error", "deny")
    if mode not in MODES:
        raise InstallError(f"--mode must be audit or enforce, not {mode!r}")
    if on_error not in ON_ERROR:
        raise InstallError(f"--on-error must be deny or allow, not {on_error!r}")
    timeout = int(pick(opts.timeout, "timeout_seconds", DEFAULT_TIMEOUT))
    if not 1 <= timeout <= MAX_TIMEOUT:
        raise InstallError(f"--timeout must be 1..{MAX_TIMEOUT} seconds, not {timeout}")
    domains = _clean(pick(opts.domains, "domains", "*"), "--domains")
    socket = opts.syslog_socket if opts.syslog_socket is not None else (old or {}).get("syslog_socket")
    warm = pick(opts.warm, "warm", True)
    return {
        "warm": warm is not False,
        "mode": mode,
        "on_error": on_error,
        "domains": domains,
        "timeout_seconds": timeout,
        "syslog_socket": socket or None,
    }


def _policy_sources(opts: InstallOptions, old: dict[str, Any] | None) -> dict[str, Path | None]:
    """Each policy file's source: the option, else (on --update) the installed entry's source."""
    out: dict[str, Path | None] = {}
    for kind in POLICY_KINDS:
        given: Path | None = getattr(opts, kind)
        if kind in opts.drop:
            if given is not None:
                raise InstallError(f"--{kind} and --no-{kind} contradict each other")
            out[kind] = None
            continue
        if given is not None:
            out[kind] = given.absolute()
            continue
        entry = ((old or {}).get("policy") or {}).get(kind)
        src = entry.get("source") if isinstance(entry, dict) else None
        out[kind] = Path(src) if src else None
    return out


def install(opts: InstallOptions) -> InstallResult:
    """Install (or, with ``update``, refresh) the guard as ``opts`` says."""
    sd = opts.state_dir
    old: dict[str, Any] | None = None
    if (sd / "state.json").exists():
        old = read_state(sd)
        if not (opts.update or opts.force):
            raise InstallError(
                f"the guard is already installed (state {sd}): use --update to change or refresh it"
            )
    elif opts.update:
        raise InstallError(f"--update: the guard is not installed (no {sd / 'state.json'})")
    settings = _resolved(opts, old)
    sources = _policy_sources(opts, old)
    _validate_policy(sources["profile"], sources["exceptions"], sources["attestations"])

    if old is not None:
        hook = Path(old["hook_path"])
        previous = old["previous"]
    else:
        version = hookdir.libvirt_version()
        hook = hookdir.hook_path(opts.hook_dir.absolute(), version)
        if os.path.lexists(hook) and not hookdir.is_ours(hook) and not opts.force:
            raise InstallError(
                f"{hook} exists and is not hvguard's: use --force to replace it (uninstall puts it back)"
            )
        if os.path.lexists(hook) and hookdir.is_ours(hook) and not opts.force:
            raise InstallError(
                f"{hook} is the hook of another hvguard guard install (another state directory): "
                "uninstall that one first, or use --force"
            )
        try:
            previous = hookdir.record_previous(opts.hook_dir.absolute(), hook)
        except (hookdir.HookDirError, OSError) as e:
            raise InstallError(str(e)) from e
        previous["libvirt_version"] = ".".join(map(str, version)) if version else None
        previous["hooks_before"] = hookdir.executable_hooks(opts.hook_dir.absolute())

    created = make_state_dir(sd)
    warm.stop(str(sd))  # a decider started under the old settings; the next VM start brings a new one
    kept = _keep_files(sd) if old is not None else {}
    python, flags, pypath = interpreter()
    state: dict[str, Any] = {
        "schema": STATE_SCHEMA,
        **settings,
        "installed_at": old["installed_at"] if old else now_iso(),
        "updated_at": now_iso(),
        "hook_path": str(hook),
        "hook_sha256": None,
        "python": python,
        "python_flags": flags,
        "python_path": pypath,
        "policy": {},
        "host_facts": (old or {}).get("host_facts"),
        "reloaded": (old or {}).get("reloaded"),
        "previous": previous,
    }
    try:
        state["policy"] = _pin_policy(sd, sources)
        write_state(sd, state)
        _snapshot_and_compile(sd, state)
        text = render_hook(state, sd)
        state["hook_sha256"] = hashlib.sha256(text.encode()).hexdigest()
        write_state(sd, state)
        hookdir.write_hook(hook, text)
    except BaseException:
        if old is None and created:
            # a first install that failed leaves nothing behind; the hook was not written yet
            shutil.rmtree(sd, ignore_errors=True)
        elif old is None:
            _clear_state(sd, keep_decisions=True)  # decisions of an earlier install stay
        elif old is not None:
            # an update that failed puts back the pinned files and state it started from
            for path, data in kept.items():
                write_atomic(path, data)
            write_state(sd, old)
        raise
    result = InstallResult(state=state, hook=hook)
    if opts.reload_libvirtd:
        result.reloaded = reload(sd)
        state = read_state(sd)
        result.state = state
    return result


def _keep_files(state_dir: Path) -> dict[Path, bytes]:
    """The pinned files an update may replace, to put back if it fails."""
    kept = {}
    for p in [*(state_dir / "policy").glob("*.yaml"), state_dir / HOST_FACTS_FILE]:
        with contextlib.suppress(OSError):
            kept[p] = p.read_bytes()
    return kept


def reload(state_dir: Path) -> bool:
    """SIGHUP libvirtd so it looks for hooks again; record when and which PID in ``state.json``."""
    try:
        daemon = hookdir.reload_libvirtd()
    except hookdir.HookDirError as e:
        raise InstallError(str(e)) from e
    state = read_state(state_dir)
    state["reloaded"] = {"pid": daemon.pid, "at": now_iso()}
    write_state(state_dir, state)
    return True


def refresh(state_dir: Path) -> dict[str, Any]:
    """Take a new host snapshot and recompile (``guard refresh``); return the new state."""
    state = read_state(state_dir)
    warm.stop(str(state_dir))
    _snapshot_and_compile(state_dir, state)
    return state


# ------------------------------------------------------------------------------------------------------
# uninstall
# ------------------------------------------------------------------------------------------------------
def _clear_state(state_dir: Path, *, keep_decisions: bool) -> None:
    """Remove the state directory's contents (``decisions.jsonl`` too unless ``keep_decisions``)."""
    for entry in sorted(state_dir.iterdir()):
        if entry.name == DECISIONS_FILE and keep_decisions:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def uninstall(state_dir: Path, *, purge: bool = False, force: bool = False) -> list[str]:
    """Put the hook directory back as it was before install and remove the state (``decisions.jsonl``
    stays unless ``purge``); return warnings."""
    state = read_state(state_dir)
    hook = Path(state["hook_path"])
    if os.path.lexists(hook) and not hookdir.is_ours(hook) and not force:
        raise InstallError(
            f"{hook} is no longer hvguard's hook (changed since install): use --force to restore anyway"
        )
    warm.stop(str(state_dir))
    try:
        warnings = hookdir.restore_previous(state["previous"])
    except (OSError, KeyError, ValueError) as e:
        raise InstallError(f"cannot restore the hook directory: {e}") from e
    _clear_state(state_dir, keep_decisions=not purge)
    if purge:
        state_dir.rmdir()
    return warnings
