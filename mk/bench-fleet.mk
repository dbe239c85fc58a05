# Fleet guard figures (issue 21; not part of `make test` or CI).
#
# make bench-fleet: one process with an embedded etcd, in-process routers,
# the real announcer and GoBGP speaker, and real fleet guards of two sites
# (fleet/withdraw_bench_test.go, BenchmarkWithdrawal). BENCH_FLEET_N
# iterations, each measuring, side by side, CheckChanged → the speaker's
# Withdraw for a guarded VIP (min_sites 1, permitted) and a plain one
# (min_sites 0), and CheckChanged → Announce for a VIP the guard keeps
# (refused), and a baseline announcer without [fleet]; prints p50/p99/max
# in µs with the guard's decision time and an etcd Get round trip for
# scale. About 30 s with the defaults (2 cores).

BENCH_FLEET_N ?= 1000

.PHONY: bench-fleet
bench-fleet:
	$(GO) test -count=1 -timeout 10m -v -run '^$$' -bench '^BenchmarkWithdrawal$$' \
		-benchtime=$(BENCH_FLEET_N)x ./fleet/
