#!/usr/bin/env bash
# Installs what `cargo xtask drill` needs beyond the stack (install-stack.sh):
#   iptables -> the partition drill cuts one Cassandra node's loopback address off from
#               the others with OUTPUT rules (Debian package; changing them needs root)
# Idempotent and non-interactive: does nothing when iptables is present.
set -euo pipefail
source "$(dirname "$0")/apt.sh"

# Debian puts iptables in /usr/sbin, which is not on every non-root PATH.
if command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ]; then
    echo "install-drills: iptables already present"
else
    apt_install install-drills iptables
    command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] \
        || { echo "install-drills: iptables missing after install" >&2; exit 1; }
fi
echo "install-drills: done"
