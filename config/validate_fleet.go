package config

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// Fleet is the [fleet] table: the sites share a view of who announces what
// in etcd, and a floor under health-driven withdrawals (VIP.MinSites).
type Fleet struct {
	// EtcdEndpoints are the etcd members' client URLs (http:// or
	// https://, host:port); at least one.
	EtcdEndpoints []string
	// Site names this node's site: sites are counted, not nodes (two nodes
	// of one site are one site). 1..63 of [A-Za-z0-9._-].
	Site string
	// Node names this node, unique within its site: a node is known as
	// site/node (default: the host name, up to its first dot).
	Node string
	// KeyPrefix is where anycastd's keys live in etcd (default
	// "/anycastd/"); it starts and ends with "/".
	KeyPrefix string
	// CAFile, CertFile, KeyFile: etcd's TLS (PEM). CAFile empty: the
	// system's roots; CertFile and KeyFile together, for client
	// certificates.
	CAFile, CertFile, KeyFile string
	// OnCoordinatorLost is CoordinatorLostHold (default: health-driven
	// withdrawals wait, announced degraded, while etcd cannot be reached)
	// or CoordinatorLostLocal (every site decides alone, as without
	// [fleet]).
	OnCoordinatorLost string
	// MaxDrained is how many sites may be drained voluntarily (API,
	// maintenance file, stop) at once, fleet-wide; 0: no limit.
	MaxDrained int
	// LeaseTTL is the lease under which this node's keys live: a node
	// that dies stops counting this long after its last keep-alive
	// (default 10s, 2s..5m).
	LeaseTTL time.Duration
	// Timeout bounds each exchange with etcd (default 2s, 100ms..30s);
	// a decision that cannot be taken within it counts as the coordinator
	// lost.
	Timeout time.Duration
}

// Values of Fleet.OnCoordinatorLost.
const (
	CoordinatorLostHold  = "hold"
	CoordinatorLostLocal = "local"
)

// Defaults and limits of [fleet].
const (
	DefaultFleetKeyPrefix = "/anycastd/"
	DefaultFleetLeaseTTL  = 10 * time.Second
	DefaultFleetTimeout   = 2 * time.Second
	// DefaultMinSites is a VIP's min_sites with [fleet].
	DefaultMinSites = 1
	maxMinSites     = 1000
)

var fleetName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,63}$`)

// hostname is the default [fleet] node (a variable for tests).
var hostname = os.Hostname

// fleet validates [fleet]; nil when absent.
func (c *collector) fleet(r *rawFleet) *Fleet {
	if r == nil {
		return nil
	}
	s := scope{c: c, path: "fleet", node: r.Pos.Node, hdr: r.Pos.At}
	f := &Fleet{
		KeyPrefix:         DefaultFleetKeyPrefix,
		OnCoordinatorLost: CoordinatorLostHold,
		LeaseTTL:          DefaultFleetLeaseTTL,
		Timeout:           DefaultFleetTimeout,
	}
	https := false
	schemes, seen := map[string]bool{}, map[string]bool{}
	if r.EtcdEndpoints == nil {
		s.missing("etcd_endpoints")
	} else if xs, ok := s.strings("etcd_endpoints", r.EtcdEndpoints); ok {
		if len(xs) == 0 {
			s.keyErr("etcd_endpoints", "must not be empty")
		}
		for _, e := range xs {
			u, err := url.Parse(e.s)
			switch {
			case !strings.HasPrefix(e.s, "http://") && !strings.HasPrefix(e.s, "https://"):
				s.elemErr("etcd_endpoints", e.i, "%q must start with http:// or https://", e.s)
			case err != nil:
				s.elemErr("etcd_endpoints", e.i, "%q is not a URL: %v", e.s, err)
			case u.Scheme != "http" && u.Scheme != "https":
				s.elemErr("etcd_endpoints", e.i, "%q must start with http:// or https://", e.s)
			case u.Port() == "" || !validHostPort(u.Host, false) || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil:
				s.elemErr("etcd_endpoints", e.i, "%q must be scheme://host:port, nothing more (etcd's client port is usually 2379)", e.s)
			case seen[e.s]:
				s.elemErr("etcd_endpoints", e.i, "%q is listed twice", e.s)
			default:
				seen[e.s] = true
				schemes[u.Scheme] = true
				https = https || u.Scheme == "https"
				f.EtcdEndpoints = append(f.EtcdEndpoints, e.s)
			}
		}
		if len(schemes) > 1 {
			s.keyErr("etcd_endpoints", "mixes http:// and https://: one etcd cluster speaks one of them")
		}
	}
	if r.Site == nil {
		s.missing("site")
	} else if x, ok := s.str("site", r.Site); ok {
		if !fleetName.MatchString(x) {
			s.keyErr("site", "%q must be 1 to 63 letters, digits, '.', '_' or '-'", x)
		}
		f.Site = x
	}
	if x, ok := s.str("node", r.Node); ok {
		if !fleetName.MatchString(x) {
			s.keyErr("node", "%q must be 1 to 63 letters, digits, '.', '_' or '-'", x)
		}
		f.Node = x
	} else if r.Node == nil {
		h, err := hostname()
		h, _, _ = strings.Cut(h, ".")
		if err != nil || !fleetName.MatchString(h) {
			s.at("", "the host name %q cannot name this node: set node", h)
		}
		f.Node = h
	}
	if x, ok := s.str("key_prefix", r.KeyPrefix); ok {
		if !strings.HasPrefix(x, "/") || !strings.HasSuffix(x, "/") || len(x) < 2 || strings.ContainsAny(x, "\x00") {
			s.keyErr("key_prefix", "%q must start and end with \"/\", e.g. \"/anycastd/\"", x)
		}
		f.KeyPrefix = x
	}
	if x, ok := s.oneOf("on_coordinator_lost", r.OnCoordinatorLost, CoordinatorLostHold, CoordinatorLostLocal); ok {
		f.OnCoordinatorLost = x
	}
	if x, ok := s.integer("max_drained", r.MaxDrained, 0, maxMinSites); ok {
		f.MaxDrained = int(x)
	}
	if d, ok := s.duration("lease_ttl", r.LeaseTTL); ok {
		if d < 2*time.Second || d > 5*time.Minute || d%time.Second != 0 {
			s.keyErr("lease_ttl", "%s must be whole seconds within 2s..5m", d)
		} else {
			f.LeaseTTL = d
		}
	}
	if d, ok := s.duration("timeout", r.Timeout); ok {
		if d < 100*time.Millisecond || d > 30*time.Second {
			s.keyErr("timeout", "%s is outside 100ms..30s", d)
		} else {
			f.Timeout = d
		}
	}
	s.fleetTLS(r, f, https)
	return f
}

// fleetTLS validates [fleet]'s ca_file, cert_file and key_file.
func (s scope) fleetTLS(r *rawFleet, f *Fleet, https bool) {
	ca, caOK := s.str("ca_file", r.CAFile)
	cert, certOK := s.str("cert_file", r.CertFile)
	key, keyOK := s.str("key_file", r.KeyFile)
	f.CAFile, f.CertFile, f.KeyFile = ca, cert, key
	if (caOK || certOK || keyOK) && !https {
		k := "ca_file"
		switch {
		case certOK:
			k = "cert_file"
		case keyOK:
			k = "key_file"
		}
		s.keyErr(k, "needs https:// etcd_endpoints (TLS)")
		return
	}
	s.keyPair("cert_file", "key_file", cert, key, certOK, keyOK, r.CertFile, r.KeyFile)
	if caOK {
		if pem, ok := s.readFile("ca_file", ca); ok && !x509.NewCertPool().AppendCertsFromPEM(pem) {
			s.keyErr("ca_file", "no PEM certificate in %q", ca)
		}
	}
}

// minSites validates each VIP's min_sites, which needs [fleet].
func (c *collector) minSites(rs []*rawVIP, cfg *Config) {
	for i := range cfg.VIPs {
		if i >= len(rs) {
			break
		}
		r := rs[i]
		v := &cfg.VIPs[i]
		s := scope{c: c, path: fmt.Sprintf("vip[%d]", i+1), node: r.Pos.Node, hdr: r.Pos.At}
		if v.Name != "" {
			s.path = fmt.Sprintf("vip %q", v.Name)
		}
		if cfg.Fleet != nil {
			v.MinSites = DefaultMinSites
		}
		x, ok := s.integer("min_sites", r.MinSites, 0, maxMinSites)
		switch {
		case !ok:
		case cfg.Fleet == nil:
			s.keyErr("min_sites", "needs a [fleet] table (the sites count each other through etcd)")
		default:
			v.MinSites = int(x)
		}
	}
}
