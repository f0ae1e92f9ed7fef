# tandem — the targets a developer and CI use. Everything needs only Go (and, for make lint, network access
# once to install staticcheck).

GO      ?= go
BIN     := bin/tandem
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/tandemsync/tandem/cmd/tandem/internal/cli.Version=$(VERSION)
GOBIN   := $(shell $(GO) env GOPATH)/bin
# make soak SOAK_DURATION=10m for a shorter soak.
SOAK_DURATION ?= 60m
# How long the torture runs per backend in make soak (make test runs 3 minutes each, the backends at once).
TORTURE_DURATION ?= 10m

.PHONY: build test flake simdisk race soak soak-variants soak-crash soak-sim fuzz bench bench-peers bench-big lint demo package

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/tandem

# The whole suite: unit, conformance, simulation, end-to-end. Kept under 15 minutes on 2 cores.
test:
	$(GO) vet ./...
	$(GO) test ./... -count=1 -timeout 14m
	$(MAKE) simdisk
	$(MAKE) race

# make test FLAKE_RUNS times in a row (default 10; FLAKE_TARGET=... repeats another target), each run's output in
# bin/flake/run-N.log: stops at the first failing run and prints its failures. The load average is printed before
# and after each run: run a second `make test` beside it to see the suite under load.
FLAKE_RUNS ?= 10
FLAKE_TARGET ?= test
flake:
	@mkdir -p bin/flake; \
	for i in $$(seq 1 $(FLAKE_RUNS)); do \
	  start=$$(date +%s); \
	  echo "== make flake: run $$i of $(FLAKE_RUNS), load average $$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"; \
	  if ! $(MAKE) --no-print-directory $(FLAKE_TARGET) > bin/flake/run-$$i.log 2>&1; then \
	    echo "== make flake: run $$i FAILED after $$(( $$(date +%s) - start )) s, load average $$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"; \
	    grep -E '^(--- FAIL|FAIL|panic:)|timed out|\*\*\*' bin/flake/run-$$i.log | head -40; \
	    echo "== full output: bin/flake/run-$$i.log"; \
	    exit 1; \
	  fi; \
	  echo "== make flake: run $$i passed in $$(( $$(date +%s) - start )) s, load average $$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"; \
	done; \
	echo "== make flake: $(FLAKE_RUNS) of $(FLAKE_RUNS) runs passed"

# The simulation with the harsher disks (pinned seeds plus 80 each, about 20 s apiece on 2 cores): user writes
# that stay volatile across passes, and disk faults that hit fsync too.
simdisk:
	$(GO) test ./engine -run TestSimRandomOps -count=1 -timeout 5m -sim.lazydisk -sim.seeds=80
	$(GO) test ./engine -run TestSimRandomOps -count=1 -timeout 5m -sim.syncfaults -sim.seeds=80

# The packages with concurrency of their own (the transfer pool, bbolt batching) under the race detector,
# with a smaller simulation than the plain run above.
race:
	$(GO) test -race -count=1 -timeout 10m ./state ./remote/localdir
	$(GO) test -race -count=1 -timeout 10m ./engine -sim.seeds=100 -sim.steps=100

# Runs the provider emulators' variant matrices, the crash points at their 3rd hit with the double kills, the
# torture for TORTURE_DURATION per backend, then the engine's seeded simulation (reports seeds per hour).
soak: soak-variants soak-crash soak-sim

# The simulation: the default mode for SOAK_DURATION, then the harsher disks (user writes that stay volatile,
# faults on fsync) for SOAK_DISK_DURATION each, from seeds the default test run does not reach.
SOAK_DISK_DURATION ?= 20m
soak-sim:
	$(GO) test ./engine -run TestSimRandomOps -sim.duration=$(SOAK_DURATION) -timeout 0 -count=1 -v
	$(GO) test ./engine -run TestSimRandomOps -sim.lazydisk -sim.start=5000 -sim.duration=$(SOAK_DISK_DURATION) -timeout 0 -count=1 -v
	$(GO) test ./engine -run TestSimRandomOps -sim.syncfaults -sim.start=5000 -sim.duration=$(SOAK_DISK_DURATION) -timeout 0 -count=1 -v

# kill -9 at every failpoint's 3rd hit and 20 double kills (make test kills at the 1st hit); then the torture.
soak-crash:
	@mkdir -p bin
	TANDEM_CRASH_SOAK=1 $(GO) test ./test/e2e -run '^TestCrashPoints$$' -count=1 -timeout 60m -v > bin/soak-crash.log 2>&1; \
	  rc=$$?; grep -E '^\s+crash_points_test.go:[0-9]+: crash points|--- FAIL' bin/soak-crash.log; exit $$rc
	TANDEM_TORTURE_STRICT=1 TANDEM_TORTURE_DURATION=$(TORTURE_DURATION) $(GO) test ./test/torture -count=1 -timeout 120m -v > bin/soak-torture.log 2>&1; \
	  rc=$$?; grep -E '^torture |VIOLATION|--- FAIL' bin/soak-torture.log; exit $$rc

# The pCloud end-to-end suite once per emulator variant (each reading of what pCloud's docs leave open); Verizon:
# one login shared by several clients and by tandem run + tandem once for a minute each, and every e2e scenario
# under every emulator variant; every vBoxx e2e scenario under every variant of its emulator.
PCLOUD_VARIANTS = $(shell $(GO) run ./cmd/tandem emulate --help 2>/dev/null | awk '$$1 == "pcloud" {print $$2}')
soak-variants:
	@for v in $(PCLOUD_VARIANTS); do echo "== pcloud variant $$v"; export TANDEM_EMU_VARIANT_PCLOUD=$$v; \
	  $(GO) test ./test/e2e -count=1 -timeout 20m \
	    -run '^(TestProviderScenarios|TestProviderRemoteDeleteAfterUpload|TestDaemonProviders)$$/^pcloud$$' && \
	  $(GO) test ./test/e2e -count=1 -timeout 20m -run '^TestProviderFaults$$/./^pcloud$$' && \
	  $(GO) test ./test/e2e -count=1 -timeout 20m -run '^(TestPCloud.*|TestProviderPCloudLargeFile)$$' || exit 1; done
	TANDEM_SOAK_REFRESH=1m TANDEM_E2E_VARIANTS=all $(GO) test ./remote/verizon ./test/e2e -run 'TestSharedLogin|TestVerizon' -timeout 30m -count=1 -v
	TANDEM_E2E_VBOXX_MATRIX=1 $(GO) test ./test/e2e -run 'TestVBoxxVariants' -count=1 -timeout 30m

# Each fuzz target for FUZZTIME (Go fuzzes one target per run); `make test` only replays the committed corpora
# under each package's testdata/fuzz. Commit what a run finds there (crashers land there by themselves).
FUZZTIME ?= 10m
FUZZ_TARGETS = ./remote:FuzzRemoteName ./engine/ignore:FuzzIgnoreMatch ./cmd/tandem/internal/config:FuzzConfigParse \
	./remote/pcloud:FuzzDecodePCloud ./remote/verizon:FuzzDecodeVerizon ./remote/vboxx:FuzzDecodeVBoxx \
	./state:FuzzDecodeRecord
fuzz:
	@for t in $(FUZZ_TARGETS); do echo "== $$t"; \
	  $(GO) test $${t%%:*} -run '^$$' -fuzz "^$${t##*:}$$" -fuzztime $(FUZZTIME) || exit 1; done

# Includes BenchmarkDaemon: 100,000 files through `tandem run` (propagation p50/p99, a minute of idle cost).
bench:
	$(GO) test ./test/bench -bench . -run '^$$' -benchtime 1x -timeout 60m -v

# tandem beside unison, rclone bisync, rclone copy and cp -r on the same seeded trees (10k files, 100k files,
# 4 x 256 MiB), every replica compared byte for byte; then tandem beside rclone copy against the pCloud emulator
# (served in-process over HTTPS). Replaces its section of test/bench/results.md. A peer not installed is skipped
# with the reason. BENCH_PEERS_ARGS='-trees 10k -runs 5' for a shorter or longer run, '-targets dir' or
# '-targets pcloud' for one kind of replica.
BENCH_PEERS_ARGS ?=
bench-peers: build
	$(GO) run ./test/bench/peers -tandem $(BIN) -out test/bench/results.md $(BENCH_PEERS_ARGS)

# `tandem once` on generated trees of BIG_SIZES small files (0-64 bytes, N/100 folders): first sync, no-change
# pass, one change; wall, CPU, peak RssAnon and RssFile apart, bytes and time per file. Replaces its section of
# test/bench/results.md. Needs about 13 KB of disk per file at the largest size (checked first); the trees go
# afterwards unless BENCH_BIG_ARGS=-keep. BIG_SIZES=20000,60000 for a quick run.
BIG_SIZES ?= 100000,300000,1000000
BENCH_BIG_ARGS ?=
bench-big: build
	$(GO) run ./test/bench/big -tandem $(BIN) -out test/bench/results.md -sizes $(BIG_SIZES) $(BENCH_BIG_ARGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	$(GOBIN)/staticcheck ./...
	GOOS=darwin $(GO) build ./...
	GOOS=windows $(GO) build ./...

# A .deb of bin/tandem with the systemd user unit, man pages and completions, through nfpm (a Go tool, run from the module proxy).
NFPM    ?= github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
GOARCH_ := $(shell $(GO) env GOARCH)
# Debian versions start with a digit: a release tag v1.2.3 gives 1.2.3, anything else 0.0.0+<describe>.
DEB_VERSION ?= $(if $(filter v%,$(VERSION)),$(patsubst v%,%,$(VERSION)),0.0.0+$(VERSION))
# The man pages and shell completions are generated from the command definitions by the binary itself.
package: build
	rm -rf bin/docs && $(BIN) gen-docs bin/docs
	VERSION=$(DEB_VERSION) GOARCH=$(GOARCH_) $(GO) run $(NFPM) package -f packaging/nfpm.yaml -p deb -t bin/

demo:
	$(GO) run -ldflags '$(LDFLAGS)' ./cmd/tandem demo
