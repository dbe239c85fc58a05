package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
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
	if got := scaleVIP(0, true); got != netip.MustParsePrefix("2001:db8:1000::1/128") {
		t.Errorf("scaleVIP(0) = %v", got)
	}
	if got := scaleVIP(9999, true); got != netip.MustParsePrefix("2001:db8:1000::2710/128") || !scaleRange.Contains(got.Addr()) {
		t.Errorf("scaleVIP(9999) = %v", got)
	}
	if got := scaleVIP(0, false); got != netip.MustParsePrefix("198.19.0.1/32") {
		t.Errorf("scaleVIP(0, v4) = %v", got)
	}
	if got := scaleVIP(9999, false); got != netip.MustParsePrefix("198.19.39.16/32") {
		t.Errorf("scaleVIP(9999, v4) = %v", got)
	}
	if got := scaleVIP(maxScaleVIPs-1, false); !scaleRange4.Contains(got.Addr()) || got.Addr() == netip.MustParseAddr("198.19.255.255") {
		t.Errorf("scaleVIP(max, v4) = %v", got)
	}
	// The scale VIPs stay clear of the lab's link addresses.
	link := netip.MustParsePrefix("198.18.60.0/24")
	if scaleRange4.Overlaps(link) || scaleRange4.Overlaps(webVIP) {
		t.Error("IPv4 scale range overlaps the lab's addresses")
	}
}

func TestScaleConfig(t *testing.T) {
	ec := EdgeConfig{Peers: 1, ScaleVIPs: 2, ScaleV4: true, ScaleCheck: "listen", ScaleInterval: time.Second,
		ScaleRise: 1, Listeners: []string{"127.0.0.1:21000"}}
	s := ec.AnycastdTOML()
	for _, want := range []string{`{name="0",type="listen",address="127.0.0.1:21000",rise=1},`,
		`{name="1",prefixes=["198.19.0.2"],checks=["1"]},`, "manage = false"} {
		if !strings.Contains(s, want) {
			t.Errorf("config lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "method") {
		t.Errorf("method written without being asked:\n%s", s)
	}
	ec.Method, ec.StateDir = "local-route", "/tmp/x"
	if s := ec.AnycastdTOML(); !strings.Contains(s, "manage = true\nname = \"lo\"\nstate_dir = \"/tmp/x\"\nmethod = \"local-route\"\n") {
		t.Errorf("method:\n%s", s)
	}
}

// anycastd's own parser takes the scale configurations: every VIP with its
// own check, rise 1, at 1 s.
func TestScaleConfigParses(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, typ := range []string{"tcp", "listen"} {
			ec := EdgeConfig{Peers: 2, IPv6: v6, ScaleVIPs: 300, ScaleV4: !v6, ScaleCheck: typ, ScaleInterval: time.Second,
				ScaleRise: 1, Listeners: []string{"127.0.0.1:21000", "127.0.0.1:21001"}, HoldTime: 9 * time.Second}
			cfg, err := config.Parse([]byte(ec.AnycastdTOML()))
			if err != nil {
				t.Fatalf("v6 %v, %s: %v", v6, typ, err)
			}
			if len(cfg.VIPs) != 300 || len(cfg.Checks) != 300 || cfg.Checks[299].Rise != 1 || cfg.Checks[299].Interval != time.Second ||
				cfg.VIPs[299].Prefixes[0] != scaleVIP(299, v6) || len(cfg.BGP.Peers) != 2 {
				t.Errorf("v6 %v, %s: %d VIPs, %d checks, %+v", v6, typ, len(cfg.VIPs), len(cfg.Checks), cfg.Checks[299])
			}
			ec.ScaleVIPs = 10_000
			t.Logf("10,000 VIPs, v6 %v, %s checks: %d bytes (anycastd reads at most %d)", v6, typ, len(ec.AnycastdTOML()), config.MaxFileSize)
		}
	}
}

func TestParseExecLine(t *testing.T) {
	loc := time.FixedZone("x", 3600)
	log := []byte("=== lab: starting anycastd at 23:59:59.250: [\"anycastd\"]\n{\"time\":\"...\"}\n")
	now := time.Date(2026, 11, 30, 0, 0, 2, 0, loc)
	got, err := parseExecLine(log, now)
	if want := time.Date(2026, 11, 29, 23, 59, 59, 250e6, loc); err != nil || !got.Equal(want) {
		t.Errorf("parseExecLine = %v, %v; want %v", got, err, want)
	}
	if _, err := parseExecLine([]byte("{}\n"), now); err == nil {
		t.Error("no start line: no error")
	}
}

func TestScaleTable(t *testing.T) {
	tab := &scaleTable{vips: 10000, bins: []string{baseline, thisTree}, res: map[scaleKey]*ScaleResult{}, failed: map[scaleKey]bool{}}
	for _, fam := range []string{"ipv4", "ipv6"} {
		tab.cols = append(tab.cols, scaleCol{1, fam})
	}
	c := scaleCase{Binary: thisTree, Peers: 1, VIPs: 10000, V6: true, Check: "tcp"}
	tab.res[keyOf(c)] = &ScaleResult{scaleCase: c, SessionToRIB: 210 * time.Millisecond, AllUp: 2500 * time.Millisecond, CPU: 0.183, RSSMax: 95 << 20}
	c.Binary = baseline
	tab.failed[keyOf(c)] = true
	var b strings.Builder
	tab.print(&b)
	out := b.String()
	t.Log(out)
	for _, want := range []string{"1 × IPv6", "this tree", "210ms", "2.50s", "18.3%", "95MB", "failed", "≤ 0.5 s", "10,000 tcp probes/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if thousands(1234567) != "1,234,567" || thousands(999) != "999" {
		t.Error("thousands")
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
	if !slices.Equal(o.Families, []string{"ipv4", "ipv6"}) || o.Baseline != "" || o.Method != "" {
		t.Errorf("defaults %+v", o)
	}
	env = map[string]string{"BENCH_FAMILIES": "IPv6", "BENCH_BASELINE": "/tmp/a", "BENCH_METHOD": "local-route"}
	if err := o.FromEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.Families, []string{"ipv6"}) || o.Baseline != "/tmp/a" || o.Method != "local-route" {
		t.Errorf("options %+v", o)
	}
	for _, bad := range []map[string]string{{"BENCH_STEADY": "10ms"}, {"BENCH_PEERS": "0"}, {"BENCH_ONLY": "nope"}, {"BENCH_REPS": "x"},
		{"BENCH_FAMILIES": "ipx"}, {"BENCH_BASELINE": "prev"}, {"BENCH_METHOD": "route"}} {
		o := DefaultOptions()
		if err := o.FromEnv(func(k string) string { return bad[k] }); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

// A prefix withdrawn and announced again counts once.
func TestWaitAnnounced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "anycastd.log")
	line := func(ms int, m, p string) string {
		return fmt.Sprintf(`{"time":"2026-11-30T05:00:00.%03dZ","level":"INFO","msg":%q,"vip":"v","prefix":%q}`+"\n", ms, m, p)
	}
	log := line(1, "announced", "a") + line(2, "withdrawn", "a") + line(3, "announced", "a") + line(4, "announced", "b")
	if err := os.WriteFile(path, []byte("=== lab: starting anycastd at 05:00:00.000: []\n"+log), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &setup{anyLog: AnycastdLog(path)}
	e, err := s.waitAnnounced(context.Background(), 2)
	if err != nil || e.Time.Nanosecond() != 4e6 {
		t.Errorf("waitAnnounced = %v, %v; want the 4th line", e.Time, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.waitAnnounced(ctx, 3); err == nil {
		t.Error("3 of 2: no error")
	}
}
