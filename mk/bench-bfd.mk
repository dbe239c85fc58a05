# BFD figures (root; neither is part of `make test` or CI).
#
# make bench-bfd: in the FRR lab, freezes anycastd (SIGSTOP) BENCH_BFD_RUNS
# times at 3 × 100 ms and at 3 × 300 ms, and BENCH_BFD_HOLD_RUNS times with
# BFD off (9 s hold time), and prints p50/p90/p99/min/max in ms of "frozen →
# the VIP gone from FRR's BGP table (RIB)" and "→ gone from the router's
# kernel FIB". Takes about 5 minutes with the defaults.
#
# make soak-bfd: 100 BFD sessions at 3 × 50 ms between two bfd.Managers over
# UDP on loopback for SOAK_BFD (a Go duration), in a network namespace of
# its own (removed afterwards); fails on any Down once all were Up. Prints
# the state changes, the CPU used, the machine's load and the Managers'
# Stats.

BENCH_BFD_RUNS      ?= 20
BENCH_BFD_HOLD_RUNS ?= 5
SOAK_BFD            ?= 10m
SOAK_BFD_TIMEOUT    ?= 2h
SOAK_BFD_NS         := anycastd-soak-bfd-$(shell echo $$$$)

.PHONY: bench-bfd soak-bfd
bench-bfd: test-deps
	ANYCASTD_BENCH_BFD=1 BENCH_BFD_RUNS=$(BENCH_BFD_RUNS) BENCH_BFD_HOLD_RUNS=$(BENCH_BFD_HOLD_RUNS) \
		$(GO) test -tags integration -count=1 -timeout 60m -run '^TestBenchBFD$$' -v ./integration/

soak-bfd:
	@tmp=$$(mktemp -d) && ns='$(SOAK_BFD_NS)' && \
	trap 'ip netns del "$$ns" 2>/dev/null; rm -rf "$$tmp"' EXIT && \
	$(GO) test -c -o "$$tmp/bfd.test" ./bfd/ && \
	ip netns add "$$ns" && ip -n "$$ns" link set lo up && \
	ANYCASTD_SOAK_BFD='$(SOAK_BFD)' ip netns exec "$$ns" "$$tmp/bfd.test" \
		-test.run '^TestSoakBFD$$' -test.count 1 -test.timeout '$(SOAK_BFD_TIMEOUT)' -test.v
