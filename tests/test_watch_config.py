"""``hvguard watch`` configuration: the YAML file, command-line overrides, secrets, hostile input (one
line and exit 2), and the shipped systemd unit. No daemon needed."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hvguard.services.watch.config import (
    CliOverrides,
    ConfigError,
    EmailChannel,
    SyslogChannel,
    WebhookChannel,
    load_config,
    parse_syslog_target,
)
from test_watch_support import HVGUARD, REPO

UNIT = REPO / "packaging" / "systemd" / "hvguard-watch.service"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return write(tmp_path / "hook.key", "s3cret-hmac-key\n")


def test_full_file_with_every_channel(
    tmp_path: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = write(tmp_path / "ca.pem", "not parsed here\n")
    monkeypatch.setenv("HVG_SMTP_PASS", "smtp-pass")
    cfg = write(
        tmp_path / "watch.yaml",
        f"""
uris: [qemu:///system, "qemu+tls://hv2.example.org/system"]
state: {tmp_path}/s.sqlite
reconnect_max_s: 10
poll_interval_s: 2
notify:
  webhook:
    - url: https://hooks.example.org/hvguard
      secret_file: {key_file}
      ca_file: {ca}
  syslog:
    - target: tls://logs.example.org
      ca_file: {ca}
      facility: local3
    - target: local
  email:
    - host: smtp.example.org
      from: hvguard@example.org
      to: [a@example.org, b@example.org]
      username: hvguard
      password_env: HVG_SMTP_PASS
""",
    )
    conf = load_config(CliOverrides(config_path=cfg))
    assert conf.uris == ("qemu:///system", "qemu+tls://hv2.example.org/system")
    assert conf.state_path == tmp_path / "s.sqlite"
    assert (conf.reconnect_max_s, conf.poll_interval_s, conf.resync_interval_s) == (10, 2, 600)
    hook, tls, local, mail = conf.channels
    assert isinstance(hook, WebhookChannel) and hook.secret.reveal() == b"s3cret-hmac-key"
    assert isinstance(tls, SyslogChannel) and (tls.transport, tls.address, tls.port, tls.facility) == (
        "tls",
        "logs.example.org",
        6514,
        19,
    )
    assert isinstance(local, SyslogChannel) and local.address == "/dev/log"
    assert isinstance(mail, EmailChannel) and mail.password is not None
    assert mail.password.reveal() == b"smtp-pass" and mail.to == ("a@example.org", "b@example.org")
    # Secrets never show in a repr (logs, tracebacks).
    for text in (repr(hook), repr(mail), str(conf)):
        assert "s3cret" not in text and "smtp-pass" not in text


def test_command_line_overrides_and_defaults(tmp_path: Path, key_file: Path) -> None:
    conf = load_config(
        CliOverrides(
            webhook_url="https://127.0.0.1:8443/h",
            webhook_secret_file=key_file,
            syslog_target="udp://127.0.0.1:5514",
            state_path=tmp_path / "x.sqlite",
        )
    )
    assert conf.uris == ("qemu:///system",)
    hook, syslog = conf.channels
    # No path in the id (it is logged): webhook services put their tokens there.
    assert re.fullmatch(r"webhook:https://127\.0\.0\.1:8443/…#[0-9a-f]{8}", hook.key)
    assert syslog.key == "syslog:udp://127.0.0.1:5514"
    assert conf.poll_interval_s is None  # automatic


def test_secret_file_readable_by_others_is_warned(tmp_path: Path) -> None:
    loose = write(tmp_path / "loose.key", "k", mode=0o644)
    conf = load_config(CliOverrides(webhook_url="https://h.example/", webhook_secret_file=loose))
    assert any("readable by group or others" in w for w in conf.warnings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("notify: [unclosed", "line 2: invalid YAML"),
        ("- a list\n", "top level must be a mapping"),
        ("notify:\n  webhook:\n    - url: https://x/\n      secret_fil: /k\n", "unknown field `secret_fil`"),
        ("notify:\n  webhook:\n    - url: http://x/\n      secret_env: HOME\n", "plain HTTP is refused"),
        ("notify:\n  webhook:\n    - url: https://x/\n", "needs an HMAC secret"),
        (
            "notify:\n  webhook:\n    - url: https://x/\n      secret_file: /nonexistent/k\n",
            "cannot read secret",
        ),
        ("notify:\n  syslog:\n    - target: ftp://x\n", "syslog target must be"),
        ("notify:\n  syslog:\n    - target: local\n      facility: nope\n", "unknown syslog facility"),
        (
            "notify:\n  syslog:\n    - target: udp://x\n      ca_file: /etc/hostname\n",
            "only apply to a tls://",
        ),
        ("notify:\n  email:\n    - {host: h, from: a@b, to: []}\n", "at least one address"),
        ("notify:\n  email:\n    - {host: h, from: 'a@b\\r\\nBcc: x@y', to: [c@d]}\n", "not a plain e-mail"),
        ("notify:\n  email:\n    - {host: h, from: a@b, to: [c@d], username: u}\n", "together"),
        ("reconnect_max_s: 0\nnotify:\n  syslog: [{target: local}]\n", "reconnect_max_s must be"),
        ("poll_interval_s: 0.01\nnotify:\n  syslog: [{target: local}]\n", "poll_interval_s must be"),
        ("notify:\n  syslog: [{target: local}, {target: local}]\n", "channel configured twice"),
        ("uris: [qemu:///system]\n", "no notification channel configured"),
        ("uris: [not-a-uri]\nnotify:\n  syslog: [{target: local}]\n", "is not a libvirt URI"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    cfg = write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_config(CliOverrides(config_path=cfg))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_syslog_targets() -> None:
    assert parse_syslog_target("local:/run/custom.sock", "t") == ("local", "/run/custom.sock", 0)
    assert parse_syslog_target("tcp://[::1]:1514", "t") == ("tcp", "::1", 1514)
    assert parse_syslog_target("udp://127.0.0.1", "t") == ("udp", "127.0.0.1", 514)
    with pytest.raises(ConfigError):
        parse_syslog_target("local:relative.sock", "t")
    with pytest.raises(ConfigError):
        parse_syslog_target("tcp://h:99999", "t")


def run_watch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HVGUARD, "watch", *args], capture_output=True, text=True, timeout=60, check=False)


def test_cli_malformed_config_exits_2_with_one_line(tmp_path: Path) -> None:
    cfg = write(tmp_path / "bad.yaml", "notify:\n  webhook: [ {url: https://x/, \n")
    proc = run_watch("--config", str(cfg))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hvguard: error: config ") and "invalid YAML" in lines[0]
    assert "Traceback" not in proc.stderr


def test_cli_missing_config_and_no_channel_exit_2(tmp_path: Path) -> None:
    proc = run_watch("--config", str(tmp_path / "absent.yaml"))
    assert proc.returncode == 2 and "absent.yaml: cannot read: no such file" in proc.stderr
    proc = run_watch("--state", str(tmp_path / "s.sqlite"))
    assert proc.returncode == 2 and "no notification channel configured" in proc.stderr


def test_cli_corrupt_state_file_exits_2(tmp_path: Path, key_file: Path) -> None:
    state = tmp_path / "state.sqlite"
    state.write_bytes(b"this is not a database, it is hostile garbage" * 100)
    proc = run_watch(
        "test:///default",
        "--webhook",
        "https://127.0.0.1:9/h",
        "--webhook-secret-file",
        str(key_file),
        "--state",
        str(state),
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "not usable" in lines[0] and "Traceback" not in proc.stderr
    assert state.read_bytes().startswith(b"this is not a database")  # never overwritten


def test_cli_check_config(tmp_path: Path, key_file: Path) -> None:
    proc = run_watch(
        "--webhook", "https://127.0.0.1:9/h", "--webhook-secret-file", str(key_file),
        "--state", str(tmp_path / "s"), "--check-config",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert re.search(
        r"configuration OK: qemu:///system → webhook:https://127\.0\.0\.1:9/…#\w{8}", proc.stdout
    )
    assert "s3cret" not in proc.stdout + proc.stderr


def test_systemd_unit_verifies_and_is_hardened() -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze missing (the Debian systemd package provides it)")
        pytest.skip("systemd-analyze not installed")
    # systemd-analyze verify works without systemd as PID 1; it exits 0 even for unknown keys (it only
    # warns), so any output at all is a failure.
    proc = subprocess.run(
        [analyze, "verify", "--man=no", str(UNIT)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0 and proc.stdout + proc.stderr == "", proc.stdout + proc.stderr

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(UNIT)
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["ExecStart"] == "/usr/bin/env hvguard watch --config /etc/hvguard/watch.yaml"
    assert service["Restart"] == "on-failure"
    assert service["StateDirectory"] == "hvguard" and service["ReadWritePaths"] == "/var/lib/hvguard"
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "RestrictSUIDSGID", "LockPersonality"):
        assert service[key] == "yes", key
    assert service["ProtectSystem"] == "strict"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
