#!/usr/bin/env bash
# Property-based API testing of the four shop services with schemathesis (PyPI).
#
# Usage: .ci/schemathesis.sh            (from anywhere; needs target/debug/shop: cargo build -p shop)
#
# What it does, non-interactively and idempotently:
#   1. creates the Python venv target/venv (python3 -m venv) if missing and installs the
#      pinned schemathesis version into it when it is not already there;
#   2. starts target/debug/shop in the background on non-default ports, logging to
#      target/schemathesis/shop.log, and waits until every service answers /<prefix>/health/live;
#   3. gets an admin token, registers a regular user and gets their token, and gets a
#      service (client-credentials) token for the internal endpoints;
#   4. runs schemathesis against each service's /<prefix>/openapi.json, once as the admin and
#      once as the user (plus the internal operations once as a shop service), with exactly
#      these checks: not_a_server_error, status_code_conformance, content_type_conformance,
#      response_headers_conformance, response_schema_conformance;
#   5. stops the shop (always, via trap), prints a summary, and exits non-zero when any run
#      found a failure or could not run.
#
# Reports: target/schemathesis/<service>-<role>.{log,junit.xml}.
# Tunables (environment): ST_MAX_EXAMPLES (default 100), ST_SEED (default 20240601),
#   ST_WORKERS (default 1), ST_PORT_BASE (default 18100: backend, cart, order and user
#   service on base+0..3), ST_ROLES (default "admin user service"), ST_RUN_TIMEOUT (seconds
#   one schemathesis run may take before it is stopped and counted as failed; default 600).
# Runtime on a 2-core machine with the defaults: about 1.5 to 3 minutes, plus the first
# install of the venv.
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

MAX_EXAMPLES=${ST_MAX_EXAMPLES:-100}
SEED=${ST_SEED:-20240601}
# One worker: with two, hypothesis parses lambdas' source in two threads at once, and
# CPython 3.11's parser then fails at random ("SystemError: AST constructor recursion depth
# mismatch", a runtime error of the tool that fails the run; a cold CI run met it).
WORKERS=${ST_WORKERS:-1}
PORT_BASE=${ST_PORT_BASE:-18100}
ROLES=${ST_ROLES:-admin user service}
RUN_TIMEOUT=${ST_RUN_TIMEOUT:-600}

VENV=target/venv
OUT=target/schemathesis
SHOP=target/debug/shop
SHOP_LOG=$OUT/shop.log

log() { printf 'schemathesis.sh: %s\n' "$*"; }
die() { printf 'schemathesis.sh: error: %s\n' "$*" >&2; exit 2; }

for role in $ROLES; do
    case $role in admin | user | service) ;; *) die "unknown role '$role' in ST_ROLES (use admin, user, service)" ;; esac
done

# --- the shop binary ----------------------------------------------------------------------
[ -x "$SHOP" ] || die "$SHOP does not exist: build it first with 'cargo build -p shop'"

# --- the venv with the pinned schemathesis ------------------------------------------------
if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    log "creating the Python venv $VENV"
    python3 -m venv --clear "$VENV"
fi
installed=$("$VENV/bin/python" -m pip show schemathesis 2>/dev/null | sed -n 's/^Version: //p' || true)
if [ "$installed" != "$SCHEMATHESIS_VERSION" ]; then
    log "installing schemathesis==$SCHEMATHESIS_VERSION into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION"
fi
ST="$VENV/bin/schemathesis"
"$ST" --version

# --- start the shop -----------------------------------------------------------------------
mkdir -p "$OUT"
BACKEND_PORT=$PORT_BASE
CART_PORT=$((PORT_BASE + 1))
ORDER_PORT=$((PORT_BASE + 2))
USER_PORT=$((PORT_BASE + 3))
HOST=127.0.0.1
ADMIN_PASSWORD=${ADMIN_PASSWORD:-schemathesis-admin-password}
SERVICE_CLIENT_SECRET=${SERVICE_CLIENT_SECRET:-schemathesis-service-secret}

for port in "$BACKEND_PORT" "$CART_PORT" "$ORDER_PORT" "$USER_PORT"; do
    if (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then
        die "port $port is already in use: stop what listens there, or set ST_PORT_BASE"
    fi
done

SHOP_PID=""
stop_shop() {
    if [ -n "$SHOP_PID" ] && kill -0 "$SHOP_PID" 2>/dev/null; then
        kill -TERM "$SHOP_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SHOP_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SHOP_PID" 2>/dev/null; then
            log "the shop did not stop within 10 s of SIGTERM; killing it"
            kill -KILL "$SHOP_PID" 2>/dev/null || true
        fi
        wait "$SHOP_PID" 2>/dev/null || true
    fi
    SHOP_PID=""
}
trap stop_shop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "starting the shop on $HOST:$BACKEND_PORT-$USER_PORT (log: $SHOP_LOG)"
env BACKEND_LISTEN=$HOST:$BACKEND_PORT CART_LISTEN=$HOST:$CART_PORT \
    ORDER_LISTEN=$HOST:$ORDER_PORT USER_LISTEN=$HOST:$USER_PORT \
    ADMIN_PASSWORD="$ADMIN_PASSWORD" SERVICE_CLIENT_SECRET="$SERVICE_CLIENT_SECRET" \
    BCRYPT_COST=4 LOG_FORMAT=json ORDER_STATUS_STEP_MS=${ORDER_STATUS_STEP_MS:-2000} \
    RUST_LOG=${RUST_LOG:-info} \
    "$SHOP" >"$SHOP_LOG" 2>&1 </dev/null &
SHOP_PID=$!

# service name, port and path prefix
SERVICES=(
    "backend $BACKEND_PORT /api"
    "cart-service $CART_PORT /cart-api"
    "order-service $ORDER_PORT /order-api"
    "user-service $USER_PORT /user-api"
)

deadline=$((SECONDS + 60))
for entry in "${SERVICES[@]}"; do
    read -r name port prefix <<<"$entry"
    until curl -fsS -o /dev/null --max-time 2 "http://$HOST:$port$prefix/health/live"; do
        if ! kill -0 "$SHOP_PID" 2>/dev/null; then
            tail -n 20 "$SHOP_LOG" >&2 || true
            die "the shop exited during start-up (are ports $BACKEND_PORT-$USER_PORT free?)"
        fi
        [ "$SECONDS" -lt "$deadline" ] || die "$name did not become live within 60 s"
        sleep 0.2
    done
done
log "all four services are live"

# --- tokens -------------------------------------------------------------------------------
USER_API=http://$HOST:$USER_PORT/user-api
json_field() { "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
token() { # form fields...
    local args=() field
    for field in "$@"; do args+=(--data-urlencode "$field"); done
    curl -fsS --max-time 10 -X POST "$USER_API/token" "${args[@]}" | json_field access_token
}

ADMIN_TOKEN=$(token username=admin "password=$ADMIN_PASSWORD") || die "cannot get an admin token"
USER_NAME=st-user
USER_PASSWORD=schemathesis-user-password
curl -fsS --max-time 10 -o /dev/null -X POST "$USER_API/users/register" \
    -H 'Content-Type: application/json' \
    -d "{\"username\":\"$USER_NAME\",\"email\":\"$USER_NAME@example.com\",\"password\":\"$USER_PASSWORD\"}" \
    || die "cannot register the test user"
USER_TOKEN=$(token "username=$USER_NAME" "password=$USER_PASSWORD") || die "cannot get a user token"
# The order service is the one caller every internal endpoint accepts.
SERVICE_TOKEN=$(token grant_type=client_credentials client_id=order-service \
    "client_secret=$SERVICE_CLIENT_SECRET") || die "cannot get a service token"
log "got admin, user and service tokens"

# --- seed data ----------------------------------------------------------------------------
# Random UUIDs never name a product, so without help every cart item and order request would
# stop at "unknown product" (422) and the success paths (carts with lines, orders, their
# cancellation and status changes) would go untested. Seed a few products with ample stock
# and let schemathesis draw product ids from them most of the time (a dictionary bound to the
# request bodies' product_id fields; see the config written below).
seeded=()
for i in 1 2 3; do
    id=$(curl -fsS --max-time 10 -X POST "http://$HOST:$BACKEND_PORT/api/products/" \
        -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
        -d "{\"name\":\"Seeded product $i\",\"description\":\"for schemathesis\",\"price_cents\":$((i * 250)),\"stock\":1000000000}" \
        | json_field id) || die "cannot seed a product"
    seeded+=("\"$id\"")
done
# The cart's line ids come back inside the cart, where schemathesis' inferred links cannot
# follow them, so changing and removing a line would only ever meet 404: give the admin and
# the user one line each (of the first seeded product) and offer those ids as item_id.
lines=()
for tok in "$ADMIN_TOKEN" "$USER_TOKEN"; do
    line=$(curl -fsS --max-time 10 -X POST "http://$HOST:$CART_PORT/cart-api/cart/items" \
        -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
        -d "{\"product_id\":${seeded[0]},\"quantity\":1}" \
        | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])') \
        || die "cannot seed a cart line"
    lines+=("\"$line\"")
done
CONFIG=$OUT/schemathesis.toml
cat >"$CONFIG" <<TOML
# Written by .ci/schemathesis.sh for one run: the ids of the products and cart lines it seeded.
[dictionaries.seeded-products]
values = [$(IFS=,; echo "${seeded[*]}")]

[dictionaries.seeded-cart-lines]
values = [$(IFS=,; echo "${lines[*]}")]

[parameters]
"body.product_id" = { dictionary = "seeded-products", probability = 0.8 }
"body.items[*].product_id" = { dictionary = "seeded-products", probability = 0.8 }
"path.item_id" = { dictionary = "seeded-cart-lines", probability = 0.5 }
TOML
log "seeded ${#seeded[@]} products and ${#lines[@]} cart lines"

# --- runs ---------------------------------------------------------------------------------
declare -a SUMMARY=()
passed=0
failed=0
shop_died=0
started=$SECONDS

run_one() { # service port prefix role token [extra schemathesis args...]
    local name=$1 port=$2 prefix=$3 role=$4 tok=$5
    shift 5
    local base="$OUT/$name-$role" t0=$SECONDS rc=0
    log "running: $name as $role"
    # From inside $OUT: schemathesis keeps a .schemathesis/ cache in its working directory.
    (cd "$OUT" && timeout --signal=INT --kill-after=30 "$RUN_TIMEOUT" "$ROOT/$ST" --config-file schemathesis.toml run "http://$HOST:$port$prefix/openapi.json" \
        --checks "$CHECKS" \
        --header "Authorization: Bearer $tok" \
        --max-examples "$MAX_EXAMPLES" \
        --seed "$SEED" \
        --workers "$WORKERS" \
        --phases examples,coverage,fuzzing,stateful \
        --request-timeout 20 \
        --generation-database none \
        --report junit --report-dir . --report-junit-path "$ROOT/$base.junit.xml" \
        --no-color \
        "$@") >"$base.log" 2>&1 || rc=$?
    local took=$((SECONDS - t0)) verdict
    local cases
    cases=$(grep -E '^ *[0-9]+ generated' "$base.log" | tail -n 1 | sed 's/^ *//' || true)
    if [ "$rc" -eq 0 ]; then
        verdict=PASS
        passed=$((passed + 1))
    else
        verdict="FAIL (exit $rc)"
        [ "$rc" -ne 124 ] || verdict="TIMEOUT"
        failed=$((failed + 1))
        # Show what failed right away, so a CI log needs no artefacts to be understood.
        sed -n '/^=* FAILURES =*$/,/^=* WARNINGS =*$/p; /^=* ERRORS =*$/,/^=* SUMMARY =*$/p' \
            "$base.log" | head -n 200
    fi
    SUMMARY+=("$(printf '%-14s %-8s %-16s %4ss  %s' "$name" "$role" "$verdict" "$took" "$cases")")
    if ! kill -0 "$SHOP_PID" 2>/dev/null; then
        log "the shop stopped during the run of $name as $role; the remaining runs are skipped. Its log ends:"
        tail -n 20 "$SHOP_LOG" || true
        SUMMARY+=("the shop stopped during the run of $name as $role: remaining runs skipped")
        shop_died=1
        failed=$((failed + 1))
    fi
}

for role in $ROLES; do
    [ "$shop_died" -eq 0 ] || break
    case $role in
    admin | user)
        if [ "$role" = admin ]; then tok=$ADMIN_TOKEN; else tok=$USER_TOKEN; fi
        for entry in "${SERVICES[@]}"; do
            read -r name port prefix <<<"$entry"
            [ "$shop_died" -eq 0 ] || break
            run_one "$name" "$port" "$prefix" "$role" "$tok"
        done
        ;;
    service)
        # Only the backend and the user service have internal (service-to-service) endpoints.
        run_one backend "$BACKEND_PORT" /api service "$SERVICE_TOKEN" --include-tag internal
        [ "$shop_died" -eq 0 ] || break
        run_one user-service "$USER_PORT" /user-api service "$SERVICE_TOKEN" --include-tag internal
        ;;
    esac
done

stop_shop
panics=$(grep -c -i 'panicked' "$SHOP_LOG" || true)

echo
echo "================ schemathesis summary (v$SCHEMATHESIS_VERSION, seed $SEED, max-examples $MAX_EXAMPLES) ================"
printf '%-14s %-8s %-16s %5s  %s\n' service role result time "test cases"
for line in "${SUMMARY[@]}"; do echo "$line"; done
echo "total time: $((SECONDS - started))s; logs and JUnit reports: $OUT/; shop log: $SHOP_LOG"
if [ "${panics:-0}" -gt 0 ]; then
    echo "the shop log mentions a panic $panics time(s): see $SHOP_LOG"
    failed=$((failed + 1))
fi
echo "schemathesis: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
