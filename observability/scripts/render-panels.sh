#!/usr/bin/env bash
# Renders pictures of a chosen set of Grafana panels into docs/images/dashboards/, from the
# panels' own PromQL queried on a running Prometheus, with matplotlib (not Grafana
# screenshots). See render_panels.py for the options; they are passed through.
#
# Usage: bash observability/scripts/render-panels.sh [render_panels.py options]
#        (from anywhere; needs Prometheus on 127.0.0.1:9090 with data, e.g. the native
#        stack, `cargo xtask stack up`, while the load tester runs through the gateway)
#
# Creates the venv target/venv-panels when missing and installs the exact versions of
# render-panels.requirements.txt into it when that file changed since the last install.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

VENV=target/venv-panels
REQUIREMENTS=observability/scripts/render-panels.requirements.txt
STAMP=$VENV/.requirements.installed

log() { printf 'render-panels.sh: %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
    log "creating the Python venv $VENV"
    python3 -m venv "$VENV"
fi
if ! cmp -s "$REQUIREMENTS" "$STAMP"; then
    log "installing $REQUIREMENTS into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --no-input --requirement "$REQUIREMENTS"
    cp "$REQUIREMENTS" "$STAMP"
fi

exec "$VENV/bin/python" observability/scripts/render_panels.py "$@"
