#!/bin/sh
# hvguard-guard-hook/1
# libvirt qemu hook written by `hvguard guard install`; `hvguard guard uninstall` removes it and puts
# back what was here before. Do not edit: `hvguard guard status` compares this file with its pin.
#
# libvirt runs this for every qemu domain event: DOMAIN OP SUBOP EXTRA, the domain XML on stdin. Only
# the start ("prepare begin") and the incoming side of migration and restore are judged; everything
# else leaves at once. Nothing is ever written to stdout (for migrate/restore libvirt would take it
# as replacement XML). hvguard runs under a hard timeout; if it times out or fails, on-error applies here.
PY=@@PYTHON@@
PYFLAGS=@@PYFLAGS@@
PYPATH=@@PYTHONPATH@@
ENTRY=@@ENTRY@@
STATE=@@STATE_DIR@@
DOMAINS=@@DOMAINS@@
TIMEOUT=@@TIMEOUT@@
ON_ERROR=@@ON_ERROR@@
MODE=@@MODE@@
SYSLOG_SOCKET=@@SYSLOG_SOCKET@@
TOOL_VERSION=@@TOOL_VERSION@@

case "$2 $3" in
    "prepare begin"|"migrate begin"|"restore begin") ;;
    *) exit 0 ;;
esac
# DOMAINS is a glob: unquoted on purpose, so the case pattern matches like fnmatch
# shellcheck disable=SC2254
case "$1" in
    $DOMAINS) ;;
    *) exit 0 ;;
esac

umask 077  # decisions.jsonl is 0600
if [ -n "$SYSLOG_SOCKET" ]; then
    set -- --syslog-socket "$SYSLOG_SOCKET" "$@"
fi
if [ -x "$PY" ]; then
    # PYFLAGS is -I -S (isolated, no site): ENTRY appends PYPATH's directories to sys.path itself. The
    # warm decider's client waits for it a third of TIMEOUT at most, then decides cold.
    HVGUARD_GUARD_TIMEOUT=$TIMEOUT
    export HVGUARD_GUARD_TIMEOUT
    # shellcheck disable=SC2086  # PYFLAGS holds zero or more interpreter flags
    timeout -k 1 "$TIMEOUT" "$PY" $PYFLAGS -c "$ENTRY" "$PYPATH" --state-dir "$STATE" "$@" >/dev/null
    rc=$?
else
    rc=127  # no interpreter: say so once, below, rather than timeout's own line too
fi
if [ -n "$SYSLOG_SOCKET" ]; then
    shift 2
fi
case $rc in
    0|1) exit "$rc" ;;
    124|137) why="timed out after $TIMEOUT s" ;;
    126|127) why="cannot run $PY (exit $rc)" ;;
    *) why="exit status $rc" ;;
esac

# hvguard itself failed: apply on-error, say so on stderr (virsh shows it), to syslog and to the log.
if [ "$ON_ERROR" = allow ]; then outcome=allowed; verdict=allowed; code=0; else outcome=refused; verdict=refused; code=1; fi
case "$1" in
    *[!A-Za-z0-9._:+@-]*|"") safe='?' ;;  # not copied into JSON or syslog as it is
    *) safe=$1 ;;
esac
case "$2" in
    prepare) op=prepare ;;
    migrate) op=migrate ;;
    *) op=restore ;;
esac
case "$why" in
    *'"'*|*'\'*) jwhy="exit status $rc" ;;  # a path with JSON metacharacters stays out of the record
    *) jwhy=$why ;;
esac
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# a break-glass is for exactly this (an administrator bypasses a fault): an unexpired entry allows
glass=null
if [ "$safe" != '?' ] && [ -f "$STATE/break-glass.jsonl" ]; then
    for until in $(grep -F "\"domain\":\"$safe\",\"until\":\"" "$STATE/break-glass.jsonl" 2>/dev/null \
            | sed -n 's/.*"until":"\([0-9TZ:-]*\)".*/\1/p'); do
        if expr "$until" \> "$now" >/dev/null; then
            outcome=allowed; verdict="allowed (break-glass until $until)"; code=0
            glass="{\"schema\":\"hvguard.guard-break-glass/1\",\"domain\":\"$safe\",\"until\":\"$until\"}"
        fi
    done
fi
reason=hvguard-error
[ "$glass" = null ] || reason=break-glass
msg="hvguard guard failed ($why); on-error=$ON_ERROR: $verdict $safe"
if [ -n "$SYSLOG_SOCKET" ]; then set -- -u "$SYSLOG_SOCKET"; else set --; fi
logger "$@" --rfc5424 -t hvguard-guard -p auth.warning --msgid decision --sd-id hvguard@32473 \
    --sd-param "outcome=\"$outcome\"" --sd-param "domain=\"$safe\"" --sd-param "reason=\"$reason\"" \
    -- "$msg" </dev/null >/dev/null 2>&1 || :
host=$(uname -n)
case "$host" in *[!A-Za-z0-9._-]*) host='?' ;; esac
printf '{"schema":"hvguard.guard-decision/1","at":"%s","host":"%s","domain":"%s","uuid":null,"operation":"%s","mode":"%s","outcome":"%s","reason":"%s","violations":[],"covered":[],"host_findings":[],"policy":{"profile_sha256":null,"exceptions_sha256":null,"attestations_sha256":null,"host_facts_sha256":null,"profile":null},"break_glass":%s,"source":"stdin","error":"%s","tool_version":"%s"}\n' \
    "$now" "$host" "$safe" "$op" "$MODE" "$outcome" "$reason" "$glass" "$jwhy" "$TOOL_VERSION" >>"$STATE/decisions.jsonl" 2>/dev/null || :
echo "$msg" >&2
exit "$code"
