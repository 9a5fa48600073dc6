#!/usr/bin/env bash
# Validates docker-compose.yml and what it builds and mounts, without a Docker engine:
#   - the file against the Compose Specification's JSON schema (the copy vendored by
#     check-jsonschema, builtin schema `vendor.compose-spec`);
#   - every host path it uses exists in the repository (bind mounts, build contexts,
#     Dockerfiles, env_file, file configs/secrets);
#   - every Dockerfile target it builds exists in the Dockerfile;
#   - every environment variable it (and the Dockerfile's stages) sets for the four
#     services and the load tester is listed in docs/reference/configuration.md;
#   - every image is pinned to a version;
#   - the gateway's compose configuration, rendered from observability/nginx/nginx.conf
#     by compose-gateway.sh exactly as the container does, changes the three lines marked
#     "compose:" and nothing else, and passes `nginx -t` when nginx is installed (with
#     the compose upstream and log store hostnames pointed at 127.0.0.1, which this host
#     can resolve).
#
# Usage: .ci/check-compose.sh            (from anywhere)
#
# Non-interactive and idempotent: creates the venv target/venv-compose when missing and
# installs the exact versions of .ci/check-compose.requirements.txt into it when that
# file changed since the last install. Writes nothing else but a temp directory.
# Ends with `compose: N passed, N failed`; exits non-zero if any check fails.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

VENV=target/venv-compose
REQUIREMENTS=.ci/check-compose.requirements.txt
STAMP=$VENV/.requirements.installed
COMPOSE=docker-compose.yml
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

log() { printf 'check-compose.sh: %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
    log "creating the Python venv $VENV"
    python3 -m venv "$VENV" || exit 1
fi
if ! cmp -s "$REQUIREMENTS" "$STAMP"; then
    log "installing $REQUIREMENTS into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --no-input --requirement "$REQUIREMENTS" || exit 1
    cp "$REQUIREMENTS" "$STAMP"
fi
PY=$VENV/bin/python

passed=0
failed=0
step() {
    local name=$1; shift
    echo "=== $name"
    if "$@"; then
        echo "--- ok: $name"
        passed=$((passed + 1))
    else
        echo "--- FAILED: $name"
        failed=$((failed + 1))
    fi
}

schema() {
    "$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$COMPOSE"
}

# The gateway: render as the container does, then compare with nginx.conf.
gateway() {
    local src=observability/nginx out=$TMP/gateway rc=0
    sh "$src/compose-gateway.sh" render "$src" "$out" || return 1
    local changed
    changed=$(diff "$src/nginx.conf" "$out/conf/nginx.conf" | grep -c '^>')
    local marked
    marked=$(grep -cE '^[[:space:]]*[^#[:space:]][^#]*#[[:space:]]*compose:' "$src/nginx.conf")
    echo "  nginx.conf: $marked lines marked compose:, $changed changed by the rendering"
    if [ "$marked" -ne 3 ] || [ "$changed" -ne "$marked" ]; then
        echo "  expected exactly the three marked lines (include, listen, syslog) to change" >&2
        rc=1
    fi
    grep -qE '^[[:space:]]*include upstreams\.compose\.conf;$' "$out/conf/nginx.conf" \
        || { echo "  the rendered file does not include upstreams.compose.conf" >&2; rc=1; }
    grep -qE '^[[:space:]]*listen 8080;$' "$out/conf/nginx.conf" \
        || { echo "  the rendered gateway does not listen on 8080 (all interfaces)" >&2; rc=1; }
    grep -qE '^[[:space:]]*access_log syslog:server=victorialogs:5514,' "$out/conf/nginx.conf" \
        || { echo "  the rendered gateway does not send its access log to victorialogs:5514" >&2; rc=1; }
    grep -q '127\.0\.0\.1:8080' "$out/conf/nginx.conf" \
        && { echo "  the rendered file still listens on 127.0.0.1:8080" >&2; rc=1; }
    local nginx
    nginx=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
    if [ -n "$nginx" ]; then
        # Compose hostnames do not resolve here: point them at loopback for the syntax test.
        sed -i -E 's/^([[:space:]]*server )[a-z-]+(:[0-9]+[ ;])/\1127.0.0.1\2/' \
            "$out/conf/upstreams.compose.conf"
        sed -i -E 's/syslog:server=victorialogs:/syslog:server=127.0.0.1:/' "$out/conf/nginx.conf"
        mkdir -p "$out/logs"
        if ! "$nginx" -t -q -p "$out" -c "$out/conf/nginx.conf" -e "$out/logs/error.log"; then
            cat "$out/logs/error.log" >&2
            rc=1
        else
            echo "  nginx -t: the rendered configuration is valid"
        fi
    else
        echo "  nginx not installed: nginx -t skipped (.ci/install-observability.sh installs it)"
    fi
    return $rc
}

step "compose specification schema" schema
step "host paths exist" "$PY" .ci/check_compose.py paths
step "Dockerfile targets exist" "$PY" .ci/check_compose.py targets
step "service settings are documented" "$PY" .ci/check_compose.py variables
step "images are pinned" "$PY" .ci/check_compose.py images
step "gateway configuration for compose" gateway

echo
echo "compose: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
