#!/bin/sh
# The docker-compose gateway: runs nginx.conf, the native stack's file, with its two
# lines marked "compose:" changed, so that there is one gateway configuration.
#
# A line such as
#     listen 127.0.0.1:8080;   # compose: listen 8080;
# becomes "listen 8080;" (same indentation); every other line is kept byte for byte.
#
#   compose-gateway.sh render SRC_DIR OUT_DIR   writes OUT_DIR/conf/{nginx.conf,upstreams.*.conf}
#                                               (what .ci/check-compose.sh checks)
#   compose-gateway.sh run [SRC_DIR [PREFIX]]   renders into PREFIX (default /tmp/gateway),
#                                               then runs nginx in the foreground with
#                                               PREFIX as its prefix (pid, temp files, logs)
#
# docker-compose.yml mounts observability/nginx read-only at /etc/shop-gateway and runs
# `sh /etc/shop-gateway/compose-gateway.sh run`. The rendered file sits next to copies of
# the upstreams files, because nginx resolves a relative `include` against the directory
# of the main configuration file. POSIX sh and sed only (the nginx:alpine image has
# BusyBox), no root needed.
set -eu

# The one transformation: "<indent><directive> # compose: <replacement>" -> "<indent><replacement>".
# The directive part must be non-empty, so comment lines that mention compose: are untouched.
render() {
    src=$1 out=$2
    mkdir -p "$out/conf"
    sed -E 's/^([[:space:]]*)[^#[:space:]][^#]*#[[:space:]]*compose:[[:space:]]*(.*[^[:space:]])[[:space:]]*$/\1\2/' \
        "$src/nginx.conf" > "$out/conf/nginx.conf"
    cp "$src"/upstreams.*.conf "$out/conf/"
}

mode=${1:-run}
case $mode in
    render)
        [ $# -eq 3 ] || { echo "usage: $0 render SRC_DIR OUT_DIR" >&2; exit 2; }
        render "$2" "$3"
        ;;
    run)
        src=${2:-/etc/shop-gateway}
        prefix=${3:-/tmp/gateway}
        render "$src" "$prefix"
        mkdir -p "$prefix/logs"
        # Logs to the container's output (docker compose logs gateway): the JSON access
        # log on standard output, errors on standard error.
        ln -sf /dev/stdout "$prefix/logs/access.json.log"
        ln -sf /dev/stderr "$prefix/logs/error.log"
        exec nginx -p "$prefix" -c "$prefix/conf/nginx.conf" -e stderr -g 'daemon off;'
        ;;
    *)
        echo "usage: $0 render SRC_DIR OUT_DIR | run [SRC_DIR [PREFIX]]" >&2
        exit 2
        ;;
esac
