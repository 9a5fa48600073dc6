# Sourced by the .ci/install-*.sh scripts: installs Debian packages non-interactively.
#   apt_install WHO PACKAGE...
# WHO names the caller in messages. Runs as root or through sudo. The packages'
# maintainer scripts would start system-wide daemons (nginx on :80, Prometheus on :9090,
# Alertmanager on :9093, the nginx exporter on :9113) that would only hold the ports the
# project's own instances use, so service starts are forbidden during the install, unless
# the machine already has a policy (Docker images usually ship one). The package lists are
# refreshed once: not again when they are less than an hour old.

apt_install() {
    local who=$1
    shift
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "$who: need root or sudo" >&2; return 1; }
        sudo="sudo"
    fi
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod 755 "$policy"
        created_policy=1
    fi
    echo "$who: installing $*"
    local status=0
    {
        lists_are_fresh || {
            $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && touch "$APT_LISTS_STAMP"
        }
    } && {
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
    } || status=$?
    if [ "$created_policy" -eq 1 ]; then $sudo rm -f "$policy"; fi
    return "$status"
}

# apt keeps the servers' dates on the list files, so a stamp of our own says when they
# were last refreshed.
APT_LISTS_STAMP="${TMPDIR:-/tmp}/shop-apt-lists-refreshed"

lists_are_fresh() {
    [ -n "$(find "$APT_LISTS_STAMP" -mmin -60 -print 2>/dev/null)" ]
}
