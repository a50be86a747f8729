"""Helpers for the ``hvguard watch`` tests and bench (no tests here): TLS material made with trustme, a
local HTTPS webhook receiver, and a watcher subprocess whose log can be waited on.

Every server listens on 127.0.0.1 on a free port and is stopped by the test that started it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

REPO = Path(__file__).resolve().parents[1]
HVGUARD = str(REPO / ".venv" / "bin" / "hvguard")


@dataclass
class Pki:
    """A CA and a server certificate for 127.0.0.1/localhost, written to files."""

    ca: trustme.CA
    ca_file: Path
    server_cert_file: Path
    server_key_file: Path

    def server_context(self) -> ssl.SSLContext:
        """A server-side TLS context presenting the server certificate."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.server_cert_file), str(self.server_key_file))
        return ctx


def make_pki(folder: Path, name: str = "pki") -> Pki:
    """A fresh CA and a 127.0.0.1 server certificate under ``folder/name``."""
    out = folder / name
    out.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    ca_file = out / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert_file = out / "server.pem"
    key_file = out / "server.key"
    server.cert_chain_pems[0].write_to_path(str(cert_file))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_file), append=True)
    server.private_key_pem.write_to_path(str(key_file))
    return Pki(ca=ca, ca_file=ca_file, server_cert_file=cert_file, server_key_file=key_file)


@dataclass
class Post:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    arrived: float  # time.monotonic() when the body was read

    def json(self) -> dict[str, Any]:
        data = json.loads(self.body)
        assert isinstance(data, dict)
        return data


@dataclass
class HttpsReceiver:
    """A webhook receiver on 127.0.0.1 (HTTPS), recording every POST; answers ``status``."""

    ctx: ssl.SSLContext
    port: int = 0
    status: int = 204
    posts: list[Post] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def start(self) -> HttpsReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                post = Post(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()
                )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver._cond:
                    receiver.posts.append(post)
                    receiver._cond.notify_all()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.socket = self.ctx.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, pred: Callable[[Post], bool], timeout: float, *, after: int = 0) -> Post:
        """The first post (index >= ``after``) matching ``pred``; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for post in self.posts[after:]:
                    if pred(post):
                        return post
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [p.json().get("event") + ":" + p.json().get("vm", "?") for p in self.posts]
                    raise AssertionError(f"no matching webhook POST within {timeout} s; got {seen}")
                self._cond.wait(left)


def verify_signature(secret: bytes, post: Post, *, max_age_s: float = 300) -> bool:
    """The receiver's side of the webhook contract: HMAC over ``<timestamp>.<body>``, fresh timestamp."""
    stamp = post.headers["x-hvguard-timestamp"]
    expected = "sha256=" + hmac.new(secret, stamp.encode() + b"." + post.body, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(stamp)) <= max_age_s
    return hmac.compare_digest(expected, post.headers["x-hvguard-signature"]) and fresh


class WatchProcess:
    """``hvguard watch ARGS`` as a subprocess; stderr goes to a file that can be waited on."""

    def __init__(self, args: Sequence[str], log_file: Path, env: dict[str, str] | None = None) -> None:
        self.log_file = log_file
        self._log = log_file.open("ab")
        self.proc = subprocess.Popen(
            [HVGUARD, "watch", *args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            env={**os.environ, **(env or {})},
        )

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float, *, count: int = 1) -> re.Match[str]:
        """Wait until ``pattern`` (regex) matched ``count`` times in the log; return the last match."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            matches = list(rx.finditer(self.log()))
            if len(matches) >= count:
                return matches[count - 1]
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"watcher exited {self.proc.returncode} before {pattern!r}:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not logged within {timeout} s:\n{self.log()}")
            time.sleep(0.05)

    def terminate(self, timeout: float = 5.0) -> tuple[int, float]:
        """SIGTERM by PID; return (exit code, seconds it took)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"watcher did not exit within {timeout} s of SIGTERM:\n{self.log()}"
            ) from None
        return rc, time.monotonic() - t0

    def kill(self) -> None:
        """Stop by PID if still running (test clean-up)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
