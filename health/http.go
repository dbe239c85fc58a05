package health

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/anycastd/anycastd/config"
)

// maxHTTPRedirects is how many redirects follow_redirects follows.
const maxHTTPRedirects = 10

// httpChecker passes when a request answers with an expected status and,
// when configured, a body that contains a substring and matches a regexp.
// Redirects are not followed unless configured, no proxy is used and every
// probe opens a new connection (keep-alives are off, so nothing idles
// between probes).
type httpChecker struct {
	req      *http.Request // cloned for each probe
	expect   []config.StatusRange
	want     string // expect, formatted for error messages
	body     []byte // substring the body must contain; nil: any
	bodyRE   *regexp.Regexp
	maxBody  int64
	needTLS  bool // type https: every request (redirects too) must use TLS
	client   *http.Client
	readBody bool // whether the body is looked at
}

func newHTTPChecker(c config.HTTPCheck, needTLS bool) (*httpChecker, error) {
	header := http.Header{"User-Agent": {"anycastd-health-check"}}
	for k, v := range c.Headers {
		header.Set(k, v)
	}
	h := &httpChecker{
		req: &http.Request{Method: c.Method, URL: c.ParsedURL, Host: c.Host, Header: header,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1},
		expect:  c.ExpectStatus,
		want:    formatStatusRanges(c.ExpectStatus),
		bodyRE:  c.ExpectBodyRegex,
		maxBody: c.MaxBodyBytes,
		needTLS: needTLS,
	}
	if c.ExpectBody != "" {
		h.body = []byte(c.ExpectBody)
	}
	h.readBody = h.body != nil || h.bodyRE != nil

	// An empty server name follows each request's host.
	tlsCfg, err := tlsConfig(c.TLS)
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{LocalAddr: localTCPAddr(c.SourceAddress)}
	tr := &http.Transport{
		Proxy:              nil, // health checks go straight to the service
		DialContext:        dialer.DialContext,
		TLSClientConfig:    tlsCfg,
		DisableKeepAlives:  true,
		DisableCompression: true,
	}
	h.client = &http.Client{Transport: tr, CheckRedirect: h.checkRedirect(c.FollowRedirects)}
	return h, nil
}

// checkRedirect returns the redirect policy: the 3xx itself is the answer,
// or up to maxHTTPRedirects are followed (over TLS only for type https).
func (h *httpChecker) checkRedirect(follow bool) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		switch {
		case !follow:
			return http.ErrUseLastResponse
		case len(via) >= maxHTTPRedirects:
			return fmt.Errorf("stopped after %d redirects", maxHTTPRedirects)
		case h.needTLS && req.URL.Scheme != "https":
			return fmt.Errorf("redirect to %s, which is not https", req.URL.Redacted())
		}
		return nil
	}
}

// Check implements Checker.
func (h *httpChecker) Check(ctx context.Context) error {
	resp, err := h.client.Do(h.req.Clone(ctx))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := h.read(resp.Body)
	if !slices.ContainsFunc(h.expect, func(r config.StatusRange) bool { return r.Contains(resp.StatusCode) }) {
		return fmt.Errorf("status %d, want %s", resp.StatusCode, h.want)
	}
	if err != nil {
		return fmt.Errorf("reading body: %w", err)
	}
	if h.body != nil && !bytes.Contains(body, h.body) {
		return fmt.Errorf("body does not contain %q", h.body)
	}
	if h.bodyRE != nil && !h.bodyRE.Match(body) {
		return fmt.Errorf("body does not match %q", h.bodyRE)
	}
	return nil
}

// read reads at most maxBody bytes of body: into memory when the body is
// looked at, else discarding them.
func (h *httpChecker) read(body io.Reader) ([]byte, error) {
	r := io.LimitReader(body, h.maxBody)
	if !h.readBody {
		_, err := io.Copy(io.Discard, r)
		return nil, err
	}
	return io.ReadAll(r)
}

// formatStatusRanges formats ranges as "200-299,404".
func formatStatusRanges(ranges []config.StatusRange) string {
	parts := make([]string, len(ranges))
	for i, r := range ranges {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}
