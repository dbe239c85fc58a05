package health

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
)

func httpCheck(t *testing.T, typ config.CheckType, h config.HTTPCheck) Checker {
	t.Helper()
	return mustChecker(t, config.Check{Type: typ, HTTP: &h})
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
		h    config.HTTPCheck
		want string
	}{
		{"substring", config.HTTPCheck{ExpectBody: `"up"`}, ""},
		{"substring miss", config.HTTPCheck{ExpectBody: "down"}, `body does not contain "down"`},
		{"regex", config.HTTPCheck{ExpectBodyRegex: `"status":\s*"(up|ok)"`}, ""},
		{"regex miss", config.HTTPCheck{ExpectBodyRegex: `"version": [4-9]`}, `body does not match "\"version\": [4-9]"`},
		{"both", config.HTTPCheck{ExpectBody: "version", ExpectBodyRegex: "^{"}, ""},
		{"beyond max_body_bytes", config.HTTPCheck{URL: srv.URL + "/padded", ExpectBody: "ok", MaxBodyBytes: 100},
			`body does not contain "ok"`},
		{"within max_body_bytes", config.HTTPCheck{URL: srv.URL + "/padded", ExpectBody: "ok", MaxBodyBytes: 102}, ""},
		{"redirect not followed", config.HTTPCheck{URL: srv.URL + "/redirect", ExpectBody: "up"}, "status 302, want 200-299"},
		{"redirect followed", config.HTTPCheck{URL: srv.URL + "/redirect", ExpectBody: "up", FollowRedirects: true}, ""},
		{"redirect loop", config.HTTPCheck{URL: srv.URL + "/loop", FollowRedirects: true}, "~stopped after 10 redirects"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.h.URL == "" {
				tc.h.URL = srv.URL + "/status"
			}
			wantCheck(t, httpCheck(t, config.CheckHTTP, tc.h), tc.want)
		})
	}

	t.Run("host, headers, source address", func(t *testing.T) {
		wantCheck(t, httpCheck(t, config.CheckHTTP, config.HTTPCheck{
			URL: srv.URL + "/status", Host: "www.example.net",
			Headers:       map[string]string{"X-A": "b", "User-Agent": "probe/1"},
			SourceAddress: netip.MustParseAddr("127.0.0.2"),
		}), "")
		got := seen.get()
		if got.host != "www.example.net" || got.xa != "b" || got.agent != "probe/1" || got.remoteIP != "127.0.0.2" {
			t.Errorf("server saw host %q, X-A %q, User-Agent %q from %s", got.host, got.xa, got.agent, got.remoteIP)
		}
		wantCheck(t, httpCheck(t, config.CheckHTTP, config.HTTPCheck{URL: srv.URL + "/status"}), "")
		if got := seen.get(); got.host != strings.TrimPrefix(srv.URL, "http://") || got.agent != "anycastd-health-check" {
			t.Errorf("default host %q, User-Agent %q", got.host, got.agent)
		}
	})

	t.Run("cannot run", func(t *testing.T) {
		ch := httpCheck(t, config.CheckHTTP, config.HTTPCheck{URL: srv.URL, Method: "BAD METHOD"})
		if err := checkWithin(t, ch, time.Second); !errors.Is(err, ErrCannotRun) {
			t.Errorf("invalid method: err = %v, want ErrCannotRun", err)
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
		typ  config.CheckType
		h    config.HTTPCheck
		want string
	}{
		{"system roots", config.CheckHTTPS, config.HTTPCheck{URL: url}, "~certificate signed by unknown authority"},
		{"ca_file", config.CheckHTTPS, config.HTTPCheck{URL: url, TLS: &config.TLSClient{CAFile: caFile}}, ""},
		{"type http, https url", config.CheckHTTP, config.HTTPCheck{URL: url, TLS: &config.TLSClient{CAFile: caFile}}, ""},
		{"insecure_skip_verify", config.CheckHTTPS, config.HTTPCheck{URL: url,
			TLS: &config.TLSClient{InsecureSkipVerify: true}}, ""},
		// httptest's certificate is for example.com (and 127.0.0.1).
		{"tls_server_name", config.CheckHTTPS, config.HTTPCheck{URL: url,
			TLS: &config.TLSClient{CAFile: caFile, ServerName: "example.com"}}, ""},
		{"wrong tls_server_name", config.CheckHTTPS, config.HTTPCheck{URL: url,
			TLS: &config.TLSClient{CAFile: caFile, ServerName: "other.example"}}, "~not other.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCheck(t, httpCheck(t, tc.typ, tc.h), tc.want)
		})
	}

	t.Run("https redirected to http", func(t *testing.T) {
		mux := http.NewServeMux()
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, plain.URL+"/status", http.StatusFound)
		})
		redir := quietTLSServer(mux, nil)
		defer redir.Close()
		h := config.HTTPCheck{URL: redir.URL, FollowRedirects: true, TLS: &config.TLSClient{InsecureSkipVerify: true}}
		wantCheck(t, httpCheck(t, config.CheckHTTPS, h), "~which is not https")
		wantCheck(t, httpCheck(t, config.CheckHTTP, h), "")
	})

	if _, err := NewChecker(config.Check{Type: config.CheckHTTPS, HTTP: &config.HTTPCheck{URL: plain.URL}}); err == nil ||
		!strings.Contains(err.Error(), "scheme must be https") {
		t.Errorf("type https with an http url: err = %v", err)
	}
	_, err := NewChecker(config.Check{Type: config.CheckHTTPS, HTTP: &config.HTTPCheck{URL: url,
		TLS: &config.TLSClient{CAFile: filepath.Join(t.TempDir(), "gone.pem")}}})
	if !errors.Is(err, ErrCannotRun) {
		t.Errorf("missing ca_file: err = %v, want ErrCannotRun", err)
	}
}

func TestHTTPSClientCertificate(t *testing.T) {
	pki := newTestPKI(t)
	var seen seenRequest
	srv := quietTLSServer(bodyMux(&seen), pki.serverConfig(true))
	defer srv.Close()

	url := srv.URL + "/status"
	withCert := &config.TLSClient{CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey}
	wantCheck(t, httpCheck(t, config.CheckHTTPS, config.HTTPCheck{URL: url, TLS: withCert}), "")
	// The server rejects the handshake; the client notices it on its first read.
	wantCheck(t, httpCheck(t, config.CheckHTTPS, config.HTTPCheck{URL: url, TLS: &config.TLSClient{CAFile: pki.caFile}}),
		"~certificate required")

	// tls_server_name picks a name in the certificate, whatever the URL.
	withName := *withCert
	withName.ServerName = "web.internal"
	wantCheck(t, httpCheck(t, config.CheckHTTPS, config.HTTPCheck{URL: url, TLS: &withName}), "")

	var tlsErr *tls.CertificateVerificationError
	withName.ServerName = "db.internal"
	err := checkWithin(t, httpCheck(t, config.CheckHTTPS, config.HTTPCheck{URL: url, TLS: &withName}), 5*time.Second)
	if !errors.As(err, &tlsErr) || errors.Is(err, ErrCannotRun) {
		t.Errorf("wrong server name: err = %v, want a verification failure", err)
	}
}
