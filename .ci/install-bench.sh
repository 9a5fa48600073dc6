#!/usr/bin/env bash
# Installs what `cargo xtask bench` needs from Debian's packages:
#   wrk    -> the external load generator that drives the measurements
#   nginx  -> the gateway under test (also installed by install-observability.sh)
# Jaeger is the stack's own build (target/stack/bin/jaeger, from xtask/jaeger/go.mod):
# the bench builds it with Go when it is missing, as `cargo xtask stack up` does.
# Idempotent and non-interactive: does nothing when both are already present.
set -euo pipefail
source "$(dirname "$0")/apt.sh"

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
# Debian puts nginx in /usr/sbin, which is not on every non-root PATH.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)

if [ "${#need[@]}" -eq 0 ]; then
    echo "install-bench: wrk and nginx already present"
    exit 0
fi

apt_install install-bench "${need[@]}"
command -v wrk >/dev/null 2>&1 || { echo "install-bench: wrk missing after install" >&2; exit 1; }
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] \
    || { echo "install-bench: nginx missing after install" >&2; exit 1; }
echo "install-bench: done"
