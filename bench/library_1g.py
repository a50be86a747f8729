"""Image library throughput: check-in and check-out of a 1 GiB image over mutual TLS on loopback.

Compares, in the same run and on the same file: ``sha256sum``, ``dd conv=fsync`` (durable disk write),
``library push`` (hash + encrypt + plaintext spool + gate + store) and ``library pull`` (decrypt +
authenticate + hash + verify + durable write). Goal (issue 13): push and pull >= 0.8x the slower of
sha256sum and dd; peak RSS < 200 MiB for the server and the clients (no whole-image buffering).

    PYTHONPATH=src .venv/bin/python bench/library_1g.py [--dir /var/tmp] [--size-mib 1024]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from library_env import guest_root, make_store, start_server


def _timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return time.perf_counter() - t0, proc


def _hvguard(*args: object) -> list[str]:
    return [sys.executable, "-m", "hvguard", *map(str, args)]


def _vmhwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return -1


def main() -> None:
    """Build the image, run the comparisons, print the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--size-mib", type=int, default=1024)
    args = ap.parse_args()
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1] / "src"))
    tmp = Path(tempfile.mkdtemp(prefix="hvg-bench-lib-", dir=args.dir))
    try:
        size = args.size_mib * 1024 * 1024
        root = guest_root(tmp)
        with open(root / "payload.bin", "wb") as f:  # incompressible content fills most of the disk
            for _ in range(args.size_mib - 64):
                f.write(os.urandom(1024 * 1024))
        image = tmp / "disk.raw"
        subprocess.run(["truncate", "-s", str(size), str(image)], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(image)], check=True)
        shutil.rmtree(root)
        subprocess.run(["sync"], check=True)
        gb = size / 1e9

        t_sha, _ = _timed(["sha256sum", str(image)])
        t_dd, _ = _timed(["dd", f"if={image}", f"of={tmp / 'dd.copy'}", "bs=4M", "conv=fsync", "status=none"])
        (tmp / "dd.copy").unlink()
        slower = max(t_sha, t_dd)

        (tmp / "lib").mkdir()
        lib = make_store(tmp / "lib")
        gen = start_server(lib, tmp / "lib")
        next(gen)
        assert lib.proc is not None
        t_push, pushed = _timed(
            _hvguard(
                "library",
                "push",
                lib.url,
                image,
                "--name",
                "bench/disk",
                "--version",
                "1",
                *lib.client("pete"),
            )
        )
        if pushed.returncode != 0:
            raise SystemExit(f"push failed: {pushed.stderr}")
        image_id = pushed.stdout.strip()
        subprocess.run(
            _hvguard("library", "approve", lib.url, image_id, *lib.client("anna")),
            check=True,
            capture_output=True,
        )
        t_pull, pulled = _timed(
            _hvguard(
                "library", "pull", lib.url, image_id, "--output", tmp / "pulled.raw", *lib.client("rita")
            )
        )
        if pulled.returncode != 0:
            raise SystemExit(f"pull failed: {pulled.stderr}")
        server_rss = _vmhwm(lib.proc.pid)
        next(gen, None)
        client_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024

        print(f"image: {args.size_mib} MiB raw ext4 (gate with guest inspection), TLS on loopback")
        print(f"sha256sum:            {t_sha:6.2f} s  {gb / t_sha:5.2f} GB/s")
        print(f"dd conv=fsync:        {t_dd:6.2f} s  {gb / t_dd:5.2f} GB/s")
        print(
            f"library push:         {t_push:6.2f} s  {gb / t_push:5.2f} GB/s  ratio {slower / t_push:4.2f} "
            "(goal >= 0.8)"
        )
        print(
            f"library pull+verify:  {t_pull:6.2f} s  {gb / t_pull:5.2f} GB/s  ratio {slower / t_pull:4.2f} "
            "(goal >= 0.8)"
        )
        print(f"peak RSS: server {server_rss} MiB, largest client/child {client_rss} MiB (goal < 200)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
