"""The parts of ``hvguard watch`` one by one, no daemon: canonical XML, value diffs, the RFC 5424
formatter, the state file and its outbox, delivery retries, the webhook channel against a local HTTPS
receiver, and the connection worker on libvirt's test driver (``test:///default``, in-process)."""

from __future__ import annotations

import json
import re
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import libvirt
import pytest

from hvguard.collect.libvirt.domain_xml import parse_domain_xml
from hvguard.profile import load_profile
from hvguard.services.watch.canonical import CanonicalError, canonical_domain_xml, unified_xml_diff
from hvguard.services.watch.changes import value_changes
from hvguard.services.watch.confdir import config_dir_for
from hvguard.services.watch.config import Secret, WebhookChannel
from hvguard.services.watch.delivery import Deliverer
from hvguard.services.watch.notify_base import NotifyError
from hvguard.services.watch.notify_webhook import WebhookNotifier, signature
from hvguard.services.watch.payload import encode, make_payload, summary
from hvguard.services.watch.reevaluate import Reevaluator
from hvguard.services.watch.rfc5424 import format_message, frame, structured_data, truncate_utf8
from hvguard.services.watch.state import DomainState, StateError, Store
from hvguard.services.watch.watcher import ConnectionWorker, EventLoop, lifecycle_trigger
from test_watch_support import HttpsReceiver, make_pki, verify_signature

KEY = b"k" * 32
DOMAIN = """<domain type='kvm' id='7'>
  <name>web1</name>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <memory unit='KiB'>131072</memory>
  <vcpu placement='static'>2</vcpu>
  <cputune><shares>1024</shares></cputune>
  <devices>
    <interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/></interface>
    <graphics type='vnc' port='-1' autoport='yes' passwd='hunter2'/>
  </devices>
</domain>"""


# --------------------------------------------------------------------------------------------------
# canonical XML and diffs
# --------------------------------------------------------------------------------------------------
def test_canonical_ignores_formatting_and_attribute_order_and_strips_run_id() -> None:
    text, run_id = canonical_domain_xml(DOMAIN, secret_key=KEY)
    reordered = (
        DOMAIN.replace("type='vnc' port='-1' autoport='yes'", "autoport='yes' type='vnc'   port='-1'")
        .replace("\n  ", "\n\t\t")
        .replace(" id='7'", " id='8'")
    )
    text2, run_id2 = canonical_domain_xml(reordered, secret_key=KEY)
    assert text == text2
    assert (run_id, run_id2) == (7, 8)
    assert "id=" not in text.splitlines()[0]
    assert "    <shares>1024</shares>\n" in text  # one element per line, two-space indent
    _, inactive = canonical_domain_xml(DOMAIN.replace(" id='7'", ""), secret_key=KEY)
    assert inactive is None


def test_console_password_never_stored_but_its_change_is_seen() -> None:
    text, _ = canonical_domain_xml(DOMAIN, secret_key=KEY)
    assert "hunter2" not in text
    assert re.search(r'passwd="hmac-sha256:[0-9a-f]{16}"', text)
    changed, _ = canonical_domain_xml(DOMAIN.replace("hunter2", "hunter3"), secret_key=KEY)
    assert changed != text and "hunter3" not in changed
    other_key, _ = canonical_domain_xml(DOMAIN, secret_key=b"x" * 32)
    assert other_key != text  # keyed: no precomputed dictionary works across hosts
    assert parse_domain_xml(text).devices is not None


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<domain><name>x</name>", "invalid XML"),
        ('<!DOCTYPE d [<!ENTITY e "boom">]><domain><name>&e;</name></domain>', "refused XML"),
        ("<network><name>x</name></network>", "root element is <network>"),
    ],
)
def test_hostile_or_wrong_xml_is_refused(xml: str, message: str) -> None:
    with pytest.raises(CanonicalError, match=message):
        canonical_domain_xml(xml, secret_key=KEY)


def test_value_changes_and_xml_diff_name_exactly_what_changed() -> None:
    old_text, _ = canonical_domain_xml(DOMAIN, secret_key=KEY)
    nic = "<interface type='user'><mac address='52:54:00:00:00:02'/><model type='e1000'/></interface>"
    new_xml = DOMAIN.replace("<shares>1024</shares>", "<shares>2048</shares>").replace(
        "</devices>", nic + "</devices>"
    )
    new_text, _ = canonical_domain_xml(new_xml, secret_key=KEY)
    changes = value_changes(parse_domain_xml(old_text), parse_domain_xml(new_text))
    assert {"path": "cputune.shares", "old": 1024, "new": 2048, "kind": "changed"} in changes
    added = [c for c in changes if c["path"] == "interfaces[52:54:00:00:00:02]"]
    assert len(added) == 1 and added[0]["kind"] == "added" and added[0]["new"]["model"] == "e1000"
    assert len(changes) == 2, changes  # the first NIC is matched by MAC, not reported as changed
    diff = unified_xml_diff(old_text, new_text, label="web1.xml")
    assert diff.startswith("--- a/web1.xml\n+++ b/web1.xml\n")
    assert "-    <shares>1024</shares>\n+    <shares>2048</shares>\n" in diff
    removed = unified_xml_diff(old_text, None, label="web1.xml")
    assert "+++ /dev/null" in removed and removed.count("\n-") == len(old_text.splitlines())


def test_payload_summary_and_encoding() -> None:
    p = make_payload(
        event="config-changed", scope="config", trigger="config-file", missed=True, uri="qemu:///system",
        host="hv1", vm="web1", uuid="u-1", time="2024-01-01T00:00:00.000Z",
        changes=[{"path": "vcpu.maximum", "old": 2, "new": 8, "kind": "changed"}], xml_diff="d",
        findings=[
            {"measure": "11.3.3", "status": "fail", "subject": "vm:web1", "message": "m", "remediation": "r"}
        ],
    )  # fmt: skip
    line = summary(p)
    assert line == (
        "vm web1 (u-1) config-changed on qemu:///system (missed while not connected; found by "
        "resynchronisation): vcpu.maximum: 2 → 8 [findings: 11.3.3 fail]"
    )
    assert json.loads(encode(p)) == p
    args = {k: v for k, v in p.items() if k not in ("schema", "id")}
    with pytest.raises(ValueError):
        make_payload(**{**args, "event": "bogus"})


def test_lifecycle_trigger_names() -> None:
    assert lifecycle_trigger(0, 1) == "defined/updated"
    assert lifecycle_trigger(1, 0) == "undefined/removed"
    assert lifecycle_trigger(2, 0) == "started"


def test_config_dir_only_for_local_uris() -> None:
    assert config_dir_for("qemu:///system") == Path("/etc/libvirt/qemu")
    assert config_dir_for("qemu+unix:///system") == Path("/etc/libvirt/qemu")
    assert config_dir_for("qemu+ssh://root@hv1/system") is None
    assert config_dir_for("qemu+tls://hv1/system") is None
    assert config_dir_for("test:///default") is None


# --------------------------------------------------------------------------------------------------
# RFC 5424
# --------------------------------------------------------------------------------------------------
# RFC 5424 §6 ABNF, for the parts hvguard produces.
RFC5424 = re.compile(
    r"^<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (?P<host>[!-~]{1,255}) "
    r"(?P<app>[!-~]{1,48}) (?P<procid>[!-~]{1,128}) (?P<msgid>[!-~]{1,32}) "
    r"(?P<sd>-|(\[[^ =\]\"]{1,32}( [^ =\]\"]{1,32}=\"(\\[\"\\\]]|[^\"\\\]])*\")*\])+)"
    r"(?: \ufeff(?P<msg>.*))?$",
    re.S,
)


def test_rfc5424_message_shape_escaping_and_framing() -> None:
    sd = structured_data("hvguard@32473", {"vm": 'we"b]1\\x', "event": "config-changed"})
    assert sd == '[hvguard@32473 vm="we\\"b\\]1\\\\x" event="config-changed"]'
    when = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    raw = format_message(
        facility=3, severity=5, hostname="hv1.example.org", app_name="hvguard", procid="42",
        msgid="vm-change", sd=sd, msg="vm wëb1 changed", when=when,
    )  # fmt: skip
    text = raw.decode("utf-8")
    m = RFC5424.match(text)
    assert m, text
    assert (m["pri"], m["ts"], m["host"], m["app"], m["procid"], m["msgid"]) == (
        "29", "2024-05-01T12:00:00.123456Z", "hv1.example.org", "hvguard", "42", "vm-change",
    )  # fmt: skip
    assert m["msg"] == "vm wëb1 changed"
    assert frame(raw) == str(len(raw)).encode() + b" " + raw
    nil = format_message(
        facility=0, severity=0, hostname="", app_name="a b", procid=None, msgid=None, sd=None, msg=None
    )
    assert RFC5424.match(nil.decode()) and nil.endswith(b"Z - ab - - -")  # empty fields → NILVALUE "-"


def test_truncate_never_splits_a_character() -> None:
    cut = truncate_utf8("ééééé", 6)
    assert len(cut.encode()) <= 6 and cut.endswith("…")
    cut.encode("utf-8")


# --------------------------------------------------------------------------------------------------
# state file
# --------------------------------------------------------------------------------------------------
def _state(uuid: str = "u1", shares: int = 1) -> DomainState:
    return DomainState(uuid, "vm", True, f"<domain>{shares}</domain>", f"sha{shares}", None, None, None)


def test_store_commit_is_atomic_with_the_outbox(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "watch.sqlite"
    store = Store(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert store.secret_key() == store.secret_key() and len(store.secret_key()) == 32
    store.record_baseline("qemu:///system", [_state()])
    assert store.has_baseline("qemu:///system") and not store.has_baseline("qemu+ssh://x/system")
    ids = store.commit("qemu:///system", "u1", _state(shares=2), [("a", "e1", "{}"), ("b", "e1", "{}")])
    assert len(ids) == 2
    assert store.domain("qemu:///system", "u1") == _state(shares=2)
    assert store.pending() == {"a": 1, "b": 1}

    # A failure inside the transaction leaves neither the new state nor its notifications.
    class Boom(Exception):
        pass

    with pytest.raises(Boom), store._tx() as db:
        db.execute("DELETE FROM domains")
        db.execute("INSERT INTO outbox (channel, event_id, payload, created_at) VALUES ('a','e2','{}','t')")
        raise Boom
    assert store.domain("qemu:///system", "u1") == _state(shares=2) and store.pending() == {"a": 1, "b": 1}

    head = store.outbox_head("a")
    assert head is not None and head.event_id == "e1"
    store.failed(head.id, "down")
    head = store.outbox_head("a")
    assert head is not None and (head.attempts, head.last_error) == (1, "down")
    store.delivered(head.id)
    assert store.pending() == {"b": 1}
    store.commit("qemu:///system", "u1", None, [])
    assert store.domains("qemu:///system") == {}
    store.close()
    reopened = Store(path)  # everything survived the close (WAL checkpointed)
    assert reopened.pending() == {"b": 1}
    reopened.close()


def test_store_trim_drops_oldest_and_says_which(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    for i in range(5):
        store.commit("u", "x", _state(shares=i), [("ch", f"e{i}", "{}")])
    assert store.trim("ch", 3) == ["e1", "e0"]
    head = store.outbox_head("ch")
    assert head is not None and head.event_id == "e2"
    store.close()


def test_store_refuses_foreign_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00garbage" * 200)
    with pytest.raises(StateError, match="not usable"):
        Store(junk)
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB); INSERT INTO meta VALUES ('schema','99');"
    )
    db.close()
    with pytest.raises(StateError, match="schema '99'"):
        Store(other)


# --------------------------------------------------------------------------------------------------
# delivery
# --------------------------------------------------------------------------------------------------
class FlakyChannel:
    """A channel that refuses the first ``failures`` sends (stands in for a network endpoint that is down)."""

    key = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[str] = []
        self.attempts = 0

    def send(self, payload: dict[str, Any], body: str) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise NotifyError("connection refused")
        self.sent.append(payload["n"])


def test_delivery_retries_in_order_and_logs_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(tmp_path / "s.sqlite")
    for n in ("first", "second", "third"):
        store.commit("u", "x", _state(), [("flaky", n, json.dumps({"n": n}))])
    channel = FlakyChannel(failures=2)
    stop = threading.Event()
    d = Deliverer(store, channel, retry_max_s=0.2, stop=stop)
    d.start()
    deadline = time.monotonic() + 10
    while len(channel.sent) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    d.wake()
    d.join(2)
    assert channel.sent == ["first", "second", "third"]  # the failing head blocked the rest: order kept
    assert store.pending() == {}
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2 and all(
        "NOTIFICATION NOT DELIVERED to flaky: connection refused" in e for e in errors
    )
    assert "change first kept in the state file (3 waiting)" in errors[0]
    store.close()


# --------------------------------------------------------------------------------------------------
# webhook channel (real HTTPS on loopback)
# --------------------------------------------------------------------------------------------------
def test_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    # Independent vector: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key
    assert signature(b"key", "1700000000", b'{"a":1}') == (
        "sha256=" + __import__("hmac").new(b"key", b'1700000000.{"a":1}', "sha256").hexdigest()
    )


def _webhook(url: str, ca: Path | None) -> WebhookNotifier:
    return WebhookNotifier(
        WebhookChannel(url=url, secret=Secret(b"hook-key", "test"), ca_file=ca, timeout_s=5)
    )


def test_webhook_posts_signed_body_and_needs_2xx(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    receiver = HttpsReceiver(pki.server_context()).start()
    try:
        body = encode({"id": "e-1", "vm": "web1", "event": "config-changed"})
        _webhook(receiver.url, pki.ca_file).send(json.loads(body), body)
        post = receiver.wait_for(lambda p: True, 5)
        assert post.body == body.encode() and verify_signature(b"hook-key", post)
        assert post.headers["x-hvguard-event-id"] == "e-1"
        receiver.status = 500
        with pytest.raises(NotifyError, match="HTTP 500"):
            _webhook(receiver.url, pki.ca_file).send({"id": "e-2"}, "{}")
        with pytest.raises(NotifyError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            _webhook(receiver.url, None).send({"id": "e-3"}, "{}")  # system CAs do not know the test CA
    finally:
        receiver.stop()


def test_webhook_does_not_follow_redirects(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    hits: list[str] = []

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(self.command)
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    server.socket = pki.server_context().wrap_socket(server.socket, server_side=True)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/hook"
        with pytest.raises(NotifyError, match="HTTP 302"):
            _webhook(url, pki.ca_file).send({"id": "e"}, "{}")
        assert hits == ["POST"]  # not turned into a GET without the body
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------------------------------
# the connection worker on the test driver (in-process: test:///default is shared per process)
# --------------------------------------------------------------------------------------------------
@pytest.fixture(params=[0.0])
def worker_env(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[ConnectionWorker, Store, Any]]:
    libvirt.registerErrorHandler(lambda _c, _e: None, None)
    loop = EventLoop(libvirt)
    loop.start()
    store = Store(tmp_path / "s.sqlite")
    stop = threading.Event()
    conn = libvirt.open("test:///default")
    worker = ConnectionWorker(
        libvirt, "test:///default", store=store, reevaluator=Reevaluator(load_profile(None)), channels=["ch"],
        on_queued=lambda: None, stop=stop, reconnect_max_s=1, resync_interval_s=0,
        secret_key=store.secret_key(), poll_interval_s=request.param,
    )  # fmt: skip
    worker.start()
    assert worker.first_attempt_done.wait(10)
    yield worker, store, conn
    stop.set()
    worker.wake()
    worker.join(3)
    loop.stop()
    conn.close()
    store.close()


def _payloads(store: Store) -> list[dict[str, Any]]:
    out = []
    while (row := store.outbox_head("ch")) is not None:
        out.append(json.loads(row.payload))
        store.delivered(row.id)
    return out


def _wait_payloads(store: Store, n: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(got) < n and time.monotonic() < deadline:
        got += _payloads(store)
        time.sleep(0.02)
    return got


def test_worker_baseline_then_event_then_undefine(worker_env: tuple[ConnectionWorker, Store, Any]) -> None:
    worker, store, conn = worker_env
    assert _payloads(store) == []  # first run: baseline only
    dom = conn.lookupByName("test")
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    new_name = f"hvg-wt-{id(worker)}"
    copy = re.sub(r"<uuid>.*</uuid>", "", xml.replace("<name>test</name>", f"<name>{new_name}</name>"))
    copy = re.sub(r"<mac address='[^']*'/>", "", copy)
    conn.defineXML(copy)
    defined = _wait_payloads(store, 1)
    assert [p["event"] for p in defined] == ["defined"] and defined[0]["vm"] == new_name
    assert defined[0]["missed"] is False and defined[0]["trigger"] == "defined/added"

    current = conn.lookupByName(new_name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    conn.defineXML(current.replace("<vcpu placement='static'>2</vcpu>", "<vcpu placement='static'>3</vcpu>"))
    changed = _wait_payloads(store, 1)
    assert [c for c in changed[0]["changes"]] == [
        {"path": "vcpu.maximum", "old": 2, "new": 3, "kind": "changed"}
    ]
    assert changed[0]["trigger"] == "defined/updated"
    assert any(f["measure"] == "11.3.3" and f["subject"] == f"vm:{new_name}" for f in changed[0]["findings"])

    conn.lookupByName(new_name).undefine()
    gone = _wait_payloads(store, 1)
    assert [(p["event"], p["vm"]) for p in gone] == [("undefined", new_name)]
    assert store.domain("test:///default", gone[0]["uuid"]) is None


@pytest.mark.parametrize("worker_env", [0.3], indirect=True)
def test_worker_polls_changes_libvirt_sends_no_event_for(
    worker_env: tuple[ConnectionWorker, Store, Any],
) -> None:
    # The test driver, like qemu, sends no event for a config-only memory change: only the poll sees it.
    _worker, store, conn = worker_env
    dom = conn.lookupByName("test")
    before = parse_domain_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).current_memory_kib
    assert before is not None
    dom.setMemoryFlags(before - 1024, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    [payload] = _wait_payloads(store, 1)
    assert (payload["event"], payload["trigger"], payload["missed"]) == ("config-changed", "poll", False)
    assert payload["changes"] == [
        {"path": "current_memory_kib", "old": before, "new": before - 1024, "kind": "changed"}
    ]
    time.sleep(0.8)  # later polls of the unchanged VM report nothing more
    assert _payloads(store) == []


def test_undelivered_notifications_of_a_removed_channel_are_kept_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from hvguard.services.watch.config import WatchConfig
    from hvguard.services.watch.service import WatchService

    store = Store(tmp_path / "s.sqlite")
    store.commit("qemu:///system", "x", _state(), [("webhook:https://old.example/…#00000000", "e1", "{}")])
    hook = WebhookChannel(url="https://new.example/h", secret=Secret(b"k", "t"), ca_file=None, timeout_s=5)
    config = WatchConfig(
        uris=("test:///default",), state_path=store.path, profile_path=None, channels=(hook,)
    )
    service = WatchService(config, load_profile(None), store, libvirt)
    service._report_pending()
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert (
        "1 undelivered notification(s) kept for webhook:https://old.example/…#00000000" in record.getMessage()
    )
    assert store.pending() == {"webhook:https://old.example/…#00000000": 1}
    store.close()
