package health

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/miekg/dns"
)

const (
	// dnsUDPSize is the EDNS0 buffer size advertised over UDP (the DNS Flag
	// Day 2020 value), so that answers up to it are not truncated.
	dnsUDPSize = 1232
	// maxDNSAnswersQuoted is how many answer records an error message lists.
	maxDNSAnswersQuoted = 5
)

// dnsChecker passes when the server answers a query with the expected rcode
// and, when configured, answer records holding each expected value.
type dnsChecker struct {
	server string
	client dns.Client
	name   string
	qtype  uint16
	rcode  int
	expect []config.DNSAnswer
}

func newDNSChecker(c config.DNSCheck) *dnsChecker {
	d := &dnsChecker{server: c.Server, name: c.QueryName, qtype: uint16(c.QueryType),
		rcode: int(c.ExpectRcode), expect: c.ExpectAnswer}
	d.client.Net = c.Protocol
	return d
}

// query returns a new query message with a random ID.
func (d *dnsChecker) query() *dns.Msg {
	m := new(dns.Msg).SetQuestion(d.name, d.qtype) // recursion desired
	if d.client.Net == "udp" {
		m.SetEdns0(dnsUDPSize, false)
	}
	return m
}

// Check implements Checker.
func (d *dnsChecker) Check(ctx context.Context) error {
	conn, err := d.client.DialContext(ctx, d.server)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Cancelling ctx (shutdown) cuts the exchange short; its deadline is
	// applied by the exchange itself.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	r, _, err := d.client.ExchangeWithConnContext(ctx, d.query(), conn)
	if err != nil {
		return err
	}
	if r.Rcode != d.rcode {
		return fmt.Errorf("rcode %s, want %s", rcodeName(r.Rcode), rcodeName(d.rcode))
	}
	for _, want := range d.expect {
		if !anyAnswerMatches(r.Answer, want) {
			msg := fmt.Sprintf("no answer record holds %q (answer: %s)", want.Text, answerSummary(r.Answer))
			if r.Truncated {
				msg += "; the response was truncated, try protocol = \"tcp\""
			}
			return fmt.Errorf("%s", msg)
		}
	}
	return nil
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return strconv.Itoa(rc)
}

// rdata returns the text of rr without its header: "203.0.113.1",
// "10 mail.example.net.".
func rdata(rr dns.RR) string {
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

func anyAnswerMatches(answer []dns.RR, want config.DNSAnswer) bool {
	for _, rr := range answer {
		if answerMatches(rr, want) {
			return true
		}
	}
	return false
}

// answerMatches reports whether want is the rdata of rr: the same text, the
// same IP address, the same name (case and final dot aside) or, for TXT
// records, the same unquoted text. A prefix or substring is not enough:
// "203.0.113.1" does not match 203.0.113.10.
func answerMatches(rr dns.RR, want config.DNSAnswer) bool {
	if txt, ok := rr.(*dns.TXT); ok && strings.Join(txt.Txt, "") == want.Text {
		return true
	}
	got := rdata(rr)
	if got == want.Text {
		return true
	}
	if want.Addr.IsValid() {
		b, err := netip.ParseAddr(got)
		return err == nil && want.Addr == b.Unmap()
	}
	return strings.EqualFold(strings.TrimSuffix(got, "."), strings.TrimSuffix(want.Text, "."))
}

// answerSummary lists the first answer records' rdata for an error message.
func answerSummary(answer []dns.RR) string {
	if len(answer) == 0 {
		return "none"
	}
	parts := make([]string, 0, min(len(answer), maxDNSAnswersQuoted)+1)
	for i, rr := range answer {
		if i == maxDNSAnswersQuoted {
			parts = append(parts, fmt.Sprintf("and %d more", len(answer)-i))
			break
		}
		parts = append(parts, dns.TypeToString[rr.Header().Rrtype]+" "+rdata(rr))
	}
	return strings.Join(parts, ", ")
}
