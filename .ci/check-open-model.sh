#!/usr/bin/env bash
# Issue 15 against the native stack (already up, its Prometheus at :9090 scraping the
# loadtester job on 127.0.0.1:9464 and :9465): an arrival-rate run holds its target, a run
# with too few --max-in-flight slots reports dropped iterations, and two workers' figures,
# summed in Prometheus, pass a loose verdict and fail an impossible one. About a minute.
set -euo pipefail
cd "$(dirname "$0")/.."

export LOADTEST_ADMIN_PASSWORD="${LOADTEST_ADMIN_PASSWORD:-stack-admin-dev}"
GATEWAY="${GATEWAY:-http://127.0.0.1:8080}"
PROMETHEUS="${PROMETHEUS:-http://127.0.0.1:9090}"
# Worker 0's metrics port; worker 1 serves on the next one. Both are Prometheus targets.
WORKER_METRICS="${WORKER_METRICS:-127.0.0.1:9464}"
cargo build -q -p loadtester
loadtester=target/debug/loadtester
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

fail() { echo "check-open-model: $*" >&2; exit 1; }

# The first two runs serve their metrics on any free port, away from the scraped ones,
# so that only the workers' figures reach the verdict below.
echo "--- 200 arrivals/s of the static journey for 20 s: achieved within 5% of the target"
status=0
"$loadtester" run --host "$GATEWAY" --metrics-listen 127.0.0.1:0 \
    --mix static=1 --arrival-rate 200/s -t 20s \
    --threshold 'achieved>=95%' --threshold 'dropped<0.5%' --threshold 'errors<1%' \
    >"$out/rate.txt" || status=$?
# The summary without the list of slow requests' trace ids.
grep -v '^ [0-9a-f]\{32\} ' "$out/rate.txt" | tail -n 25
[ "$status" = 0 ] || fail "the arrival-rate run missed its thresholds (exit $status)"
grep -q '^Open model: target 200.0 arrivals/s' "$out/rate.txt" \
    || fail "the run did not report its target rate"

echo "--- 200 arrivals/s of browsers with one slot: dropped iterations are reported"
status=0
"$loadtester" run --host "$GATEWAY" --metrics-listen 127.0.0.1:0 \
    --mix browser=1 --arrival-rate 200/s -t 10s --max-in-flight 1 \
    --threshold 'dropped<0.1%' >"$out/dropped.txt" || status=$?
grep '^Open model:' "$out/dropped.txt"
[ "$status" = 2 ] || fail "a run dropping arrivals should fail 'dropped<0.1%' with exit 2, not $status"
dropped="$(sed -n 's/^Open model: .* \([0-9][0-9]*\) dropped .*/\1/p' "$out/dropped.txt")"
[ "${dropped:-0}" -gt 0 ] || fail "no dropped iterations reported with --max-in-flight 1"
grep -q 'dropped<0.1% .*| FAIL' "$out/dropped.txt" || fail "the dropped threshold did not fail"

echo "--- two workers (metrics on $WORKER_METRICS and the next port), 40 arrivals/s in all for 20 s"
started="$(date +%s)"
worker() {
    "$loadtester" run --host "$GATEWAY" --metrics-listen "$WORKER_METRICS" \
        --workers 2 --worker-index "$1" --mix browser=1,static=1 --arrival-rate 40/s -t 20s \
        --linger 3s >"$out/worker$1.txt" 2>&1
}
worker 0 & first=$!
JOB_COMPLETION_INDEX=1 worker 1 || fail "worker 1 failed: $(tail -5 "$out/worker1.txt")"
wait "$first" || fail "worker 0 failed: $(tail -5 "$out/worker0.txt")"
grep -h '^Open model:' "$out/worker0.txt" "$out/worker1.txt"
since="$(($(date +%s) - started + 5))s"

echo "--- verdict over the last $since: loose thresholds pass"
"$loadtester" verdict --prometheus-url "$PROMETHEUS" --since "$since" \
    --threshold 'p99<10s' --threshold 'errors<5%' --threshold 'dropped<5%' \
    --threshold 'p95[browser]<10s' \
    || fail "the loose verdict failed (exit $?)"

echo "--- verdict: an impossible threshold fails"
status=0
"$loadtester" verdict --prometheus-url "$PROMETHEUS" --since "$since" \
    --threshold 'p50<1us' || status=$?
[ "$status" = 2 ] || fail "an impossible threshold should fail the verdict with exit 2, not $status"

echo "open model, workers and verdict: ok"
