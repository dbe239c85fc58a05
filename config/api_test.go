package config

import (
	"os/user"
	"testing"
)

func TestAPIKeys(t *testing.T) {
	g, err := user.LookupGroupId("0")
	if err != nil {
		t.Skipf("no group 0 on this system: %v", err)
	}
	tests := []struct {
		name    string
		snippet string
		err     string // exact; "" for none
		want    API
	}{
		{
			name: "defaults",
			want: API{Listen: DefaultAPIListen},
		},
		{
			name:    "unix socket with a group, TCP with TLS and client CA",
			snippet: "[api]\ngroup = \"" + g.Name + "\"\ntcp_listen = \"127.0.0.1:9480\"\ntls_cert_file = \"testdata/tls/client.pem\"\ntls_key_file = \"testdata/tls/client-key.pem\"\nclient_ca_file = \"testdata/tls/ca.pem\"\n",
			want: API{Listen: DefaultAPIListen, Group: g.Name, TCPListen: "127.0.0.1:9480",
				TLSCertFile: "testdata/tls/client.pem", TLSKeyFile: "testdata/tls/client-key.pem", ClientCAFile: "testdata/tls/ca.pem"},
		},
		{
			name:    "numeric group, plain TCP",
			snippet: "[api]\ngroup = \"0\"\ntcp_listen = \":9480\"\n",
			want:    API{Listen: DefaultAPIListen, Group: "0", TCPListen: ":9480"},
		},
		{
			name:    "listen on TCP takes TLS",
			snippet: "[api]\nlisten = \"[::1]:9480\"\ntls_cert_file = \"testdata/tls/client.pem\"\ntls_key_file = \"testdata/tls/client-key.pem\"\n",
			want:    API{Listen: "[::1]:9480", TLSCertFile: "testdata/tls/client.pem", TLSKeyFile: "testdata/tls/client-key.pem"},
		},
		{
			name:    "unknown group, bad tcp_listen",
			snippet: "[api]\ngroup = \"no-such-group-anycastd\"\ntcp_listen = \"localhost\"\n",
			err: `api: group: group "no-such-group-anycastd" does not exist (line 9)
api: tcp_listen: "localhost" must be host:port (line 10)`,
		},
		{
			name:    "group needs a unix socket; TLS needs TCP",
			snippet: "[api]\nlisten = \"127.0.0.1:1\"\ngroup = \"0\"\n[metrics]\nlisten = \"\"\n",
			err:     `api: group: applies only to a unix socket listen (unix:///path) (line 10)`,
		},
		{
			name:    "TLS without a TCP listener, client CA without TLS",
			snippet: "[api]\ntls_cert_file = \"testdata/tls/client.pem\"\ntls_key_file = \"testdata/tls/client-key.pem\"\n",
			err:     `api: tls_cert_file: needs a TCP listener (tcp_listen) (line 9)`,
		},
		{
			name:    "cert without key",
			snippet: "[api]\ntcp_listen = \"127.0.0.1:1\"\ntls_cert_file = \"testdata/tls/client.pem\"\n",
			err:     `api: tls_cert_file: requires tls_key_file (line 10)`,
		},
		{
			name:    "mismatched key, missing CA file",
			snippet: "[api]\ntcp_listen = \"127.0.0.1:1\"\ntls_cert_file = \"testdata/tls/client.pem\"\ntls_key_file = \"testdata/tls/other-key.pem\"\nclient_ca_file = \"testdata/tls/nope.pem\"\n",
			err: `api: tls_cert_file: "testdata/tls/client.pem" and tls_key_file "testdata/tls/other-key.pem": tls: private key does not match public key (line 10)
api: client_ca_file: "testdata/tls/nope.pem" does not exist (line 12)`,
		},
		{
			name:    "client CA without TLS",
			snippet: "[api]\ntcp_listen = \"127.0.0.1:1\"\nclient_ca_file = \"testdata/tls/ca.pem\"\n",
			err:     `api: client_ca_file: requires tls_cert_file and tls_key_file (client certificates need TLS) (line 10)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(base + tt.snippet))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.err {
				t.Fatalf("error:\n%s\nwant:\n%s", got, tt.err)
			}
			if err == nil && cfg.API != tt.want {
				t.Errorf("API = %+v, want %+v", cfg.API, tt.want)
			}
		})
	}
}
