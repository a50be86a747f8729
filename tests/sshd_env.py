"""A real OpenSSH server for the ssh:// transport's tests and benchmark, on a loopback port.

Everything it needs lives in a private directory: its own host keys, its own config and
``AuthorizedKeysFile`` (``/root/.ssh`` and ``/etc/ssh`` are never touched), client keys for the tests.
It is started with ``sshd -D -e`` and stopped by PID. Test accounts (``hvgssh<pid>…``) are created with
``useradd`` and removed with ``userdel`` by whoever created them; a sudoers drop-in, when asked for, is
removed too.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return path.with_suffix(".pub").read_text().strip()


class Sshd:
    """One sshd on ``address``:``port`` (a loopback address, 127.0.0.1 by default: several servers on
    127.0.0.2, 127.0.0.3 … look like several hosts) with its own host key; ``client_key`` logs in as any
    account registered with :meth:`authorize`; ``junk_key`` logs in to a forced command that prints
    garbage."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.address = address
        if not Path(SSHD).exists():
            raise RuntimeError(f"{SSHD} is missing: run scripts/setup.sh test (openssh-server)")
        self.dir = Path(tempfile.mkdtemp(prefix="hvguard-sshd-"))
        # sshd reads AuthorizedKeysFile as the logging-in user: the directory must be traversable.
        self.dir.chmod(0o755)
        self.auth_dir = self.dir / "authorized_keys"
        self.auth_dir.mkdir(mode=0o755)
        self.host_key = self.dir / "host_ed25519"
        self.host_public = _keygen(self.host_key, "hvguard-test-host")
        self.client_key = self.dir / "client_ed25519"
        self.client_public = _keygen(self.client_key, "hvguard-test-client")
        self.junk_key = self.dir / "junk_ed25519"
        self.junk_public = _keygen(self.junk_key, "hvguard-test-junk")
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "sshd.log"
        self.users: list[str] = []
        self.sudoers: list[Path] = []

    # -- accounts -----------------------------------------------------------------------------------------

    def authorize(self, user: str, *, junk: bool = False) -> None:
        """Let ``client_key`` (and, with ``junk``, ``junk_key`` with a forced garbage command) log in."""
        lines = [self.client_public]
        if junk:
            lines.append(f"command=\"printf '%s\\n' not-hvguard garbage\",no-pty {self.junk_public}")
        path = self.auth_dir / user
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o644)

    def add_user(self, name: str, *, sudo: bool = False) -> str:
        """Create a throwaway account (no home, /bin/sh, not locked) that ``client_key`` logs in to."""
        subprocess.run(
            ["useradd", "-M", "-d", "/", "-s", "/bin/sh", "-p", "*", name],
            check=True,
            stdin=subprocess.DEVNULL,
        )
        self.users.append(name)
        self.authorize(name)
        if sudo:
            drop_in = Path("/etc/sudoers.d") / name
            drop_in.write_text(f"{name} ALL=(root) NOPASSWD: ALL\n")
            drop_in.chmod(0o440)
            self.sudoers.append(drop_in)
        return name

    def add_users(self, names: list[str], *, sudo: bool = False) -> None:
        """Create many throwaway accounts in one ``newusers`` call, all authorised for ``client_key``
        (with ``sudo``: all allowed ``sudo`` without a password, through one sudoers drop-in).

        Their home is this server's directory, which exists: newusers then leaves it alone.
        """
        lines = "".join(f"{name}:*:::hvguard test:{self.dir}:/bin/sh\n" for name in names)
        self.users.extend(names)  # before the call: a partial failure must still be cleaned up
        subprocess.run(["newusers"], input=lines.encode(), check=True, capture_output=True)
        for name in names:
            self.authorize(name)
        if sudo:
            drop_in = Path("/etc/sudoers.d") / f"hvgssh{os.getpid()}-many"
            drop_in.write_text(f"User_Alias HVGSSH = {', '.join(names)}\nHVGSSH ALL=(root) NOPASSWD: ALL\n")
            drop_in.chmod(0o440)
            self.sudoers.append(drop_in)

    # -- the daemon ---------------------------------------------------------------------------------------

    def config(self) -> Path:
        """Write the server's sshd_config (loopback, own keys, key login only, high start-up limits)."""
        path = self.dir / "sshd_config"
        path.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {self.address}",
                    f"HostKey {self.host_key}",
                    f"AuthorizedKeysFile {self.auth_dir}/%u",
                    "StrictModes no",
                    "UsePAM no",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UseDNS no",
                    "PrintMotd no",
                    "PrintLastLog no",
                    "X11Forwarding no",
                    "AllowTcpForwarding no",
                    "MaxStartups 1000:30:2000",
                    "MaxSessions 100",
                    "LoginGraceTime 60",
                    "LogLevel ERROR",
                ]
            )
            + "\n"
        )
        return path

    def start(self, *extra: str) -> Sshd:
        """Start sshd on a free loopback port and wait until it accepts connections (``extra``: more
        sshd arguments)."""
        if not PRIVSEP_DIR.exists():
            PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        for _attempt in range(5):
            self.port = free_port()
            config = self.config()
            with self.log.open("ab") as log:
                self.process = subprocess.Popen(
                    [SSHD, "-D", "-e", "-f", str(config), "-o", f"PidFile={self.dir / 'sshd.pid'}", *extra],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                )
            if self._wait_listening():
                return self
            self._kill()
        raise RuntimeError(f"sshd did not start: {self.log.read_text()[-2000:]}")

    def _wait_listening(self) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                if sock.connect_ex((self.address, self.port)) == 0:
                    return True
            time.sleep(0.05)
        return False

    def _kill(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def known_hosts_line(self) -> str:
        """This server's host key as a known_hosts line for ``[address]:port``."""
        kind, data = self.host_public.split()[:2]
        return f"[{self.address}]:{self.port} {kind} {data}\n"

    def target(self, user: str) -> str:
        """The ssh:// target for ``user`` on this server."""
        return f"ssh://{user}@{self.address}:{self.port}"

    def cpu_seconds(self) -> float:
        """CPU time of sshd and of every session it has reaped (sshd, shells, the commands they ran)."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # utime, stime, cutime, cstime (proc(5) fields 14-17), in clock ticks.
        return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")

    def stop_daemon(self) -> None:
        """Stop sshd by PID (and wait for it, so its CPU time is accounted to this process)."""
        self._kill()

    def stop(self) -> None:
        """Stop sshd by PID, delete the test accounts and sudoers drop-ins and this instance's directory."""
        self._kill()
        for drop_in in self.sudoers:
            drop_in.unlink(missing_ok=True)
        for name in self.users:
            subprocess.run(["userdel", name], check=False, stdin=subprocess.DEVNULL, capture_output=True)
        self.users.clear()
        # /run/sshd stays: any other sshd still running (another fixture of this run) needs it for
        # privilege separation, and removing it resets that daemon's connections.
        shutil.rmtree(self.dir, ignore_errors=True)


def throwaway_user(suffix: str = "") -> str:
    """A throwaway account name unique to this test process (``hvgssh<pid><suffix>``)."""
    return f"hvgssh{os.getpid()}{suffix}"
