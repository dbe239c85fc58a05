package health

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/anycastd/anycastd/config"
)

// maxHTTPBody is how much of a response body is read before the connection
// is closed.
const maxHTTPBody = 64 << 10

// defaultExpectStatus is used when HTTPCheck.ExpectStatus is empty.
var defaultExpectStatus = []config.StatusRange{{Min: 200, Max: 299}}

// httpChecker passes when a request answers with an expected status.
// Redirects are not followed, no proxy is used and every probe opens a new
// connection (keep-alives are off, so nothing idles between probes).
type httpChecker struct {
	method string
	url    string
	expect []config.StatusRange
	want   string // expect, formatted for error messages
	client *http.Client
}

func newHTTPChecker(c config.HTTPCheck) (*httpChecker, error) {
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
	method := c.Method
	if method == "" {
		method = http.MethodGet
	}
	expect := c.ExpectStatus
	if len(expect) == 0 {
		expect = defaultExpectStatus
	}
	for _, r := range expect {
		if r.Min > r.Max {
			return nil, fmt.Errorf("http expect_status %d-%d: min above max", r.Min, r.Max)
		}
	}
	tr := &http.Transport{
		Proxy:              nil, // health checks go straight to the service
		DisableKeepAlives:  true,
		DisableCompression: true,
	}
	return &httpChecker{
		method: method,
		url:    c.URL,
		expect: append([]config.StatusRange(nil), expect...),
		want:   formatStatusRanges(expect),
		client: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}, nil
}

// Check implements Checker.
func (h *httpChecker) Check(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, h.method, h.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "anycastd-health-check")
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxHTTPBody))
	_ = resp.Body.Close()
	if !statusInRanges(resp.StatusCode, h.expect) {
		return fmt.Errorf("status %d, want %s", resp.StatusCode, h.want)
	}
	return nil
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
