# make deb: the Debian package dist/anycastd_<version>_<arch>.deb, built with
# nfpm (pinned in go.mod as a Go tool) from packaging/nfpm.yaml. What it
# packages is made in $(DEB_BUILD) (under bin/, not committed): static
# binaries with the version built in, stripped (-s -w: Debian policy 10.1),
# the conffile generated from examples/anycastd.toml, the gzipped man pages
# and changelog.
# scripts/check-deb.sh builds, lints, installs and purges it (CI).
#
#   DEB_ARCH=arm64          cross-build for another Go architecture (default: the
#                           host's; one nfpm maps to Debian's name: amd64, arm64,
#                           386, ppc64le, s390x, riscv64; not arm, which needs GOARM)
#   DEB_MAINTAINER="N <e>"  the Maintainer field (default: the last commit's author)
#   DEB_UNIT, DEB_SYSUSERS  the systemd unit and sysusers.d file to package

DEB_ARCH       ?= $(shell $(GO) env GOARCH)
DEB_MAINTAINER ?= $(shell git log -1 --format='%an <%ae>' 2>/dev/null)
DEB_UNIT       ?= contrib/systemd/anycastd.service
DEB_SYSUSERS   ?= contrib/systemd/anycastd.sysusers
DEB_BUILD      := $(CURDIR)/$(BIN)/deb
DEB_DIST       := dist
DEB_VERSION     = $(shell packaging/deb-version.sh '$(VERSION)')
# The commit's date, so that a rebuild of the same commit gives the same
# changelog, man pages and file times.
DEB_DATE        = $(shell git log -1 --format=%aD 2>/dev/null || date -R)

.PHONY: deb deb-package deb-version clean-deb

# Fixes VERSION (git describe), the package version and the date once, for
# the whole build.
deb:
	@$(MAKE) --no-print-directory deb-package VERSION='$(VERSION)' \
		DEB_VERSION='$(DEB_VERSION)' DEB_DATE='$(DEB_DATE)' DEB_MAINTAINER='$(DEB_MAINTAINER)'

deb-package:
	@test '$(DEB_ARCH)' != arm || { echo "make deb: DEB_ARCH=arm is not supported (armhf needs GOARM=7 and nfpm's arm7)"; exit 1; }
	@test -n '$(DEB_MAINTAINER)' || { echo "make deb: set DEB_MAINTAINER='Name <email>'"; exit 1; }
	@for f in $(DEB_UNIT) $(DEB_SYSUSERS); do test -f "$$f" || { echo "make deb: $$f is missing"; exit 1; }; done
	rm -rf $(DEB_BUILD) && mkdir -p $(DEB_BUILD) $(DEB_DIST)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(DEB_ARCH) $(GO) build -trimpath -ldflags "$(LDFLAGS) -s -w" -o $(DEB_BUILD)/anycastd ./cmd/anycastd
	CGO_ENABLED=0 GOOS=linux GOARCH=$(DEB_ARCH) $(GO) build -trimpath -ldflags "$(LDFLAGS) -s -w" -o $(DEB_BUILD)/anycastctl ./cmd/anycastctl
	awk -f packaging/conffile.awk examples/anycastd.toml > $(DEB_BUILD)/anycastd.toml
	@# The shipped configuration must be valid (checked when the binary runs here).
	@if [ '$(DEB_ARCH)' = "$$($(GO) env GOHOSTARCH)" ]; then \
		$(DEB_BUILD)/anycastd -check-config $(DEB_BUILD)/anycastd.toml >/dev/null || exit 1; fi
	day=$$(date -u -d '$(DEB_DATE)' +%Y-%m-%d) && for m in anycastd.8 anycastctl.1; do \
		sed -e "s/^\(\.TH [A-Z]* [0-9]\) \"\" *\"anycastd\"/\1 \"$$day\" \"anycastd $(VERSION)\"/" packaging/man/$$m | \
			gzip -9n > $(DEB_BUILD)/$$m.gz || exit 1; \
	done
	printf '%s\n' 'anycastd ($(DEB_VERSION)) unstable; urgency=medium' '' \
		'  * Built from anycastd $(VERSION); the changes are in the project'"'"'s' \
		'    git history.' '' ' -- $(DEB_MAINTAINER)  $(DEB_DATE)' | gzip -9n > $(DEB_BUILD)/changelog.gz
	rm -f $(DEB_DIST)/anycastd_*.deb
	DEB_VERSION='$(DEB_VERSION)' DEB_ARCH='$(DEB_ARCH)' DEB_MAINTAINER='$(DEB_MAINTAINER)' \
	DEB_BUILD='$(DEB_BUILD)' DEB_UNIT='$(DEB_UNIT)' DEB_SYSUSERS='$(DEB_SYSUSERS)' \
	SOURCE_DATE_EPOCH=$$(date -d '$(DEB_DATE)' +%s) \
		$(GO) tool nfpm package --config packaging/nfpm.yaml --packager deb --target $(DEB_DIST)/

clean: clean-deb
clean-deb:
	rm -rf $(DEB_BUILD) $(DEB_DIST)/anycastd_*.deb

# Prints VERSION (the binaries' -version) and the package's version.
deb-version:
	@echo '$(VERSION) $(DEB_VERSION)'
