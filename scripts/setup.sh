#!/usr/bin/env bash
# Idempotent set-up of hvguard's system packages and its virtualenv.
#
#   scripts/setup.sh runtime   # what `hvguard scan` needs (libvirt client + libvirt-python build deps)
#   scripts/setup.sh test      # runtime + libvirtd/QEMU/swtpm/OVMF/sshd/rsyslog/lynis + dev tools
#
# Can also be sourced (`source scripts/setup.sh; hvg_setup test`). Installs only what dpkg says is
# missing, runs `apt-get update` at most once (and not at all when the lists are < 1 h old), and
# re-runs pip only when pyproject.toml, the mode or the repo path changed. Prints one line per phase
# on stderr (stdout stays free for the caller, e.g. `hvguard scan --format json`).
# Starts no service: package maintainer scripts are kept from starting daemons via policy-rc.d.
set -euo pipefail

HVG_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HVG_RUNTIME_PKGS=(gcc pkg-config libvirt-dev libvirt-clients)
HVG_TEST_PKGS=(libvirt-daemon-system qemu-system-x86 qemu-utils swtpm swtpm-tools ovmf
    openssh-server rsyslog rsyslog-gnutls nftables lynis postgresql
    chromium fonts-dejavu-core  # chromium: the HTML report tests drive it with Playwright
    poppler-utils  # pdftotext: the HTML report's print test reads the PDF Chromium prints
    sudo  # sudo: the ssh:// transport's --sudo test
    acl  # acl: getfacl on the SSH test target reports ACLs, setfacl makes them in the tests
    openssl  # openssl: the signed-bundle tests make Ed25519 keys and check the signatures with it
    ansible-core  # ansible-core: remediate --emit-ansible playbooks are syntax-checked and run in tests;
    # scan --inventory reads inventories through ansible-inventory (tests/test_inventory*.py)
    golang-go golang-github-vmware-govmomi-dev  # the vSphere tests build VMware's API simulator
    # (govmomi's simulator package, tests/vcsim/main.go) from Debian's sources: no Go module proxy
    e2fsprogs  # e2fsprogs: the image library tests build guest disks (mkfs.ext4 -d); its gate reads them (debugfs)
    softhsm2  # softhsm2: a real PKCS#11 token for the image library's signing key tests
    dpkg-dev apt-utils locales  # test_patches_apt_real: dpkg-deb + apt-ftparchive build a file:// apt
    # repository labelled Debian-Security; locales' de_DE definition for localedef (a German scan)
    nodejs)  # nodejs (+ npm, see hvg_node): test_report_hdf parses the HDF report with MITRE's inspecjs
HVG_APT_UPDATED=${HVG_APT_UPDATED:-0}

hvg_log() { printf '[setup] %s\n' "$*" >&2; }
hvg_die() { printf '[setup] ERROR: %s\n' "$*" >&2; return 1; }

# Run a command quietly; on failure show the tail of its output.
hvg_quiet() {
    local log rc=0
    log="$(mktemp "${TMPDIR:-/tmp}/hvg-setup.XXXXXX")"
    "$@" >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        printf '[setup] command failed (exit %s): %s\n' "$rc" "$*" >&2
        tail -n 40 "$log" >&2
    fi
    rm -f "$log"
    return "$rc"
}

hvg_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        if [ -t 0 ]; then sudo "$@"; else sudo -n "$@"; fi
    else
        hvg_die "not root and no sudo: cannot run $*"
    fi
}

# Print the packages among "$@" that dpkg does not report as installed.
hvg_missing_pkgs() {
    local installed
    installed="$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null \
        | awk '$2 == "installed" {print $1}' || true)"
    local p
    for p in "$@"; do
        grep -qxF "$p" <<<"$installed" || printf '%s\n' "$p"
    done
}

hvg_apt_lists_fresh() {
    local stamp=/var/lib/apt/periodic/update-success-stamp
    [ -n "$(find "$stamp" -maxdepth 0 -mmin -60 2>/dev/null)" ] && return 0
    [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*InRelease' -mmin -60 2>/dev/null | head -n 1)" ]
}

hvg_apt_update() {
    [ "$HVG_APT_UPDATED" = 1 ] && return 0
    hvg_log "apt-get update"
    hvg_quiet hvg_as_root apt-get update -q
    hvg_as_root mkdir -p /var/lib/apt/periodic
    hvg_as_root touch /var/lib/apt/periodic/update-success-stamp
    HVG_APT_UPDATED=1
}

hvg_apt_install() {
    local -a cmd=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@")
    # Package scripts must start no daemon (no systemd here; sysv scripts would run for real).
    local guard=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        hvg_as_root sh -c 'printf "#!/bin/sh\nexit 101\n" >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d'
        guard=1
    fi
    local rc=0
    if ! hvg_apt_lists_fresh; then
        hvg_apt_update || rc=$?
    fi
    if [ "$rc" -eq 0 ]; then
        hvg_log "apt-get install $*"
        if ! hvg_quiet hvg_as_root "${cmd[@]}"; then
            rc=1
            if [ "$HVG_APT_UPDATED" != 1 ]; then   # lists looked fresh but may be stale: retry once
                rc=0
                hvg_apt_update || rc=$?
                if [ "$rc" -eq 0 ]; then
                    hvg_quiet hvg_as_root "${cmd[@]}" || rc=$?
                fi
            fi
        fi
    fi
    if [ "$guard" = 1 ]; then
        hvg_as_root rm -f /usr/sbin/policy-rc.d
    fi
    [ "$rc" -eq 0 ] || hvg_die "apt-get install failed"
}

hvg_python() {
    local py
    py="$(command -v python3 || true)"
    [ -n "$py" ] || hvg_die "python3 not found on PATH (hvguard needs Python >= 3.11)" || return 1
    if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
        hvg_die "hvguard needs Python >= 3.11; $py is $("$py" -c 'import sys; print(sys.version.split()[0])')" \
            || return 1
    fi
    printf '%s\n' "$py"
}

# The npm packages of the tests (tests/node: inspecjs, pinned by its package-lock.json), installed into
# tests/node/node_modules with `npm ci`; re-run only when the lock file changed. npm comes with some
# Node.js builds (NodeSource's); Debian's is a separate package, installed only when no npm is on PATH.
hvg_node() {
    local dir="$HVG_ROOT/tests/node"
    local stamp="$dir/node_modules/.hvg-lock" want
    if ! command -v npm >/dev/null 2>&1; then
        hvg_apt_install npm || return 1
    fi
    want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        hvg_log "npm: tests/node already has its packages"
        return 0
    fi
    hvg_log "npm ci in tests/node (inspecjs, for the HDF report test)"
    (cd "$dir" && hvg_quiet npm ci --no-audit --no-fund --ignore-scripts) || hvg_die "npm ci failed" || return 1
    printf '%s\n' "$want" >"$stamp"
}

hvg_setup() {
    local mode="${1:-runtime}" t0=$SECONDS
    local -a pkgs
    local extras
    case "$mode" in
        runtime) pkgs=("${HVG_RUNTIME_PKGS[@]}"); extras="libvirt" ;;
        test) pkgs=("${HVG_RUNTIME_PKGS[@]}" "${HVG_TEST_PKGS[@]}"); extras="libvirt,dev,vsphere,library,serve" ;;
        *) hvg_die "usage: setup.sh runtime|test (got '$mode')"; return 1 ;;
    esac

    local py
    py="$(hvg_python)" || return 1
    # Debian's own python3 needs python3-venv for ensurepip; pyenv/python.org builds carry it.
    if ! "$py" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        pkgs+=(python3-venv)
    fi

    local -a missing
    mapfile -t missing < <(hvg_missing_pkgs "${pkgs[@]}")
    if [ "${#missing[@]}" -gt 0 ]; then
        hvg_apt_install "${missing[@]}" || return 1
    else
        hvg_log "system packages ($mode): all ${#pkgs[@]} present"
    fi

    local venv="$HVG_ROOT/.venv" stampf="$HVG_ROOT/.venv/.hvg-setup"
    if [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -c \
        'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1; then
        hvg_log "existing .venv is broken or older than Python 3.11: recreating"
        rm -rf "$venv"
    elif [ -f "$stampf" ] && ! head -n 1 "$stampf" | grep -qF "root=$HVG_ROOT "; then
        hvg_log "existing .venv was made for another checkout (its scripts point there): recreating"
        rm -rf "$venv"
    fi
    if [ ! -x "$venv/bin/python" ]; then
        hvg_log "python venv: creating .venv with $py ($("$py" -c 'import sys; print(sys.version.split()[0])'))"
        hvg_quiet "$py" -m venv "$venv" || hvg_die "could not create $venv" || return 1
    fi

    local want have=""
    want="root=$HVG_ROOT pyproject=$(sha256sum "$HVG_ROOT/pyproject.toml" | cut -d' ' -f1)"
    [ -f "$stampf" ] && have="$(head -n 1 "$stampf")"
    local up_to_date=0
    if [ "$have" = "$want" ] && grep -qx "mode=$mode" "$stampf" \
        && "$venv/bin/python" -c 'import hvguard, libvirt' >/dev/null 2>&1; then
        up_to_date=1
    fi
    if [ "$up_to_date" = 1 ]; then
        hvg_log "pip: .venv already has -e .[$extras]"
    else
        hvg_log "pip install -e .[$extras] (libvirt-python builds from source on first run)"
        (cd "$HVG_ROOT" && export PIP_DISABLE_PIP_VERSION_CHECK=1 \
            && hvg_quiet "$venv/bin/python" -m pip install -q --no-input -e ".[$extras]") \
            || hvg_die "pip install failed" || return 1
        # test mode implies runtime; a changed pyproject or repo path invalidates both.
        if [ "$have" = "$want" ]; then
            printf 'mode=%s\n' "$mode" >>"$stampf"
        else
            printf '%s\nmode=%s\n' "$want" "$mode" >"$stampf"
        fi
        [ "$mode" = test ] && printf 'mode=runtime\n' >>"$stampf"
    fi
    if [ "$mode" = test ]; then
        hvg_node || return 1
    fi
    hvg_log "done ($mode) in $((SECONDS - t0)) s"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    hvg_setup "$@"
fi
