#!/usr/bin/env bash
# Scan this host (or another target) against SS-009:
#   ./scripts/scan.sh                       # = hvguard scan local
#   ./scripts/scan.sh [hvguard scan args]   # passed through unchanged
# Installs what the scanner needs (scripts/setup.sh runtime), then runs it. It starts and stops no
# daemon: it scans whatever libvirtd/QEMU already run.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh" runtime

if [ "$#" -eq 0 ]; then
    set -- local
fi
exec "$root/.venv/bin/hvguard" scan "$@"
