#!/usr/bin/env bash
# scripts/deps.sh PKG...: install the Debian packages among PKG that are
# missing, so that `make demo`, `make test` and CI find the real routers
# (frr, bird2) and tools they run. Prints what it installs; installs nothing
# when all are present.
#
# Debian starts a packaged daemon when it installs it (FRR, BIRD, Prometheus
# on the host). anycastd's labs run their own in network namespaces and need
# none of them, so a policy-rc.d that forbids every start (exit 101, "action
# forbidden") is in place while apt-get runs; nothing is stopped by name.
set -euo pipefail

say() { printf '%s\n' "deps.sh: $*"; }

missing=()
for pkg in "$@"; do
	dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	say "missing Debian packages: ${missing[*]}; install them (as root: apt-get install ${missing[*]}) or run this as root" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	say "missing ${missing[*]} and no apt-get to install them with" >&2
	exit 1
fi

policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' > "$policy"
	chmod 755 "$policy"
	trap 'rm -f "$policy"' EXIT
fi
say "installing missing Debian packages: ${missing[*]} (apt-get; their services are not started)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
