package config

import (
	"net/url"
	"regexp"
	"testing"
	"time"
)

func TestCheckEqual(t *testing.T) {
	base := func() Check {
		return Check{Name: "web", Type: CheckHTTP, Interval: time.Second, Line: 7, HTTP: &HTTPCheck{
			URL: "http://127.0.0.1/x", ParsedURL: mustURL("http://127.0.0.1/x"), Method: "GET",
			ExpectStatus: []StatusRange{{200, 299}}, ExpectBodyRegex: regexp.MustCompile("^ok"),
			Headers: map[string]string{"X-A": "b"}, MaxBodyBytes: 1024,
		}}
	}
	for _, tc := range []struct {
		name  string
		edit  func(c *Check)
		equal bool
	}{
		{"same", func(c *Check) {}, true},
		{"line", func(c *Check) { c.Line = 99 }, true},
		{"regexp compiled again", func(c *Check) { c.HTTP.ExpectBodyRegex = regexp.MustCompile("^ok") }, true},
		{"url parsed again", func(c *Check) { c.HTTP.ParsedURL, _ = url.Parse("http://127.0.0.1/x") }, true},
		{"regexp", func(c *Check) { c.HTTP.ExpectBodyRegex = regexp.MustCompile("^up") }, false},
		{"no regexp", func(c *Check) { c.HTTP.ExpectBodyRegex = nil }, false},
		{"url", func(c *Check) { c.HTTP.URL = "http://127.0.0.1/y" }, false},
		{"header", func(c *Check) { c.HTTP.Headers["X-A"] = "c" }, false},
		{"status", func(c *Check) { c.HTTP.ExpectStatus = []StatusRange{{200, 200}} }, false},
		{"interval", func(c *Check) { c.Interval = 2 * time.Second }, false},
		{"tls", func(c *Check) { c.HTTP.TLS = &TLSClient{} }, false},
		{"another table", func(c *Check) { c.TCP = &TCPCheck{Address: "127.0.0.1:80"} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := base(), base()
			tc.edit(&b)
			if got := a.Equal(b); got != tc.equal {
				t.Errorf("Equal = %v, want %v", got, tc.equal)
			}
			if got := b.Equal(a); got != tc.equal {
				t.Errorf("reversed: Equal = %v, want %v", got, tc.equal)
			}
		})
	}

	dns := func(answers ...DNSAnswer) Check {
		return Check{Name: "dns", Type: CheckDNS, DNS: &DNSCheck{Server: DefaultDNSServer, Protocol: "udp",
			QueryName: "example.net.", QueryType: DefaultDNSType, ExpectAnswer: answers}}
	}
	one := DNSAnswer{Text: "203.0.113.1", Addr: addr("203.0.113.1")}
	if !dns(one).Equal(dns(one)) || dns(one).Equal(dns(DNSAnswer{Text: "203.0.113.2", Addr: addr("203.0.113.2")})) ||
		dns(one).Equal(dns()) {
		t.Error("DNS checks: Equal does not follow expect_answer")
	}
}
