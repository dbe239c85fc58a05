// Command siteweb is the lab's stand-in for an anycast service: a tiny HTTP
// server that answers with its site name, so a client can tell which site
// the network delivered it to.
//
//	siteweb -name site-a -listen 203.0.113.10:80 [-listen [2001:db8:20::1]:80] [-fail-file PATH]
//
// GET / answers "<name>\n". GET /healthz answers "ok <name>\n" (200), or
// "failing <name>\n" (503) while the service is marked unhealthy: after
// SIGUSR1 (until SIGUSR2), or while -fail-file exists. To simulate a crash,
// kill it. SIGTERM and SIGINT stop it.
//
// A listen address that cannot be bound yet (the VIP is not on an interface
// yet) is retried for -bind-timeout.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	host, _ := os.Hostname()
	name := flag.String("name", host, "site name to answer with")
	failFile := flag.String("fail-file", "", "while this file exists, /healthz fails")
	bindTimeout := flag.Duration("bind-timeout", 10*time.Second, "how long to retry binding a listen address")
	var listens listFlag
	flag.Var(&listens, "listen", "address to listen on (repeatable; default :80)")
	flag.Parse()
	if len(listens) == 0 {
		listens = listFlag{":80"}
	}
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("siteweb " + *name + ": ")

	var failing atomic.Bool
	healthy := func() bool {
		if failing.Load() {
			return false
		}
		if *failFile != "" {
			if _, err := os.Stat(*failFile); err == nil {
				return false
			}
		}
		return true
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if !healthy() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "failing %s\n", *name)
			return
		}
		fmt.Fprintf(w, "ok %s\n", *name)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s\n", *name)
	})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	toggles := make(chan os.Signal, 4)
	signal.Notify(toggles, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		for s := range toggles {
			failing.Store(s == syscall.SIGUSR1)
			log.Printf("health set to %v by %v", s != syscall.SIGUSR1, s)
		}
	}()

	var servers []*http.Server
	var wg sync.WaitGroup
	errs := make(chan error, len(listens))
	for _, addr := range listens {
		ln, err := listenRetry(ctx, addr, *bindTimeout)
		if err != nil {
			log.Fatalf("%v", err)
		}
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		log.Printf("serving on %s", ln.Addr())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		}()
	}

	select {
	case <-ctx.Done():
		log.Printf("stopping")
	case err := <-errs:
		log.Fatalf("serving: %v", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(sctx)
	}
	wg.Wait()
}

// listenRetry binds addr, retrying while the address is not (yet) local.
func listenRetry(ctx context.Context, addr string, timeout time.Duration) (net.Listener, error) {
	deadline := time.Now().Add(timeout)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("listening on %s: %w", addr, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
