"""11.4.8 against the real apt (issue 10.1): a local ``file://`` repository built with dpkg-deb and
apt-ftparchive — one archive labelled ``Debian-Security`` (Origin Debian, suite ``stable-security``), one
plain ``Debian`` archive — and a temporary apt root (``APT_CONFIG`` naming ``Dir`` and
``Dir::State::status``) whose dpkg status has an older version of a package from each.

The collector reads that root's files (package lists, apt.conf.d) and runs the manifest's apt command
through the same local runner a ``scan local`` uses (``run_local``), in the caller's environment — here
German (``LANGUAGE=de LANG=de_DE.UTF-8``, the locale generated with localedef): the verdict must be the
one an English shell gets, and a pending security update must never read as "none pending".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from hvguard.collect.hostfs import DiskFS
from hvguard.collect.linux.manifest import COMMANDS
from hvguard.collect.linux.operations import collect_operations
from hvguard.collect.linux.source import CommandResult, HostSource, run_local
from hvguard.facts import OperationsFacts, Problem
from hvguard.findings import Finding, Status
from test_ops_roots import run_ops

CI = os.environ.get("CI") == "true"
GERMAN = {"LANGUAGE": "de", "LANG": "de_DE.UTF-8"}


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        if CI:
            pytest.fail(f"{tool} missing: scripts/setup.sh test installs it")
        pytest.skip(f"{tool} not installed (scripts/setup.sh test installs it)")


def _deb(build: Path, pool: Path, name: str, version: str) -> None:
    pkg = build / f"{name}_{version}"
    (pkg / "DEBIAN").mkdir(parents=True)
    depends = "Depends: hvg-not-in-any-archive\n" if name == "hvgsec-broken" else ""
    (pkg / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: hvguard tests <t@example.org>\n"
        f"{depends}Description: hvguard 11.4.8 test package\n"
    )
    subprocess.run(
        ["dpkg-deb", "-b", str(pkg), str(pool / f"{name}_{version}_all.deb")], check=True, capture_output=True
    )


def _archive(path: Path, build: Path, packages: list[tuple[str, str]], **release: str) -> None:
    path.mkdir(parents=True)
    for name, version in packages:
        _deb(build, path, name, version)
    listing = subprocess.run(
        ["apt-ftparchive", "packages", "."], cwd=path, check=True, capture_output=True, text=True
    ).stdout
    (path / "Packages").write_text(listing)
    opts = [f"-oAPT::FTPArchive::Release::{k}={v}" for k, v in release.items()]
    rel = subprocess.run(
        ["apt-ftparchive", *opts, "release", "."], cwd=path, check=True, capture_output=True, text=True
    ).stdout
    (path / "Release").write_text(rel)


INSTALLED = [
    ("hvgsec-lib", "1.0-1"),
    ("hvgsec-tool", "2.0-1"),
    ("hvgsec-broken", "1.0"),
    ("hvgplain", "3.0-1"),
    ("hvgcurrent", "1.0"),
]


@pytest.fixture(scope="module")
def apt_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The apt root (its ``apt.conf`` beside it), lists fetched with ``apt-get update``."""
    for tool in ("dpkg-deb", "apt-ftparchive", "apt-get"):
        need(tool)
    base = tmp_path_factory.mktemp("aptrepo")
    build = base / "build"
    _archive(
        base / "security",
        build,
        # hvgsec-broken's update needs a package no archive has: apt keeps it back
        [("hvgsec-lib", "1.0-1+deb12u1"), ("hvgsec-tool", "2.0-1+deb12u1"), ("hvgsec-broken", "1.1")],
        Origin="Debian",
        Label="Debian-Security",
        Suite="stable-security",
        Codename="bookworm-security",
        Version="12",
    )
    _archive(
        base / "main",
        build,
        [("hvgplain", "3.1-1"), ("hvgcurrent", "1.0")],
        Origin="Debian",
        Label="Debian",
        Suite="stable",
        Codename="bookworm",
        Version="12.8",
    )
    root = base / "root"
    for d in (
        "etc/apt/apt.conf.d",
        "etc/apt/preferences.d",
        "etc/apt/sources.list.d",
        "var/lib/dpkg",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
    ):
        (root / d).mkdir(parents=True)
    (root / "etc/apt/sources.list").write_text(
        f"deb [trusted=yes] file:{base / 'security'} ./\ndeb [trusted=yes] file:{base / 'main'} ./\n"
    )
    # hvgsec-tool is held (apt-mark hold): its security update is pending all the same
    (root / "var/lib/dpkg/status").write_text(
        "".join(
            f"Package: {n}\nStatus: {'hold' if n == 'hvgsec-tool' else 'install'} ok installed\n"
            "Priority: optional\nSection: misc\n"
            f"Maintainer: t <t@example.org>\nArchitecture: all\nVersion: {v}\nDescription: test\n\n"
            for n, v in INSTALLED
        )
    )
    (base / "apt.conf").write_text(
        f'Dir "{root}/";\nDir::State::status "{root}/var/lib/dpkg/status";\nAPT::Sandbox::User "root";\n'
    )
    env = {**os.environ, "APT_CONFIG": str(base / "apt.conf"), "LC_ALL": "C"}
    done = subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return root


@pytest.fixture(scope="module")
def german() -> dict[str, str]:
    """The German locale exists and apt really speaks German in it (else the test could not fail)."""
    have = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False).stdout.lower()
    if "de_de.utf8" not in have:
        if shutil.which("localedef") is None or os.geteuid() != 0:
            pytest.skip("de_DE.UTF-8 missing and cannot be generated here")
        subprocess.run(["localedef", "-i", "de_DE", "-f", "UTF-8", "de_DE.UTF-8"], check=True)
    probe = subprocess.run(
        ["apt-get", "-s", "dist-upgrade"],
        env={k: v for k, v in os.environ.items() if not k.startswith("LC_")} | GERMAN,
        capture_output=True,
        text=True,
        check=False,
    )
    if "Paketlisten" not in probe.stdout:
        msg = "apt prints no German here (its translations are missing: package apt, locales)"
        if CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return GERMAN


class AptRootSource(HostSource):
    """The temporary apt root's files; manifest commands through the local runner (apt pointed at the root
    by ``APT_CONFIG`` in the environment, as an administrator's own apt configuration would)."""

    def __init__(self, root: Path) -> None:
        super().__init__(DiskFS(root), live=True, label="local")

    def run(self, name: str) -> CommandResult | None:
        super().run(name)
        return run_local(COMMANDS[name])


def _collect(root: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> OperationsFacts:
    for key in [k for k in os.environ if k.startswith("LC_") or k in ("LANG", "LANGUAGE")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("APT_CONFIG", str(root.parent / "apt.conf"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    problems: list[Problem] = []
    return collect_operations(AptRootSource(root), problems=problems)


def _state(ops: OperationsFacts) -> Finding:
    return run_ops(ops, "11.4.8")[0]


def test_pending_security_updates_seen_in_a_german_environment(
    apt_root: Path, german: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ops = _collect(apt_root, monkeypatch, german)
    patches = ops.patches
    assert patches is not None and patches.pending is not None, patches
    security = sorted(u.package for u in patches.pending if u.security)
    assert security == ["hvgsec-lib", "hvgsec-tool"], f"pending security updates read as {security}"
    assert [u.package for u in patches.pending if not u.security and not u.kept_back] == ["hvgplain"]
    assert [u.package for u in patches.pending if u.kept_back] == ["hvgsec-broken"]
    lib = next(u for u in patches.pending if u.package == "hvgsec-lib")
    assert (lib.installed, lib.candidate) == ("1.0-1", "1.0-1+deb12u1")
    assert lib.suite is not None and "Debian-Security" in lib.suite and "stable-security" in lib.suite
    state = _state(ops)
    assert state.status is not Status.PASS, f"11.4.8 {state.status}: {state.message}"
    # lists fresh, apt records no release date: evidence needed, naming both updates
    assert state.status is Status.MANUAL and "hvgsec-lib" in state.message and "hvgsec-tool" in state.message
    assert "kept back (hvgsec-broken)" in state.message
    assert state.evidence["source"] == "apt-get -s --ignore-hold dist-upgrade"


def test_same_facts_in_any_locale(
    apt_root: Path, german: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    de = _collect(apt_root, monkeypatch, german).patches
    en = _collect(apt_root, monkeypatch, {"LANG": "C.UTF-8"}).patches
    assert de == en


def test_stale_or_unknown_lists_never_pass(
    apt_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing pending, but lists 30 days old (window 14) fail; no lists at all cannot pass either."""
    root = tmp_path / "root"
    shutil.copytree(apt_root, root, symlinks=True)
    (tmp_path / "apt.conf").write_text(
        f'Dir "{root}/";\nDir::State::status "{root}/var/lib/dpkg/status";\nAPT::Sandbox::User "root";\n'
    )
    # everything installed at its candidate version: nothing is pending
    status = root / "var/lib/dpkg/status"
    text = status.read_text()
    for old, new in (("1.0-1\n", "1.0-1+deb12u1\n"), ("2.0-1\n", "2.0-1+deb12u1\n"), ("3.0-1\n", "3.1-1\n")):
        text = text.replace(f"Version: {old}", f"Version: {new}")
    status.write_text(
        text.split("Package: hvgsec-broken")[0] + "Package: hvgplain" + text.split("Package: hvgplain")[1]
    )
    lists = root / "var/lib/apt/lists"
    releases = sorted(lists.glob("*Release"))
    assert releases, sorted(p.name for p in lists.iterdir())
    old = time.time() - 30 * 86400
    for rel in releases:
        os.utime(rel, (old, old))
    ops = _collect(root, monkeypatch, {"LANG": "C.UTF-8"})
    assert ops.patches is not None and ops.patches.pending == []
    state = _state(ops)
    assert state.status is Status.FAIL and "refreshed 30 days ago" in state.message, state.message
    # no package lists at all: apt sees no candidate, so "nothing pending" means nothing
    for p in lists.iterdir():
        if p.is_file():
            p.unlink()
    ops = _collect(root, monkeypatch, {"LANG": "C.UTF-8"})
    state = _state(ops)
    assert state.status is not Status.PASS, f"11.4.8 {state.status}: {state.message}"
    assert "package lists" in state.message
