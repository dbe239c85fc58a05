// Command anycastctl inspects and steers a running anycastd over its gRPC
// API: tables for people, -o json for scripts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Exit codes.
const (
	exitOK          = 0
	exitDaemonError = 1 // the daemon answered with an error
	exitUsage       = 2 // bad command line
	exitConnect     = 3 // the daemon cannot be reached
)

// DefaultSocket is where anycastd listens by default.
const DefaultSocket = "/run/anycastd/api.sock"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// globals are the flags every command takes.
type globals struct {
	socket, addr         string
	ca, cert, key        string
	serverName           string
	tls                  bool
	output               string
	timeout              time.Duration
	socketSet, tlsWanted bool
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.socket, "socket", DefaultSocket, "anycastd's unix `socket`")
	fs.StringVar(&g.addr, "addr", "", "connect over TCP to `host:port` instead of the socket")
	fs.BoolVar(&g.tls, "tls", false, "use TLS over TCP (implied by --ca, --cert, --key)")
	fs.StringVar(&g.ca, "ca", "", "verify the daemon's TLS certificate with this CA `file` (default: the system's roots)")
	fs.StringVar(&g.cert, "cert", "", "client certificate `file` (control calls over TCP need one)")
	fs.StringVar(&g.key, "key", "", "client key `file`")
	fs.StringVar(&g.serverName, "server-name", "", "expected `name` in the daemon's TLS certificate (default: the host of --addr)")
	fs.StringVar(&g.output, "o", "text", "output `format`: text or json")
	fs.DurationVar(&g.timeout, "timeout", 10*time.Second, "give up on a call after this `duration`")
}

// command is one subcommand.
type command struct {
	name, args, help string
	minArgs, maxArgs int
	flags            func(fs *flag.FlagSet)    // the command's own flags
	check            func(args []string) error // checks the arguments before connecting
	run              func(ctx context.Context, c *cli, args []string) error
}

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

const usageHead = `Usage: anycastctl [flags] COMMAND [ARGS]

Inspect and steer a running anycastd over its API.

Commands:
`

const usageTail = `
Flags (before or after the command):
`

func usage(w io.Writer, commands []*command, fs *flag.FlagSet) {
	fmt.Fprint(w, usageHead)
	tw := newTable(w)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(c.name+" "+c.args), c.help)
	}
	tw.Flush()
	fmt.Fprint(w, usageTail)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprint(w, "\nExit status: 0 ok, 1 the daemon answered with an error, 2 usage, 3 the daemon cannot be reached.\n")
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var g globals
	commands := newCommands()
	top := flag.NewFlagSet("anycastctl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	g.register(top)
	showVersion := top.Bool("version", false, "print anycastctl's version and exit")
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout, commands, top)
			return exitOK
		}
		fmt.Fprintf(stderr, "anycastctl: %v\n", err)
		usage(stderr, commands, top)
		return exitUsage
	}
	if *showVersion {
		fmt.Fprintf(stdout, "anycastctl %s\n", version)
		return exitOK
	}
	if top.NArg() == 0 {
		usage(stderr, commands, top)
		return exitUsage
	}
	name, rest := top.Arg(0), top.Args()[1:]
	if name == "help" {
		usage(stdout, commands, top)
		return exitOK
	}
	i := slices.IndexFunc(commands, func(c *command) bool { return c.name == name })
	if i < 0 {
		fmt.Fprintf(stderr, "anycastctl: unknown command %q (see anycastctl help)\n", name)
		return exitUsage
	}
	cmd := commands[i]

	// Values given before the command stay unless given again after it.
	before := map[string]string{}
	top.Visit(func(f *flag.Flag) { before[f.Name] = f.Value.String() })
	fs := flag.NewFlagSet("anycastctl "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	for name, v := range before {
		_ = fs.Set(name, v)
	}
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	pos, err := parseInterspersed(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		commandUsage(stdout, cmd, fs)
		return exitOK
	}
	if err == nil && (len(pos) < cmd.minArgs || len(pos) > cmd.maxArgs) {
		err = fmt.Errorf("%s takes %s", cmd.name, argCount(cmd))
	}
	if err == nil {
		err = g.check(fs)
	}
	if err == nil && cmd.check != nil {
		err = cmd.check(pos)
	}
	if err != nil {
		fmt.Fprintf(stderr, "anycastctl %s: %v (see anycastctl %s -h)\n", cmd.name, err, cmd.name)
		return exitUsage
	}

	c, err := dial(&g)
	if err != nil {
		return report(stderr, cmd.name, err)
	}
	defer c.close()
	c.stdout = stdout
	return report(stderr, cmd.name, cmd.run(ctx, c, pos))
}

func argCount(c *command) string {
	n := []string{"no", "one", "two"}
	switch {
	case c.maxArgs == 0:
		return "no arguments"
	case c.minArgs == c.maxArgs:
		return fmt.Sprintf("%s arguments: %s", n[c.minArgs], c.args)
	}
	return fmt.Sprintf("at most %s argument: %s", n[c.maxArgs], c.args)
}

func commandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: anycastctl %s\n\n%s\n\nFlags:\n", strings.TrimSpace(c.name+" [flags] "+c.args), c.help)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// check validates the global flags once parsed.
func (g *globals) check(fs *flag.FlagSet) error {
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "socket":
			g.socketSet = true
		case "tls", "ca", "cert", "key", "server-name":
			g.tlsWanted = true
		}
	})
	switch {
	case g.output != "text" && g.output != "json":
		return fmt.Errorf("-o %q: want text or json", g.output)
	case g.addr != "" && g.socketSet:
		return errors.New("--socket and --addr: give one")
	case g.tlsWanted && g.addr == "":
		return errors.New("TLS flags need --addr (the unix socket has no TLS)")
	case (g.cert == "") != (g.key == ""):
		return errors.New("--cert and --key go together")
	case g.timeout <= 0:
		return errors.New("--timeout must be positive")
	}
	return nil
}

// parseInterspersed parses flags anywhere among the arguments and returns
// the positional ones. "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if !strings.HasPrefix(args[0], "-") || args[0] == "-" {
			pos, args = append(pos, args[0]), args[1:]
			continue
		}
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		consumed := len(args) - fs.NArg()
		if args[consumed-1] == "--" { // Parse stopped after "--": the rest is positional
			return append(pos, fs.Args()...), nil
		}
		args = fs.Args()
	}
	return pos, nil
}
