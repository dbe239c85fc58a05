package health

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/anycastd/anycastd/config"
)

// NewChecker builds the Checker for c, a check as config.Load returns it:
// valid, with the table of its type set and defaults applied (NewChecker
// does not check again). What may have changed since the configuration was
// loaded is read now: the files named by c (ca_file, cert_file, key_file);
// an error reading them wraps ErrCannotRun.
func NewChecker(c config.Check) (Checker, error) {
	switch c.Type {
	case config.CheckTCP:
		return newTCPChecker(*c.TCP)
	case config.CheckHTTP, config.CheckHTTPS:
		return newHTTPChecker(*c.HTTP, c.Type == config.CheckHTTPS)
	case config.CheckDNS:
		return newDNSChecker(*c.DNS), nil
	case config.CheckGRPC:
		return newGRPCChecker(*c.GRPC)
	case config.CheckExec:
		return newExecChecker(*c.Exec), nil
	case config.CheckProcess:
		return newProcessChecker(*c.Process), nil
	case config.CheckListen:
		return newListenChecker(*c.Listen), nil
	case config.CheckTTL:
		return newTTLChecker(*c.TTL), nil
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
