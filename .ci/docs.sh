#!/usr/bin/env bash
# Builds the documentation site with MkDocs + Material, treating every warning as an error.
#
# Usage: .ci/docs.sh            (from anywhere)
#
# Non-interactive and idempotent: creates the venv target/venv-docs (python3 -m venv) when
# missing, installs the exact versions of docs/requirements.txt into it when that file
# changed since the last install, then runs `mkdocs build --strict` into target/site.
# Exits non-zero when the install or the build fails.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

VENV=target/venv-docs
REQUIREMENTS=docs/requirements.txt
STAMP=$VENV/.requirements.installed

log() { printf 'docs.sh: %s\n' "$*"; }

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

# Material 9.7+ prints a banner about its end of life; it is not a build warning.
export NO_MKDOCS_2_WARNING=1
log "mkdocs build --strict --site-dir target/site"
"$VENV/bin/mkdocs" build --strict --clean --site-dir target/site
log "the site is in target/site"
