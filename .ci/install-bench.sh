#!/usr/bin/env bash
# Installs what `cargo xtask bench` needs from Debian's packages:
#   wrk    -> the external load generator that drives the measurements
#   nginx  -> the gateway under test (also installed by install-observability.sh)
# Jaeger is the stack's own build (target/stack/bin/jaeger, from xtask/jaeger/go.mod):
# the bench builds it with Go when it is missing, as `cargo xtask stack up` does.
# Idempotent and non-interactive: does nothing when both are already present.
set -euo pipefail

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
# Debian puts nginx in /usr/sbin, which is not on every non-root PATH.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)

if [ "${#need[@]}" -eq 0 ]; then
    echo "install-bench: wrk and nginx already present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-bench: need root or sudo" >&2; exit 1; }
    SUDO="sudo"
fi

# nginx's maintainer scripts would start a system-wide nginx on :80; the bench runs its
# own. Forbid service starts during the install (same policy as install-observability.sh).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    created_policy=1
fi
cleanup() { if [ "$created_policy" -eq 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

echo "install-bench: installing ${need[*]}"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
command -v wrk >/dev/null 2>&1 || { echo "install-bench: wrk missing after install" >&2; exit 1; }
echo "install-bench: done"
