package health

import "sync"

// diagPool keeps the idle sock_diag sockets of the listen checks: a probe
// takes one for its queries and puts it back, so a few sockets, warm in
// the kernel's and the CPU's caches, serve any number of checks (one
// socket per check, 10,000 of them, made each lookup about 2 µs dearer).
// A socket that failed is put back closed and opened again on next use.
type diagPool struct {
	mu    sync.Mutex
	idle  []*diagConn // last in, first out: the warmest on top
	users int         // open listen checkers; at 0 the idle sockets are closed
}

// diagPoolIdle is how many idle sockets diagPool keeps at most; more are
// closed when put back. A probe holds one only for its own queries, not
// while it waits for the shared table, so a handful is in use at once.
const diagPoolIdle = 32

// listenDiag is the pool of all listen checks.
var listenDiag diagPool

// acquire and release count the open listen checkers.
func (p *diagPool) acquire() {
	p.mu.Lock()
	p.users++
	p.mu.Unlock()
}

func (p *diagPool) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.users--; p.users > 0 {
		return
	}
	p.users = 0
	for i, d := range p.idle {
		_ = d.close()
		p.idle[i] = nil
	}
	p.idle = p.idle[:0]
}

// get returns an idle socket, or a new one (opened on first use).
func (p *diagPool) get() *diagConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.idle)
	if n == 0 {
		return new(diagConn)
	}
	d := p.idle[n-1]
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	return d
}

// put gives d back, or closes it when no checker is open or enough are
// idle.
func (p *diagPool) put(d *diagConn) {
	p.mu.Lock()
	if p.users > 0 && len(p.idle) < diagPoolIdle {
		p.idle = append(p.idle, d)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	_ = d.close()
}
