package health

import (
	"net"
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
			keys string
			want string
		}{
			{"A", `query_name = "www.example.test"`, ""},
			{"A expected", `query_name = "www.example.test."
expect_answer = ["203.0.113.2", "203.0.113.1"]`, ""},
			{"A missing", `query_name = "www.example.test."
expect_answer = ["203.0.113.1", "203.0.113.3"]`,
				`no answer record holds "203.0.113.3" (answer: A 203.0.113.1, A 203.0.113.2)`},
			{"no prefix match", `query_name = "ten.example.test."
expect_answer = ["203.0.113.1"]`, `no answer record holds "203.0.113.1" (answer: A 203.0.113.10)`},
			{"AAAA", `query_name = "www.example.test."
query_type = "AAAA"
expect_answer = ["2001:db8:0::1"]`, ""},
			{"TXT", `query_name = "www.example.test."
query_type = "txt"
expect_answer = ["v=1ok"]`, ""},
			{"MX", `query_name = "www.example.test."
query_type = "MX"
expect_answer = ["10 mail.example.test"]`, ""},
			{"no data", `query_name = "www.example.test."
query_type = "SRV"
expect_answer = ["x"]`, `no answer record holds "x" (answer: none)`},
			{"NXDOMAIN", `query_name = "nope.invalid."`, "rcode NXDOMAIN, want NOERROR"},
			{"NXDOMAIN expected", `query_name = "nope.invalid."
expect_rcode = "NXDOMAIN"`, ""},
			{"NOERROR not NXDOMAIN", `query_name = "www.example.test."
expect_rcode = "nxdomain"`, "rcode NOERROR, want NXDOMAIN"},
		} {
			t.Run(proto+"/"+tc.name, func(t *testing.T) {
				c := parseCheck(t, "type = 'dns'\nserver = %q\nprotocol = %q\n"+tc.keys, server, proto)
				wantCheck(t, mustChecker(t, c), tc.want)
			})
		}
	}

	t.Run("no server", func(t *testing.T) {
		ln := listen(t)
		addr := ln.Addr().String()
		ln.Close()
		ch := mustChecker(t, parseCheck(t, "type = 'dns'\nserver = %q\nprotocol = 'tcp'\nquery_name = 'www.example.test.'", addr))
		wantCheck(t, ch, "~connection refused")
	})
	t.Run("silent server", func(t *testing.T) {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		ch := mustChecker(t, parseCheck(t, "type = 'dns'\nserver = %q\nquery_name = 'www.example.test.'", pc.LocalAddr().String()))
		start := time.Now()
		if err := checkWithin(t, ch, 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), "timeout") {
			t.Errorf("err = %v, want a timeout", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Check took %v after a 100ms deadline", d)
		}
	})
}

// config's numbers for the query types and rcodes it accepts are the DNS
// library's, and the longest name it accepts fits a query.
func TestDNSConfigNames(t *testing.T) {
	for _, qt := range config.DNSQueryTypes {
		c := parseCheck(t, "type = 'dns'\nquery_name = 'example.net.'\nquery_type = %q", qt)
		if n, ok := dns.StringToType[qt]; !ok || uint16(c.DNS.QueryType) != n {
			t.Errorf("query type %s: config %d, the DNS library %d (known %v)", qt, c.DNS.QueryType, n, ok)
		}
	}
	for _, rc := range config.DNSRcodes {
		c := parseCheck(t, "type = 'dns'\nquery_name = 'example.net.'\nexpect_rcode = %q", rc)
		if n, ok := dns.StringToRcode[rc]; !ok || int(c.DNS.ExpectRcode) != n {
			t.Errorf("rcode %s: config %d, the DNS library %d (known %v)", rc, c.DNS.ExpectRcode, n, ok)
		}
	}
	c := parseCheck(t, "type = 'dns'\nquery_name = 'example.net.'")
	if c.DNS.QueryType != config.DNSType(dns.TypeA) || c.DNS.ExpectRcode != config.DNSRcode(dns.RcodeSuccess) {
		t.Errorf("defaults %s, %s; want A, NOERROR", c.DNS.QueryType, c.DNS.ExpectRcode)
	}

	label := strings.Repeat("a", 63)
	longest := strings.Join([]string{label, label, label, label[:61]}, ".") // 253 characters
	c = parseCheck(t, "type = 'dns'\nquery_name = %q", longest)
	if _, err := newDNSChecker(*c.DNS).query().Pack(); err != nil {
		t.Errorf("longest name: %v", err)
	}
}
