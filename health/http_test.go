package health

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// httpCheck builds the checker config makes of keys (see parseCheck).
func httpCheck(t *testing.T, keys string, args ...any) Checker {
	t.Helper()
	return mustChecker(t, parseCheck(t, keys, args...))
}

// wantCheck runs ch once and compares the error with want ("": pass; a
// leading "~" means the error must contain the rest).
func wantCheck(t *testing.T, ch Checker, want string) {
	t.Helper()
	err := checkWithin(t, ch, 5*time.Second)
	switch {
	case want == "" && err != nil:
		t.Errorf("Check: %v, want pass", err)
	case want == "":
	case err == nil:
		t.Errorf("Check passed, want %q", want)
	case strings.HasPrefix(want, "~") && !strings.Contains(err.Error(), want[1:]):
		t.Errorf("Check error = %q, want it to contain %q", err, want[1:])
	case !strings.HasPrefix(want, "~") && err.Error() != want:
		t.Errorf("Check error = %q, want %q", err, want)
	}
}

// seenRequest is what the server saw of the last request.
type seenRequest struct {
	mu                        sync.Mutex
	host, agent, xa, remoteIP string
}

func (s *seenRequest) get() seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return seenRequest{host: s.host, agent: s.agent, xa: s.xa, remoteIP: s.remoteIP}
}

func bodyMux(seen *seenRequest) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		seen.mu.Lock()
		seen.host, seen.agent, seen.xa = r.Host, r.UserAgent(), r.Header.Get("X-A")
		seen.remoteIP, _, _ = net.SplitHostPort(r.RemoteAddr)
		seen.mu.Unlock()
		w.Write([]byte(`{"status": "up", "version": 3}`))
	})
	mux.HandleFunc("/padded", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat(" ", 100) + "ok"))
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/status", http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	return mux
}

// quietTLSServer starts an httptest TLS server (cfg nil: httptest's own
// certificate, as NewTLSServer) that does not log failed handshakes.
func quietTLSServer(h http.Handler, cfg *tls.Config) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = cfg
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	return srv
}

func TestHTTPCheckerBodyAndHeaders(t *testing.T) {
	var seen seenRequest
	srv := httptest.NewServer(bodyMux(&seen))
	defer srv.Close()

	for _, tc := range []struct {
		name string
		path string // default /status
		keys string
		want string
	}{
		{"substring", "", `expect_body = '"up"'`, ""},
		{"substring miss", "", `expect_body = "down"`, `body does not contain "down"`},
		{"regex", "", `expect_body_regex = '"status":\s*"(up|ok)"'`, ""},
		{"regex miss", "", `expect_body_regex = '"version": [4-9]'`, `body does not match "\"version\": [4-9]"`},
		{"both", "", "expect_body = 'version'\nexpect_body_regex = '^{'", ""},
		{"beyond max_body_bytes", "/padded", "expect_body = 'ok'\nmax_body_bytes = 100", `body does not contain "ok"`},
		{"within max_body_bytes", "/padded", "expect_body = 'ok'\nmax_body_bytes = 102", ""},
		{"redirect not followed", "/redirect", "expect_body = 'up'", "status 302, want 200-299"},
		{"redirect followed", "/redirect", "expect_body = 'up'\nfollow_redirects = true", ""},
		{"redirect loop", "/loop", "follow_redirects = true", "~stopped after 10 redirects"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.path == "" {
				tc.path = "/status"
			}
			wantCheck(t, httpCheck(t, "type = 'http'\nurl = %q\n"+tc.keys, srv.URL+tc.path), tc.want)
		})
	}

	t.Run("host, headers, source address", func(t *testing.T) {
		wantCheck(t, httpCheck(t, `type = 'http'
url = %q
host = "www.example.net"
headers = { "x-a" = "b", "User-Agent" = "probe/1" }
source_address = "127.0.0.2"`, srv.URL+"/status"), "")
		got := seen.get()
		if got.host != "www.example.net" || got.xa != "b" || got.agent != "probe/1" || got.remoteIP != "127.0.0.2" {
			t.Errorf("server saw host %q, X-A %q, User-Agent %q from %s", got.host, got.xa, got.agent, got.remoteIP)
		}
		wantCheck(t, httpCheck(t, "type = 'http'\nurl = %q", srv.URL+"/status"), "")
		if got := seen.get(); got.host != strings.TrimPrefix(srv.URL, "http://") || got.agent != "anycastd-health-check" {
			t.Errorf("default host %q, User-Agent %q", got.host, got.agent)
		}
	})

	t.Run("every probe sends the same request", func(t *testing.T) {
		ch := httpCheck(t, "type = 'http'\nurl = %q\nheaders = { X-A = 'b' }", srv.URL+"/status?q=1")
		for range 3 {
			wantCheck(t, ch, "")
			if got := seen.get(); got.xa != "b" || got.host != strings.TrimPrefix(srv.URL, "http://") {
				t.Fatalf("server saw host %q, X-A %q", got.host, got.xa)
			}
		}
	})
}

func TestHTTPSChecker(t *testing.T) {
	var seen seenRequest
	srv := quietTLSServer(bodyMux(&seen), nil) // httptest's own certificate
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	writePEM(t, caFile, "CERTIFICATE", srv.Certificate().Raw)
	plain := httptest.NewServer(bodyMux(&seen))
	defer plain.Close()

	url := srv.URL + "/status"
	for _, tc := range []struct {
		name string
		keys string // formatted with url and caFile
		want string
	}{
		{"system roots", "type = 'https'\nurl = %q", "~certificate signed by unknown authority"},
		{"ca_file", "type = 'https'\nurl = %q\nca_file = %q", ""},
		{"type http, https url", "type = 'http'\nurl = %q\nca_file = %q", ""},
		{"insecure_skip_verify", "type = 'https'\nurl = %q\ninsecure_skip_verify = true", ""},
		// httptest's certificate is for example.com (and 127.0.0.1).
		{"tls_server_name", "type = 'https'\nurl = %q\nca_file = %q\ntls_server_name = 'example.com'", ""},
		{"wrong tls_server_name", "type = 'https'\nurl = %q\nca_file = %q\ntls_server_name = 'other.example'",
			"~not other.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []any{url, caFile}[:strings.Count(tc.keys, "%q")]
			wantCheck(t, httpCheck(t, tc.keys, args...), tc.want)
		})
	}

	t.Run("https redirected to http", func(t *testing.T) {
		mux := http.NewServeMux()
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, plain.URL+"/status", http.StatusFound)
		})
		redir := quietTLSServer(mux, nil)
		defer redir.Close()
		keys := "url = %q\nfollow_redirects = true\ninsecure_skip_verify = true\ntype = %q"
		wantCheck(t, httpCheck(t, keys, redir.URL, "https"), "~which is not https")
		wantCheck(t, httpCheck(t, keys, redir.URL, "http"), "")
	})
}

func TestHTTPSClientCertificate(t *testing.T) {
	pki := newTestPKI(t)
	var seen seenRequest
	srv := quietTLSServer(bodyMux(&seen), pki.serverConfig(true))
	defer srv.Close()

	url := srv.URL + "/status"
	withCert := fmt.Sprintf("type = 'https'\nurl = %q\nca_file = %q\ncert_file = %q\nkey_file = %q\n",
		url, pki.caFile, pki.clientCert, pki.clientKey)
	wantCheck(t, httpCheck(t, "%s", withCert), "")
	// The server rejects the handshake; the client notices it on its first read.
	wantCheck(t, httpCheck(t, "type = 'https'\nurl = %q\nca_file = %q", url, pki.caFile), "~certificate required")

	// tls_server_name picks a name in the certificate, whatever the URL.
	wantCheck(t, httpCheck(t, "%stls_server_name = 'web.internal'", withCert), "")

	var tlsErr *tls.CertificateVerificationError
	err := checkWithin(t, httpCheck(t, "%stls_server_name = 'db.internal'", withCert), 5*time.Second)
	if !errors.As(err, &tlsErr) || errors.Is(err, ErrCannotRun) {
		t.Errorf("wrong server name: err = %v, want a verification failure", err)
	}
}
