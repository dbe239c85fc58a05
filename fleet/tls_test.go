package fleet

import (
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"

	"github.com/anycastd/anycastd/internal/testutil"
	"github.com/anycastd/anycastd/routes"
)

// TestTLS: etcd over https with client certificates.
func TestTLS(t *testing.T) {
	p := testutil.NewPKI(t)
	s := newEtcd(t)
	s.clientURL = strings.Replace(s.clientURL, "http://", "https://", 1)
	s.tls = &transport.TLSInfo{CertFile: p.ServerCert, KeyFile: p.ServerKey, TrustedCAFile: p.CAFile, ClientCertAuth: true}
	s.start()

	cfg := s.fleetCfg("ams1", "edge1")
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = p.CAFile, p.ClientCert, p.ClientKey
	a := startNode(t, cfg)
	a.g.Report(vip, routes.StateUp, time.Now(), "")
	waitFor(t, 5*time.Second, "ams1's entry in etcd over TLS", func() bool {
		v, err := ReadView(t.Context(), cfg)
		return err == nil && len(v.Entries) == 1
	})

	// Without a client certificate, or with one from another CA, etcd
	// refuses it.
	for _, c := range []struct{ what, cert, key string }{{"no client certificate", "", ""}, {"another CA's", p.StrangerCert, p.StrangerKey}} {
		cfg2 := *cfg
		cfg2.CertFile, cfg2.KeyFile = c.cert, c.key
		cfg2.Timeout = 300 * time.Millisecond
		if v, err := ReadView(t.Context(), &cfg2); err == nil {
			t.Errorf("ReadView with %s: %+v", c.what, v)
		}
	}
}
