//go:build linux

package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/anycastd/anycastd/config"
)

// batchAcceptingListener listens on addr ("127.0.0.1:0", "[::1]:0") and accepts
// and closes connections until the test ends. It skips the test when the
// address family is not available.
func batchAcceptingListener(t *testing.T, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("no listener on %s: %v", addr, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// batchClosedPort returns an address on 127.0.0.1 where nothing listens.
func batchClosedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// batchFullBacklog returns the address of a listener whose accept queue is full
// and never accepts: the kernel drops further SYNs, so a connection to it
// stays pending (the client retransmits its SYN after 1s). Nothing leaves
// the machine.
func batchFullBacklog(t *testing.T) string {
	t.Helper()
	addr, _ := batchFullBacklogFD(t)
	return addr
}

// batchFullBacklogFD is batchFullBacklog, also returning the listening socket.
func batchFullBacklogFD(t *testing.T) (string, int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	for i := 0; ; i++ {
		if i == 16 {
			t.Fatalf("%s still completes connections after %d", addr, i)
		}
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			break // the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr, fd
}

// batchPlainProber returns the batched prober of a plain tcp check of addr.
func batchPlainProber(t *testing.T, addr string) *plainTCP {
	t.Helper()
	ch := tcpCheck(t, config.TCPCheck{Address: addr}).(*tcpChecker)
	if ch.plain == nil {
		t.Fatalf("tcp check of %s does not use the batched prober", addr)
	}
	return ch.plain
}

// batchPendingProbes returns how many connections the batched prober waits for,
// and whether its waiter runs.
func batchPendingProbes() (n int, running bool) {
	tcpProber.mu.Lock()
	defer tcpProber.mu.Unlock()
	return tcpProber.npend, tcpProber.running
}

// batchWaitProberIdle waits until the batched prober has nothing pending and
// its waiter has returned.
func batchWaitProberIdle(t *testing.T) {
	t.Helper()
	waitFor(t, 5*time.Second, func() bool {
		n, running := batchPendingProbes()
		return n == 0 && !running
	})
}

// batchCountFDs counts this process's open file descriptors.
func batchCountFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestTCPBatchPass(t *testing.T) {
	for _, listenOn := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(listenOn, func(t *testing.T) {
			p := batchPlainProber(t, batchAcceptingListener(t, listenOn))
			for range 20 {
				if err := p.probe(context.Background(), time.Now().Add(5*time.Second)); err != nil {
					t.Fatalf("probe: %v", err)
				}
			}
		})
	}
	t.Run("host name", func(t *testing.T) {
		// localhost may resolve to ::1 first: that address is refused and
		// the next one tried.
		addr := batchAcceptingListener(t, "127.0.0.1:0")
		_, port, _ := net.SplitHostPort(addr)
		p := batchPlainProber(t, "localhost:"+port)
		if err := p.probe(context.Background(), time.Now().Add(5*time.Second)); err != nil {
			t.Fatalf("probe: %v", err)
		}
	})
	t.Run("source address", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		remote := make(chan string, 1)
		addr := bannerServer(t, ln, func(c net.Conn) { remote <- c.RemoteAddr().String() })
		ch := tcpCheck(t, config.TCPCheck{Address: addr, SourceAddress: netip.MustParseAddr("127.0.0.3")}).(*tcpChecker)
		if ch.plain == nil {
			t.Fatal("not batched")
		}
		if err := ch.plain.probe(context.Background(), time.Now().Add(5*time.Second)); err != nil {
			t.Fatalf("probe: %v", err)
		}
		if got := <-remote; !strings.HasPrefix(got, "127.0.0.3:") {
			t.Errorf("connection came from %s, want 127.0.0.3", got)
		}
	})
}

func TestTCPBatchRefused(t *testing.T) {
	addr := batchClosedPort(t)
	err := batchPlainProber(t, addr).probe(context.Background(), time.Now().Add(5*time.Second))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err = %v, want connection refused", err)
	}
	// The same words as net.Dialer's.
	_, dialErr := (&net.Dialer{}).Dial("tcp", addr)
	if err.Error() != dialErr.Error() {
		t.Errorf("err = %q, net.Dialer says %q", err, dialErr)
	}
	if want := "dial tcp " + addr + ": connect: connection refused"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	// A host name that does not resolve.
	err = batchPlainProber(t, "anycastd-test.invalid:80").probe(context.Background(), time.Now().Add(5*time.Second))
	if err == nil || !strings.HasPrefix(err.Error(), "dial tcp: lookup anycastd-test.invalid") {
		t.Errorf("unknown host: err = %v", err)
	}
}

func TestTCPBatchTimeout(t *testing.T) {
	addr := batchFullBacklog(t)
	p := batchPlainProber(t, addr)
	start := time.Now()
	err := p.probe(context.Background(), start.Add(100*time.Millisecond))
	took := time.Since(start)
	if !errors.Is(err, os.ErrDeadlineExceeded) || err.Error() != "dial tcp "+addr+": i/o timeout" {
		t.Errorf("err = %v, want an i/o timeout", err)
	}
	if took < 100*time.Millisecond || took > time.Second {
		t.Errorf("probe took %v with a 100ms deadline", took)
	}

	// Through Check with a context deadline, as net.Dialer.
	err = checkWithin(t, tcpCheck(t, config.TCPCheck{Address: addr}), 50*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("Check: err = %v, want a timeout", err)
	}

	// Through a Runner: the words users see.
	c := withDefaults(config.Check{Name: "t", Type: config.CheckTCP, Timeout: 100 * time.Millisecond,
		TCP: &config.TCPCheck{Address: addr}})
	r := NewRunner(c, tcpCheck(t, *c.TCP), nil, nil)
	if r.byDeadline == nil {
		t.Fatal("the runner gives the tcp checker a context with a timeout")
	}
	if !r.probeOnce(context.Background()) {
		t.Fatal("probe discarded")
	}
	res := r.State().History[0]
	if res.Err != "timeout after 100ms" || res.Kind != KindTimeout || res.Latency < 100*time.Millisecond {
		t.Errorf("result %+v, want a timeout after 100ms", res)
	}
	batchWaitProberIdle(t)
}

// A connection the kernel completes after the probe started waiting: the
// listener's queue is full, then emptied; the SYN retransmitted after 1s
// gets through.
func TestTCPBatchCompletesLater(t *testing.T) {
	addr, lfd := batchFullBacklogFD(t)
	p := batchPlainProber(t, addr)
	done := make(chan error, 1)
	go func() { done <- p.probe(context.Background(), time.Now().Add(10*time.Second)) }()
	waitFor(t, 5*time.Second, func() bool { n, _ := batchPendingProbes(); return n == 1 })
	if err := unix.SetNonblock(lfd, true); err != nil {
		t.Fatal(err)
	}
	for {
		nfd, _, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			break
		}
		t.Cleanup(func() { unix.Close(nfd) })
	}
	if err := <-done; err != nil {
		t.Errorf("probe: %v", err)
	}
	batchWaitProberIdle(t)
}

func TestTCPBatchCancel(t *testing.T) {
	p := batchPlainProber(t, batchFullBacklog(t))
	for _, deadline := range []time.Time{{}, time.Now().Add(time.Minute)} {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.probe(ctx, deadline) }()
		waitFor(t, 5*time.Second, func() bool { n, _ := batchPendingProbes(); return n == 1 })
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("probe not stopped by its context")
		}
		batchWaitProberIdle(t)
	}

	// A stopped check stops its probe: the Manager's Stop returns.
	m := NewManager(nil, nil)
	c := withDefaults(config.Check{Name: "t", Type: config.CheckTCP, Interval: time.Hour, FastInterval: time.Hour,
		Timeout: 30 * time.Minute, TCP: &config.TCPCheck{Address: p.addr.String()}})
	if err := m.Start(context.Background(), []config.Check{c}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { n, _ := batchPendingProbes(); return n == 1 })
	stopped := make(chan struct{})
	go func() {
		m.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop waits for a pending probe")
	}
	batchWaitProberIdle(t)
}

func TestTCPBatchConcurrentNoLeak(t *testing.T) {
	good := batchPlainProber(t, batchAcceptingListener(t, "127.0.0.1:0"))
	refused := batchPlainProber(t, batchClosedPort(t))
	slow := batchPlainProber(t, batchFullBacklog(t))
	// Once: the epoll instance and its eventfd stay open.
	if err := slow.probe(context.Background(), time.Now().Add(time.Millisecond)); err == nil {
		t.Fatal("probe of a full backlog passed")
	}
	batchWaitProberIdle(t)
	before := batchCountFDs(t)

	const n = 400
	errs := make(chan error, 3*n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if err := good.probe(context.Background(), time.Now().Add(10*time.Second)); err != nil {
				errs <- fmt.Errorf("listener: %w", err)
			}
		})
		wg.Go(func() {
			if err := refused.probe(context.Background(), time.Now().Add(10*time.Second)); !errors.Is(err, syscall.ECONNREFUSED) {
				errs <- fmt.Errorf("closed port: %v, want connection refused", err)
			}
		})
		wg.Go(func() {
			if err := slow.probe(context.Background(), time.Now().Add(50*time.Millisecond)); !errors.Is(err, os.ErrDeadlineExceeded) {
				errs <- fmt.Errorf("full backlog: %v, want a timeout", err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	batchWaitProberIdle(t)
	// Other tests' connections may still be closing: poll.
	deadline := time.Now().Add(5 * time.Second)
	for after := batchCountFDs(t); after > before; after = batchCountFDs(t) {
		if time.Now().After(deadline) {
			t.Fatalf("%d open files after %d probes, %d before", after, 3*n, before)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTCPBatchTakesDeadline(t *testing.T) {
	plain := tcpCheck(t, config.TCPCheck{Address: "127.0.0.1:80"}).(*tcpChecker)
	banner := tcpCheck(t, config.TCPCheck{Address: "127.0.0.1:80", Expect: "220"}).(*tcpChecker)
	if !plain.takesDeadline() || banner.takesDeadline() {
		t.Errorf("takesDeadline: plain %v, with expect %v; want true, false", plain.takesDeadline(), banner.takesDeadline())
	}
}
