# anycastd — see README.md.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
BIN      := bin

.PHONY: all build test unit integration lint fmt demo clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/anycastd ./cmd/anycastd

# Unit and in-process BGP tests, then the lab tests against real FRR and BIRD
# routers in network namespaces (those skip themselves, saying why, unless
# run as root with frr and bird2 installed; .ci/run installs them).
test: unit integration

unit:
	$(GO) test -race -count=1 ./...

integration:
	$(GO) test -tags integration -count=1 -timeout 15m ./integration/...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./integration/...
	promtool check rules contrib/prometheus/alerts.yml
	cd contrib/prometheus && promtool test rules alerts_test.yml

fmt:
	gofmt -w $$(git ls-files '*.go')

# The built-in lab: a client, a core router, two sites; watch failover happen.
demo: build
	bash scripts/demo.sh

clean:
	rm -rf $(BIN)
