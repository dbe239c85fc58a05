package health

import (
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/miekg/dns"
)

// testZone answers www.example.test. (A, AAAA, TXT, MX), ten.example.test.
// (A 203.0.113.10) and NXDOMAIN for anything else.
func testZone(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg).SetReply(req)
	q := req.Question[0]
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		return r
	}
	switch {
	case q.Name == "www.example.test." && q.Qtype == dns.TypeA:
		m.Answer = []dns.RR{rr("www.example.test. 60 IN A 203.0.113.1"), rr("www.example.test. 60 IN A 203.0.113.2")}
	case q.Name == "www.example.test." && q.Qtype == dns.TypeAAAA:
		m.Answer = []dns.RR{rr("www.example.test. 60 IN AAAA 2001:db8::1")}
	case q.Name == "www.example.test." && q.Qtype == dns.TypeTXT:
		m.Answer = []dns.RR{rr(`www.example.test. 60 IN TXT "v=1" "ok"`)}
	case q.Name == "www.example.test." && q.Qtype == dns.TypeMX:
		m.Answer = []dns.RR{rr("www.example.test. 60 IN MX 10 Mail.Example.Test.")}
	case q.Name == "ten.example.test." && q.Qtype == dns.TypeA:
		m.Answer = []dns.RR{rr("ten.example.test. 60 IN A 203.0.113.10")}
	case strings.HasSuffix(q.Name, "example.test."):
	default:
		m.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(m)
}

// startDNS serves testZone over UDP and TCP on the same 127.0.0.1 port.
func startDNS(t *testing.T) string {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	var err error
	for range 10 { // the UDP port must also be free for TCP
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: dns.HandlerFunc(testZone)},
		{Listener: ln, Handler: dns.HandlerFunc(testZone)},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan error, 1)
		go func() { done <- srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() {
			srv.Shutdown()
			<-done
		})
	}
	return pc.LocalAddr().String()
}

func TestDNSChecker(t *testing.T) {
	server := startDNS(t)
	for _, proto := range []string{"udp", "tcp"} {
		for _, tc := range []struct {
			name string
			c    config.DNSCheck
			want string
		}{
			{"A", config.DNSCheck{QueryName: "www.example.test"}, ""},
			{"A expected", config.DNSCheck{QueryName: "www.example.test.", ExpectAnswer: []string{"203.0.113.2", "203.0.113.1"}}, ""},
			{"A missing", config.DNSCheck{QueryName: "www.example.test.", ExpectAnswer: []string{"203.0.113.1", "203.0.113.3"}},
				`no answer record holds "203.0.113.3" (answer: A 203.0.113.1, A 203.0.113.2)`},
			{"no prefix match", config.DNSCheck{QueryName: "ten.example.test.", ExpectAnswer: []string{"203.0.113.1"}},
				`no answer record holds "203.0.113.1" (answer: A 203.0.113.10)`},
			{"AAAA", config.DNSCheck{QueryName: "www.example.test.", QueryType: "AAAA", ExpectAnswer: []string{"2001:db8:0::1"}}, ""},
			{"TXT", config.DNSCheck{QueryName: "www.example.test.", QueryType: "TXT", ExpectAnswer: []string{"v=1ok"}}, ""},
			{"MX", config.DNSCheck{QueryName: "www.example.test.", QueryType: "MX", ExpectAnswer: []string{"10 mail.example.test"}}, ""},
			{"no data", config.DNSCheck{QueryName: "www.example.test.", QueryType: "SRV", ExpectAnswer: []string{"x"}},
				`no answer record holds "x" (answer: none)`},
			{"NXDOMAIN", config.DNSCheck{QueryName: "nope.invalid."}, "rcode NXDOMAIN, want NOERROR"},
			{"NXDOMAIN expected", config.DNSCheck{QueryName: "nope.invalid.", ExpectRcode: "NXDOMAIN"}, ""},
			{"NOERROR not NXDOMAIN", config.DNSCheck{QueryName: "www.example.test.", ExpectRcode: "NXDOMAIN"},
				"rcode NOERROR, want NXDOMAIN"},
		} {
			t.Run(proto+"/"+tc.name, func(t *testing.T) {
				tc.c.Server, tc.c.Protocol = server, proto
				wantCheck(t, mustChecker(t, config.Check{Type: config.CheckDNS, DNS: &tc.c}), tc.want)
			})
		}
	}

	t.Run("no server", func(t *testing.T) {
		ln := listen(t)
		addr := ln.Addr().String()
		ln.Close()
		ch := mustChecker(t, config.Check{Type: config.CheckDNS, DNS: &config.DNSCheck{
			Server: addr, Protocol: "tcp", QueryName: "www.example.test."}})
		wantCheck(t, ch, "~connection refused")
	})
	t.Run("silent server", func(t *testing.T) {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		ch := mustChecker(t, config.Check{Type: config.CheckDNS, DNS: &config.DNSCheck{
			Server: pc.LocalAddr().String(), QueryName: "www.example.test."}})
		start := time.Now()
		if err := checkWithin(t, ch, 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), "timeout") {
			t.Errorf("err = %v, want a timeout", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Check took %v after a 100ms deadline", d)
		}
	})
}

// Every query type and rcode the config accepts is known to the checker.
func TestDNSConfigNames(t *testing.T) {
	for _, qt := range config.DNSQueryTypes {
		for _, rc := range config.DNSRcodes {
			_, err := NewChecker(config.Check{Type: config.CheckDNS, DNS: &config.DNSCheck{
				QueryName: "example.net.", QueryType: qt, ExpectRcode: rc}})
			if err != nil {
				t.Errorf("%s/%s: %v", qt, rc, err)
			}
		}
	}
	_, err := NewChecker(config.Check{Type: config.CheckDNS, DNS: &config.DNSCheck{
		QueryName: strings.Repeat("a", 64) + ".example.net."}})
	if err == nil || !strings.Contains(err.Error(), "cannot run: dns query") {
		t.Errorf("label too long: err = %v", err)
	}
	if !slices.Contains(config.DNSQueryTypes, config.DefaultDNSType) {
		t.Errorf("default query type %q not accepted", config.DefaultDNSType)
	}
}
