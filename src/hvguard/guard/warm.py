"""The warm decider: a process that has hvguard imported already, so a VM start does not pay for it.

Starting Python and importing the facts model, the checks and the engine is most of what a cold hook
run costs (tens of milliseconds on every VM start); the decision itself takes a few. After a cold run
decides, it forks: the parent exits with its decision as before, the child (already warm) detaches
(new session, descriptors 0–2 on /dev/null, every other descriptor closed, so libvirt's pipes see
end-of-file at once) and serves later hook runs on ``STATE/warm.sock``. The hook script's Python entry
(:func:`client_entry`) imports nothing of hvguard's machinery: it hands its arguments and stdin to the
socket and passes the answer on; when there is no warm decider, or it does not answer in time, it
decides itself, cold, exactly as before (:func:`hvguard.guard.hook.entry`).

What stays true with a warm decider:

- **Same decision, same code.** Every request runs :func:`hvguard.guard.hook.run` afresh: ``state.json``
  is read, the pinned files are hashed and compared, the compiled policy is loaded, break-glass is
  looked up — only Python modules are reused. A decider whose hvguard files changed on disk (an
  upgrade) answers nothing and exits, so the client decides cold with the new code.
- **One per state directory** (an ``flock`` on ``warm.lock``); it answers only its own user (root:
  ``SO_PEERCRED``), through a socket that is 0600 in the 0700 state directory.
- **It goes away by itself**: after :data:`IDLE_SECONDS` without a request, when ``state.json`` is gone
  (uninstalled) or when it is no longer ``warm`` in ``state.json``; ``guard uninstall``, ``install
  --update`` and ``refresh`` stop it (SIGTERM to the PID in ``warm.pid``).

Wire format (one request per connection): 4-byte big-endian length, the hook's arguments joined by NUL,
then the domain XML until the client shuts its side down. The answer: the exit code in ASCII, a newline,
then what the hook would have written to stderr (UTF-8).
"""

from __future__ import annotations

import os
import sys

SOCKET_FILE = "warm.sock"
LOCK_FILE = "warm.lock"
PID_FILE = "warm.pid"
#: A warm decider exits after this long without a request (a host that starts no VM keeps nothing).
IDLE_SECONDS = 600
#: How long the client waits for a warm answer before deciding cold itself: a third of the hook's hard
#: limit (the script exports it as :data:`TIMEOUT_ENV`), at most this long.
CLIENT_TIMEOUT = 5.0
TIMEOUT_ENV = "HVGUARD_GUARD_TIMEOUT"
#: What the command line of a decider (forked from the hook script's Python) contains.
CMDLINE_MARK = b"hvguard.guard.warm"
#: Largest request read: arguments, plus the domain XML the hook reads at most (32 MiB) and one byte.
_MAX_ARGS = 64 * 1024
_MAX_XML = 32 * 1024 * 1024 + 1


def _state_dir_of(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--state-dir" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--state-dir="):
            return arg.partition("=")[2]
    return None


def _recv_all(sock: object, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = sock.recv(1 << 16)  # type: ignore[attr-defined]
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def ask(
    state_dir: str, argv: list[str], xml: bytes, timeout: float = CLIENT_TIMEOUT
) -> tuple[int, str] | None:
    """The warm decider's (exit code, stderr text) for the hook arguments ``argv`` and ``xml``; None when
    there is none, or it does not answer completely in ``timeout`` seconds (then decide cold)."""
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(os.path.join(state_dir, SOCKET_FILE))
        args = "\0".join(argv).encode("utf-8", "surrogateescape")
        sock.sendall(len(args).to_bytes(4, "big") + args + xml)
        sock.shutdown(_socket.SHUT_WR)
        answer = _recv_all(sock, 1 << 20)
    except OSError:
        return None
    finally:
        sock.close()
    code, newline, err = answer.partition(b"\n")
    if not newline or code not in (b"0", b"1"):
        return None  # no answer, or a decider that gave up: decide cold
    return int(code), err.decode("utf-8", "replace")


def _client_timeout() -> float:
    try:
        limit = float(os.environ.get(TIMEOUT_ENV, ""))
    except ValueError:
        return CLIENT_TIMEOUT
    return max(0.2, min(CLIENT_TIMEOUT, limit / 3))


def client_entry() -> None:
    """The hook script's entry: ask the warm decider; decide cold when it cannot answer."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)  # as the cold entry: nothing may reach libvirt's stdout
    argv = sys.argv[1:]
    state_dir = _state_dir_of(argv)
    if state_dir is not None and os.path.exists(os.path.join(state_dir, SOCKET_FILE)):
        xml = sys.stdin.buffer.read(_MAX_XML)
        drained = not sys.stdin.buffer.read(1)
        answer = ask(state_dir, argv, xml, _client_timeout()) if drained else None
        if answer is not None:
            code, err = answer
            if err:
                sys.stderr.write(err)
                sys.stderr.flush()
            os._exit(code)
        import io

        # cold, on the XML already read (and whatever was left of stdin)
        sys.stdin = io.TextIOWrapper(io.BufferedReader(io.BytesIO(xml + sys.stdin.buffer.read())))
    from hvguard.guard.hook import main

    code = main(argv)
    sys.stderr.flush()
    import contextlib

    with contextlib.suppress(Exception):  # a warm decider is an optimisation: no decision depends on it
        _spawn_if_wanted(argv)
    sys.exit(code)


def _spawn_if_wanted(argv: list[str]) -> None:
    """Fork a warm decider when this cold run judged a domain and ``state.json`` allows one."""
    from hvguard.guard.hook import DECISION_POINTS, parse_args
    from hvguard.guard.policy import read_state

    parsed = parse_args(argv)
    if parsed is None:
        return
    state_dir, _syslog, (_domain, op, subop, *_extra) = parsed
    judged = (op, subop) in DECISION_POINTS and "hvguard.guard.decide" in sys.modules
    if judged and read_state(state_dir).warm:
        spawn(str(state_dir))


# --------------------------------------------------------------------------------------------------------
# The decider
# --------------------------------------------------------------------------------------------------------
def _code_stamp() -> tuple[tuple[int, int, int], ...]:
    """Inode, size and mtime of the hvguard files a decision runs: an upgrade changes them."""
    from hvguard import engine
    from hvguard.checks import base
    from hvguard.guard import decide, hook, policy

    stamps = []
    for module in (hook, policy, decide, engine, base):
        path = module.__file__ or ""
        try:
            st = os.stat(path)
        except OSError:
            return ()
        stamps.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(stamps)


def _still_wanted(state_dir: str) -> bool:
    from pathlib import Path

    from hvguard.guard.policy import read_state

    try:
        return read_state(Path(state_dir)).warm
    except Exception:  # uninstalled, or a state the hook itself would refuse: not for a warm decider
        return False


def spawn(state_dir: str) -> None:
    """Fork a warm decider for ``state_dir`` from this (warm) process; returns at once in the caller.

    Called by the cold hook after it decided and wrote its answer. The child never returns."""
    try:
        pid = os.fork()
    except OSError:
        return
    if pid != 0:
        return
    try:
        os.setsid()
        os.chdir("/")
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        # every inherited descriptor (libvirt's pipes among them: libvirt waits for their end)
        os.closerange(3, max(os.sysconf("SC_OPEN_MAX"), 1 << 16))
        code = _serve(state_dir)
    except BaseException:
        code = 1
    os._exit(code)


def _serve(state_dir: str) -> int:
    import fcntl
    import gc
    import io
    import socket as _socket  # the full module here (accept): the decider's start-up is paid once
    import time

    from hvguard.guard.hook import run

    gc.enable()  # a long-lived process: the cold hook turned the cycle collector off
    lock = os.open(os.path.join(state_dir, LOCK_FILE), os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another decider serves this state directory
    if not _still_wanted(state_dir):
        return 0
    path = os.path.join(state_dir, SOCKET_FILE)
    stamp = _code_stamp()
    old_umask = os.umask(0o177)
    try:
        if os.path.lexists(path):
            os.unlink(path)  # a dead decider's (we hold the lock)
        server = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        server.bind(path)
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    bound = os.stat(path).st_ino  # removed at the end only if still this one (not a successor's)
    server.listen(16)
    server.settimeout(1.0)
    pid_path = os.path.join(state_dir, PID_FILE)
    tmp = f"{pid_path}.{os.getpid()}"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(tmp, pid_path)  # readers see no PID file or a whole one
    me = os.geteuid()
    last = time.monotonic()
    try:
        while True:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                if time.monotonic() - last > IDLE_SECONDS or not _still_wanted(state_dir):
                    return 0
                continue
            with conn:
                last = time.monotonic()
                if _code_stamp() != stamp or not os.path.exists(path):
                    return 0  # upgraded, or replaced: the client decides cold with the code on disk
                try:
                    creds = conn.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
                    if int.from_bytes(creds[4:8], sys.byteorder) != me:
                        continue
                    conn.settimeout(CLIENT_TIMEOUT)
                    head = _recv_exact(conn, 4)
                    size = int.from_bytes(head, "big")
                    if size > _MAX_ARGS:
                        continue
                    argv = _recv_exact(conn, size).decode("utf-8", "surrogateescape").split("\0")
                    asked = _state_dir_of(argv)
                    if asked is None or os.path.realpath(asked) != os.path.realpath(state_dir):
                        continue  # this decider judges with its own state directory only
                    xml = _recv_all(conn, _MAX_XML)
                    err = io.StringIO()
                    code = run(argv, io.BytesIO(xml), err)
                    conn.sendall(f"{code}\n".encode() + err.getvalue().encode("utf-8", "replace"))
                except Exception:  # noqa: S112  (a broken request: its client decides cold; no one to tell)
                    continue
    finally:
        import contextlib

        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == bound:
                os.unlink(path)
        with contextlib.suppress(OSError, ValueError):
            with open(pid_path, encoding="ascii") as f:
                mine = int(f.read().strip()) == os.getpid()
            if mine:
                os.unlink(pid_path)


def _recv_exact(conn: object, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))  # type: ignore[attr-defined]
        if not chunk:
            raise EOFError("short request")
        data += chunk
    return data


def running_pid(state_dir: str) -> int | None:
    """The PID in ``warm.pid`` when that process is a live warm decider (:data:`CMDLINE_MARK` in its
    command line), else None."""
    try:
        with open(os.path.join(state_dir, PID_FILE), encoding="ascii") as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except (OSError, ValueError):
        return None
    return pid if pid > 1 and CMDLINE_MARK in cmdline else None


def stop(state_dir: str) -> bool:
    """Stop the warm decider of ``state_dir`` (SIGTERM to :func:`running_pid`); True when one was
    signalled. Its socket and PID file are removed either way."""
    import contextlib
    import signal

    pid = running_pid(state_dir)
    if pid is not None:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    for name in (SOCKET_FILE, PID_FILE):
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(state_dir, name))
    return pid is not None
