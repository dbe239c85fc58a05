package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"
)

// maxTLSFileSize bounds the files named by ca_file, cert_file and key_file.
const maxTLSFileSize = 1 << 20

// tlsClient validates the TLS keys of r. enabled says whether the check uses
// TLS; if it does not, each TLS key set is reported as requiring enabler. It
// returns nil when no TLS key is set (or TLS is not enabled).
func (s scope) tlsClient(r *rawCheck, enabled bool, enabler string) *TLSClient {
	set := false
	for _, k := range []struct {
		key string
		v   any
	}{
		{"tls_server_name", r.TLSServerName}, {"ca_file", r.CAFile}, {"cert_file", r.CertFile},
		{"key_file", r.KeyFile}, {"insecure_skip_verify", r.InsecureSkipVerify},
	} {
		if k.v != nil {
			set = true
			if !enabled {
				s.keyErr(k.key, "requires %s", enabler)
			}
		}
	}
	if !set || !enabled {
		return nil
	}
	t := &TLSClient{}
	if x, ok := s.str("tls_server_name", r.TLSServerName); ok {
		if x == "" || strings.ContainsFunc(x, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '/' || r == ':' }) {
			s.keyErr("tls_server_name", "%q is not a valid server name", x)
		}
		t.ServerName = x
	}
	t.InsecureSkipVerify, _ = s.boolean("insecure_skip_verify", r.InsecureSkipVerify)
	if x, ok := s.str("ca_file", r.CAFile); ok {
		t.CAFile = x
		if pem, ok := s.readFile("ca_file", x); ok && !x509.NewCertPool().AppendCertsFromPEM(pem) {
			s.keyErr("ca_file", "no PEM certificate in %q", x)
		}
	}
	cert, certOK := s.str("cert_file", r.CertFile)
	key, keyOK := s.str("key_file", r.KeyFile)
	t.CertFile, t.KeyFile = cert, key
	s.keyPair("cert_file", "key_file", cert, key, certOK, keyOK, r.CertFile, r.KeyFile)
	return t
}

// readFile reads the regular file name given in key.
func (s scope) readFile(key, name string) ([]byte, bool) {
	if name == "" {
		s.keyErr(key, "must not be empty")
		return nil, false
	}
	fi, err := os.Stat(name)
	if err == nil && !fi.Mode().IsRegular() {
		s.keyErr(key, "%q is not a regular file", name)
		return nil, false
	}
	if err == nil && fi.Size() > maxTLSFileSize {
		s.keyErr(key, "%q is larger than 1 MiB", name)
		return nil, false
	}
	var b []byte
	if err == nil {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		s.fileErr(key, name, err)
		return nil, false
	}
	return b, true
}

// fileErr reports that the file name in key cannot be used.
func (s scope) fileErr(key, name string, err error) {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.keyErr(key, "%q does not exist", name)
	case errors.As(err, &pe):
		s.keyErr(key, "cannot read %q: %v", name, pe.Err)
	default:
		s.keyErr(key, "cannot read %q: %v", name, err)
	}
}

func (s scope) dnsCheck(r *rawCheck) *DNSCheck {
	d := &DNSCheck{Server: DefaultDNSServer, Protocol: DefaultDNSProtocol, QueryType: DefaultDNSType, ExpectRcode: DefaultDNSRcode}
	if x, ok := s.str("server", r.Server); ok {
		if a, err := netip.ParseAddr(x); err == nil {
			x = net.JoinHostPort(a.String(), "53")
		} else if !validHostPort(x, false) {
			s.keyErr("server", "%q must be host:port or an IP address", x)
		}
		d.Server = x
	}
	if x, ok := s.oneOf("protocol", r.Protocol, "udp", "tcp"); ok {
		d.Protocol = x
	}
	if r.QueryName == nil {
		s.missing("query_name")
	} else if x, ok := s.str("query_name", r.QueryName); ok {
		if !validDomain(x) {
			s.keyErr("query_name", "%q is not a valid domain name", x)
		}
		if !strings.HasSuffix(x, ".") {
			x += "."
		}
		d.QueryName = x
	}
	if x, ok := s.str("query_type", r.QueryType); ok {
		t, known := dnsTypes[strings.ToUpper(x)]
		if !known {
			s.keyErr("query_type", "%q is not one of %s", x, strings.Join(DNSQueryTypes, ", "))
		}
		d.QueryType = t // 0 if unknown: expect_answer is then not checked against it
	}
	if x, ok := s.str("expect_rcode", r.ExpectRcode); ok {
		rc, known := dnsRcodes[strings.ToUpper(x)]
		if !known {
			s.keyErr("expect_rcode", "%q is not one of %s", x, strings.Join(DNSRcodes, ", "))
		}
		d.ExpectRcode = rc
	}
	xs, ok := s.strings("expect_answer", r.ExpectAnswer)
	if ok && len(xs) == 0 {
		s.keyErr("expect_answer", "must not be empty")
	}
	for _, e := range xs {
		a, err := netip.ParseAddr(e.s)
		switch {
		case e.s == "":
			s.elemErr("expect_answer", e.i, "element %d must not be empty", e.i+1)
		case d.QueryType == dnsTypes["A"] && (err != nil || !a.Is4()):
			s.elemErr("expect_answer", e.i, "%q is not an IPv4 address (query_type A)", e.s)
		case d.QueryType == dnsTypes["AAAA"] && (err != nil || !a.Is6() || a.Is4In6()):
			s.elemErr("expect_answer", e.i, "%q is not an IPv6 address (query_type AAAA)", e.s)
		}
		ans := DNSAnswer{Text: e.s}
		if err == nil {
			ans.Addr = a.Unmap()
		}
		d.ExpectAnswer = append(d.ExpectAnswer, ans)
	}
	return d
}

// validDomain reports whether n is a domain name made of letters, digits,
// '-', '_' and '*', with an optional final dot.
func validDomain(n string) bool {
	if n == "." {
		return true
	}
	n = strings.TrimSuffix(n, ".")
	if n == "" || len(n) > 253 {
		return false
	}
	for l := range strings.SplitSeq(n, ".") {
		if l == "" || len(l) > 63 || strings.ContainsFunc(l, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '*')
		}) {
			return false
		}
	}
	return true
}

func (s scope) execCheck(r *rawCheck) *ExecCheck {
	e := &ExecCheck{}
	e.Shell, _ = s.boolean("shell", r.Shell)
	switch {
	case r.Command == nil:
		s.missing("command")
	case e.Shell:
		x, isStr := r.Command.(string)
		switch {
		case !isStr:
			s.typeErr("command", "a string with shell = true", r.Command)
		case strings.TrimSpace(x) == "":
			s.keyErr("command", "must not be empty")
		}
		e.Command = []string{"/bin/sh", "-c", x}
	default:
		if x, isStr := r.Command.(string); isStr {
			s.keyErr("command", "expected an array of strings, got %s (set shell = true to run it with /bin/sh -c)", describe(x))
			break
		}
		xs, ok := s.strings("command", r.Command)
		if !ok {
			break
		}
		argv := make([]string, len(xs))
		for i, x := range xs {
			argv[i] = x.s
		}
		switch {
		case len(argv) == 0:
			s.keyErr("command", "must not be empty")
		case argv[0] == "":
			s.keyErr("command", "the program (first element) must not be empty")
		}
		e.Command = argv
	}
	e.Env = s.stringTable("env", r.Env, func(k, val string) (string, bool) {
		switch {
		case k == "" || strings.ContainsAny(k, "=\x00"):
			s.keyErr("env", "%q is not a valid variable name", k)
		case strings.ContainsRune(val, 0):
			s.keyErr("env", "%q: the value must not contain NUL", k)
		default:
			return k, true
		}
		return "", false
	})
	if x, ok := s.str("dir", r.Dir); ok {
		fi, err := os.Stat(x)
		switch {
		case x == "":
			s.keyErr("dir", "must not be empty")
		case err != nil:
			s.fileErr("dir", x, err)
		case !fi.IsDir():
			s.keyErr("dir", "%q is not a directory", x)
		}
		e.Dir = x
	}
	return e
}

// keyPair validates a certificate file and key file pair (keys certKey and
// keyKey; cert and key as read, ok when set as a string; rawCert and rawKey
// as decoded, nil when absent): each requires the other, and both files
// must load as one TLS key pair.
func (s scope) keyPair(certKey, keyKey, cert, key string, certOK, keyOK bool, rawCert, rawKey any) {
	switch {
	case certOK && rawKey == nil:
		s.keyErr(certKey, "requires %s", keyKey)
	case keyOK && rawCert == nil:
		s.keyErr(keyKey, "requires %s", certKey)
	case certOK && keyOK:
		certPEM, ok1 := s.readFile(certKey, cert)
		keyPEM, ok2 := s.readFile(keyKey, key)
		if ok1 && ok2 {
			if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
				s.keyErr(certKey, "%q and %s %q: %v", cert, keyKey, key, err)
			}
		}
	}
}
