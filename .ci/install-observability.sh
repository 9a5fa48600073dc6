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
source "$(dirname "$0")/apt.sh"

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

apt_install install-observability "${pkgs[@]}"

command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 \
    || { echo "install-observability: alertmanager missing after install" >&2; exit 1; }
for b in prometheus promtool amtool; do
    command -v "$b" >/dev/null 2>&1 || { echo "install-observability: $b missing after install" >&2; exit 1; }
done
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { echo "install-observability: nginx missing after install" >&2; exit 1; }
python3 -c 'import yaml' >/dev/null 2>&1 || { echo "install-observability: PyYAML missing after install" >&2; exit 1; }
echo "install-observability: done"
