#!/usr/bin/env bash
# Validates the observability configuration with the real tools:
#   promtool check config / check rules / test rules, the same for the rules in
#   compressed time (cargo xtask rules scale --factor 30), a rule-convention lint,
#   the Grafana dashboard lint (metric names, data sources, PromQL via promtool),
#   amtool check-config plus routing checks, and nginx -t on the gateway.
# Needs prometheus, prometheus-alertmanager, nginx (.ci/install-observability.sh),
# python3 with PyYAML, and cargo (to build xtask). Runs as any user; writes only to a
# temp directory (and cargo to target/).
# Exits non-zero if any check fails.
set -uo pipefail

cd "$(dirname "$0")/.."
OBS=observability
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

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

NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# The compose variant: same prometheus.yml and rules, compose target files
# where the native ones are (that is how the compose stack mounts them).
compose_prometheus() {
    cp -r "$OBS/prometheus" "$TMP/prometheus-compose"
    rm -rf "$TMP/prometheus-compose/targets"
    cp -r "$OBS/prometheus/targets-compose" "$TMP/prometheus-compose/targets"
    promtool check config "$TMP/prometheus-compose/prometheus.yml"
}

# Compressed time for alert reproduction (docs/stack.md): the configuration and rules
# `cargo xtask stack up --time-scale 30` runs. promtool checks the rule files the
# configuration names too, so a scaling bug that breaks a rule fails here. The unit
# tests (promtool test rules) keep testing the real rules.
scaled_prometheus() {
    cargo xtask rules scale --factor 30 --out "$TMP/prometheus-scaled" >/dev/null &&
        promtool check config "$TMP/prometheus-scaled/prometheus.yml"
}

am_routes() {
    local cfg=$OBS/alertmanager/alertmanager.yml rc=0
    amtool config routes test --config.file="$cfg" --verify.receivers=page severity=critical alertname=ServiceDown service=backend 2>/dev/null || rc=1
    amtool config routes test --config.file="$cfg" --verify.receivers=ticket severity=warning alertname=UpstreamErrors service=cart-service 2>/dev/null || rc=1
    amtool config routes test --config.file="$cfg" --verify.receivers=ticket severity=info alertname=TrafficSpike service=backend 2>/dev/null || rc=1
    return $rc
}

nginx_test() {
    local prefix=$TMP/nginx
    mkdir -p "$prefix/logs"
    "$NGINX" -t -q -p "$prefix" -c "$PWD/$OBS/nginx/nginx.conf" -e "$prefix/logs/error.log"
    local rc=$?
    [ $rc -eq 0 ] || cat "$prefix/logs/error.log" >&2
    return $rc
}

step "promtool check config (native targets)" promtool check config "$OBS/prometheus/prometheus.yml"
step "promtool check config (compose targets)" compose_prometheus
step "promtool check config (rules scaled by 30)" scaled_prometheus
step "promtool check rules" promtool check rules "$OBS"/prometheus/rules/*.yml
step "promtool test rules" promtool test rules "$OBS"/prometheus/tests/*.yml
step "rule conventions lint" python3 "$OBS/scripts/lint_rules.py"
step "grafana dashboards lint" python3 "$OBS/scripts/lint_dashboards.py"
step "amtool check-config" amtool check-config "$OBS/alertmanager/alertmanager.yml"
step "alertmanager routing" am_routes
step "nginx -t (gateway)" nginx_test

echo
echo "observability: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
