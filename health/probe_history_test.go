package health

import (
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
)

func TestHistoryRoundTrip(t *testing.T) {
	if n := unsafe.Sizeof(record{}); n != 16 {
		t.Errorf("a record takes %d bytes, want 16", n)
	}
	var h history
	var want []Result
	start := time.Now().Round(0)
	kinds := []Kind{KindPass, KindFail, KindTimeout, KindError}
	// Distinct errors and outputs, repeated ones, and enough of them to
	// compact the texts many times over.
	for i := range 500 {
		res := Result{
			Time:     start.Add(time.Duration(i) * 1234567 * time.Nanosecond),
			Latency:  time.Duration(i*37) * time.Microsecond,
			Kind:     kinds[i%len(kinds)],
			Definite: i%7 == 0,
		}
		if res.Kind != KindPass {
			res.Err = fmt.Sprintf("error %d", i%(3+i/100))
		}
		if i%3 == 0 {
			res.Output = fmt.Sprintf("output %d", i)
		}
		h.add(res)
		want = append(want, res)
		if len(want) > historySize {
			want = want[1:]
		}
		if diff := cmp.Diff(want, h.results()); diff != "" {
			t.Fatalf("after %d results (-want +got):\n%s", i+1, diff)
		}
		if len(h.texts) > maxHistoryTexts {
			t.Fatalf("%d texts kept", len(h.texts))
		}
	}
	// A result from the Runner comes back equal (==), as tests compare it.
	var h2 history
	res := Result{Time: time.Now().Round(0), Latency: 1500 * time.Microsecond, Kind: KindPass}
	h2.add(res)
	if got := h2.results()[0]; got != res {
		t.Errorf("got %+v, want %+v", got, res)
	}
	// Latencies saturate instead of wrapping.
	h2.add(Result{Time: res.Time, Latency: 2 * time.Hour})
	if got := h2.results()[1].Latency; got != (1<<32-1)*time.Microsecond {
		t.Errorf("latency of 2h kept as %v", got)
	}
}

// A check that passes keeps no text; one failing the same way keeps it
// once.
func TestHistoryTextsShared(t *testing.T) {
	var h history
	for range 100 {
		h.add(Result{Time: time.Now(), Kind: KindPass})
	}
	if h.texts != nil {
		t.Errorf("texts %q for passes", h.texts)
	}
	port := 1
	for range 100 {
		// A new string each time, as err.Error() makes.
		err := fmt.Sprintf("dial tcp 127.0.0.1:%d: connect: connection refused", port)
		h.add(Result{Time: time.Now(), Kind: KindFail, Err: err})
	}
	if len(h.texts) != 1 {
		t.Errorf("%d texts for one error", len(h.texts))
	}
}
