"""Logging and audit-log verdicts read the way the daemons read their settings (issue 10, items 4-5):
auditd's plugin loader, rsyslog's omfile create modes and the files it writes, and the split between
11.4.4 (modify, delete, disable) and 11.4.10 (read access, change detection). Each scenario is the
ops-good fixture root with one thing changed, scanned end to end."""

from __future__ import annotations

import os
from pathlib import Path

from hvguard.findings import Finding, Status
from test_ops_roots import by_check, materialise, scan


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def test_an_audisp_remote_plugin_without_path_is_no_off_host_copy(tmp_path: Path) -> None:
    """auditd refuses an active plugin whose configuration has no ``path`` ("plugin is active but no
    path given"), so audisp-remote never runs: it is neither a forward (11.4.11) nor the off-host copy
    11.4.4 needs."""
    root = materialise("ops-good", tmp_path)
    _, found = scan(root)
    assert by_check(found, "host.audit-log-protection")[0].status is Status.PASS
    _edit(root / "etc/audit/plugins.d/au-remote.conf", "path = /sbin/audisp-remote\n", "")
    tgt, found = scan(root)
    assert tgt.host is not None and tgt.host.operations is not None
    logging = tgt.host.operations.logging
    assert logging is not None
    assert not [f for f in logging.forwards if f.daemon == "audisp-remote"], logging.forwards
    (f,) = by_check(found, "host.audit-log-protection")
    assert f.status is Status.FAIL and "not copied off the host" in f.message, f.message
    assert "no path" in f.message, f.message


def _verdicts(root: Path) -> tuple[Finding, Finding]:
    _, found = scan(root)
    (f444,) = by_check(found, "host.audit-log-protection")
    f4410 = by_check(found, "host.log-protection")[0]
    return f444, f4410


def test_others_reading_the_audit_log_is_11_4_10_not_11_4_4(tmp_path: Path) -> None:
    """Read access does not let anyone modify, delete or disable the audit log (11.4.4 passes); it is
    a restricted-read-access matter for 11.4.10, which now looks at the audit logs."""
    root = materialise("ops-good", tmp_path)
    f444, f4410 = _verdicts(root)
    assert f444.status is Status.PASS and f4410.status is Status.PASS, (f444.message, f4410.message)
    (root / "var/log/audit/audit.log").chmod(0o644)
    f444, f4410 = _verdicts(root)
    assert f444.status is Status.PASS, f444.message
    assert f4410.status is Status.FAIL and "/var/log/audit/audit.log mode 0644" in f4410.message, (
        f4410.message
    )
    (root / "var/log/audit/audit.log").chmod(0o640)
    os.chown(root / "var/log/audit/audit.log", 0, 100)  # a group that is neither root nor adm
    f444, f4410 = _verdicts(root)
    assert f444.status is Status.PASS, f444.message
    assert f4410.status is Status.FAIL and "readable by group" in f4410.message, f4410.message


def test_writing_the_audit_log_or_auditd_config_fails_11_4_4(tmp_path: Path) -> None:
    root = materialise("ops-good", tmp_path)
    (root / "var/log/audit/audit.log").chmod(0o602)
    f444, _ = _verdicts(root)
    assert f444.status is Status.FAIL and "0602 lets group/other write" in f444.message, f444.message
    (root / "var/log/audit/audit.log").chmod(0o600)
    (root / "etc/audit/auditd.conf").chmod(0o664)
    f444, _ = _verdicts(root)
    assert f444.status is Status.FAIL and "/etc/audit/auditd.conf mode 0664" in f444.message, f444.message
