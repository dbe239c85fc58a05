package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/anycastd/anycastd/api/anycastd/v1"
)

// cli is a connection to the daemon and where output goes.
type cli struct {
	g      *globals
	target string // "unix:///run/anycastd/api.sock", "tcp://host:port"
	conn   *grpc.ClientConn
	api    pb.AnycastdServiceClient
	stdout io.Writer
}

// connectError means the daemon could not be reached (exit status 3).
type connectError struct {
	target string
	err    error
}

func (e *connectError) Error() string {
	var se *os.SyscallError
	detail := e.err.Error()
	if errors.As(e.err, &se) {
		detail = se.Error() // "connect: no such file or directory"
	}
	switch {
	case errors.Is(e.err, syscall.ENOENT), errors.Is(e.err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot reach anycastd at %s: is it running? (%s)", e.target, detail)
	case errors.Is(e.err, syscall.EACCES), errors.Is(e.err, syscall.EPERM):
		return fmt.Sprintf("cannot reach anycastd at %s: permission denied: run as root or as a member of the socket's group (%s)", e.target, detail)
	}
	return fmt.Sprintf("cannot reach anycastd at %s: %s", e.target, detail)
}

func (e *connectError) Unwrap() error { return e.err }

// dial checks that the daemon's socket answers, then sets up the gRPC
// client. A socket that cannot be connected to is a *connectError.
func dial(g *globals) (*cli, error) {
	network, addr := "unix", g.socket
	if g.addr != "" {
		network, addr = "tcp", g.addr
	}
	c := &cli{g: g, target: network + "://" + addr} // unix:///run/anycastd/api.sock
	// A plain connection first, to tell "not running" from errors of the
	// daemon: gRPC would only say "unavailable" on the first call.
	nc, err := net.DialTimeout(network, addr, g.timeout)
	if err != nil {
		return nil, &connectError{target: c.target, err: err}
	}
	nc.Close()

	creds := insecure.NewCredentials()
	if g.tlsWanted {
		tc, err := clientTLS(g)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(tc)
	}
	grpcTarget := "passthrough:///" + addr
	if network == "unix" {
		grpcTarget = "unix:" + addr // unix:/abs/path or unix:rel/path
	}
	conn, err := grpc.NewClient(grpcTarget, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", c.target, err)
	}
	c.conn, c.api = conn, pb.NewAnycastdServiceClient(conn)
	return c, nil
}

func (c *cli) close() { c.conn.Close() }

// call returns a context for one call, bounded by --timeout.
func (c *cli) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.g.timeout)
}

func clientTLS(g *globals) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: g.serverName}
	if tc.ServerName == "" {
		host, _, err := net.SplitHostPort(g.addr)
		if err != nil {
			return nil, fmt.Errorf("--addr %q: %w", g.addr, err)
		}
		tc.ServerName = host
	}
	if g.ca != "" {
		pem, err := os.ReadFile(g.ca)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca: no PEM certificate in %s", g.ca)
		}
	}
	if g.cert != "" {
		cert, err := tls.LoadX509KeyPair(g.cert, g.key)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// usageError is a bad argument found by a command (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// report prints err, if any, and returns the exit status for it.
func report(stderr io.Writer, cmd string, err error) int {
	if err == nil {
		return exitOK
	}
	var ce *connectError
	var ue *usageError
	switch {
	case errors.As(err, &ce):
		fmt.Fprintf(stderr, "anycastctl: %v\n", ce)
		return exitConnect
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "anycastctl %s: %v\n", cmd, ue)
		return exitUsage
	}
	st, ok := status.FromError(err)
	if !ok {
		fmt.Fprintf(stderr, "anycastctl %s: %v\n", cmd, err)
		return exitDaemonError
	}
	switch st.Code() {
	case codes.Unavailable:
		// The transport failed (TLS handshake, connection lost), or the
		// daemon is stopping.
		if strings.HasPrefix(st.Message(), "connection error") {
			fmt.Fprintf(stderr, "anycastctl: cannot reach anycastd: %s\n", clean(st.Message()))
			return exitConnect
		}
	case codes.DeadlineExceeded:
		fmt.Fprintf(stderr, "anycastctl %s: no answer in time (--timeout)\n", cmd)
		return exitDaemonError
	case codes.Canceled:
		return exitOK // interrupted (Ctrl-C)
	}
	fmt.Fprintf(stderr, "anycastctl %s: %s (%s)\n", cmd, clean(st.Message()), st.Code())
	return exitDaemonError
}

// since formats how long ago t was, for tables: "12s", "5m3s", "2h5m",
// "3d4h". A zero time is "-".
func since(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return human(now.Sub(t))
}

func human(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return d.String()
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", d/time.Minute, d%time.Minute/time.Second)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", d/time.Hour, d%time.Hour/time.Minute)
	}
	return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
}
