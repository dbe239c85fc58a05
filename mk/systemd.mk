# make check-systemd: checks the systemd unit and sysusers.d file in
# contrib/systemd/ (scripts/check-systemd.sh): the settings the daemon relies
# on, `systemd-analyze verify` in a temporary root laid out as the package
# installs it, the unit's command lines against anycastd built from this
# tree, `systemd-analyze security --offline` at most SYSTEMD_MAX_EXPOSURE
# (printed), and systemd-sysusers. Needs no running systemd and no installed
# anycastd; installs Debian's systemd package as root where it is missing.

SYSTEMD_MAX_EXPOSURE ?= 3.0

.PHONY: check-systemd
check-systemd:
	GO='$(GO)' MAX_EXPOSURE='$(SYSTEMD_MAX_EXPOSURE)' scripts/check-systemd.sh

# make check-systemd-boot (root): the same, then the unit under a real
# systemd: this machine's OS booted in a container (systemd-nspawn; installs
# Debian's systemd-container) on a throw-away overlay of /, with a private
# network; starts, reloads, crashes and stops anycastd there.
.PHONY: check-systemd-boot
check-systemd-boot:
	GO='$(GO)' MAX_EXPOSURE='$(SYSTEMD_MAX_EXPOSURE)' scripts/check-systemd.sh --boot
