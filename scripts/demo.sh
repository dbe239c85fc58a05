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

scripts/deps.sh frr bird2 iproute2

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
