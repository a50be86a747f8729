"""The host-settings playbook: real ``ansible-playbook`` checks its syntax, then runs it on copies of
libvirt config files; hvguard's libvirt config parser must then read exactly the baseline's values."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from factories import conf, good_host, target
from hvguard.baseline.ansible import libvirt_literal, playbook
from hvguard.baseline.drift import target_drift
from hvguard.baseline.schema import parse_baseline
from hvguard.collect.libvirt.config import parse_libvirt_conf

ANSIBLE = shutil.which("ansible-playbook")
needs_ansible = pytest.mark.skipif(
    ANSIBLE is None and os.environ.get("CI") != "true",
    reason="ansible-playbook not installed (scripts/setup.sh test installs ansible-core)",
)

BASELINE = """\
schema: hvguard.baseline/1
host:
  qemu_conf:
    security_driver: selinux
    cgroup_device_acl: ["/dev/null", "/dev/full", "/dev/zero"]
    vnc_listen: null
    user: "{{ lookup('env', 'HOME') }}"
    dynamic_ownership: 1
    namespaces: null
  libvirtd_conf:
    auth_tcp: sasl
"""

QEMU_CONF = """\
# qemu.conf as shipped, edited by hand
#security_driver = "selinux"
security_driver = "none"
vnc_listen = "0.0.0.0"   # exposed!
cgroup_device_acl = [
    "/dev/null", "/dev/full", "/dev/zero",
    "/dev/random", "/dev/urandom",
]
namespaces = [ "mount" ]
user = "root"
"""


def _items(qemu_text: str) -> list[object]:
    qemu = parse_libvirt_conf(qemu_text, "/etc/libvirt/qemu.conf")
    assert qemu.error is None
    host = good_host(qemu_conf=qemu, libvirtd_conf=conf("/etc/libvirt/libvirtd.conf", auth_tcp="none"))
    report = target_drift(parse_baseline(BASELINE, "b.yaml").baseline, target([], host=host), "b.yaml")
    return list(report.items)


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert ANSIBLE is not None, "ansible-playbook is missing: scripts/setup.sh test installs ansible-core"
    env = {
        **os.environ,
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
        "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
    }
    return subprocess.run(
        [ANSIBLE, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_libvirt_literals() -> None:
    assert libvirt_literal("a b") == '"a b"'
    assert libvirt_literal('say "hi"') == "'say \"hi\"'"
    assert libvirt_literal(0) == "0"
    assert libvirt_literal(["/dev/null", "/dev/kvm"]) == '["/dev/null", "/dev/kvm"]'


def test_only_host_file_keys_become_tasks() -> None:
    text = playbook(_items(QEMU_CONF), source="b.yaml")  # type: ignore[arg-type]
    # qemu.conf: 4 keys set (dedupe, fold, set), 2 removed; libvirtd.conf: 1 key set
    assert text.count("ansible.builtin.lineinfile:") == 5
    assert text.count("ansible.builtin.replace:") == 2 * 5 + 2
    assert text.count("backup: true") == 2  # one install task per file
    assert "!unsafe" in text


@needs_ansible
def test_the_playbook_passes_syntax_check_and_fixes_copies_of_the_files(tmp_path: Path) -> None:
    book = tmp_path / "host.yml"
    book.write_text(playbook(_items(QEMU_CONF), source="b.yaml"), encoding="utf-8")  # type: ignore[arg-type]
    check = _run(["--syntax-check", "-i", "localhost,", str(book)], tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr

    etc = tmp_path / "etc-libvirt"
    etc.mkdir()
    (etc / "qemu.conf").write_text(QEMU_CONF, encoding="utf-8")
    (etc / "libvirtd.conf").write_text('auth_tcp = "none"\n', encoding="utf-8")
    extra = [
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"hvguard_libvirt_conf_dir={etc}",
        "-e",
        "hvguard_restart_libvirt=false",
        "-e",
        "ansible_become=false",
        "-e",
        "ansible_python_interpreter=/usr/bin/python3",
        str(book),
    ]
    run = _run(extra, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    qemu = parse_libvirt_conf((etc / "qemu.conf").read_text(encoding="utf-8"), "qemu.conf")
    assert qemu.error is None, qemu.error
    values = {k: v.value for k, v in qemu.values.items()}
    assert values == {
        "security_driver": "selinux",
        "cgroup_device_acl": ["/dev/null", "/dev/full", "/dev/zero"],
        "user": "{{ lookup('env', 'HOME') }}",  # never templated by Ansible
        "dynamic_ownership": 1,
    }
    assert '#security_driver = "selinux"' in (etc / "qemu.conf").read_text(encoding="utf-8")
    libvirtd = parse_libvirt_conf((etc / "libvirtd.conf").read_text(encoding="utf-8"), "libvirtd.conf")
    assert {k: v.value for k, v in libvirtd.values.items()} == {"auth_tcp": "sasl"}
    assert any(p.name.startswith("qemu.conf.") for p in etc.iterdir()), "backup: yes keeps the old file"
    # A second run changes nothing: the tasks are idempotent.
    again = _run(extra, tmp_path)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout


# libvirt reads the FIRST assignment of a key (virConfGetValue, src/util/virconf.c); the later ones here
# are ignored by libvirt, and a playbook that edits them leaves the drift in place.
DUPLICATES = """\
security_driver = "none"      # what libvirt reads
vnc_listen = "0.0.0.0"
security_driver = "selinux"   # ignored by libvirt
cgroup_device_acl = [
    "/dev/null", "/dev/kvm",
]
cgroup_device_acl = [ "/dev/null", "/dev/full", "/dev/zero" ]
namespaces = [ "mount" ]
namespaces = [
    "mount",
]
user = "root"
user = "qemu"
"""


def _assignments(text: str, key: str) -> list[str]:
    """Every line that assigns ``key`` (libvirt's syntax: optional blanks, the name, blanks, ``=``)."""
    return [line for line in text.splitlines() if re.match(rf"[ \t]*{key}[ \t]*=", line)]


@needs_ansible
def test_duplicate_keys_the_first_is_what_is_fixed_with_one_backup_per_run(tmp_path: Path) -> None:
    items = _items(DUPLICATES)
    assert {i.path for i in items} >= {"qemu_conf.security_driver", "qemu_conf.user"}  # type: ignore[attr-defined]
    book = tmp_path / "host.yml"
    book.write_text(playbook(items, source="b.yaml"), encoding="utf-8")  # type: ignore[arg-type]
    etc = tmp_path / "etc-libvirt"
    etc.mkdir()
    (etc / "qemu.conf").write_text(DUPLICATES, encoding="utf-8")
    (etc / "libvirtd.conf").write_text('auth_tcp = "none"\nauth_tcp = "sasl"\n', encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    extra = ["-i", "localhost,", "-c", "local", "-e", f"hvguard_libvirt_conf_dir={etc}",
             "-e", f"hvguard_work_dir={work}", "-e", "hvguard_restart_libvirt=false",
             "-e", "ansible_become=false",
             "-e", "ansible_python_interpreter=/usr/bin/python3", str(book)]  # fmt: skip
    run = _run(extra, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    text = (etc / "qemu.conf").read_text(encoding="utf-8")
    qemu = parse_libvirt_conf(text, "qemu.conf")
    assert qemu.error is None, qemu.error
    assert {k: v.value for k, v in qemu.values.items()} == {
        "security_driver": "selinux",
        "cgroup_device_acl": ["/dev/null", "/dev/full", "/dev/zero"],
        "user": "{{ lookup('env', 'HOME') }}",
        "dynamic_ownership": 1,
    }, text
    # what libvirt reads: the first assignment, and there is no other one left to mislead a reader
    for key, line in (
        ("security_driver", 'security_driver = "selinux"'),
        ("cgroup_device_acl", 'cgroup_device_acl = ["/dev/null", "/dev/full", "/dev/zero"]'),
        ("user", "user = \"{{ lookup('env', 'HOME') }}\""),
    ):
        assert _assignments(text, key) == [line], text
    assert _assignments(text, "namespaces") == [] and _assignments(text, "vnc_listen") == [], text
    libvirtd = parse_libvirt_conf((etc / "libvirtd.conf").read_text(encoding="utf-8"), "libvirtd.conf")
    assert {k: v.value for k, v in libvirtd.values.items()} == {"auth_tcp": "sasl"}
    assert "changed=2" in run.stdout, run.stdout  # one install per file, nothing else counts as a change

    def backups() -> list[str]:
        return sorted(p.name for p in etc.iterdir() if p.name not in ("qemu.conf", "libvirtd.conf"))

    first = backups()
    assert len(first) == 2 and sum(n.startswith("qemu.conf.") for n in first) == 1, first
    assert next((etc / n) for n in first if n.startswith("qemu.conf.")).read_text() == DUPLICATES
    again = _run(extra, tmp_path)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout
    assert backups() == first, "a run that changed nothing left a backup"
    assert (etc / "qemu.conf").read_text(encoding="utf-8") == text
    assert list(work.iterdir()) == [], "a working copy was left behind"
