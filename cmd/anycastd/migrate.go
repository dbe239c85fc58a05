package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/migrate"
)

// peerList is the repeatable --peer flag.
type peerList []string

func (p *peerList) String() string     { return strings.Join(*p, ",") }
func (p *peerList) Set(s string) error { *p = append(*p, s); return nil }

// asnFlag is an AS number flag, 1..4294967295.
type asnFlag uint32

func (a *asnFlag) String() string { return strconv.FormatUint(uint64(*a), 10) }
func (a *asnFlag) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return errors.New("want an AS number in 1..4294967295")
	}
	*a = asnFlag(n)
	return nil
}

// runMigrate is "anycastd migrate SOURCE FILE…": it prints the anycastd
// configuration converted from another tool's files on stdout. Exit
// status: 0 converted; 1 something could not be converted (unless
// --partial) or the result does not pass anycastd's validation; 2 a bad
// command line, or a file that cannot be read or is malformed.
func runMigrate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("anycastd migrate", flag.ContinueOnError)
	var (
		peers   peerList
		asn     asnFlag
		peerASN asnFlag
	)
	fs.Var(&asn, "asn", "the local AS ([bgp] asn); overrides the source's")
	routerID := fs.String("router-id", "", "the router ID ([bgp] router_id), an IPv4 `address`; overrides the source's")
	fs.Var(&peers, "peer", "a router's `address` (repeatable); replaces the source's peers (one at the same address keeps its settings)")
	fs.Var(&peerASN, "peer-asn", "the routers' AS; overrides the source's")
	partial := fs.Bool("partial", false, "exit 0 even when something could not be converted (it is listed at the end of the output)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: anycastd migrate %s [flags] FILE...\n\n", strings.Join(migrate.Sources, "|"))
		fmt.Fprint(fs.Output(), `Prints the anycastd configuration converted from the files of another tool:
  exabgp                 exabgp.conf (process blocks running "exabgp healthcheck", neighbor
                         blocks), and any healthcheck --config file it names
  anycast-healthchecker  its main file and service files (INI), and optionally the host's
                         bird.conf for the BGP side
  keepalived             keepalived.conf (vrrp_script, vrrp_instance, virtual_server)

Flags:
`)
		fs.PrintDefaults()
	}
	fs.SetOutput(io.Discard)
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(stdout)
				fs.Usage()
				return 0
			}
			fmt.Fprintf(stderr, "anycastd migrate: %v\n", err)
			fs.SetOutput(stderr)
			fs.Usage()
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0)) // flags may follow the files
		args = fs.Args()[1:]
	}
	if len(files) < 2 {
		fmt.Fprintf(stderr, "anycastd migrate: want a source (%s) and at least one file\n", strings.Join(migrate.Sources, ", "))
		fs.SetOutput(stderr)
		fs.Usage()
		return 2
	}
	source, names := files[0], files[1:]
	if !slices.Contains(migrate.Sources, source) {
		fmt.Fprintf(stderr, "anycastd migrate: unknown source %q: want one of %s\n", source, strings.Join(migrate.Sources, ", "))
		return 2
	}
	inputs := make([]migrate.Input, 0, len(names))
	for _, n := range names {
		data, err := readSource(n)
		if err != nil {
			fmt.Fprintf(stderr, "anycastd migrate: %v\n", err)
			return 2
		}
		inputs = append(inputs, migrate.Input{Name: n, Data: data})
	}
	res, err := migrate.Convert(source, inputs, migrate.Options{
		ASN: uint32(asn), RouterID: *routerID, Peers: peers, PeerASN: uint32(peerASN),
		ReadFile: readSource,
	})
	if err != nil {
		fmt.Fprintf(stderr, "anycastd migrate: %v\n", err)
		return 2
	}
	stdout.Write(res.TOML)
	if len(res.Warnings) > 0 {
		fmt.Fprintf(stderr, "anycastd migrate: %d thing(s) behave differently (each has a comment in the output):\n", len(res.Warnings))
		for _, w := range res.Warnings {
			fmt.Fprintf(stderr, "  %s\n", w)
		}
	}
	status := 0
	if len(res.Issues) > 0 {
		fmt.Fprintf(stderr, "anycastd migrate: %d thing(s) could not be converted (listed at the end of the output):\n", len(res.Issues))
		for _, i := range res.Issues {
			fmt.Fprintf(stderr, "  %s\n", i)
		}
		if !*partial {
			status = 1
		}
	}
	if res.Invalid != nil {
		fmt.Fprintf(stderr, "anycastd migrate: the result does not pass anycastd -check-config yet:\n%v\n", res.Invalid)
		if len(res.Issues) == 0 || !*partial {
			status = 1
		}
	}
	return status
}

// readSource reads a source file with the limits of anycastd's own
// configuration (config.ReadFile: a regular file of at most 4 MiB, never a
// FIFO), its name in every error.
func readSource(name string) ([]byte, error) {
	data, err := config.ReadFile(name)
	var pe *fs.PathError
	if err != nil && !errors.As(err, &pe) {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return data, err
}
