package health

import (
	"fmt"

	"github.com/anycastd/anycastd/config"
)

// NewChecker builds the Checker for c. It validates only what the checker
// itself needs (a type-specific table, a parseable address or URL, a
// non-empty command); everything else is the config package's job.
func NewChecker(c config.Check) (Checker, error) {
	switch c.Type {
	case config.CheckTCP:
		if c.TCP == nil {
			return nil, fmt.Errorf("type %q without a tcp table", c.Type)
		}
		return newTCPChecker(*c.TCP)
	case config.CheckHTTP:
		if c.HTTP == nil {
			return nil, fmt.Errorf("type %q without an http table", c.Type)
		}
		return newHTTPChecker(*c.HTTP)
	case config.CheckExec:
		if c.Exec == nil {
			return nil, fmt.Errorf("type %q without an exec table", c.Type)
		}
		return newExecChecker(*c.Exec)
	default:
		return nil, fmt.Errorf("unknown check type %q", c.Type)
	}
}
