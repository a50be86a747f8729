"""A scan run by a really unprivileged user (``setpriv`` to nobody), not a patched ``geteuid``.

An offline root whose ``/etc/sudoers`` is mode 0440 root, as on every Debian host, and whose polkit
rules directory is 0700 root: the sudo and polkit findings must be ``error`` — never a pass, fail or
not_applicable beside the error — and the report must say at the top that the scan ran without root and
which paths it could not read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SRC = Path(__file__).parent.parent / "src"
ACCESS_GOOD = Path(__file__).parent / "data" / "roots" / "access-good"
SETPRIV = shutil.which("setpriv")
NOBODY = ("--reuid=nobody", "--regid=nogroup", "--clear-groups")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or SETPRIV is None, reason="needs root and setpriv to become an unprivileged user"
)


def _as_nobody(python: str, *args: str, cwd: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/nonexistent",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": f"{SRC}:{sysconfig.get_paths()['purelib']}",
    }
    assert SETPRIV is not None
    return subprocess.run(
        [SETPRIV, *NOBODY, python, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=180,
        check=False,
    )


def _python_for_nobody(cwd: str) -> str:
    """An interpreter nobody may run that has this virtualenv's ABI (the venv's own may live under a
    home directory nobody cannot enter)."""
    import sys

    real = os.path.realpath(sys.executable)
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (real, f"/usr/bin/python{ver}", f"/usr/local/bin/python{ver}"):
        if not os.path.exists(candidate):
            continue
        if _as_nobody(candidate, "-c", "import msgspec, click", cwd=cwd).returncode == 0:
            return candidate
    pytest.skip(f"no Python {ver} that an unprivileged user can run with this virtualenv's packages")


@pytest.fixture(scope="module")
def unprivileged_scan() -> Iterator[tuple[dict[str, Any], str]]:
    tmp = Path(tempfile.mkdtemp(prefix="hvg-unpriv-"))
    try:
        tmp.chmod(0o755)
        root = tmp / "root"
        shutil.copytree(ACCESS_GOOD, root, symlinks=True)
        for path in [root, *root.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() else 0o644)
        (root / "etc" / "sudoers").chmod(0o440)  # owner root, as Debian ships it
        os.chown(root / "etc" / "sudoers", 0, 0)
        (root / "etc" / "polkit-1" / "rules.d").chmod(0o700)  # as polkitd's rules directory often is
        python = _python_for_nobody(str(tmp))
        r = _as_nobody(python, "-m", "hvguard", "scan", "local", "--root", str(root), "--format", "json",
                       "--no-history", cwd=str(tmp))  # fmt: skip
        assert r.returncode in (0, 1), r.stderr
        table = _as_nobody(python, "-m", "hvguard", "scan", "local", "--root", str(root), "--no-history",
                           cwd=str(tmp))  # fmt: skip
        assert table.returncode in (0, 1), table.stderr
        yield json.loads(r.stdout), table.stdout
    finally:
        shutil.rmtree(tmp)


def _by_check(report: dict[str, Any], check: str) -> list[dict[str, Any]]:
    return [r for r in report["results"] if r["check"] == check]


def test_unreadable_sudoers_is_an_error_never_a_pass_beside_it(
    unprivileged_scan: tuple[dict[str, Any], str],
) -> None:
    report, _ = unprivileged_scan
    least = _by_check(report, "host.sudo-least-privilege")
    statuses = [f["status"] for f in least]
    assert "error" in statuses and "pass" not in statuses, [(f["status"], f["message"]) for f in least]
    assert any("/etc/sudoers" in f["message"] for f in least if f["status"] == "error")


def test_unreadable_sudoers_makes_the_sudo_mfa_finding_an_error_not_not_applicable(
    unprivileged_scan: tuple[dict[str, Any], str],
) -> None:
    report, _ = unprivileged_scan
    mfa = _by_check(report, "host.sudo-mfa")
    assert [f["status"] for f in mfa] == ["error"], [(f["status"], f["message"]) for f in mfa]
    assert "/etc/sudoers" in mfa[0]["message"]


def test_unlistable_polkit_rules_give_no_static_verdict(
    unprivileged_scan: tuple[dict[str, Any], str],
) -> None:
    report, _ = unprivileged_scan
    for check in ("kvm.libvirt-role-model", "kvm.libvirt-access-driver", "kvm.libvirt-deny-rules"):
        found = [(f["status"], f["message"]) for f in _by_check(report, check)]
        assert [s for s, _ in found] == ["error"], (check, found)
        assert "/etc/polkit-1/rules.d" in found[0][1], found


def test_the_report_says_the_scan_ran_without_root(unprivileged_scan: tuple[dict[str, Any], str]) -> None:
    report, table = unprivileged_scan
    collection = report["targets"][0]["collection"]
    assert collection["privileged"] is False
    assert {"/etc/sudoers", "/etc/polkit-1/rules.d"} <= set(collection["unreadable"]), collection
    assert "Scanned without root" in table and "/etc/sudoers" in table, table[:2000]


def test_a_scan_as_root_says_it_was_privileged() -> None:
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "hvguard", "scan", "local", "--root", str(ACCESS_GOOD), "--format", "json",
         "--no-history"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120, check=False,
    )  # fmt: skip
    assert r.returncode in (0, 1), r.stderr
    collection = json.loads(r.stdout)["targets"][0]["collection"]
    assert collection == {"privileged": True, "unreadable": [], "tls_verified": None}
