"""auditd: the effective rules (as augenrules merges them), live state, log permissions, forwarding.

augenrules(8): files in /etc/audit/rules.d ending in ``.rules`` are concatenated in natural sort order
(``ls -v``) and "the last processed -e directive … is always emitted as the last line", so the
effective ``-e`` is the last one in that order. Without rules.d files, /etc/audit/audit.rules is what
auditctl -R loads. ``-e 2`` makes the configuration immutable until reboot (auditctl(8)).
audisp-remote (plugins.d/au-remote.conf ``active = yes``; audisp-remote.conf ``remote_server``,
``port``, ``transport = tcp|KRB5``) sends records off the host; ``transport = KRB5`` (or the older
``enable_krb5 = yes``) encrypts them with GSSAPI, plain ``tcp`` does not. auditd's plugin loader
(audispd-pconfig.c ``sanity_check``) refuses an active plugin whose file gives no ``path`` ("plugin is
active but no path given"): such a plugin never runs, so it is recorded as refused, not active.
"""

from __future__ import annotations

import posixpath
import re
import shlex

from hvguard.collect.linux.ops_files import OpsReader, command_output
from hvguard.facts import AuditFacts, AuditRule, ConfigIssue, FileStat, SettingAt

AREA = "host.operations.logging"
RULES_DIR = "etc/audit/rules.d"
RULES_FILE = "etc/audit/audit.rules"
AUDITD_CONF = "etc/audit/auditd.conf"
PLUGIN_DIRS = ("etc/audit/plugins.d", "etc/audisp/plugins.d")
REMOTE_CONFS = ("etc/audit/audisp-remote.conf", "etc/audisp/audisp-remote.conf")
#: auditd's own configuration file: present whenever the audit daemon package is installed.
AUDITD_MARKERS = ("etc/audit/auditd.conf",)


def natural_key(name: str) -> list[tuple[int, int | str]]:
    """Sort key like ``ls -v``: digit runs compare as numbers."""
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", name) if p]


def parse_kv(text: str, path: str) -> tuple[dict[str, SettingAt], list[ConfigIssue]]:
    """``key = value`` lines (auditd.conf, plugin and audisp-remote configs); ``#`` comments."""
    values: dict[str, SettingAt] = {}
    issues: list[ConfigIssue] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            issues.append(
                ConfigIssue(path=path, line=n, message=f"expected 'key = value', found {line[:60]!r}")
            )
            continue
        values[key.strip().lower()] = SettingAt(value=value.strip(), path=path, line=n)
    return values, issues


def parse_rules(text: str, path: str) -> tuple[list[AuditRule], list[tuple[int, int]], list[ConfigIssue]]:
    """Watches, ``-e`` flags (line, value) and malformed lines of one rules file."""
    watches: list[AuditRule] = []
    flags: list[tuple[int, int]] = []
    issues: list[ConfigIssue] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            args = shlex.split(line, comments=True)
        except ValueError as exc:
            issues.append(ConfigIssue(path=path, line=n, message=f"cannot split rule: {exc}"))
            continue
        if not args:
            continue
        if not args[0].startswith("-"):
            issues.append(ConfigIssue(path=path, line=n, message=f"not an auditctl rule: {line[:60]!r}"))
            continue
        opts: dict[str, list[str]] = {}
        i = 0
        while i < len(args):
            a = args[i]
            if a.startswith("-") and i + 1 < len(args) and not args[i + 1].startswith("-"):
                opts.setdefault(a, []).append(args[i + 1])
                i += 2
            else:
                opts.setdefault(a, []).append("")
                i += 1
        if "-e" in opts:
            value = opts["-e"][0]
            if value not in ("0", "1", "2"):
                issues.append(ConfigIssue(path=path, line=n, message=f"-e takes 0, 1 or 2, not {value!r}"))
            else:
                flags.append((n, int(value)))
            continue
        key: str | None = (opts.get("-k") or [""])[0] or None
        fields = dict(f.split("=", 1) for f in opts.get("-F", []) if "=" in f)
        if "-w" in opts:
            target = opts["-w"][0]
            if not target:
                issues.append(ConfigIssue(path=path, line=n, message="-w needs a path"))
                continue
            perms = (opts.get("-p") or ["rwxa"])[0] or "rwxa"
            watches.append(AuditRule(path=path, line=n, text=line[:200], watch=target, perms=perms, key=key))
        elif "-a" in opts and ("dir" in fields or "path" in fields):
            watches.append(
                AuditRule(
                    path=path,
                    line=n,
                    text=line[:200],
                    watch=fields.get("dir") or fields.get("path") or "",
                    perms=fields.get("perm", "rwxa"),
                    key=key or fields.get("key"),
                )
            )
    return watches, flags, issues


def _log_files(r: OpsReader, log_file: str) -> tuple[FileStat, list[FileStat]]:
    directory = posixpath.dirname(log_file) or "/var/log/audit"
    base = posixpath.basename(log_file)
    dir_stat = r.stat(directory, AREA)
    files = [
        r.stat(f"{directory}/{n}", AREA)
        for n in r.listdir(directory.lstrip("/"), AREA)
        if n == base or n.startswith(base + ".")
    ]
    return dir_stat, files[:20]


def _live_enabled(r: OpsReader) -> tuple[int | None, str | None]:
    out, why = command_output(r.run("auditctl-status"))
    if out is None:
        return None, why
    m = re.search(r"^\s*enabled\s+(\d+)", out, re.MULTILINE)
    if not m:
        return None, "auditctl -s printed no 'enabled' line"
    return int(m.group(1)), None


def collect_audit(r: OpsReader) -> AuditFacts:
    """Read auditd's rules, state, log permissions and forwarding plugins."""
    issues: list[ConfigIssue] = []
    rule_files = sorted(
        (p for p in r.glob(f"{RULES_DIR}/*.rules", AREA)), key=lambda p: natural_key(posixpath.basename(p))
    )
    if rule_files:
        source = f"{r.shown(RULES_DIR)}/*.rules (augenrules)"
    elif r.exists(RULES_FILE):
        rule_files = [RULES_FILE]
        source = r.shown(RULES_FILE)
    else:
        source = None
    watches: list[AuditRule] = []
    enable: tuple[int, str] | None = None
    for rel in rule_files:
        text = r.text(rel, AREA)
        if text is None:
            continue
        w, flags, iss = parse_rules(text, r.shown(rel))
        watches += w
        issues += iss
        if flags:
            line, value = flags[-1]
            enable = (value, f"{r.shown(rel)}:{line}")

    conf_text = r.text(AUDITD_CONF, AREA)
    log_file = "/var/log/audit/audit.log"
    if conf_text is not None:
        conf, iss = parse_kv(conf_text, r.shown(AUDITD_CONF))
        issues += iss
        if "log_file" in conf:
            log_file = conf["log_file"].value
    log_dir, log_files = _log_files(r, log_file)

    remote_active = False
    remote_at: str | None = None
    remote_refused: str | None = None
    syslog_active = False
    for d in PLUGIN_DIRS:
        for name, flag in (("au-remote.conf", "remote"), ("syslog.conf", "syslog")):
            text = r.text(f"{d}/{name}", AREA)
            if text is None:
                continue
            values, iss = parse_kv(text, r.shown(f"{d}/{name}"))
            issues += iss
            active = values.get("active")
            if active is None or active.value.lower() != "yes":
                continue
            path = values.get("path")
            if path is None or not path.value:
                if flag == "remote":
                    remote_refused = (
                        f"{active.where()}: active = yes but no path: auditd refuses the plugin, "
                        "audisp-remote never runs"
                    )
                continue
            if flag == "remote":
                remote_active, remote_at, remote_refused = True, active.where(), None
            else:
                syslog_active = True
    server = port = transport = None
    for rel in REMOTE_CONFS:
        text = r.text(rel, AREA)
        if text is None:
            continue
        values, iss = parse_kv(text, r.shown(rel))
        issues += iss
        server = values.get("remote_server")
        port = values.get("port")
        transport = values.get("transport")
        krb = values.get("enable_krb5")
        if transport is None and krb is not None and krb.value.lower() == "yes":
            transport = SettingAt(value="KRB5", path=krb.path, line=krb.line)
        break

    live, note = _live_enabled(r)
    config_stats = [
        r.stat(p, AREA)
        for p in (
            "etc/audit",
            AUDITD_CONF,
            RULES_FILE,
            RULES_DIR,
            *(f for f in rule_files if f != RULES_FILE),
        )
    ]
    return AuditFacts(
        installed=any(r.exists(b) for b in AUDITD_MARKERS) or bool(rule_files),
        rules_source=source,
        rule_files=[r.shown(p) for p in rule_files],
        watches=watches,
        enable_flag=enable[0] if enable else None,
        enable_flag_at=enable[1] if enable else None,
        live_enabled=live,
        live_note=note,
        log_file=log_file,
        log_dir=log_dir,
        log_files=log_files,
        config_files=[s for s in config_stats if s.exists],
        syslog_plugin_active=syslog_active,
        remote_plugin_active=remote_active,
        remote_plugin_at=remote_at,
        remote_plugin_refused=remote_refused,
        remote_server=server if server and server.value else None,
        remote_port=port,
        remote_transport=transport,
        issues=issues,
    )
