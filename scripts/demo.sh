#!/usr/bin/env bash
# make demo: anycast failover with anycastd, FRR and network namespaces.
#
# Needs root (network namespaces), Go, and Debian's frr and bird2 packages
# (installed with apt-get when missing; bird2 is for the integration tests).
# Builds bin/anycastd, bin/siteweb and bin/demo, then runs the demo, which
# tears its lab down when it ends, fails or is interrupted (Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '%s\n' "demo.sh: $*"; }

if [ "$(id -u)" -ne 0 ]; then
	say "needs root to create network namespaces; run: sudo make demo" >&2
	exit 1
fi
if ! command -v go >/dev/null 2>&1; then
	say "needs the Go toolchain (go) in PATH" >&2
	exit 1
fi

missing=()
{ [ -x /usr/lib/frr/zebra ] && [ -x /usr/lib/frr/bgpd ] && command -v vtysh >/dev/null; } || missing+=(frr)
{ command -v bird >/dev/null && command -v birdc >/dev/null; } || missing+=(bird2)
command -v ip >/dev/null || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
	if ! command -v apt-get >/dev/null 2>&1; then
		say "missing ${missing[*]} and no apt-get to install them with" >&2
		exit 1
	fi
	say "installing missing Debian packages: ${missing[*]} (apt-get)"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# The packages start their services on the host; the demo runs its own
	# routers in namespaces and needs none of them.
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		for pkg in "${missing[@]}"; do
			svc=""
			case "$pkg" in frr) svc=frr ;; bird2) svc=bird ;; esac
			if [ -n "$svc" ] && systemctl is-enabled --quiet "$svc" 2>/dev/null; then
				systemctl disable --now --quiet "$svc" || true
				say "stopped and disabled the host's $svc service that the $pkg package started"
			fi
		done
	fi
fi

mkdir -p bin
# Under make, `make build` has just built bin/anycastd (with its version).
if [ -z "${MAKELEVEL:-}" ] || [ ! -x bin/anycastd ]; then
	say "building bin/anycastd"
	go build -o bin/anycastd ./cmd/anycastd
fi
say "building bin/siteweb, bin/demo"
go build -o bin/siteweb ./integration/cmd/siteweb
go build -o bin/demo ./integration/cmd/demo

exec bin/demo -anycastd bin/anycastd -siteweb bin/siteweb "$@"
