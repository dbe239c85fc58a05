package health

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/anycastd/anycastd/config"
)

// NewChecker builds the Checker for c. It validates only what the checker
// itself needs (a type-specific table, a parseable address or URL, a
// non-empty command); everything else is the config package's job. Files
// named by c (ca_file, cert_file, key_file) are read now; an error reading
// them wraps ErrCannotRun.
func NewChecker(c config.Check) (Checker, error) {
	switch c.Type {
	case config.CheckTCP:
		if c.TCP == nil {
			return nil, fmt.Errorf("type %q without a tcp table", c.Type)
		}
		return newTCPChecker(*c.TCP)
	case config.CheckHTTP, config.CheckHTTPS:
		if c.HTTP == nil {
			return nil, fmt.Errorf("type %q without an http table", c.Type)
		}
		return newHTTPChecker(*c.HTTP, c.Type == config.CheckHTTPS)
	case config.CheckDNS:
		if c.DNS == nil {
			return nil, fmt.Errorf("type %q without a dns table", c.Type)
		}
		return newDNSChecker(*c.DNS)
	case config.CheckGRPC:
		if c.GRPC == nil {
			return nil, fmt.Errorf("type %q without a grpc table", c.Type)
		}
		return newGRPCChecker(*c.GRPC)
	case config.CheckExec:
		if c.Exec == nil {
			return nil, fmt.Errorf("type %q without an exec table", c.Type)
		}
		return newExecChecker(*c.Exec)
	case config.CheckProcess:
		if c.Process == nil {
			return nil, fmt.Errorf("type %q without a process table", c.Type)
		}
		return newProcessChecker(*c.Process)
	case config.CheckListen:
		if c.Listen == nil {
			return nil, fmt.Errorf("type %q without a listen table", c.Type)
		}
		return newListenChecker(*c.Listen)
	case config.CheckTTL:
		if c.TTL == nil {
			return nil, fmt.Errorf("type %q without a ttl table", c.Type)
		}
		return newTTLChecker(*c.TTL)
	default:
		return nil, fmt.Errorf("unknown check type %q", c.Type)
	}
}

// retryChecker stands in for a Checker that could not be built: every probe
// tries to build it again (a CA file may appear later) and, until that
// works, fails with the build error, wrapped with ErrCannotRun. Only the
// runner's goroutine calls it.
type retryChecker struct {
	check   config.Check
	checker Checker // nil until built
}

func newRetryChecker(c config.Check) *retryChecker { return &retryChecker{check: c} }

// Check implements Checker.
func (r *retryChecker) Check(ctx context.Context) error {
	_, err := r.CheckOutput(ctx)
	return err
}

// CheckOutput implements OutputChecker.
func (r *retryChecker) CheckOutput(ctx context.Context) (string, error) {
	if r.checker == nil {
		ch, err := NewChecker(r.check)
		if err != nil {
			if !errors.Is(err, ErrCannotRun) {
				err = fmt.Errorf("%w: %w", ErrCannotRun, err)
			}
			return "", err
		}
		r.checker = ch
	}
	if oc, ok := r.checker.(OutputChecker); ok {
		return oc.CheckOutput(ctx)
	}
	return "", r.checker.Check(ctx)
}

// Close implements io.Closer: it closes the checker once built, if it is an
// io.Closer.
func (r *retryChecker) Close() error {
	if c, ok := r.checker.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
