#!/usr/bin/env bash
# Installs what `cargo xtask stack up` needs beyond .ci/install-observability.sh:
#   prometheus-nginx-exporter  -> translates nginx's stub_status for Prometheus
#                                 (Debian package; the Go module proxy refuses
#                                 github.com/nginx/nginx-prometheus-exporter)
#   go                         -> checked only: builds Jaeger v2 from its Go module
#                                 (xtask/jaeger/go.mod) and VictoriaLogs from its own
#                                 (xtask/src/stack/logstore.rs); not installed here
# Idempotent and non-interactive, like install-observability.sh: does nothing
# when everything is present.
set -euo pipefail
source "$(dirname "$0")/apt.sh"

if ! command -v go >/dev/null 2>&1; then
    echo "install-stack: go is not on PATH; the stack builds Jaeger and VictoriaLogs with it (Go >= 1.24)" >&2
    exit 1
fi

if command -v prometheus-nginx-exporter >/dev/null 2>&1 || command -v nginx-prometheus-exporter >/dev/null 2>&1; then
    echo "install-stack: go and the nginx exporter already present"
    exit 0
fi

apt_install install-stack prometheus-nginx-exporter
command -v prometheus-nginx-exporter >/dev/null 2>&1 \
    || { echo "install-stack: prometheus-nginx-exporter missing after install" >&2; exit 1; }
echo "install-stack: done"
