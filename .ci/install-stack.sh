#!/usr/bin/env bash
# Installs what `cargo xtask stack up` needs beyond .ci/install-observability.sh:
#   prometheus-nginx-exporter  -> translates nginx's stub_status for Prometheus
#                                 (Debian package; the Go module proxy refuses
#                                 github.com/nginx/nginx-prometheus-exporter)
#   go                         -> checked only: builds Jaeger v2 from its Go module
#                                 (xtask/jaeger/go.mod); not installed here
# Idempotent and non-interactive, like install-observability.sh: does nothing
# when everything is present.
set -euo pipefail

if ! command -v go >/dev/null 2>&1; then
    echo "install-stack: go is not on PATH; the stack builds Jaeger with it (Go >= 1.24)" >&2
    exit 1
fi

if command -v prometheus-nginx-exporter >/dev/null 2>&1 || command -v nginx-prometheus-exporter >/dev/null 2>&1; then
    echo "install-stack: go and the nginx exporter already present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-stack: need root or sudo" >&2; exit 1; }
    SUDO="sudo"
fi

# The package's maintainer scripts would start a system-wide exporter on :9113,
# the port the stack's own exporter uses: forbid service starts meanwhile
# (same policy as install-observability.sh).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    created_policy=1
fi
cleanup() { if [ "$created_policy" -eq 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

echo "install-stack: installing prometheus-nginx-exporter"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-nginx-exporter
command -v prometheus-nginx-exporter >/dev/null 2>&1 \
    || { echo "install-stack: prometheus-nginx-exporter missing after install" >&2; exit 1; }
echo "install-stack: done"
