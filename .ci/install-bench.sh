#!/usr/bin/env bash
# Installs what `cargo xtask bench` needs:
#   wrk    -> the external load generator that drives the measurements (Debian package)
#   nginx  -> the gateway under test (Debian package; also installed by install-observability.sh)
#   the seed's stack as a peer -> FastAPI, pydantic and uvicorn with uvloop and httptools,
#             pinned in xtask/bench/peer/requirements.txt, from PyPI into a virtualenv in
#             target/bench/peer-venv (python3 with its venv module and pip needed)
# Jaeger is the stack's own build (target/stack/bin/jaeger, from xtask/jaeger/go.mod):
# the bench builds it with Go when it is missing, as `cargo xtask stack up` does.
# Idempotent and non-interactive: does nothing for what is already present.
set -euo pipefail
source "$(dirname "$0")/apt.sh"
root="$(cd "$(dirname "$0")/.." && pwd)"

install_tools() {
    local need=()
    command -v wrk >/dev/null 2>&1 || need+=(wrk)
    # Debian puts nginx in /usr/sbin, which is not on every non-root PATH.
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
    if [ "${#need[@]}" -eq 0 ]; then
        echo "install-bench: wrk and nginx already present"
        return
    fi
    apt_install install-bench "${need[@]}"
    command -v wrk >/dev/null 2>&1 || { echo "install-bench: wrk missing after install" >&2; exit 1; }
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] \
        || { echo "install-bench: nginx missing after install" >&2; exit 1; }
}

# The virtualenv keeps a copy of the requirements it was made from: the same file, and a
# Python that still imports the stack, means nothing to do; another file (a version bumped)
# or a broken virtualenv (its Python gone) means a fresh one.
install_peer() {
    local requirements="$root/xtask/bench/peer/requirements.txt"
    local venv="$root/target/bench/peer-venv"
    local installed="$venv/requirements.txt"
    if cmp -s "$requirements" "$installed" \
        && "$venv/bin/python" -c 'import fastapi, uvicorn, uvloop, httptools' 2>/dev/null; then
        echo "install-bench: the peer's virtualenv is up to date"
        return
    fi
    command -v python3 >/dev/null 2>&1 || { echo "install-bench: the peer needs python3" >&2; exit 1; }
    echo "install-bench: installing the peer's packages into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements"
    "$venv/bin/pip" check
    cp "$requirements" "$installed"
}

install_tools
install_peer
echo "install-bench: done"
