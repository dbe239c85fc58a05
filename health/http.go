package health

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/anycastd/anycastd/config"
)

// defaultMaxHTTPBody is how much of a response body is read before the
// connection is closed, unless max_body_bytes says otherwise.
const defaultMaxHTTPBody = config.DefaultHTTPMaxBodyBytes

// maxHTTPRedirects is how many redirects follow_redirects follows.
const maxHTTPRedirects = 10

// defaultExpectStatus is used when HTTPCheck.ExpectStatus is empty.
var defaultExpectStatus = []config.StatusRange{{Min: 200, Max: 299}}

// httpChecker passes when a request answers with an expected status and,
// when configured, a body that contains a substring and matches a regexp.
// Redirects are not followed unless configured, no proxy is used and every
// probe opens a new connection (keep-alives are off, so nothing idles
// between probes).
type httpChecker struct {
	method   string
	url      string
	host     string
	header   http.Header
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
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("http url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("http url %q: scheme must be http or https", c.URL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("http url %q: no host", c.URL)
	}
	if needTLS && u.Scheme != "https" {
		return nil, fmt.Errorf("https url %q: scheme must be https", c.URL)
	}
	h := &httpChecker{
		method:  c.Method,
		url:     c.URL,
		host:    c.Host,
		header:  http.Header{"User-Agent": {"anycastd-health-check"}},
		expect:  c.ExpectStatus,
		maxBody: c.MaxBodyBytes,
		needTLS: needTLS,
	}
	if h.method == "" {
		h.method = http.MethodGet
	}
	if len(h.expect) == 0 {
		h.expect = defaultExpectStatus
	}
	h.expect = append([]config.StatusRange(nil), h.expect...)
	for _, r := range h.expect {
		if r.Min > r.Max {
			return nil, fmt.Errorf("http expect_status %d-%d: min above max", r.Min, r.Max)
		}
	}
	h.want = formatStatusRanges(h.expect)
	if h.maxBody <= 0 {
		h.maxBody = defaultMaxHTTPBody
	}
	for k, v := range c.Headers {
		h.header.Set(k, v)
	}
	if c.ExpectBody != "" {
		h.body = []byte(c.ExpectBody)
	}
	if c.ExpectBodyRegex != "" {
		if h.bodyRE, err = regexp.Compile(c.ExpectBodyRegex); err != nil {
			return nil, fmt.Errorf("http expect_body_regex: %w", err)
		}
	}
	h.readBody = h.body != nil || h.bodyRE != nil

	tlsCfg, err := tlsConfig(c.TLS, u.Hostname())
	if err != nil {
		return nil, err
	}
	// The server name follows each request's host unless it is configured.
	if c.TLS == nil || c.TLS.ServerName == "" {
		tlsCfg.ServerName = ""
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
	req, err := http.NewRequestWithContext(ctx, h.method, h.url, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCannotRun, err)
	}
	req.Header = h.header.Clone()
	if h.host != "" {
		req.Host = h.host
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := h.read(resp.Body)
	if !statusInRanges(resp.StatusCode, h.expect) {
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

// statusInRanges reports whether code lies in one of the inclusive ranges.
func statusInRanges(code int, ranges []config.StatusRange) bool {
	for _, r := range ranges {
		if code >= r.Min && code <= r.Max {
			return true
		}
	}
	return false
}

// formatStatusRanges formats ranges as "200-299,404".
func formatStatusRanges(ranges []config.StatusRange) string {
	var b strings.Builder
	for i, r := range ranges {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(r.Min))
		if r.Max != r.Min {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(r.Max))
		}
	}
	return b.String()
}
