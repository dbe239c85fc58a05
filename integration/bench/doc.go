// Package bench is `make bench` (program integration/cmd/bench): how fast a
// dead site stops receiving traffic and how many VIPs and checks one edge
// carries, measured against FRR in network namespaces. It prints a report;
// nothing passes or fails, and CI does not run it.
//
// Every run starts its own lab (package lab) from the topology
// integration/testdata/bench/bench.clab.yml, a router (FRR) and an edge
// (anycastd), with configurations generated for the run (config.go):
//
//   - withdrawal (per session count, default 1, 2 and 8): the web VIP
//     203.0.113.60/32 behind an http check (interval 100ms, rise 1, fall 1)
//     is withdrawn and announced again, 100 times: siteweb is told to fail
//     its /healthz (SIGUSR1) and to pass again (SIGUSR2). From the check's
//     completion, the times to anycastd's "withdrawn", the UPDATE on the
//     link, bgpd parsing it, bgpd's RIB, the kernel FIB.
//   - failover: the same VIP with interval 100ms, fall 3, rise 3; siteweb
//     is SIGKILLed at a random phase and started again, 50 times: kill →
//     route gone at the router, start → route back.
//   - scale (per address family and session count): 10,000 VIPs, IPv6
//     /128s in 2001:db8:1000::/64 over IPv6 sessions or IPv4 /32s in
//     198.19.0.0/16 over IPv4 sessions (BENCH_FAMILIES; 203.0.113.0/24
//     holds only 256, and 198.19.0.0/16 is inside the lab's 198.18.0.0/15,
//     clear of its link 198.18.60.0/24), each with its own tcp check at 1 s,
//     rise 1, against 16 ports of a listener process on the edge (this
//     program, run as `benchlisten listeners ADDR...`). Two runs each: the
//     router starts with its neighbors shut down and enables them once
//     anycastd has announced every VIP (process start → all announced;
//     session up → the router holds all; then CPU share and RSS of anycastd
//     over a steady window from /proc/PID/stat and status; then SIGTERM →
//     every VIP gone), and the router's neighbors open from the start, the
//     sessions coming up while the checks decide (process start → the
//     router holds all). Then one run of 10,000 `listen` checks on the same
//     ports (the first family and session count): steady CPU and RSS. The
//     process start is the lab's exec of anycastd (its "=== lab: starting"
//     line, ms precision). With a baseline binary (-baseline,
//     BENCH_BASELINE) each of these runs is done with it first, then with
//     the binary under test, and the summary table puts them side by side.
//     BENCH_METHOD has anycastd manage the VIPs on the edge's lo with
//     `[interface] method` (otherwise the scale VIPs are on no interface).

// # Instruments
//
// All read the same wall clock: anycastd's JSON log ("time" in ns), FRR's
// debug log (`log timestamp precision 6`; `debug bgp updates in` and `debug
// bgp zebra` in the withdrawal and failover runs only), an AF_PACKET capture
// on the router's interface with kernel receive timestamps (Wire), an
// rtnetlink listener in the router's namespace (FIB), and bgpd's vty socket
// polled directly (Vty; ~0.3 ms a query, where running vtysh costs ~10 ms).
// The report ends with the error of each.
//
// Other load on the machine competes with what is measured: each part of
// the report says how busy the machine was meanwhile and how much of that
// was outside the lab.
//
// BENCH_PERF=dir records perf profiles of anycastd per scale phase.
// BenchmarkSpeakerWithdraw (go test -bench) isolates the cost of one
// withdrawal in the embedded GoBGP speaker as the table grows.
package bench
