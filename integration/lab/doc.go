// Package lab runs a containerlab topology (*.clab.yml) with Linux network
// namespaces instead of containers, so the integration tests and the demo
// need root, iproute2, FRR and BIRD but no container engine.
//
// What it understands of a topology: nodes of kind linux with image, binds,
// exec and labels; links as endpoint pairs "node:ifname" (names of at most
// 15 characters). Start then
//
//  1. creates one namespace per node, named acd-<id>-<node> (<id>: 6 random
//     hex digits per lab), with lo up;
//  2. creates a veth pair per link, named as the link says, in the two
//     nodes' namespaces, and sets both ends up;
//  3. copies each node's config binds into its directory under the work
//     directory;
//  4. runs each node's exec lines in its namespace, in order, like
//     containerlab does (split into words, no shell). A line of the form
//     `sh -c "PROGRAM ARGS... [>LOG 2>&1] &"` (a background service under
//     containerlab) starts PROGRAM ARGS as a tracked process of the node
//     instead, named after PROGRAM, logging to <node dir>/PROGRAM.log;
//  5. starts each node's software, etcd and routers first:
//     - frr (image name contains "frr"): zebra, then every daemon the bound
//     `daemons` file sets to yes, each as `/usr/lib/frr/D -N <ns> -f
//     DIR/frr.conf -i DIR/D.pid -z DIR/zserv.api --vty_socket DIR -P 0`, in
//     the foreground, as user frr (DIR is owned by frr); ready once its vty
//     socket exists;
//     - bird ("bird"): `bird -f -c DIR/bird.conf -s DIR/bird.ctl -P
//     DIR/bird.pid`;
//     - anycastd ("anycastd"): the binary from Options.Programs with `-config
//     DIR/anycastd.toml -log-format text`, logging to DIR/anycastd.log;
//     - etcd ("etcd"): Debian's /usr/bin/etcd with `--config-file
//     DIR/etcd.conf.yml`, the bound etcd.conf.yml with its data-dir moved
//     into DIR; ready once its first client URL answers /health; first of
//     all, so the anycastd nodes find their coordinator (see etcd.go);
//     - anything else is a plain host that only runs its exec lines.
//     The label anycastd.lab/role (host, frr, bird, anycastd, etcd)
//     overrides the image name.
//
// Program names in exec lines resolve through Options.Programs first (e.g.
// "siteweb" to a freshly built binary), then PATH.
//
// Close (and StartTB's cleanup, and the HandleSignals handler) tears down:
// SIGTERM to every process, SIGKILL after 5 s, anything else still running
// in the namespaces is killed, the namespaces and the work directory are
// deleted. Sweep removes what labs of dead processes left behind.
//
// Helpers for tests and the demo: Exec, Vtysh, VtyshJSON, Birdc, HTTPGet
// (from a node's namespace, in process), EtcdHealthy, Log, Dump (every
// router's view, etcd's health and the anycastd logs), StartNode/KillNode
// (a node's software), StartProcess/KillProcess/SignalProcess (one daemon
// or service, e.g. bgpd, etcd or siteweb), and WaitFor for polling.
package lab
