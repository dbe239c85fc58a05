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
//   - scale (per session count): 10,000 IPv6 /128 VIPs in
//     2001:db8:1000::/64 (203.0.113.0/24 holds only 256), each with its own
//     tcp check at 1 s against 16 ports of a listener process on the edge
//     (this program, run as `benchlisten listeners ADDR...`). The router
//     starts with its neighbors shut down; once anycastd has announced every
//     VIP they are enabled: session up → the router holds all. Then CPU
//     share and RSS of anycastd over a steady window (/proc/PID/stat and
//     status), then SIGTERM → every VIP gone.
//
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
