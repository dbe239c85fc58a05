package fleet

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests on any goroutine left running, the
// guard's and etcd's included. One exception: BenchmarkWithdrawal runs the
// real GoBGP speaker, and GoBGP v4.8.0 can leave an outgoing-queue
// goroutine (eapache/channels' infiniteBuffer) of a session closed by its
// peer behind; that is GoBGP's, not the fleet guard's.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/eapache/channels.(*InfiniteChannel).infiniteBuffer"))
}
