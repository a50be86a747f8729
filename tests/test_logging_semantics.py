"""Logging and audit-log verdicts read the way the daemons read their settings (issue 10, items 4-5):
auditd's plugin loader, rsyslog's omfile create modes and the files it writes, and the split between
11.4.4 (modify, delete, disable) and 11.4.10 (read access, change detection). Each scenario is the
ops-good fixture root with one thing changed, scanned end to end."""

from __future__ import annotations

from pathlib import Path

from hvguard.findings import Status
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
