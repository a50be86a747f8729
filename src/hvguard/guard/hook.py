"""The libvirt qemu hook's Python entry: :func:`entry` (or ``python -m hvguard.guard.hook``) with
``--state-dir DIR DOMAIN OP SUBOP EXTRA`` and the domain XML on stdin.

libvirt runs the installed hook script (``/etc/libvirt/hooks/qemu.d/50-hvguard``) for every domain event;
the script runs this module's :func:`entry` (``python -I -S -c``, see
:data:`hvguard.guard.install.HOOK_ENTRY`) for ``prepare begin``, ``migrate begin`` and ``restore begin``
only. Rules:

- **Never a byte on stdout**: for migrate and restore libvirt takes the hook's stdout as replacement XML.
- A DOMAIN the state's ``domains`` glob does not match: exit 0 at once, no record.
- Otherwise decide (:mod:`hvguard.guard.decide`), append the record to ``decisions.jsonl``, send the
  syslog line, and exit 0 (allowed, audit) or 1 (refused) with ONE stderr line — the one ``virsh start``
  shows: ``hvguard guard: refused DOMAIN: 11.1.2 <what> (fix: <fix>); 11.3.3 …``.
- Any failure of hvguard itself (state, a pinned file changed, unparsable XML, a crash) applies the
  state's ``on_error`` (``deny`` when even that cannot be read): the record's reason is
  ``hvguard-error`` and the stderr line says ``hvguard guard failed (…); on-error=deny: refused``.
- An unexpired break-glass entry for the domain allows it whatever the decision (and whatever failed).

Lean on purpose: click, rich, the report package and YAML parsing stay out of this path when
``compiled.pickle`` exists (:func:`hvguard.guard.policy.compile`).
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hvguard.guard import DEFAULT_STATE_DIR, STATE_DIR_ENV

if TYPE_CHECKING:
    from hvguard.guard.policy import GuardState
    from hvguard.guard.record import GuardDecision, Operation

#: libvirt (operation, sub-operation) → the record's operation: the incoming side of each way a VM can
#: come to run here. Every other event is not a decision point.
DECISION_POINTS: dict[tuple[str, str], Operation] = {
    ("prepare", "begin"): "prepare",
    ("migrate", "begin"): "migrate",
    ("restore", "begin"): "restore",
}
#: Longest message part per violation and overall (virsh shows the line whole).
_PART_CHARS = 240
_LINE_CHARS = 2000
#: More stdin than this is not judged (decide refuses a domain XML above 32 MiB, libvirt's own limit).
MAX_STDIN_BYTES = 32 * 1024 * 1024
EXIT_ALLOWED = 0
EXIT_REFUSED = 1
PREFIX = "hvguard guard"


class _Usage(Exception):
    pass


def _parse(argv: Sequence[str]) -> tuple[Path, str, list[str]]:
    state_dir = os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR
    syslog = "/dev/log"
    rest: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg in ("--state-dir", "--syslog-socket"):
            value = next(it, None)
            if value is None:
                raise _Usage(f"{arg} needs a value")
            if arg == "--state-dir":
                state_dir = value
            else:
                syslog = value
        elif arg.startswith("--state-dir="):
            state_dir = arg.partition("=")[2]
        elif arg.startswith("--syslog-socket="):
            syslog = arg.partition("=")[2]
        else:
            rest.append(arg)
    if len(rest) < 3:
        raise _Usage("usage: python -m hvguard.guard.hook [--state-dir DIR] DOMAIN OP SUBOP [EXTRA]")
    return Path(state_dir), syslog, rest


def _one_line(text: str, limit: int = _PART_CHARS) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def refusal_line(record: GuardDecision) -> str:
    """The one stderr line of a refusal: each violated measure, what is wrong and the fix."""
    parts = []
    for v in record.violations:
        fix = (v.fix or "").strip().splitlines()
        part = f"{v.measure} {_one_line(v.message)}"
        if fix:
            part += f" (fix: {_one_line(fix[0])})"
        parts.append(part)
    return _one_line(f"{PREFIX}: refused {record.domain}: " + "; ".join(parts), _LINE_CHARS)


def error_line(domain: str, error: str, on_error: str) -> str:
    """The one stderr line when hvguard itself failed and ``on_error`` decided."""
    verdict = "refused" if on_error == "deny" else "allowed"
    return _one_line(f"{PREFIX} failed ({error}); on-error={on_error}: {verdict} {domain}", _LINE_CHARS)


def _error_record(
    domain: str,
    operation: Operation,
    state: GuardState | None,
    on_error: str,
    error: str,
    break_glass: dict[str, Any] | None,
) -> GuardDecision:
    from hvguard import __version__
    from hvguard.guard.lookup import utc_now
    from hvguard.guard.record import GuardDecision

    allowed = break_glass is not None or on_error == "allow"
    return GuardDecision(
        at=utc_now(),
        host=os.uname().nodename,
        domain=domain,
        operation=operation,
        mode="audit" if state is not None and state.mode == "audit" else "enforce",
        outcome="allowed" if allowed else "refused",
        reason="break-glass" if break_glass is not None else "hvguard-error",
        break_glass=break_glass,
        source="stdin",
        error=error,
        tool_version=__version__,
    )


def _decide(
    state_dir: Path,
    state: GuardState,
    domain: str,
    operation: Operation,
    xml: bytes,
    break_glass: dict[str, Any] | None,
) -> GuardDecision:
    from hvguard.guard.decide import DomainXmlError, decide, parse_domain
    from hvguard.guard.policy import load_compiled, load_pinned, verify
    from hvguard.guard.record import PolicyPins

    pins = verify(state)
    loaded = load_compiled(state_dir, pins) or load_pinned(state)
    policy, snapshot = loaded
    vm = parse_domain(xml, "stdin")
    if vm.name != domain:
        raise DomainXmlError(f"stdin: the XML names domain {vm.name!r}, libvirt said {domain!r}")
    return decide(
        snapshot,
        vm,
        policy,
        mode="audit" if state.mode == "audit" else "enforce",
        operation=operation,
        pins=PolicyPins(
            profile_sha256=pins["profile"],
            exceptions_sha256=pins["exceptions"],
            attestations_sha256=pins["attestations"],
            host_facts_sha256=pins["host_facts"],
            profile=policy.profile.name,
        ),
        source="stdin",
        break_glass=break_glass,
    )


def run(argv: Sequence[str], stdin: Any, stderr: Any) -> int:
    """The hook's work; returns the exit code. Reads the XML from ``stdin`` (binary), writes at most one
    line to ``stderr``; never touches stdout."""
    # Imported here, not at module level, so that even a broken installation ends in main()'s
    # one-line refusal instead of a traceback in virsh's error.
    from hvguard.guard.log import append_record, send_syslog
    from hvguard.guard.policy import GuardError, on_error_of, read_state

    try:
        state_dir, syslog, (domain, op, subop, *_extra) = _parse(argv)
    except _Usage as exc:
        # No state directory to read on_error from: fail safe.
        print(f"{PREFIX} failed ({exc}); on-error=deny: refused", file=stderr)
        return EXIT_REFUSED
    operation = DECISION_POINTS.get((op, subop))
    # Read stdin whole in every case: libvirt writes the XML to it and must not meet a closed pipe.
    xml = stdin.read(MAX_STDIN_BYTES + 1)
    while stdin.read(1 << 16):
        pass
    state: GuardState | None = None
    try:
        state = read_state(state_dir)
    except GuardError as exc:
        error = str(exc)
    else:
        error = ""
        if not fnmatchcase(domain, state.domains):
            return EXIT_ALLOWED
    if operation is None:
        return EXIT_ALLOWED  # not a decision point (the hook script filters these already)
    on_error = state.on_error if state is not None else on_error_of(state_dir)
    break_glass = None
    record: GuardDecision | None = None
    try:
        from hvguard.guard.lookup import breakglass_active

        break_glass = breakglass_active(state_dir, domain)
    except Exception as exc:  # an unreadable break-glass file grants nothing
        error = error or f"break-glass file: {_one_line(str(exc))}"
    if state is not None and not error:
        try:
            record = _decide(state_dir, state, domain, operation, xml, break_glass)
        except Exception as exc:  # whatever failed, on_error decides — never a traceback in virsh
            error = _one_line(
                f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError | GuardError) else str(exc)
            )
    if record is None:
        record = _error_record(domain, operation, state, on_error, error or "no decision", break_glass)
    not_logged = ""
    try:
        append_record(state_dir, record)
    except OSError as exc:
        not_logged = _one_line(f"cannot log the decision to {state_dir}: {exc.strerror or exc}")
        if record.outcome == "allowed" and record.reason != "break-glass" and on_error == "deny":
            # Every decision must be on record: an allowed start that cannot be is an hvguard failure.
            record = _error_record(domain, operation, state, on_error, not_logged, None)
            not_logged = ""
    send_syslog(record, syslog)
    line = ""
    if record.reason == "hvguard-error":
        line = error_line(domain, record.error or "", on_error)
    elif record.reason == "break-glass" and record.error:
        line = f"{PREFIX}: break-glass allowed {domain} (evaluation failed: {record.error})"
    elif record.outcome == "refused":
        line = refusal_line(record)
    if not_logged:
        line = f"{line} [{not_logged}]" if line else f"{PREFIX}: {record.outcome} {domain} [{not_logged}]"
    if line:
        print(_one_line(line, _LINE_CHARS + 300), file=stderr)
    return EXIT_REFUSED if record.outcome == "refused" else EXIT_ALLOWED


def _import_msgspec_lean() -> None:
    """Import msgspec without ``typing_extensions`` (a few ms of this hook's start-up): msgspec then uses
    :mod:`typing`'s ``get_type_hints``, ``Required`` and ``NotRequired``, the very objects
    ``typing_extensions`` re-exports on Python ≥ 3.11. ``typing_extensions`` stays importable for
    anything that asks for it later."""
    if sys.version_info < (3, 11) or "msgspec" in sys.modules or "typing_extensions" in sys.modules:
        return
    sys.modules["typing_extensions"] = None  # type: ignore[assignment]  # its import now fails at once
    try:
        import msgspec  # noqa: F401
    finally:
        del sys.modules["typing_extensions"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: stdout is replaced by /dev/null first, so nothing imported can write to it."""
    # A short-lived process that builds many objects while importing: the cycle collector would only
    # walk them (a measurable part of the start-up this hook adds to every VM start).
    gc.disable()
    real_stdout = sys.stdout
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (lives as long as the process)
    try:
        _import_msgspec_lean()  # inside: a missing msgspec is a one-line refusal, not a traceback
        return run(list(sys.argv[1:] if argv is None else argv), sys.stdin.buffer, sys.stderr)
    except BaseException as exc:  # the last line of defence: no traceback, deny
        print(error_line("?", f"{type(exc).__name__}: {exc}", "deny"), file=sys.stderr)
        return EXIT_REFUSED
    finally:
        sys.stdout = real_stdout


def entry() -> None:
    """The cold entry (``python -m hvguard.guard.hook``; the hook script's
    :func:`hvguard.guard.warm.client_entry` runs :func:`main` the same way when no warm decider answers):
    stdout goes to /dev/null at the descriptor level too (a C library writing to fd 1 must not reach
    libvirt either), then :func:`main`'s exit code."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    sys.exit(main())


def parse_args(argv: Sequence[str]) -> tuple[Path, str, list[str]] | None:
    """``(state_dir, syslog_socket, [DOMAIN, OP, SUBOP, …])`` of hook arguments, None when unusable."""
    try:
        return _parse(argv)
    except _Usage:
        return None


if __name__ == "__main__":
    entry()
