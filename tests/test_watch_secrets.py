"""A webhook URL's password (``https://user:password@host/…``) and query tokens never reach the terminal
or the log: not in ``watch --check-config``, not in a refusal, not in a delivery log line — and the
password still works, as HTTP Basic authentication."""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hvguard.services.watch.config import (
    CliOverrides,
    ConfigError,
    Secret,
    WebhookChannel,
    load_config,
    redact_url,
)
from hvguard.services.watch.delivery import Deliverer
from hvguard.services.watch.notify_webhook import WebhookNotifier
from hvguard.services.watch.payload import encode
from hvguard.services.watch.state import Store
from test_watch_support import HttpsReceiver, make_pki

SRC = Path(__file__).resolve().parent.parent / "src"
PASSWORD = "pw-S3cret"
TOKEN = "tok-S3cret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _key_file(tmp_path: Path) -> Path:
    key = tmp_path / "hook.key"
    key.write_text("hmac-key\n")
    key.chmod(0o600)
    return key


def hv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hvguard", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
        env=dict(os.environ, PYTHONPATH=str(SRC)),
    )


def test_redact_url_hides_password_and_query_values() -> None:
    shown = redact_url(f"https://alice:{PASSWORD}@hooks.example.org:8443/h/x?token={TOKEN}&a=1")
    assert shown == "https://alice:***@hooks.example.org:8443/h/x?token=***&a=***"
    assert redact_url("https://hooks.example.org/h") == "https://hooks.example.org/h"


def test_check_config_does_not_print_the_password(tmp_path: Path) -> None:
    url = f"https://alice:{PASSWORD}@127.0.0.1:9/h?token={TOKEN}"
    r = hv("watch", "--webhook", url, "--webhook-secret-file", str(_key_file(tmp_path)),
           "--state", str(tmp_path / "s"), "--check-config")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stdout and "127.0.0.1:9" in r.stdout
    assert PASSWORD not in r.stdout + r.stderr and TOKEN not in r.stdout + r.stderr, r.stdout


def test_a_refused_url_is_named_without_its_password(tmp_path: Path) -> None:
    url = f"http://alice:{PASSWORD}@127.0.0.1:9/h?token={TOKEN}"
    with pytest.raises(ConfigError) as refused:
        load_config(CliOverrides(webhook_url=url, webhook_secret_file=_key_file(tmp_path)))
    assert "plain HTTP is refused" in str(refused.value)
    assert PASSWORD not in str(refused.value) and TOKEN not in str(refused.value), str(refused.value)
    r = hv("watch", "--webhook", url, "--webhook-secret-file", str(_key_file(tmp_path)), "--check-config")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert PASSWORD not in r.stderr and TOKEN not in r.stderr, r.stderr


def test_delivery_log_lines_do_not_show_the_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    channel = WebhookChannel(
        url=f"https://alice:{PASSWORD}@127.0.0.1:{_free_port()}/h?token={TOKEN}",
        secret=Secret(b"k", "test"),
        ca_file=None,
        timeout_s=2,
    )
    notifier = WebhookNotifier(channel)
    store = Store(tmp_path / "s.sqlite")
    store.commit("u", "x", None, [(notifier.key, "e-1", json.dumps({"id": "e-1"}))])
    stop = threading.Event()
    caplog.set_level(logging.INFO)
    d = Deliverer(store, notifier, retry_max_s=0.2, stop=stop)
    d.start()
    deadline = time.monotonic() + 10
    while not any(r.levelname == "ERROR" for r in caplog.records) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    d.wake()
    d.join(5)
    store.close()
    lines = [r.getMessage() for r in caplog.records]
    assert any("NOT DELIVERED" in line for line in lines), lines
    assert not [line for line in lines if PASSWORD in line or TOKEN in line]


def test_the_password_is_sent_as_basic_authentication(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    receiver = HttpsReceiver(pki.server_context()).start()
    try:
        url = receiver.url.replace("https://", f"https://alice:{PASSWORD.replace('-', '%2D')}@")
        notifier = WebhookNotifier(
            WebhookChannel(url=url, secret=Secret(b"k", "test"), ca_file=pki.ca_file, timeout_s=5)
        )
        body = encode({"id": "e-1"})
        notifier.send(json.loads(body), body)
        post = receiver.wait_for(lambda p: True, 5)
        assert post.headers["authorization"] == "Basic " + base64.b64encode(
            f"alice:{PASSWORD}".encode()
        ).decode("ascii")
    finally:
        receiver.stop()
