"""VMware's vSphere API simulator (govmomi's ``simulator`` package) for the vSphere tests and benchmarks.

The Go main lives in ``tests/vcsim/main.go``. It is built once per source version with Debian's Go and
``golang-github-vmware-govmomi-dev`` (no module proxy) into a cache directory keyed by the hash of the
source, and started on 127.0.0.2 — not 127.0.0.1: pyVmomi silently skips certificate verification for
127.0.0.1 and ``localhost``, which would make every TLS test pass for the wrong reason. Its certificate
comes from a test CA made here (``trustme``). Each simulator is stopped by its PID.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SOURCE_DIR = Path(__file__).parent / "vcsim"
GOPATH = "/usr/share/gocode"
GOVMOMI = Path(GOPATH, "src/github.com/vmware/govmomi/simulator")
LOOPBACK = "127.0.0.2"
USER = "administrator@vsphere.local"
PASSWORD = "hvguard-test-pw"


def _go_env(cache: Path) -> dict[str, str]:
    """The build environment: Debian's packaged sources only, never the module proxy."""
    return {
        **os.environ,
        "GOPATH": GOPATH,
        "GO111MODULE": "off",
        "GOPROXY": "off",
        "GOFLAGS": "",
        "GOCACHE": str(cache / "gocache"),
    }


def build_dir() -> Path:
    """Where built simulators are cached (``HVGUARD_BUILD_DIR`` or ``build/`` in the checkout)."""
    return Path(os.environ.get("HVGUARD_BUILD_DIR") or Path(__file__).parent.parent / "build")


def build_simulator() -> Path:
    """The simulator binary for the current ``main.go``, built now unless already cached."""
    go = shutil.which("go")
    if go is None or not GOVMOMI.is_dir():
        raise RuntimeError(
            "the vSphere simulator needs golang-go and golang-github-vmware-govmomi-dev: "
            "run scripts/setup.sh test"
        )
    digest = hashlib.sha256()
    for path in sorted(SOURCE_DIR.glob("*.go")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(subprocess.run([go, "version"], capture_output=True, text=True, check=True).stdout.encode())
    cache = build_dir() / "vcsim"
    binary = cache / digest.hexdigest()[:16] / "vcsim-hvguard"
    if binary.exists():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(f".vcsim-hvguard.{os.getpid()}")
    subprocess.run([go, "build", "-o", str(partial), "."], cwd=SOURCE_DIR, env=_go_env(cache), check=True)
    partial.rename(binary)  # atomic: a concurrent session sees a whole binary or none
    return binary


@dataclass
class TestCA:
    """A test certificate authority and a server certificate for :data:`LOOPBACK`."""

    dir: Path
    ca_pem: Path
    cert_pem: Path
    key_pem: Path

    @classmethod
    def make(cls, directory: Path) -> TestCA:
        """A fresh CA and a server certificate for 127.0.0.2 in ``directory``."""
        import trustme

        ca = trustme.CA()
        server = ca.issue_cert(LOOPBACK)
        ca_pem = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_pem))
        cert = directory / "server.pem"
        server.cert_chain_pems[0].write_to_path(str(cert))
        key = directory / "server.key"
        server.private_key_pem.write_to_path(str(key))
        return cls(directory, ca_pem, cert, key)


class Simulator:
    """One running simulator: ``url`` (https://127.0.0.2:PORT/sdk), ``host``, ``port``, ``target``
    (the ``vsphere://`` form with the test user), stopped by :meth:`stop`."""

    def __init__(
        self, binary: Path, ca: TestCA, *args: str, user: str = USER, password: str = PASSWORD
    ) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hvguard-vcsim-"))
        self.user = user
        self.password = password
        self.ca = ca
        urlfile = self.dir / "url"
        # The credentials travel in an argument of our own test process only (never of hvguard).
        listen = f"{user.replace('@', '%40')}:{password}@{LOOPBACK}:0"
        self.log = (self.dir / "vcsim.log").open("wb")
        self.proc = subprocess.Popen(
            [
                str(binary),
                "-l",
                listen,
                "-cert",
                str(ca.cert_pem),
                "-key",
                str(ca.key_pem),
                "-urlfile",
                str(urlfile),
                *args,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while not urlfile.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"the simulator exited ({self.proc.returncode}): {self.log_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the simulator did not start within 120 s")
            time.sleep(0.02)
        self.url = urlfile.read_text().strip()
        parts = urlsplit(self.url)
        self.host = parts.hostname or LOOPBACK
        self.port = parts.port or 443

    @property
    def target(self) -> str:
        """``vsphere://administrator%40vsphere.local@127.0.0.2:PORT``."""
        return f"vsphere://{self.user.replace('@', '%40')}@{self.host}:{self.port}"

    def log_text(self) -> str:
        """What the simulator wrote so far."""
        self.log.flush()
        return (self.dir / "vcsim.log").read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        """SIGTERM by PID, SIGKILL after 30 s (large models take a while to exit)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        with suppress(OSError):
            shutil.rmtree(self.dir)


def api(sim: Simulator) -> Any:
    """A pyVmomi ServiceInstance on ``sim`` (verified TLS) for a test to change the simulator's state
    through the API itself (``ReconfigVM_Task``, ``UpdateOptions``, ``SetEntityPermissions`` …)."""
    import ssl

    from pyVim.connect import SmartConnect

    context = ssl.create_default_context(cafile=str(sim.ca.ca_pem))
    return SmartConnect(host=sim.host, port=sim.port, user=sim.user, pwd=sim.password, sslContext=context)


def find(si: Any, type_name: str, name: str) -> Any:
    """The managed entity of ``type_name`` (``VirtualMachine``, ``HostSystem`` …) called ``name``."""
    from pyVmomi import vim

    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [getattr(vim, type_name)], True)
    try:
        for obj in view.view:
            if obj.name == name:
                return obj
    finally:
        view.DestroyView()
    raise LookupError(f"no {type_name} named {name}")


def wait(task: Any) -> Any:
    """Wait for a simulator task; raise its fault if it failed."""
    from pyVim.task import WaitForTask

    WaitForTask(task)
    return task.info.result


def hvguard(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m hvguard ARGS`` from this checkout (a real process: exit codes and stderr as a user
    sees them)."""
    import sys

    full = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent / "src"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "hvguard", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=full,
        timeout=timeout,
        check=False,
    )
