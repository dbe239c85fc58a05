package lab

import (
	"slices"
	"strings"
	"testing"
)

func TestParseExecLine(t *testing.T) {
	tests := []struct {
		line       string
		argv       []string
		background bool
	}{
		{"ip addr add 198.18.1.2/24 dev eth1", []string{"ip", "addr", "add", "198.18.1.2/24", "dev", "eth1"}, false},
		{`sh -c "siteweb -name site-a -listen 203.0.113.10:80 >/var/log/siteweb.log 2>&1 &"`,
			[]string{"siteweb", "-name", "site-a", "-listen", "203.0.113.10:80"}, true},
		{`bash -c 'nohup siteweb -name "site a" > /tmp/x 2>&1&'`, []string{"siteweb", "-name", "site a"}, true},
		{`sh -c "echo hi > /tmp/x"`, []string{"sh", "-c", "echo hi > /tmp/x"}, false},
		{`sysctl -w net.ipv4.ip_forward=1`, []string{"sysctl", "-w", "net.ipv4.ip_forward=1"}, false},
		{`echo 'a b' "c \"d\"" e\ f`, []string{"echo", "a b", `c "d"`, "e f"}, false},
	}
	for _, tt := range tests {
		got, err := parseExecLine(tt.line)
		if err != nil {
			t.Errorf("%q: %v", tt.line, err)
			continue
		}
		if !slices.Equal(got.argv, tt.argv) || got.background != tt.background {
			t.Errorf("%q: got %q background=%v, want %q background=%v", tt.line, got.argv, got.background, tt.argv, tt.background)
		}
	}
	for _, bad := range []string{"", `echo "unterminated`, `echo 'x`, `sh -c "> /tmp/x &"`} {
		if _, err := parseExecLine(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParse(t *testing.T) {
	const good = `
name: t
topology:
  nodes:
    r1: {kind: linux, image: quay.io/frrouting/frr:8.4.4, binds: ["r1/frr.conf:/etc/frr/frr.conf", "/abs/daemons:/etc/frr/daemons"]}
    b: {kind: linux, image: anycastd-bird:latest}
    s: {kind: linux, image: anycastd:latest, labels: {anycastd.lab/role: host}}
    c: {kind: linux, image: nicolaka/netshoot}
  links:
    - endpoints: ["r1:eth1", "s:eth1"]
`
	topo, err := Parse([]byte(good), "/topo")
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]Role{}
	for n, node := range topo.Nodes {
		roles[n] = node.Role
	}
	want := map[string]Role{"r1": RoleFRR, "b": RoleBIRD, "s": RoleHost, "c": RoleHost}
	for n, r := range want {
		if roles[n] != r {
			t.Errorf("node %s: role %s, want %s", n, roles[n], r)
		}
	}
	if b := topo.Nodes["r1"].Binds; b[0].Source != "/topo/r1/frr.conf" || b[1].Source != "/abs/daemons" || b[1].Target != "/etc/frr/daemons" {
		t.Errorf("binds %+v", b)
	}
	if l := topo.Links[0]; l.A != (Endpoint{"r1", "eth1"}) || l.B != (Endpoint{"s", "eth1"}) {
		t.Errorf("link %+v", l)
	}

	const bad = `
name: t
topology:
  nodes:
    a: {kind: nokia_srlinux}
    b: {kind: linux, labels: {anycastd.lab/role: router}, exec: ["echo 'x"]}
  links:
    - endpoints: ["a:eth1", "z:eth1"]
    - endpoints: ["a:averyveryverylongname", "b:eth1"]
    - endpoints: ["b:eth1", "a:eth2"]
`
	_, err = Parse([]byte(bad), "/topo")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`node a: kind "nokia_srlinux"`,
		`node b: label anycastd.lab/role="router"`,
		`node b: exec "echo 'x": unterminated single quote`,
		`endpoint "z:eth1": no node z`,
		`longer than 15 characters`,
		`endpoint "b:eth1" used twice`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestFRRDaemons(t *testing.T) {
	got := frrDaemons([]byte("# comment\nbgpd=yes\nospfd=no\nstaticd=\"yes\"\nvtysh_enable=yes\nzebra=yes\nbgpd_options=\" -A 127.0.0.1\"\n"))
	if want := []string{"zebra", "bgpd", "staticd"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
