package lab

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

var (
	liveMu sync.Mutex
	live   = map[*Lab]struct{}{}

	interrupted atomic.Bool
)

// Interrupted reports whether HandleSignals has caught a signal (and is
// tearing down the labs before it exits the program). Code that sees a lab
// operation fail can check it and wait quietly for the exit.
func Interrupted() bool { return interrupted.Load() }

func register(l *Lab) {
	liveMu.Lock()
	defer liveMu.Unlock()
	live[l] = struct{}{}
}

func unregister(l *Lab) {
	liveMu.Lock()
	defer liveMu.Unlock()
	delete(live, l)
}

// CloseAll closes every lab of this process that is still open.
func CloseAll() {
	liveMu.Lock()
	labs := make([]*Lab, 0, len(live))
	for l := range live {
		labs = append(labs, l)
	}
	liveMu.Unlock()
	var wg sync.WaitGroup
	for _, l := range labs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Close()
		}()
	}
	wg.Wait()
}

// HandleSignals makes SIGINT, SIGTERM and SIGHUP tear down every open lab
// of this process and then exit with 128+signal. onSignal (may be nil) is
// called first, e.g. to print a message. stop undoes it.
func HandleSignals(onSignal func(os.Signal)) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	quit := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			interrupted.Store(true)
			if onSignal != nil {
				onSignal(sig)
			}
			CloseAll()
			code := 1
			if s, ok := sig.(syscall.Signal); ok {
				code = 128 + int(s)
			}
			os.Exit(code)
		case <-quit:
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(ch)
			close(quit)
		})
	}
}

// TB is the part of testing.TB that StartTB needs.
type TB interface {
	Helper()
	Cleanup(func())
	Failed() bool
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// StartTB starts a lab for a test: it fails the test if the lab cannot
// start, and registers a cleanup that, if the test failed, logs every
// router's view and the anycastd logs, then tears the lab down.
func StartTB(tb TB, topo *Topology, opts Options) *Lab {
	tb.Helper()
	if opts.Logf == nil {
		opts.Logf = tb.Logf
	}
	l, err := Start(context.Background(), topo, opts)
	if err != nil {
		tb.Fatalf("starting lab %s: %v", topo.Name, err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			var b strings.Builder
			l.Dump(&b)
			tb.Logf("state at failure:\n%s", b.String())
		}
		if err := l.Close(); err != nil {
			tb.Logf("tearing down lab %s: %v", topo.Name, err)
		}
	})
	return l
}
