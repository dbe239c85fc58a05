# anycastd — see README.md.
SHELL    := /bin/bash
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
BIN      := bin

.PHONY: all build test unit integration lint fmt demo clean generate check-generate

all: build

# Packaging and install targets (deb, check-systemd, images) live in mk/, and
# so do the BFD and fleet-guard figures (bench-bfd, soak-bfd, bench-fleet).
include $(wildcard mk/*.mk)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/anycastd ./cmd/anycastd
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/anycastctl ./cmd/anycastctl

# The gRPC API: api/anycastd/v1/*.proto -> *.pb.go, committed. protoc comes
# from the system (Debian: protobuf-compiler); the Go plugins are pinned and
# installed into bin/tools/<plugin>@<version>/.
PROTOC                     ?= protoc
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
TOOLS                      := $(CURDIR)/$(BIN)/tools
PROTOC_GEN_GO              := $(TOOLS)/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)/protoc-gen-go
PROTOC_GEN_GO_GRPC         := $(TOOLS)/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)/protoc-gen-go-grpc
PROTOS                     := $(sort $(wildcard api/anycastd/v1/*.proto))

$(PROTOC_GEN_GO):
	GOBIN=$(dir $@) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(PROTOC_GEN_GO_GRPC):
	GOBIN=$(dir $@) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

# protoc-gen runs protoc on PROTOS with its output under $(1).
protoc-gen = $(PROTOC) -I api \
	--plugin=protoc-gen-go=$(PROTOC_GEN_GO) --go_out=$(1) --go_opt=paths=source_relative \
	--plugin=protoc-gen-go-grpc=$(PROTOC_GEN_GO_GRPC) --go-grpc_out=$(1) --go-grpc_opt=paths=source_relative \
	$(patsubst api/%,%,$(PROTOS))

generate: $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC)
	rm -f api/anycastd/v1/*.pb.go
	$(call protoc-gen,api)

# Fails when the committed generated code differs from what `make generate`
# would write (the protoc version in the header comment is ignored).
check-generate: $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(call protoc-gen,$$tmp) && \
	strip() { for f in "$$1"/*.pb.go; do echo "== $${f##*/}"; grep -Ev '^//[[:space:]]+(- )?protoc[[:space:]]+v' "$$f"; done; } && \
	if ! diff -u <(strip api/anycastd/v1) <(strip "$$tmp/anycastd/v1"); then \
		echo "generated code in api/ is stale: run 'make generate' and commit the result"; exit 1; \
	fi

# Unit and in-process BGP tests, then the lab tests against real FRR and BIRD
# routers in network namespaces. test-deps installs frr, bird2 and
# etcd-server (the fleet lab's coordinator) when they are missing (as root;
# otherwise it fails saying what is missing, so the lab is never skipped
# silently).
test: test-deps unit integration

.PHONY: test-deps
test-deps:
	scripts/deps.sh frr bird2 iproute2 etcd-server

unit:
	$(GO) test -race -count=1 ./...

integration: test-deps
	$(GO) test -tags integration -count=1 -timeout 15m ./integration/...

# Fuzz the real BGP speaker with UPDATE bodies through an established
# session, and the BFD codec (FUZZTIME each; CI runs it), and anycastd
# migrate's parsers of other tools' files (MIGRATE_FUZZTIME each). Findings
# land in <package>/testdata/fuzz/ and then run with every `go test`.
FUZZTIME ?= 30s
MIGRATE_FUZZTIME ?= 10s
MIGRATE_FUZZ = FuzzParseBlocks FuzzExaBGP FuzzHealthchecker FuzzBIRD FuzzKeepalived
.PHONY: fuzz
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzSpeakerUpdate$$' -fuzztime $(FUZZTIME) ./announcer/
	$(GO) test -run '^$$' -fuzz '^FuzzUnmarshal$$' -fuzztime $(FUZZTIME) ./bfd/
	for f in $(MIGRATE_FUZZ); do \
		$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(MIGRATE_FUZZTIME) ./migrate/ || exit 1; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./integration/...
	$(GO) tool staticcheck ./...
	$(GO) tool staticcheck -tags integration ./integration/...
	promtool check rules contrib/prometheus/alerts.yml
	cd contrib/prometheus && promtool test rules alerts_test.yml

fmt:
	gofmt -w $$(git ls-files '*.go')

# The built-in lab: a client, a core router, two sites; watch failover happen.
demo: build
	bash scripts/demo.sh

# Benchmarks against FRR in network namespaces (root, frr installed; not run
# by CI): withdrawal overhead, end-to-end failover, 10,000 VIPs; prints a
# report (README "Performance"). About 10 minutes; BENCH_QUICK=1 for 1-2
# minutes. Knobs: BENCH_STEADY=60s BENCH_REPS BENCH_FAILOVER_REPS BENCH_VIPS
# BENCH_PEERS=1,2,8 BENCH_ONLY=withdraw,failover,scale BENCH_PERF=dir
# BENCH_FAMILIES=ipv4,ipv6 BENCH_METHOD=address|local-route BENCH_BASELINE=BIN;
# BENCH_BASELINE=prev (or any git revision): the scale runs also run that
# commit's anycastd (HEAD~1 for prev; built from `git archive` in a temporary
# directory, removed after), side by side.
.PHONY: bench
bench: build
	$(GO) build -o $(BIN)/bench ./integration/cmd/bench
	base="$(BENCH_BASELINE)"; \
	if [ "$$base" = prev ]; then base=HEAD~1; fi; \
	if [ -n "$$base" ] && [ ! -f "$$base" ]; then \
		rev=$$(git -C $(CURDIR) rev-parse --verify "$$base^{commit}") || exit 1; \
		dir=$$(mktemp -d /tmp/anycastd-prev-XXXX) && trap 'rm -rf "$$dir"' EXIT INT TERM && \
		git -C $(CURDIR) archive "$$rev" | tar -x -C "$$dir" && \
		(cd "$$dir" && $(GO) build -ldflags "-X main.version=$$(git -C $(CURDIR) describe --tags --always $$rev)" -o "$$dir/anycastd" ./cmd/anycastd) && base="$$dir/anycastd" || exit 1; \
	fi; \
	BENCH_BASELINE="$$base" $(BIN)/bench -anycastd $(BIN)/anycastd

clean:
	rm -rf $(BIN)
