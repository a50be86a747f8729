"""Loopback hosts for the Ansible collection's tests and benchmark: N real sshd servers (tests/sshd_env.py),
each with its own login account and home directory, an inventory naming them, and ``ansible-playbook``
of the repository's ``hvguard.ss009.collect`` playbook against them.

The accounts log in with their server's client key and may ``sudo`` to root without a password (the role
runs hvguard as root, through Ansible's ``become``). Their homes are empty directories they own, so a
file Ansible or hvguard left on a "host" would show there. The hvguard on every host is this checkout
run by this interpreter (``hvguard_command`` + ``PYTHONPATH``), as root: the account itself cannot read
the interpreter in every development setup, root can.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from sshd_env import Sshd, throwaway_user

REPO = Path(__file__).resolve().parents[1]
ANSIBLE_DIR = REPO / "ansible"
COLLECTION = ANSIBLE_DIR / "collections" / "ansible_collections" / "hvguard" / "ss009"
ANSIBLE_PLAYBOOK = shutil.which("ansible-playbook")


class Hosts:
    """``count`` loopback sshd hosts named ``hv01`` … with one login account each."""

    def __init__(self, count: int, tag: str = "an") -> None:
        self.count = count
        self.tag = tag
        self.servers: list[Sshd] = []
        self.users: list[str] = []
        self.homes: list[Path] = []
        # Homes live in a directory every account can traverse (pytest's tmp_path is private to root).
        self.dir = Path(tempfile.mkdtemp(prefix="hvguard-ansible-"))
        self.dir.chmod(0o755)
        self.known_hosts = self.dir / "known_hosts"

    @property
    def names(self) -> list[str]:
        """The inventory names, in order."""
        return [f"hv{i + 1:02d}" for i in range(self.count)]

    def start(self) -> Hosts:
        """Start the servers and create the accounts (undone by :meth:`stop`, also after a failure)."""
        try:
            for i in range(self.count):
                server = Sshd()
                self.servers.append(server)
                user = throwaway_user(f"{self.tag}{i}")
                home = self.dir / user
                home.mkdir()
                server.users.append(user)  # before useradd: a partial failure is still cleaned up
                subprocess.run(
                    ["useradd", "-M", "-d", str(home), "-s", "/bin/sh", "-p", "*", user],
                    check=True,
                    stdin=subprocess.DEVNULL,
                )
                shutil.chown(home, user, user)
                server.authorize(user)
                # The first server's client key logs in everywhere too: `hvguard scan ssh://…` of all the
                # hosts takes one --identity (bench/ansible_fanout.py).
                with (server.auth_dir / user).open("a") as keys:
                    keys.write(self.servers[0].client_public + "\n")
                drop_in = Path("/etc/sudoers.d") / user
                drop_in.write_text(f"{user} ALL=(root) NOPASSWD: ALL\n")
                drop_in.chmod(0o440)
                server.sudoers.append(drop_in)
                server.start()
                self.users.append(user)
                self.homes.append(home)
            self.known_hosts.write_text("".join(s.known_hosts_line() for s in self.servers))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every server by PID, delete the accounts and drop-ins, remove the homes."""
        for server in self.servers:
            server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def ssh_targets(self) -> list[str]:
        """The same hosts as ``hvguard scan`` targets (log in with :attr:`identity`)."""
        return [s.target(u) for s, u in zip(self.servers, self.users, strict=True)]

    @property
    def identity(self) -> Path:
        """A client key every host's account accepts."""
        return self.servers[0].client_key

    def inventory(self, path: Path, **extra_vars: Any) -> Path:
        """Write a YAML inventory of the hosts (group ``hypervisors``) with the role's variables for
        this checkout's hvguard, and return its path."""
        hosts = {
            name: {
                "ansible_host": "127.0.0.1",
                "ansible_port": server.port,
                "ansible_user": user,
                "ansible_ssh_private_key_file": str(server.client_key),
            }
            for name, server, user in zip(self.names, self.servers, self.users, strict=True)
        }
        doc = {
            "all": {
                "children": {"hypervisors": {"hosts": hosts}},
                "vars": {
                    # Host keys checked strictly against the servers' own keys.
                    "ansible_ssh_common_args": (
                        f"-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes "
                        "-o GlobalKnownHostsFile=/dev/null"
                    ),
                    "ansible_python_interpreter": "/usr/bin/python3",
                    "ansible_become": True,
                    "hvguard_command": [sys.executable, "-m", "hvguard"],
                    "hvguard_environment": {"PYTHONPATH": str(REPO / "src")},
                    **extra_vars,
                },
            }
        }
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def listing(self) -> dict[str, list[str]]:
        """Every file under each account's home, and every file in /tmp and /var/tmp the account owns:
        what the run wrote on the "hosts"."""
        out: dict[str, list[str]] = {}
        for user, home in zip(self.users, self.homes, strict=True):
            found = sorted(str(p) for p in home.rglob("*"))
            for tmp in ("/tmp", "/var/tmp"):
                r = subprocess.run(
                    ["find", tmp, "-xdev", "-user", user], capture_output=True, text=True, check=False
                )
                found += sorted(r.stdout.split())
            out[user] = found
        return out


def playbook(
    inventory: Path, work: Path, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``ansible-playbook hvguard.ss009.collect`` run from ``ansible/`` (its ansible.cfg: this
    repository's collections, pipelining), with Ansible's controller-side state under ``work``."""
    assert ANSIBLE_PLAYBOOK is not None, (
        "ansible-playbook is missing: scripts/setup.sh test installs ansible-core"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")},
        "ANSIBLE_HOME": str(work / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(work / "ansible-local"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_STDOUT_CALLBACK": "default",
    }
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(inventory), "hvguard.ss009.collect", *args],
        cwd=ANSIBLE_DIR,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
