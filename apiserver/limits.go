package apiserver

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Defaults of Limits. The TCP listener is open to anyone who can connect,
// so what its clients may hold is bounded: connections (in total and per
// source address), streams per connection, how long a handshake and an
// idle or old connection may last, how long a Send to a watcher may block.
// The connection caps are also lowered to fit the open-files limit, so that
// no client can take the descriptors the health probes and BGP need.
const (
	// DefaultTCPConns is the most connections the TCP listeners hold at
	// once, all of them together.
	DefaultTCPConns = 64
	// DefaultTCPConnsPerSource is the most TCP connections one source IP
	// address holds at once.
	DefaultTCPConnsPerSource = 8
	// DefaultUnixConns is the most connections the unix socket holds at
	// once (a separate budget: a TCP flood never locks out anycastctl).
	DefaultUnixConns = 64
	// DefaultFDReserve is how many file descriptors the connection caps
	// leave to the rest of the daemon (probes, BGP sessions, netlink,
	// metrics): each cap is at most (RLIMIT_NOFILE - DefaultFDReserve) / 2.
	DefaultFDReserve = 128
	// MaxStreams is the most concurrent calls (streams) on one connection.
	MaxStreams = 16
	// HandshakeTimeout is how long a new connection has to complete its
	// TLS and HTTP/2 handshake before it is closed.
	HandshakeTimeout = 5 * time.Second
	// DefaultSendTimeout is how long one event may wait for a watcher to
	// read it (HTTP/2 flow control) before its stream is ended.
	DefaultSendTimeout = 10 * time.Second
	// MaxConnectionIdle closes a connection with no call for this long.
	MaxConnectionIdle = 5 * time.Minute
	// MaxConnectionAge closes a TCP connection this old (after
	// MaxConnectionAgeGrace for calls in flight; a watcher resumes with
	// after_seq). Unix socket connections have no age limit.
	MaxConnectionAge = time.Hour
	// MaxConnectionAgeGrace is how long calls in flight may finish on a
	// connection closed for its age.
	MaxConnectionAgeGrace = time.Minute
	// refusedLogEvery is how often, at most, refused connections are logged.
	refusedLogEvery = 10 * time.Second
)

// Limits bound what API clients may hold. Zero fields take the defaults
// above; the connection caps are then lowered to fit RLIMIT_NOFILE.
type Limits struct {
	// TCPConns: the most connections all TCP listeners hold together
	// (default DefaultTCPConns).
	TCPConns int
	// TCPConnsPerSource: the most TCP connections from one source IP
	// address (default DefaultTCPConnsPerSource).
	TCPConnsPerSource int
	// UnixConns: the most unix socket connections (default
	// DefaultUnixConns).
	UnixConns int
	// SendTimeout: how long a WatchEvents Send may block (default
	// DefaultSendTimeout).
	SendTimeout time.Duration
}

// withDefaults fills in the zero fields. Defaulted caps are lowered to
// (nofile - DefaultFDReserve) / 2 each (at least 1) when nofile, the
// open-files limit, is known (non-zero).
func (l Limits) withDefaults(nofile uint64) Limits {
	fit := func(n int) int {
		if nofile == 0 {
			return n
		}
		budget := 1
		if nofile > DefaultFDReserve+2 {
			budget = int(min(nofile-DefaultFDReserve, 1<<20) / 2)
		}
		return min(n, budget)
	}
	if l.TCPConns <= 0 {
		l.TCPConns = fit(DefaultTCPConns)
	}
	if l.TCPConnsPerSource <= 0 {
		l.TCPConnsPerSource = min(DefaultTCPConnsPerSource, l.TCPConns)
	}
	if l.UnixConns <= 0 {
		l.UnixConns = fit(DefaultUnixConns)
	}
	if l.SendTimeout <= 0 {
		l.SendTimeout = DefaultSendTimeout
	}
	return l
}

// openFilesLimit returns the soft RLIMIT_NOFILE, 0 if unknown.
func openFilesLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return rl.Cur
}

// serverOptions are the grpc.ServerOptions bounding a listener's clients;
// tcp adds the connection age limit.
func serverOptions(tcp bool) []grpc.ServerOption {
	sp := keepalive.ServerParameters{
		MaxConnectionIdle: MaxConnectionIdle,
		Time:              time.Minute,      // ping a connection quiet for this long
		Timeout:           20 * time.Second, // and close it if the ping is not answered
	}
	if tcp {
		sp.MaxConnectionAge, sp.MaxConnectionAgeGrace = MaxConnectionAge, MaxConnectionAgeGrace
	}
	return []grpc.ServerOption{
		grpc.MaxConcurrentStreams(MaxStreams),
		grpc.ConnectionTimeout(HandshakeTimeout),
		grpc.KeepaliveParams(sp),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
}

// connLimiter counts the connections of one or more listeners: at most max
// in total and, if perSource > 0, perSource from one IP address.
type connLimiter struct {
	name      string // "tcp" or "unix", for the log
	max       int
	perSource int
	log       *slog.Logger

	mu       sync.Mutex
	total    int
	bySource map[string]int
	refused  int       // since the last log line
	lastLog  time.Time // zero: never logged
}

func newConnLimiter(name string, max, perSource int, log *slog.Logger) *connLimiter {
	return &connLimiter{name: name, max: max, perSource: perSource, log: log, bySource: make(map[string]int)}
}

// acquire takes a slot for a connection from src, or reports why not.
func (c *connLimiter) acquire(src string) (ok bool, why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.total >= c.max:
		return false, fmt.Sprintf("%d connections, the most the %s listeners hold", c.total, c.name)
	case c.perSource > 0 && c.bySource[src] >= c.perSource:
		return false, fmt.Sprintf("%d connections from this address, the most one source holds", c.bySource[src])
	}
	c.total++
	if c.perSource > 0 {
		c.bySource[src]++
	}
	return true, ""
}

func (c *connLimiter) release(src string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if c.perSource > 0 {
		if c.bySource[src]--; c.bySource[src] <= 0 {
			delete(c.bySource, src)
		}
	}
}

// refuse counts a refused connection and logs at most once per
// refusedLogEvery, with how many were refused since the last line.
func (c *connLimiter) refuse(src, why string) {
	c.mu.Lock()
	c.refused++
	now := time.Now()
	if !c.lastLog.IsZero() && now.Sub(c.lastLog) < refusedLogEvery {
		c.mu.Unlock()
		return
	}
	n := c.refused
	c.refused, c.lastLog = 0, now
	c.mu.Unlock()
	c.log.Warn("API: refusing connections over the limit (logged at most every "+refusedLogEvery.String()+")",
		"listener", c.name, "refused", n, "last_from", src, "reason", why)
}

// limitListener accepts through a connLimiter: a connection over the limit
// is closed at once, so it holds a file descriptor only for that instant.
type limitListener struct {
	net.Listener
	lim *connLimiter
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := sourceOf(conn)
		if ok, why := l.lim.acquire(src); !ok {
			conn.Close()
			l.lim.refuse(src, why)
			continue
		}
		return &limitConn{Conn: conn, release: func() { l.lim.release(src) }}, nil
	}
}

// sourceOf is the IP address a connection comes from ("" for a unix
// socket).
func sourceOf(conn net.Conn) string {
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		if ip4 := a.IP.To4(); ip4 != nil {
			return ip4.String()
		}
		return a.IP.String()
	}
	return ""
}

// limitConn gives its slot back when closed.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
