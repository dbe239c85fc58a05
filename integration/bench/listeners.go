package bench

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
)

// ListenersMain is the edge's listener process for the scale runs (the
// benchmark program runs itself as `benchlisten listeners ADDR...` in the
// edge's namespace): it accepts connections on every ADDR and closes them at
// once, as a service would answer tcp checks, until SIGTERM or SIGINT. On
// SIGUSR1 it prints "accepted N" (connections so far). It returns the exit
// status.
func ListenersMain(addrs []string) int {
	if len(addrs) == 0 {
		fmt.Fprintln(os.Stderr, "usage: benchlisten listeners HOST:PORT...")
		return 2
	}
	if err := raiseNoFile(65536); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	var accepted atomic.Int64
	report := make(chan os.Signal, 1)
	signal.Notify(report, syscall.SIGUSR1)
	go func() {
		for range report {
			fmt.Printf("accepted %d\n", accepted.Load())
		}
	}()
	var lns []net.Listener
	var wg sync.WaitGroup
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		lns = append(lns, ln)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
				accepted.Add(1)
			}
		}()
	}
	fmt.Printf("listening on %d addresses\n", len(lns))
	<-sig
	for _, ln := range lns {
		ln.Close()
	}
	wg.Wait()
	return 0
}

// raiseNoFile raises RLIMIT_NOFILE to at least n.
func raiseNoFile(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= n {
		return nil
	}
	lim.Cur = n
	lim.Max = max(lim.Max, n)
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}
