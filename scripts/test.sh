#!/usr/bin/env bash
# Run hvguard's checks and tests against the real libvirtd:
#   ./scripts/test.sh [pytest args...]
#   ./scripts/test.sh --run CMD [ARGS...]   # same daemons and teardown, CMD instead of lint + pytest
#                                           # (benchmarks: --run .venv/bin/python bench/scan_system_50.py)
#
# 1. scripts/setup.sh test (apt packages + .venv with -e .[libvirt,dev,library,serve])
# 2. ruff + mypy + lint-imports (fail fast)
# 3. /dev/kvm -> root:kvm 0660 (restored at exit); reuse a running libvirtd, else start virtlogd +
#    libvirtd ourselves and wait for qemu:///system to answer; export HVGUARD_LIBVIRTD=1
# 4. pytest; its exit code is ours (exit 5, "no tests collected", is a failure too)
# 5. at exit, however we got there: destroy + undefine leftover hvg-test-* domains (and hvg-test
#    secrets, networks, image dirs) whose test process is gone, stop by PID the daemons WE started,
#    restore /dev/kvm.
# Test outputs go to artifacts/ (libvirtd.log, virtlogd.log, junit.xml, libvirt-logs/).

# shellcheck disable=SC2317  # the teardown functions run from the EXIT trap
set -euo pipefail

run_cmd=()
if [ "${1:-}" = "--run" ]; then
    shift
    [ "$#" -gt 0 ] || { echo "usage: scripts/test.sh --run CMD [ARGS...]" >&2; exit 2; }
    run_cmd=("$@")
    set --
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
artifacts="$root/artifacts"
uri="qemu:///system"

log() { printf '[test] %s\n' "$*"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }'; }

t0=$EPOCHREALTIME
bash scripts/setup.sh test
log "setup: $(since "$t0")"
mkdir -p "$artifacts"
rm -rf "$artifacts/libvirt-logs"   # this run's QEMU/swtpm logs of hvg-test-* domains land here
export HVGUARD_ARTIFACTS="$artifacts"

if [ "${#run_cmd[@]}" -eq 0 ]; then
    t0=$EPOCHREALTIME
    log "ruff check src tests bench scripts"
    .venv/bin/ruff check src tests bench scripts
    log "mypy"
    .venv/bin/mypy
    log "lint-imports (import layers, no import circles)"
    .venv/bin/lint-imports
    # The vSphere simulator's Go main: formatted, vetted, against Debian's govmomi (no module proxy).
    log "gofmt -l + go vet tests/vcsim"
    unformatted="$(gofmt -l tests/vcsim)"
    if [ -n "$unformatted" ]; then
        log "gofmt: not formatted: $unformatted"
        exit 1
    fi
    (cd tests/vcsim && env GOPATH=/usr/share/gocode GO111MODULE=off GOPROXY=off GOFLAGS= \
        GOCACHE="$root/build/vcsim/gocache" go vet .)
    log "lint: $(since "$t0")"
fi

# One run at a time owns the machine-wide daemon: a second run waits here instead of reusing a
# libvirtd that the first would stop under it. The lock is released when this process exits.
lock="${HVG_TEST_LOCK:-/tmp/hvguard-test.lock}"
exec 9>"$lock"
if ! flock -n 9; then
    log "another scripts/test.sh run holds $lock; waiting"
    flock 9
fi

# ---------------------------------------------------------------------------------------------------
# Daemons and teardown
# ---------------------------------------------------------------------------------------------------
kvm_saved=""        # "MODE GID" of /dev/kvm before we changed it
started=()          # "name:pid" of the daemons this script started, in start order
torn_down=0

virsh_sys() { timeout 120 virsh -q -c "$uri" "$@"; }

# running PID: true while PID exists and is not a zombie (exited, waiting for PID 1 to reap it)
running() { [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# pid_of NAME PIDFILE: print the pid in PIDFILE if that process is alive and is NAME.
pid_of() {
    local name=$1 file=$2 pid
    [ -r "$file" ] || return 1
    pid="$(tr -dc '0-9' <"$file")"
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] && running "$pid" || return 1
    printf '%s\n' "$pid"
}

socket_answers() {
    [ -S /run/libvirt/libvirt-sock ] && timeout 30 virsh -q -c "$uri" version >/dev/null 2>&1
}

# owner_alive NAME: true when NAME (hvg-test-<pid>-...) belongs to a Python process that still runs
# (a concurrent test run); such objects are not ours to remove.
owner_alive() {
    local pid
    [[ $1 =~ ^hvg-test-([0-9]+)- ]] || return 1
    pid=${BASH_REMATCH[1]}
    [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q python
}

remove_leftovers() {
    local name uuid kind usage n=0
    while IFS= read -r name; do
        [[ $name == hvg-test-* ]] || continue
        if owner_alive "$name"; then log "keeping $name: its test process still runs"; continue; fi
        virsh_sys destroy "$name" >/dev/null 2>&1
        virsh_sys undefine --nvram --tpm "$name" >/dev/null 2>&1 \
            || virsh_sys undefine --nvram "$name" >/dev/null 2>&1 \
            || virsh_sys undefine "$name" >/dev/null 2>&1 \
            || log "WARNING: could not undefine $name"
        n=$((n + 1))
    done < <(virsh_sys list --all --name 2>/dev/null)
    while read -r uuid kind usage; do
        if [ "$kind" != volume ] || [[ $usage != /var/lib/libvirt/images/hvg-test-* ]]; then continue; fi
        owner_alive "${usage#/var/lib/libvirt/images/}" && continue
        virsh_sys secret-undefine "$uuid" >/dev/null 2>&1 && n=$((n + 1))
    done < <(virsh_sys secret-list 2>/dev/null)
    while IFS= read -r name; do
        [[ $name == hvg-test-* ]] || continue
        owner_alive "$name" && continue
        virsh_sys net-destroy "$name" >/dev/null 2>&1
        virsh_sys net-undefine "$name" >/dev/null 2>&1 && n=$((n + 1))
    done < <(virsh_sys net-list --all --name 2>/dev/null)
    [ "$n" -eq 0 ] || log "removed $n leftover hvg-test-* libvirt object(s)"
}

# A guard hook left by a killed guard test (its state dir is named hvg-test-guard-*) goes, with the
# qemu.d directory if that is then empty; the guard tests restore the hook directory themselves otherwise.
remove_leftover_guard_hook() {
    local hook=/etc/libvirt/hooks/qemu.d/50-hvguard
    [ -f "$hook" ] || return 0
    grep -q '^# hvguard-guard-hook/1' "$hook" && grep -q "^STATE='[^']*hvg-test-guard-" "$hook" || return 0
    rm -f -- "$hook" && log "removed the leftover test guard hook $hook"
    rmdir /etc/libvirt/hooks/qemu.d 2>/dev/null || :
}

# Image dirs of finished runs go; their QEMU/swtpm logs move into artifacts/libvirt-logs/.
remove_leftover_files() {
    local f
    for f in /var/lib/libvirt/images/hvg-test-*; do
        [ -e "$f" ] || continue
        owner_alive "${f##*/}" || rm -rf -- "$f"
    done
    for f in /var/log/libvirt/qemu/hvg-test-*.log /var/log/swtpm/libvirt/qemu/hvg-test-*.log; do
        [ -e "$f" ] || continue
        owner_alive "${f##*/}" && continue
        mkdir -p "$artifacts/libvirt-logs" && mv -f -- "$f" "$artifacts/libvirt-logs/" 2>/dev/null
    done
}

stop_daemon() {
    local name=$1 pid=$2 i
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 300; i++)); do
        running "$pid" || break
        sleep 0.1
    done
    if running "$pid"; then
        log "WARNING: $name ($pid) still runs 30 s after TERM: KILL"
        kill -KILL "$pid" 2>/dev/null
        sleep 0.2
    fi
}

teardown() {
    local rc=$? t entry others dname dpid now
    [ "$torn_down" = 1 ] && return 0
    torn_down=1
    set +e
    trap '' INT TERM
    t=$EPOCHREALTIME
    if [ "${#started[@]}" -gt 0 ] || [ -n "${HVGUARD_LIBVIRTD:-}" ]; then
        if socket_answers; then
            remove_leftovers
        fi
        remove_leftover_files
        remove_leftover_guard_hook
    fi
    if [ "${#started[@]}" -gt 0 ]; then
        others="$(virsh_sys list --name 2>/dev/null | grep -v '^hvg-test-' | grep -c .)"
        if [ "${others:-0}" -gt 0 ]; then
            log "WARNING: $others non-test domain(s) run on the libvirtd we started; their QEMU outlives it"
        fi
        # stop in reverse start order: libvirtd before virtlogd
        for ((i = ${#started[@]} - 1; i >= 0; i--)); do
            entry=${started[i]}
            dname=${entry%%:*} dpid=${entry##*:}
            # A test may restart the daemon (tests/test_watch_libvirtd.py kills libvirtd by PID and starts
            # it again): stop the one whose PID the pidfile holds now.
            if now="$(pid_of "$dname" "/run/$dname.pid")" && [ "$now" != "$dpid" ]; then
                log "$dname was restarted during the run (pid $dpid, now $now)"
                dpid=$now
            fi
            stop_daemon "$dname" "$dpid"
            log "stopped $dname (pid $dpid)"
        done
    fi
    if [ -n "$kvm_saved" ]; then
        chgrp "${kvm_saved#* }" /dev/kvm && chmod "${kvm_saved%% *}" /dev/kvm \
            && log "/dev/kvm restored to mode ${kvm_saved%% *} gid ${kvm_saved#* }"
    fi
    log "teardown: $(since "$t")"
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -e /dev/kvm ]; then
    kvm_saved="$(stat -c '%a %g' /dev/kvm)"
    if chgrp kvm /dev/kvm 2>/dev/null && chmod 0660 /dev/kvm 2>/dev/null; then
        :
    else
        log "WARNING: could not set /dev/kvm to root:kvm 0660 (libvirt will be very slow)"
        kvm_saved=""
    fi
fi

t0=$EPOCHREALTIME
why=""
if pid="$(pid_of libvirtd /run/libvirtd.pid)" || socket_answers; then
    log "reusing the libvirtd that already runs${pid:+ (pid $pid)}: it will not be stopped"
elif [ "$(id -u)" -ne 0 ]; then
    why="not root: cannot start the system libvirtd"
elif ! command -v libvirtd >/dev/null || ! command -v virtlogd >/dev/null; then
    why="libvirtd/virtlogd not installed"
else
    if pid="$(pid_of virtlogd /run/virtlogd.pid)"; then
        log "reusing virtlogd (pid $pid)"
    elif : >"$artifacts/virtlogd.log" && LIBVIRT_LOG_OUTPUTS="3:file:$artifacts/virtlogd.log" virtlogd -d 9>&-; then
        for ((i = 0; i < 100; i++)); do
            pid="$(pid_of virtlogd /run/virtlogd.pid)" && break
            sleep 0.1
        done
        if [ -n "$pid" ]; then started+=("virtlogd:$pid"); else why="virtlogd -d started but wrote no pid"; fi
    else
        why="virtlogd -d failed (see $artifacts/virtlogd.log)"
    fi
    if [ -z "$why" ]; then
        : >"$artifacts/libvirtd.log"
        if LIBVIRT_LOG_OUTPUTS="3:file:$artifacts/libvirtd.log" libvirtd -d 9>&-; then
            pid=""
            deadline=$((SECONDS + 60))
            while [ "$SECONDS" -lt "$deadline" ]; do
                if [ -z "$pid" ] && pid="$(pid_of libvirtd /run/libvirtd.pid)"; then
                    started+=("libvirtd:$pid")
                fi
                if [ -n "$pid" ] && socket_answers; then break; fi
                if [ -n "$pid" ] && ! running "$pid"; then break; fi
                sleep 0.1
            done
            if [ -z "$pid" ]; then
                why="libvirtd -d started but wrote no pid (see $artifacts/libvirtd.log)"
            elif ! running "$pid"; then
                why="libvirtd ($pid) exited during start-up (see $artifacts/libvirtd.log)"
            fi
        else
            why="libvirtd -d failed (see $artifacts/libvirtd.log)"
        fi
    fi
fi
if [ -z "$why" ] && ! socket_answers; then
    why="$uri does not answer after $(since "$t0")"
fi
if [ -z "$why" ]; then
    export HVGUARD_LIBVIRTD=1
    log "libvirtd ready ($uri answers) after $(since "$t0"); HVGUARD_LIBVIRTD=1"
    # The guard tests install a hook into the machine-wide /etc/libvirt/hooks and SIGHUP libvirtd: only
    # on a daemon this run started (tests/test_guard_libvirtd.py skips otherwise).
    for entry in "${started[@]}"; do
        if [ "${entry%%:*}" = libvirtd ]; then
            export HVGUARD_LIBVIRTD_OURS=1
            log "HVGUARD_LIBVIRTD_OURS=1 (this run started libvirtd)"
        fi
    done
else
    log "libvirtd unavailable: $why"
    [ -s "$artifacts/libvirtd.log" ] && tail -n 20 "$artifacts/libvirtd.log"
    if [ "${CI:-}" = true ]; then
        log "CI=true: failing instead of skipping the libvirtd tests"
        exit 1
    fi
    log "tests marked requires_libvirtd will be skipped"
fi

t0=$EPOCHREALTIME
rc=0
if [ "${#run_cmd[@]}" -gt 0 ]; then
    "${run_cmd[@]}" || rc=$?
    log "${run_cmd[0]}: exit $rc in $(since "$t0")"
    exit "$rc"
fi
.venv/bin/pytest -q -p no:cacheprovider --junitxml="$artifacts/junit.xml" "$@" || rc=$?
log "pytest: exit $rc in $(since "$t0")"
if [ "$rc" -eq 5 ]; then
    log "pytest collected no tests: that is a failure"
fi
exit "$rc"
