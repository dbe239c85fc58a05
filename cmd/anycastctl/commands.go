package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/anycastd/anycastd/api/anycastd/v1"
)

// newCommands returns the commands, each with its flags' variables.
func newCommands() []*command {
	var results uint
	var follow bool
	var reason, message string
	var dur time.Duration
	return []*command{
		{name: "status", help: "the node: version, uptime, AS, router ID, drain, counts", run: cmdStatus},
		{name: "vips", args: "[VIP]", maxArgs: 1, help: "VIPs: state, why, prefixes, announced attributes, guarding checks", run: cmdVIPs},
		{name: "checks", args: "[CHECK]", maxArgs: 1,
			help: "health checks: state, counters, last result; with CHECK, its recent probes",
			flags: func(fs *flag.FlagSet) {
				fs.UintVar(&results, "n", 0, "show at most `N` recent probes (default: all the daemon keeps)")
			},
			run: func(ctx context.Context, c *cli, args []string) error { return cmdChecks(ctx, c, args, results) }},
		{name: "peers", args: "[PEER]", maxArgs: 1, help: "BGP sessions: state, uptime, families, messages and prefixes", run: cmdPeers},
		{name: "routes", args: "[PEER]", maxArgs: 1, help: "routes advertised to each peer (the speaker's Adj-RIB-Out)", run: cmdRoutes},
		{name: "fleet", args: "[VIP]", maxArgs: 1,
			help: "the fleet ([fleet]): every VIP site by site, the coordinator, drain slots",
			run:  cmdFleet},
		{name: "events", help: "recent VIP, check and session transitions; -f: keep following",
			flags: func(fs *flag.FlagSet) { fs.BoolVar(&follow, "f", false, "follow: print new events as they happen") },
			run:   func(ctx context.Context, c *cli, args []string) error { return cmdEvents(ctx, c, follow) }},
		{name: "drain", args: "[VIP]", maxArgs: 1,
			help: "drain a VIP, or without VIP the whole node: GRACEFUL_SHUTDOWN, then withdraw",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&reason, "reason", "", "why (shown in the VIP's state and the logs)")
				fs.DurationVar(&dur, "for", 0, "undrain by itself after this `duration` (default: until undrain)")
			},
			check: func([]string) error {
				if dur < 0 {
					return errors.New("--for must not be negative")
				}
				return nil
			},
			run: func(ctx context.Context, c *cli, args []string) error { return cmdDrain(ctx, c, args, reason, dur) }},
		{name: "undrain", args: "[VIP]", maxArgs: 1, help: "return a VIP, or without VIP the node, to service", run: cmdUndrain},
		{name: "reload", help: "reload the configuration file", run: cmdReload},
		{name: "restart", help: "stop for a planned restart, as SIGUSR2 does: nothing withdrawn (needs graceful_restart)", run: cmdRestart},
		{name: "report", args: "CHECK ok|failing", minArgs: 2, maxArgs: 2,
			help:  "set the result of a push (ttl) check",
			flags: func(fs *flag.FlagSet) { fs.StringVar(&message, "message", "", "why (shown as the check's error)") },
			check: func(args []string) error {
				_, err := reportHealthy(args[1])
				return err
			},
			run: func(ctx context.Context, c *cli, args []string) error { return cmdReport(ctx, c, args, message) }},
	}
}

func arg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

func cmdStatus(ctx context.Context, c *cli, _ []string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.api.GetStatus(ctx, &pb.GetStatusRequest{})
	if err != nil {
		return err
	}
	if c.g.output == "json" {
		return printJSON(c.stdout, resp)
	}
	renderStatus(c.stdout, time.Now(), resp.Node)
	return nil
}

func cmdVIPs(ctx context.Context, c *cli, args []string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.api.ListVIPs(ctx, &pb.ListVIPsRequest{Name: arg(args)})
	if err != nil {
		return err
	}
	if c.g.output == "json" {
		return printJSON(c.stdout, resp)
	}
	renderVIPs(c.stdout, time.Now(), resp.Vips)
	return nil
}

func cmdChecks(ctx context.Context, c *cli, args []string, results uint) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.api.ListChecks(ctx, &pb.ListChecksRequest{Name: arg(args), Results: uint32(results)})
	if err != nil {
		return err
	}
	if c.g.output == "json" {
		return printJSON(c.stdout, resp)
	}
	if len(args) == 1 && len(resp.Checks) == 1 {
		renderCheck(c.stdout, time.Now(), resp.Checks[0])
		return nil
	}
	renderChecks(c.stdout, time.Now(), resp.Checks)
	return nil
}

func cmdPeers(ctx context.Context, c *cli, args []string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.api.ListPeers(ctx, &pb.ListPeersRequest{Address: arg(args)})
	if err != nil {
		return err
	}
	if c.g.output == "json" {
		return printJSON(c.stdout, resp)
	}
	renderPeers(c.stdout, time.Now(), resp.Peers)
	return nil
}

func cmdRoutes(ctx context.Context, c *cli, args []string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.api.ListRoutes(ctx, &pb.ListRoutesRequest{Peer: arg(args)})
	if err != nil {
		return err
	}
	if c.g.output == "json" {
		return printJSON(c.stdout, resp)
	}
	renderRoutes(c.stdout, resp.Peers)
	return nil
}

// cmdEvents prints the events the daemon remembers and, with follow, new
// ones until interrupted. JSON output is one event per line.
func cmdEvents(ctx context.Context, c *cli, follow bool) error {
	if !follow {
		var cancel context.CancelFunc
		ctx, cancel = c.call(ctx)
		defer cancel()
	}
	stream, err := c.api.WatchEvents(ctx, &pb.WatchEventsRequest{Follow: follow})
	if err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil && follow {
				return nil // interrupted
			}
			return err
		}
		if c.g.output == "json" {
			b, err := protojson.Marshal(resp.Event)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "%s\n", b)
			continue
		}
		fmt.Fprintln(c.stdout, eventLine(resp.Event))
	}
}

func cmdDrain(ctx context.Context, c *cli, args []string, reason string, d time.Duration) error {
	req := &pb.DrainRequest{Vip: arg(args), All: len(args) == 0, Reason: reason}
	if d > 0 {
		req.Duration = durationpb.New(d)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.api.Drain(ctx, req)
	if err != nil {
		return err
	}
	if c.g.output == "json" {
		return printJSON(c.stdout, resp)
	}
	what := "the node (every VIP)"
	if req.Vip != "" {
		what = "VIP " + req.Vip
	}
	msg := "draining " + what + ": announced with GRACEFUL_SHUTDOWN, withdrawn after the drain time"
	if d > 0 {
		msg += fmt.Sprintf("; back in service after %s", d)
	} else {
		msg += "; until undrained"
	}
	if resp.Status != "" { // [fleet] max_drained: no drain slot free yet
		msg = fmt.Sprintf("drain of %s requested, not yet in effect: %s; it stays in service until a slot is free (anycastctl fleet shows who holds them)",
			what, resp.Status)
	}
	fmt.Fprintln(c.stdout, clean(msg))
	return nil
}

func cmdUndrain(ctx context.Context, c *cli, args []string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	req := &pb.UndrainRequest{Vip: arg(args), All: len(args) == 0}
	resp, err := c.api.Undrain(ctx, req)
	if err != nil {
		return err
	}
	if c.g.output == "json" {
		return printJSON(c.stdout, resp)
	}
	what := "the node"
	if req.Vip != "" {
		what = "VIP " + req.Vip
	}
	fmt.Fprintln(c.stdout, "undrained "+what+": announced again as soon as its checks pass")
	return nil
}

func cmdReload(ctx context.Context, c *cli, _ []string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.api.Reload(ctx, &pb.ReloadRequest{})
	if err != nil {
		return err
	}
	if c.g.output == "json" {
		return printJSON(c.stdout, resp)
	}
	fmt.Fprintln(c.stdout, "configuration reloaded")
	for _, w := range resp.GetWarnings() {
		fmt.Fprintln(c.stdout, "warning:", w)
	}
	return nil
}

func cmdRestart(ctx context.Context, c *cli, _ []string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.api.Restart(ctx, &pb.RestartRequest{})
	if err != nil {
		return err
	}
	if c.g.output == "json" {
		return printJSON(c.stdout, resp)
	}
	fmt.Fprintf(c.stdout, "anycastd is stopping for a restart: nothing is withdrawn; routers that negotiated graceful restart keep its routes for %ds, until it is started again (it exits with status 75: the packaged unit's RestartForceExitStatus=75)\n",
		resp.GetRestartTimeSeconds())
	return nil
}

func cmdReport(ctx context.Context, c *cli, args []string, message string) error {
	healthy, err := reportHealthy(args[1])
	if err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.api.ReportCheck(ctx, &pb.ReportCheckRequest{Check: args[0], Healthy: healthy, Message: message})
	if err != nil {
		return err
	}
	if c.g.output == "json" {
		return printJSON(c.stdout, resp)
	}
	fmt.Fprintf(c.stdout, "check %s reported %s\n", args[0], args[1])
	return nil
}

// reportHealthy parses the state argument of report.
func reportHealthy(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "ok", "pass", "healthy", "up":
		return true, nil
	case "failing", "fail", "unhealthy", "down":
		return false, nil
	}
	return false, fmt.Errorf("%q: want ok or failing", s)
}
