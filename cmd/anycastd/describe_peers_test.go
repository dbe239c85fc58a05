package main

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/anycastd/anycastd/config"
)

// -check-config lists, for each VIP prefix, the sessions it is sent to:
// vip.peers and the sessions' families decide.
func TestDescribeShowsPeersOfEachVIP(t *testing.T) {
	cfg, err := config.Parse([]byte(`
[bgp]
asn = 65001
router_id = "198.18.1.2"

[[bgp.peer]]
address = "198.18.1.1"
asn = 65000
communities = ["65001:9"]

[[bgp.peer]]
address = "198.18.2.1"
asn = 65001

[[check]]
name = "web"
type = "tcp"
address = "127.0.0.1:80"

[[vip]]
name = "web"
prefixes = ["203.0.113.42/32"]
checks = ["web"]
prepend = 2

[[vip]]
name = "api"
prefixes = ["203.0.113.50/32"]
checks = ["web"]
peers = ["198.18.2.1"]
`))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	describe(&b, "t.toml", cfg)
	for _, want := range []string{
		`(?m)^web\s+203\.0\.113\.42/32\s+198\.18\.1\.1,198\.18\.2\.1\s.*prepend 2 \(eBGP\)`,
		`(?m)^api\s+203\.0\.113\.50/32\s+198\.18\.2\.1\s`,
		`(?m)^198\.18\.1\.1\s.*\+community 65001:9`,
	} {
		if !regexp.MustCompile(want).MatchString(b.String()) {
			t.Errorf("output does not match %s:\n%s", want, b.String())
		}
	}
}
