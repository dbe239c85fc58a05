package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"strings"
)

// api validates [api].
func (c *collector) api(r *rawAPI) API {
	if r == nil {
		return API{Listen: DefaultAPIListen}
	}
	a := API{Listen: c.listen(&rawListen{Pos: r.Pos, Listen: r.Listen}, "api", DefaultAPIListen, true)}
	s := scope{c: c, path: "api", node: r.Pos.Node, hdr: r.Pos.At}
	unix := strings.HasPrefix(a.Listen, unixListenPrefix)
	tcp := a.Listen != "" && !unix

	if x, ok := s.str("group", r.Group); ok {
		a.Group = x
		switch {
		case !unix:
			s.keyErr("group", "applies only to a unix socket listen (unix:///path)")
		case x == "":
			s.keyErr("group", "must not be empty")
		default:
			if _, err := LookupGroup(x); err != nil {
				s.keyErr("group", "%v", err)
			}
		}
	}
	if x, ok := s.str("tcp_listen", r.TCPListen); ok && x != "" {
		a.TCPListen = x
		tcp = true
		if !validHostPort(x, true) {
			s.keyErr("tcp_listen", "%q must be host:port", x)
		}
	}

	cert, certOK := s.str("tls_cert_file", r.TLSCertFile)
	key, keyOK := s.str("tls_key_file", r.TLSKeyFile)
	a.TLSCertFile, a.TLSKeyFile = cert, key
	switch {
	case (certOK || keyOK) && !tcp:
		k := "tls_cert_file"
		if !certOK {
			k = "tls_key_file"
		}
		s.keyErr(k, "needs a TCP listener (tcp_listen)")
	default:
		s.keyPair("tls_cert_file", "tls_key_file", cert, key, certOK, keyOK, r.TLSCertFile, r.TLSKeyFile)
	}
	if x, ok := s.str("client_ca_file", r.ClientCAFile); ok {
		a.ClientCAFile = x
		if !certOK {
			s.keyErr("client_ca_file", "requires tls_cert_file and tls_key_file (client certificates need TLS)")
		} else if pem, ok := s.readFile("client_ca_file", x); ok && !x509.NewCertPool().AppendCertsFromPEM(pem) {
			s.keyErr("client_ca_file", "no PEM certificate in %q", x)
		}
	}
	return a
}

// LookupGroup resolves a group name or numeric ID to its ID.
func LookupGroup(name string) (int, error) {
	var g *user.Group
	var err error
	if _, nerr := strconv.Atoi(name); nerr == nil {
		g, err = user.LookupGroupId(name)
	} else {
		g, err = user.LookupGroup(name)
	}
	var unknownName user.UnknownGroupError
	var unknownID user.UnknownGroupIdError
	if errors.As(err, &unknownName) || errors.As(err, &unknownID) {
		return 0, fmt.Errorf("group %q does not exist", name)
	}
	if err != nil {
		return 0, fmt.Errorf("looking up group %q: %w", name, err)
	}
	return strconv.Atoi(g.Gid)
}
