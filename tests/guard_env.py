"""Test helpers for the guard: a state directory as ``hvguard guard install`` leaves it, built in tmp.

``state.json`` follows the guard contract (``hvguard.guard-state/1``): mode, on_error, domains glob,
policy files copied under ``policy/`` and pinned by sha256, the host snapshot ``host-facts.json``.
The host snapshot is the test driver's node (tests/data/testdriver/node.xml, 2 sockets x 8 cores,
64 GiB) with the kvm-good host root, taken by :func:`hvguard.guard.snapshot.take`.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import defusedxml.ElementTree as DET

from hvguard.digest import sha256_file
from hvguard.guard.snapshot import take

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
NODE = DATA / "testdriver" / "node.xml"
GOOD_ROOT = DATA / "roots" / "kvm-good"
TEST_NS = "{http://libvirt.org/schemas/domain/test/1.0}"


def node_domain_xml(name: str) -> str:
    """The ``<domain>`` called ``name`` of the test-driver node file, as standalone domain XML (the
    test driver's own ``test:`` elements removed)."""
    root = DET.parse(NODE).getroot()
    for dom in root.iter("domain"):
        if dom.findtext("name") == name:
            for child in list(dom):
                if child.tag.startswith(TEST_NS):
                    dom.remove(child)
            from xml.etree.ElementTree import tostring

            return tostring(dom, encoding="unicode")
    raise KeyError(name)


def snapshot_bundle(tmp: Path) -> Path:
    """A host snapshot of the test-driver node (taken once per call into ``tmp``)."""
    tmp.mkdir(parents=True, exist_ok=True)
    return take(tmp, target=f"test://{NODE}", root=GOOD_ROOT)


def _pin(state_dir: Path, kind: str, src: Path | None) -> dict[str, object] | None:
    if src is None:
        return None
    dest = state_dir / "policy" / f"{kind}.yaml"
    dest.parent.mkdir(mode=0o700, exist_ok=True)
    shutil.copyfile(src, dest)
    return {"source": str(src), "sha256": sha256_file(dest), "copied": f"policy/{kind}.yaml"}


def make_state_dir(
    state_dir: Path,
    snapshot: Path,
    *,
    mode: str = "enforce",
    on_error: str = "deny",
    domains: str = "*",
    profile: Path | None = None,
    exceptions: Path | None = None,
    attestations: Path | None = None,
    compile_it: bool = True,
) -> Path:
    """A state directory as install leaves it; ``snapshot`` is copied in as host-facts.json."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    host = state_dir / "host-facts.json"
    if snapshot != host:
        shutil.copyfile(snapshot, host)
    state = {
        "schema": "hvguard.guard-state/1",
        "mode": mode,
        "on_error": on_error,
        "domains": domains,
        "timeout_seconds": 10,
        "installed_at": "2026-01-01T00:00:00Z",
        "hook_path": str(state_dir / "50-hvguard"),
        "python": sys.executable,
        "policy": {
            "profile": _pin(state_dir, "profile", profile),
            "exceptions": _pin(state_dir, "exceptions", exceptions),
            "attestations": _pin(state_dir, "attestations", attestations),
        },
        "host_facts": {
            "path": "host-facts.json",
            "sha256": sha256_file(host),
            "taken_at": "2026-01-01T00:00:00Z",
        },
    }
    (state_dir / "state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
    if compile_it:
        from hvguard.guard.policy import compile as compile_policy

        compile_policy(state_dir)
    return state_dir


def run_hook(
    state_dir: Path,
    xml: str | bytes,
    domain: str,
    *,
    op: str = "prepare",
    subop: str = "begin",
    syslog: Path | None = None,
    extra: Sequence[str] = ("-",),
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m hvguard.guard.hook`` as libvirt would, the XML on stdin."""
    argv = [sys.executable, "-m", "hvguard.guard.hook", "--state-dir", str(state_dir)]
    if syslog is not None:
        argv += ["--syslog-socket", str(syslog)]
    data = xml.encode() if isinstance(xml, str) else xml
    return subprocess.run(
        [*argv, domain, op, subop, *extra],
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    )


def hook_modules(state: Path, name: str, listing: Path) -> tuple[int, str, list[str]]:
    """Run the hook's entry for domain ``name`` in a fresh interpreter (so nothing this test process has
    imported hides an import): its exit code, stderr and the modules loaded at its exit."""
    program = (
        "import sys\n"
        "from hvguard.guard.hook import main\n"
        f"rc = main(['--state-dir', {str(state)!r}, {name!r}, 'prepare', 'begin', '-'])\n"
        # listed without json: the hook must not import it, so neither may this program
        f"open({str(listing)!r}, 'w').write('\\n'.join(sorted(sys.modules)))\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", program],
        input=node_domain_xml(name).encode(),
        capture_output=True,
        timeout=60,
        check=False,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    )
    return proc.returncode, proc.stderr.decode(), listing.read_text(encoding="utf-8").split()


@contextlib.contextmanager
def syslog_socket(path: Path) -> Iterator[tuple[Path, socket.socket]]:
    """A Unix datagram socket bound at ``path``, standing in for /dev/log."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    try:
        yield path, sock
    finally:
        sock.close()


def process_gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for its reaper counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_until(condition: Callable[[], bool], seconds: float = 20.0) -> bool:
    """Poll ``condition`` every 50 ms until it holds or ``seconds`` pass (a loaded CI machine may take
    seconds); its last answer."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def decisions(state_dir: Path) -> list[dict[str, object]]:
    """The records of ``decisions.jsonl`` (empty when there is none)."""
    path = state_dir / "decisions.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
