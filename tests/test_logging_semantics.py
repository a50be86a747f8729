"""Logging and audit-log verdicts read the way the daemons read their settings (issue 10, items 4-5):
auditd's plugin loader, rsyslog's omfile create modes and the files it writes, and the split between
11.4.4 (modify, delete, disable) and 11.4.10 (read access, change detection). Each scenario is the
ops-good fixture root with one thing changed, scanned end to end."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from pathlib import Path

import pytest

from hvguard.collect.linux.ops_files import OpsReader
from hvguard.collect.linux.ops_logging import collect_logging
from hvguard.collect.linux.source import RootSource
from hvguard.findings import Finding, Status
from test_ops_roots import by_check, materialise, scan
from test_ops_rsyslog_real import Daemon, _tool


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


# --------------------------------------------------------------------------------------------------------
# rsyslog file create modes: what hvguard predicts is what rsyslogd really creates


CREATE_CASES = {
    "plain": (
        '*.* action(type="omfile" file="{out}/rainer-default")\n'
        "*.* {out}/legacy-default\n"
        "$FileCreateMode 0640\n"
        '*.* action(type="omfile" file="{out}/rainer-after-legacy-0640")\n'
        "*.* -{out}/legacy-0640;RSYSLOG_FileFormat\n"
        '*.* action(type="omfile" file="{out}/rainer-own-0604" fileCreateMode="0604")\n'
        "$FileCreateMode 0666\n"
    ),
    "module": (
        'module(load="builtin:omfile" fileCreateMode="0600")\n'
        "*.* {out}/legacy-under-module\n"
        '*.* action(type="omfile" file="{out}/rainer-under-module")\n'
    ),
    "umask": (
        "$Umask 0077\n"
        '*.* action(type="omfile" file="{out}/rainer-0644-umask" fileCreateMode="0644")\n'
        "*.* {out}/legacy-umask\n"
    ),
}


@pytest.mark.parametrize("case", sorted(CREATE_CASES))
def test_rsyslog_create_modes_are_what_rsyslogd_creates(tmp_path: Path, case: str) -> None:
    """A RainerScript omfile action takes its own fileCreateMode, else the builtin:omfile module's,
    else 0644 (never the legacy $FileCreateMode); a legacy file action takes the $FileCreateMode in
    force where it stands (never the module's); $Umask masks both. Checked against rsyslogd 8.2302."""
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "etc").mkdir()
    (tmp_path / "work").mkdir()
    conf = tmp_path / "etc" / "rsyslog.conf"
    conf.write_text(
        f'global(workDirectory="{tmp_path}/work")\n'
        'module(load="imuxsock" SysSock.Use="off")\n'
        f'input(type="imuxsock" Socket="{tmp_path}/log.sock")\n' + CREATE_CASES[case].format(out=out)
    )
    check = subprocess.run([_tool("rsyslogd"), "-N1", "-f", str(conf)], capture_output=True, text=True,
                           timeout=60)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    facts = collect_logging(OpsReader(RootSource(tmp_path), []))
    assert not facts.issues, facts.issues
    predicted = {Path(t.file).name: t.effective_mode() for t in facts.files_written}
    assert set(predicted) == set(re.findall(r"\{out\}/([\w-]+)", CREATE_CASES[case]))
    daemon = Daemon(conf, tmp_path)
    try:
        sock = tmp_path / "log.sock"
        deadline = time.monotonic() + 20
        while not sock.exists():
            assert daemon.alive(), daemon.err.read_text()
            assert time.monotonic() < deadline, "rsyslogd did not create its socket"
            time.sleep(0.05)
        subprocess.run([_tool("logger"), "-u", str(sock), "-t", "hvguard", "create-mode probe"], check=True,
                       timeout=10)  # fmt: skip
        deadline = time.monotonic() + 15
        while len(list(out.iterdir())) < len(predicted) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        daemon.stop()
    real = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert {k: oct(v or 0) for k, v in predicted.items()} == {k: oct(v) for k, v in real.items()}


def test_a_file_rsyslog_creates_readable_by_others_fails_11_4_10(tmp_path: Path) -> None:
    root = materialise("ops-good", tmp_path)
    conf = root / "etc/rsyslog.conf"
    conf.write_text(conf.read_text() + 'local5.* action(type="omfile" file="/var/log/hv.log")\n')
    _, f4410 = _verdicts(root)
    assert f4410.status is Status.FAIL, f4410.message
    assert "creates /var/log/hv.log (/etc/rsyslog.conf:10) with mode 0644" in f4410.message, f4410.message
    conf.write_text('module(load="builtin:omfile" fileCreateMode="0640")\n' + conf.read_text())
    _, f4410 = _verdicts(root)
    assert f4410.status is Status.PASS, f4410.message


def test_logs_in_subdirectories_and_outside_var_log_are_checked(tmp_path: Path) -> None:
    root = materialise("ops-good", tmp_path)
    qemu = root / "var/log/libvirt/qemu"
    qemu.mkdir(parents=True)
    (qemu / "web1.log").write_text("")
    (qemu / "web1.log").chmod(0o666)
    _, f4410 = _verdicts(root)
    assert f4410.status is Status.FAIL, f4410.message
    assert "/var/log/libvirt/qemu/web1.log mode 0666" in f4410.message, f4410.message
    (qemu / "web1.log").chmod(0o600)
    srv = root / "srv/log"
    srv.mkdir(parents=True)
    (srv / "hv.log").write_text("")
    (srv / "hv.log").chmod(0o644)
    conf = root / "etc/rsyslog.conf"
    conf.write_text(conf.read_text() + "local5.* /srv/log/hv.log\n")
    _, f4410 = _verdicts(root)
    assert f4410.status is Status.FAIL, f4410.message
    assert "/srv/log/hv.log mode 0644 gives 'other' access" in f4410.message, f4410.message
    (srv / "hv.log").chmod(0o640)
    _, f4410 = _verdicts(root)
    assert f4410.status is Status.PASS, f4410.message
