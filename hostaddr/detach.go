//go:build linux

package hostaddr

// Detach lets go of the interface for a planned restart (anycastd's
// SIGUSR2): every VIP address stays on it, and the journal in the state
// dir stays, so the next run adopts what anycastd added (New reads the
// journal) and later removes it as its own. Close after Detach does
// nothing.
func (h *Host) Detach() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	h.release()
}
