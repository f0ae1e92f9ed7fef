# tandem — the targets a developer and CI use. Everything needs only Go (and, for make lint, network access
# once to install staticcheck).

GO      ?= go
BIN     := bin/tandem
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/tandemsync/tandem/cmd/tandem/internal/cli.Version=$(VERSION)
GOBIN   := $(shell $(GO) env GOPATH)/bin
# make soak SOAK_DURATION=10m for a shorter soak.
SOAK_DURATION ?= 60m

.PHONY: build test race soak bench lint demo

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/tandem

# The whole suite: unit, conformance, simulation, end-to-end. Kept under 15 minutes on 2 cores.
test:
	$(GO) vet ./...
	$(GO) test ./... -count=1 -timeout 14m
	$(MAKE) race

# The packages with concurrency of their own (the transfer pool, bbolt batching) under the race detector,
# with a smaller simulation than the plain run above.
race:
	$(GO) test -race -count=1 -timeout 10m ./state
	$(GO) test -race -count=1 -timeout 10m ./engine -sim.seeds=100 -sim.steps=100

# Runs the engine's seeded simulation for SOAK_DURATION and reports seeds per hour.
soak:
	$(GO) test ./engine -run TestSimRandomOps -sim.duration=$(SOAK_DURATION) -timeout 70m -count=1 -v

bench:
	$(GO) test ./test/bench -bench . -run '^$$' -benchtime 1x

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	$(GOBIN)/staticcheck ./...

demo:
	$(GO) run -ldflags '$(LDFLAGS)' ./cmd/tandem demo
