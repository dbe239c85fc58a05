// Package integration runs the built anycastd against real routers: FRR 8.4
// (zebra + bgpd) and BIRD 2, in network namespaces, on the same topology
// files that containerlab users deploy (containerlab/*.clab.yml, plus the
// test-only integration/testdata/*/*.clab.yml). Package lab builds the
// namespaces from those files; cmd/siteweb is the sites' web service;
// cmd/demo is `make demo`.
//
// # Running
//
// As root, with Debian's frr and bird2 packages installed (scripts/demo.sh
// installs them):
//
//	go test -tags integration -count=1 -v ./integration/...
//
// Without root, or without FRR or BIRD, the tests skip and say why. The
// test binary builds ./cmd/anycastd and ./integration/cmd/siteweb itself;
// ANYCASTD_BIN=path (relative to the repository root, e.g. bin/anycastd)
// uses a prebuilt anycastd instead, and
// ANYCASTD_LOG_LEVEL=debug passes -log-level to it. The whole suite takes
// about 70 s on 2 cores; -v shows the measured timings (t.Logf).
//
// # Tests
//
//   - TestFailoverAndRecovery (anycast-2site): kill site A's web service;
//     time until the core has dropped site A's path and until the client is
//     answered by site B; restart it and time the way back.
//   - TestAnycastdKilled (anycast-2site): SIGKILL site A's anycastd (the
//     kernel closes its TCP session, so FRR notices at once); then SIGSTOP it,
//     so that only edge-a's 3 s hold timer can end the session; the client
//     fails over both times and site A comes back after restart / SIGCONT.
//   - TestUpstreamRouterRestart (anycast-2site): kill and restart bgpd on
//     edge-a, then on the core; sessions come back and both sites' VIP is
//     announced again.
//   - TestExportSafetyFRR (two-upstreams): both routers send anycastd routes
//     of their own, some inside the VIP range; each gets exactly the VIP
//     back (FRR's received-routes, soft-reconfiguration inbound).
//   - TestTCPMD5 (two-upstreams): the session with r1 comes up with the
//     right password and stays down with a wrong or no password; the test
//     logs what anycastd logged about it.
//   - TestBIRD (anycast-bird): IPv4 and IPv6 VIPs announced to BIRD (one
//     IPv4 session carrying both families, and one session per family),
//     withdrawn when site A's /healthz fails, announced again when it
//     passes.
//   - TestFullTableFromARouter (anycast-bird): BIRD sends 120,000 static
//     routes on site-b's IPv4 session; anycastd closes that session at
//     max_received_prefixes (default 1000) and again at each retry, keeps its
//     RSS within 16 MiB of the idle figure, and every other session keeps
//     its VIPs. TestFullTableWithoutLimit (ANYCASTD_FULLTABLE_NOLIMIT=1)
//     measures the same with no limit, for comparison.
//
// Tests poll for conditions until a deadline; they never sleep a fixed time.
// Each test starts its own lab (namespaces acd-<6 hex>-<node>) and tears it
// down when it ends; when a test fails, every router's view (vtysh show bgp
// summary / show bgp ipv4 unicast, birdc show protocols all / show route
// all) and the anycastd logs are logged first. SIGINT/SIGTERM tear the labs
// down before the test binary exits, and the run fails if a namespace or
// process was left behind. Labs of processes that died anyway (SIGKILL) are
// removed by the next run, or by `bin/demo -cleanup`.
package integration
