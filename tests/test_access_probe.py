"""The ``--probe-acl`` probe against the real libvirtd (started by scripts/test.sh) with a throwaway user.

What really happens on this machine: libvirtd's sockets use polkit authorisation (Debian's build
default) and there is no system D-Bus, so polkit cannot be asked and libvirt refuses every non-root
client (fails closed) — the probe records ``denied`` with that reason. root is always allowed. With
access_drivers unset there is no per-VM decision at all, which 11.2.2 reports from libvirtd.conf.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from hvguard.cli import main
from hvguard.collect.linux.access_probe import run_probe
from hvguard.facts import Bundle
from libvirt_env import TestDomains, domain_xml, requires_libvirtd

pytestmark = [requires_libvirtd, pytest.mark.libvirtd]


@pytest.fixture
def throwaway_user() -> Iterator[str]:
    """A local account ``hvgtest<pid>`` without a home or login shell, removed at the end."""
    name = f"hvgtest{os.getpid()}"
    subprocess.run(
        ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True, timeout=30
    )
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False, timeout=30)


@pytest.fixture
def vm() -> Iterator[str]:
    with TestDomains() as td:
        name = td.name("probe")
        td.define(domain_xml(name, dom_type="qemu"))
        yield name


def test_root_is_allowed_and_a_plain_user_is_denied(throwaway_user: str, vm: str) -> None:
    allowed = run_probe("root", vm)
    assert allowed.outcome == "allowed" and allowed.returncode == 0, allowed
    assert "State:" in allowed.output
    denied = run_probe(throwaway_user, vm)
    assert denied.outcome == "denied", denied
    assert denied.returncode != 0 and denied.reason
    assert denied.argv == ["runuser", "-u", throwaway_user, "--", "virsh", "-c", "qemu:///system", "dominfo",
                           "--domain", vm]  # fmt: skip


def test_unknown_vm_and_unknown_user_are_errors_not_denials(vm: str) -> None:
    missing_vm = run_probe("root", vm + "-absent")
    assert missing_vm.outcome == "error" and "no such VM" in missing_vm.reason
    missing_user = run_probe(f"hvgnouser{os.getpid()}", vm)
    assert missing_user.outcome == "error" and "no such user" in missing_user.reason


def test_collect_records_probes_in_the_bundle(throwaway_user: str, vm: str, tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    with pytest.raises(SystemExit) as done:
        main(["collect", "local", "--output", str(out), "--probe-acl", f"root:{vm}",
              "--probe-acl", f"{throwaway_user}:{vm}"])  # fmt: skip
    assert done.value.code == 0
    bundle = msgspec.json.decode(out.read_bytes(), type=Bundle)
    host = bundle.targets[0].host
    assert host is not None and host.access is not None
    assert [(p.user, p.outcome) for p in host.access.probes] == [
        ("root", "allowed"),
        (throwaway_user, "denied"),
    ]
