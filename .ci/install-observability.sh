#!/usr/bin/env bash
# Installs the observability tool chain from Debian's packages:
#   prometheus               -> prometheus, promtool
#   prometheus-alertmanager  -> prometheus-alertmanager (Debian's name for the
#                               alertmanager binary), amtool
#   nginx                    -> nginx (the gateway)
#   python3-yaml             -> PyYAML, for observability/scripts/lint_rules.py
# Idempotent and non-interactive: does nothing when every binary is already on
# PATH, so CI can call it unconditionally before .ci/check-observability.sh.
set -euo pipefail

need=()
command -v prometheus   >/dev/null 2>&1 || need+=(prometheus)
command -v promtool     >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 \
    || need+=(prometheus-alertmanager)
command -v amtool       >/dev/null 2>&1 || need+=(prometheus-alertmanager)
# Debian puts nginx in /usr/sbin, which is not on every non-root PATH.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
python3 -c 'import yaml' >/dev/null 2>&1 || need+=(python3-yaml)

if [ "${#need[@]}" -eq 0 ]; then
    echo "install-observability: prometheus, promtool, alertmanager, amtool, nginx, PyYAML already present"
    exit 0
fi

# De-duplicate (promtool and prometheus come from the same package).
mapfile -t pkgs < <(printf '%s\n' "${need[@]}" | sort -u)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-observability: need root or sudo" >&2; exit 1; }
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive

# The packages' maintainer scripts would start system-wide daemons (nginx on
# :80, prometheus on :9090, alertmanager on :9093). CI and the native stack run
# their own instances with the project's configs, so a system daemon would only
# hold the ports. Forbid service starts for the duration of the install unless
# the machine already has a policy (Docker images usually ship one).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    created_policy=1
fi
cleanup() { if [ "$created_policy" -eq 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

echo "install-observability: installing ${pkgs[*]}"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}"

command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 \
    || { echo "install-observability: alertmanager missing after install" >&2; exit 1; }
for b in prometheus promtool amtool; do
    command -v "$b" >/dev/null 2>&1 || { echo "install-observability: $b missing after install" >&2; exit 1; }
done
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { echo "install-observability: nginx missing after install" >&2; exit 1; }
python3 -c 'import yaml' >/dev/null 2>&1 || { echo "install-observability: PyYAML missing after install" >&2; exit 1; }
echo "install-observability: done"
