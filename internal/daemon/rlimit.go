package daemon

import (
	"log/slog"
	"syscall"
)

// raiseOpenFiles raises the soft RLIMIT_NOFILE to the hard limit (the Go
// runtime already does so at start on Linux; this makes it explicit and
// covers where it does not) and logs the limit in force: the API sizes its
// connection caps from it, so that probes and BGP sessions keep
// descriptors whatever the API's clients do.
func raiseOpenFiles(log *slog.Logger) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		log.Warn("reading the open-files limit", "err", err)
		return
	}
	if rl.Cur < rl.Max {
		soft := rl.Cur
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			log.Warn("raising the open-files limit", "soft", soft, "hard", rl.Max, "err", err)
			return
		}
		log.Info("open-files limit raised to the hard limit", "from", soft, "to", rl.Cur)
		return
	}
	log.Info("open-files limit", "soft", rl.Cur, "hard", rl.Max)
}
