package bench

import (
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	var s Sample
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := s.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	// Nearest rank: p99 of 50 values is the largest.
	if got := s[:50].Quantile(0.99); got != 50*time.Millisecond {
		t.Errorf("p99 of 50 = %v, want 50ms", got)
	}
	if got := (Sample{}).Quantile(0.5); got != 0 {
		t.Errorf("empty: %v", got)
	}
}

func TestParseLogs(t *testing.T) {
	e, ok := parseSlogJSON([]byte(`{"time":"2026-11-25T20:42:28.400864156Z","level":"INFO","msg":"health check changed state","check":"web","from":"up","to":"down","n":3}`))
	if !ok || e.Msg != "health check changed state" || e.Attr("to") != "down" || e.Time.Nanosecond() != 400864156 {
		t.Errorf("slog line: %+v %v", e, ok)
	}
	if _, ok := parseSlogJSON([]byte(`=== lab: starting anycastd at 20:45:46.852`)); ok {
		t.Error("lab line parsed")
	}
	e, ok = parseFRRLine([]byte(`2026/11/25 20:42:28.452029 BGP: [RSVQN-24DPR] Tx route delete VRF 0 203.0.113.60/32`))
	if !ok || e.Msg != "Tx route delete VRF 0 203.0.113.60/32" || e.Time.Nanosecond() != 452029000 {
		t.Errorf("FRR line: %+v %v", e, ok)
	}
	if !contains("Tx route delete", " 203.0.113.60/32")(e) || contains("Tx route delete", " 203.0.113.6/32")(e) {
		t.Error("contains")
	}
}

func TestParseProc(t *testing.T) {
	stat := "1234 (any cast) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12 0 100 0 0"
	if got, err := parseStatCPU(stat); err != nil || got != 3250*time.Millisecond {
		t.Errorf("parseStatCPU = %v, %v; want 3.25s", got, err)
	}
	st, err := parseStatusKB("Name:\tanycastd\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n", "VmRSS", "VmHWM")
	if err != nil || st["VmRSS"] != 1<<20 || st["VmHWM"] != 2<<20 {
		t.Errorf("parseStatusKB = %v, %v", st, err)
	}
	if _, err := parseStatusKB("Name:\tx\n", "VmRSS"); err == nil {
		t.Error("missing field: no error")
	}
}

// TestParseFrame builds an Ethernet/IPv4/TCP frame carrying a KEEPALIVE and
// an UPDATE that withdraws 203.0.113.60/32 and announces 203.0.113.0/24.
func TestParseFrame(t *testing.T) {
	marker := slices.Repeat([]byte{0xff}, 16)
	keepalive := append(slices.Clone(marker), 0, 19, 4)
	body := []byte{0, 5, 32, 203, 0, 113, 60, 0, 0, 24, 203, 0, 113}
	update := append(slices.Clone(marker), 0, byte(19+len(body)), 2)
	update = append(update, body...)
	payload := append(keepalive, update...)
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:2], 40000)
	binary.BigEndian.PutUint16(tcp[2:4], 179)
	tcp[12] = 5 << 4
	ip := make([]byte, 20)
	ip[0], ip[9] = 0x45, 6
	binary.BigEndian.PutUint16(ip[2:4], uint16(20+len(tcp)+len(payload)))
	copy(ip[12:16], []byte{198, 18, 60, 100})
	frame := make([]byte, 14)
	binary.BigEndian.PutUint16(frame[12:14], 0x0800)
	frame = append(append(append(frame, ip...), tcp...), payload...)

	ts := time.Unix(1, 2)
	evs := parseFrame(frame, ts)
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1", len(evs))
	}
	e := evs[0]
	if e.From != netip.MustParseAddr("198.18.60.100") || !e.Time.Equal(ts) ||
		!slices.Equal(e.Withdrawn, []netip.Prefix{webVIP}) ||
		!slices.Equal(e.Announced, []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}) {
		t.Errorf("event %+v", e)
	}
	// From the router (source port 179): not counted.
	binary.BigEndian.PutUint16(frame[14+20:], 179)
	binary.BigEndian.PutUint16(frame[14+22:], 40000)
	if evs := parseFrame(frame, ts); len(evs) != 0 {
		t.Errorf("router's own segment: %d events", len(evs))
	}
}

func TestVtyAnswer(t *testing.T) {
	if _, _, ok := vtyAnswer([]byte("{}\x00\x00")); ok {
		t.Error("incomplete answer accepted")
	}
	out, st, ok := vtyAnswer([]byte("{\"a\":1}\n\x00\x00\x00\x01"))
	if !ok || out != "{\"a\":1}\n" || st != 1 {
		t.Errorf("vtyAnswer = %q %d %v", out, st, ok)
	}
}

func TestScaleVIP(t *testing.T) {
	if got := scaleVIP(0); got != netip.MustParsePrefix("2001:db8:1000::1/128") {
		t.Errorf("scaleVIP(0) = %v", got)
	}
	if got := scaleVIP(9999); got != netip.MustParsePrefix("2001:db8:1000::2710/128") || !scaleRange.Contains(got.Addr()) {
		t.Errorf("scaleVIP(9999) = %v", got)
	}
}

// The committed topology's configurations are what the benchmark generates
// for one session, so that `containerlab deploy` runs the same thing.
func TestCommittedConfigs(t *testing.T) {
	for file, want := range map[string]string{
		"router/frr.conf":    RouterConfig{Peers: 1}.FRRConf(),
		"edge/anycastd.toml": EdgeConfig{Peers: 1, Interval: 100 * time.Millisecond, Rise: 3, Fall: 3}.AnycastdTOML(),
	} {
		data, err := os.ReadFile(filepath.Join("..", "testdata", "bench", file))
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != want {
			t.Errorf("%s differs from what the benchmark generates; regenerate it:\n%s", file, want)
		}
	}
}

func TestOptions(t *testing.T) {
	o := DefaultOptions()
	env := map[string]string{"BENCH_QUICK": "1", "BENCH_STEADY": "5s", "BENCH_PEERS": "1,8", "BENCH_ONLY": "scale"}
	if err := o.FromEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if !o.Quick || o.Steady != 5*time.Second || !slices.Equal(o.Peers, []int{1, 8}) || !slices.Equal(o.Only, []string{"scale"}) || o.WithdrawReps >= 100 {
		t.Errorf("options %+v", o)
	}
	for _, bad := range []map[string]string{{"BENCH_STEADY": "10ms"}, {"BENCH_PEERS": "0"}, {"BENCH_ONLY": "nope"}, {"BENCH_REPS": "x"}} {
		o := DefaultOptions()
		if err := o.FromEnv(func(k string) string { return bad[k] }); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
