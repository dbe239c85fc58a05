package config

import (
	"slices"
	"testing"
)

// Every accepted name has a number, and the number prints as that name.
func TestDNSNames(t *testing.T) {
	if len(dnsTypes) != len(DNSQueryTypes) || len(dnsRcodes) != len(DNSRcodes) {
		t.Errorf("%d type numbers for %d names, %d rcode numbers for %d names",
			len(dnsTypes), len(DNSQueryTypes), len(dnsRcodes), len(DNSRcodes))
	}
	for _, name := range DNSQueryTypes {
		n, ok := dnsTypes[name]
		if !ok || n.String() != name {
			t.Errorf("query type %s: number %d (known %v) prints as %s", name, n, ok, n)
		}
	}
	for _, name := range DNSRcodes {
		n, ok := dnsRcodes[name]
		if !ok || n.String() != name {
			t.Errorf("rcode %s: number %d (known %v) prints as %s", name, n, ok, n)
		}
	}
	if !slices.Contains(DNSQueryTypes, DefaultDNSType.String()) || DefaultDNSType.String() != "A" ||
		DefaultDNSRcode.String() != "NOERROR" {
		t.Errorf("defaults %s, %s", DefaultDNSType, DefaultDNSRcode)
	}
	if s := DNSType(65280).String(); s != "TYPE65280" {
		t.Errorf("unknown type prints as %s", s)
	}
	if s := DNSRcode(23).String(); s != "RCODE23" {
		t.Errorf("unknown rcode prints as %s", s)
	}
}
