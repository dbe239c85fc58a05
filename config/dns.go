package config

import "strconv"

// Defaults of dns checks.
const (
	DefaultDNSServer   = "127.0.0.1:53"
	DefaultDNSProtocol = "udp"
	DefaultDNSType     = DNSType(1)  // A
	DefaultDNSRcode    = DNSRcode(0) // NOERROR
)

// DNSQueryTypes are the values query_type accepts (in any case).
var DNSQueryTypes = []string{"A", "AAAA", "CAA", "CNAME", "DNSKEY", "DS", "HTTPS", "MX",
	"NAPTR", "NS", "PTR", "SOA", "SRV", "SVCB", "TLSA", "TXT"}

// DNSRcodes are the values expect_rcode accepts (in any case).
var DNSRcodes = []string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
	"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"}

// dnsTypes are the numbers of DNSQueryTypes (IANA "DNS Parameters").
var dnsTypes = map[string]DNSType{
	"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28,
	"SRV": 33, "NAPTR": 35, "DS": 43, "DNSKEY": 48, "TLSA": 52, "SVCB": 64, "HTTPS": 65, "CAA": 257,
}

// dnsRcodes are the numbers of DNSRcodes.
var dnsRcodes = map[string]DNSRcode{
	"NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "NOTIMP": 4, "REFUSED": 5,
	"YXDOMAIN": 6, "YXRRSET": 7, "NXRRSET": 8, "NOTAUTH": 9, "NOTZONE": 10,
}

// String returns the type's name, e.g. "AAAA"; "TYPE<n>" (RFC 3597) for a
// type not in DNSQueryTypes.
func (t DNSType) String() string {
	for name, n := range dnsTypes {
		if n == t {
			return name
		}
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// String returns the code's name, e.g. "NXDOMAIN"; "RCODE<n>" for a code
// not in DNSRcodes.
func (r DNSRcode) String() string {
	for name, n := range dnsRcodes {
		if n == r {
			return name
		}
	}
	return "RCODE" + strconv.Itoa(int(r))
}

// String returns the answer as written.
func (a DNSAnswer) String() string { return a.Text }
