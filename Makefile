# wasmgate — `make run` to start the gateway, `make test` to run every test.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS  := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
HANDLERS := $(CURDIR)/handlers
FUZZTIME ?= 20s

.PHONY: all build guests run demo cluster-demo test test-web test-browser screenshots chromium test-long check fmt vet staticcheck tidy crossbuild bench fuzz testdata clean redis-server nginx systemd-analyze

all: build guests

build:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o bin/wasmgate ./cmd/wasmgate

# The example handlers (Go, Rust, C and AssemblyScript) built from source
# into handlers/.
guests:
	$(MAKE) -C guest-examples OUT=$(HANDLERS)

run: build guests
	@echo "chat demo: http://127.0.0.1:8282/demo/chat   admin dashboard: http://127.0.0.1:8290/ui"
	./bin/wasmgate start -c config.toml

# The seed flow to watch in a browser: wasmgate plus the demo backend on
# http://127.0.0.1:8080 (docs/PUSH.md, examples/demo-backend); the page is
# the gateway's http://127.0.0.1:8282/demo/tasks.
demo: build guests
	$(GO) build -o bin/demo-backend ./examples/demo-backend
	@echo "open http://127.0.0.1:8282/demo/tasks in two tabs (and http://127.0.0.1:8282/demo/chat)"
	./bin/wasmgate start -c config.toml & pid=$$!; \
	trap "kill $$pid" EXIT INT TERM; \
	./bin/demo-backend -listen 127.0.0.1:8080 -push 127.0.0.1:5678

# Three nodes and one redis-server on this machine, joined into one
# gateway (docs/CLUSTER.md, "Walk-through").
cluster-demo: build guests redis-server
	./scripts/cluster-demo.sh

# The checks every change passes before its tests: formatting, vet, the
# pinned staticcheck (tools/go.mod), tidy module files, and builds for the
# other systems developers run the gateway on.
check: fmt vet staticcheck tidy crossbuild

fmt:
	@files=$$(gofmt -l .); if [ -n "$$files" ]; then echo "gofmt -w needed on:"; echo "$$files"; exit 1; fi

vet:
	$(GO) vet ./...
	cd guest-examples && GOOS=wasip1 GOARCH=wasm $(GO) vet ./...

# Built from tools/go.mod into bin/ (the build cache makes reruns cheap).
staticcheck:
	$(GO) build -C tools -o $(CURDIR)/bin/staticcheck honnef.co/go/tools/cmd/staticcheck
	./bin/staticcheck ./...
	cd guest-examples && GOOS=wasip1 GOARCH=wasm ../bin/staticcheck ./...

tidy:
	$(GO) mod tidy -diff
	cd guest-examples && $(GO) mod tidy -diff
	cd tools && $(GO) mod tidy -diff

crossbuild:
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/wasmgate
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/wasmgate

# The longest test packages first: go test starts packages in the order
# given (two at a time on two cores), so the longest ones no longer start
# last and run alone at the end.
SLOW_TESTS := ./server ./runtime/internal/stopcheck ./cmd/wasmgate ./wasmgatetest ./runtime

test: guests check redis-server chromium nginx systemd-analyze test-web
	$(GO) test -race -count=1 -timeout 15m $(SLOW_TESTS) ./...
	cd guest-examples && $(GO) test -count=1 ./...
	$(MAKE) -C guest-examples c-readme rust-readme as-readme

# The browser client's unit tests (web/README.md), with node's own runner;
# terser (npm) is installed into web/node_modules for the minified-size check.
test-web:
	@test -d web/node_modules/terser || (cd web && npm install --no-save --no-audit --no-fund terser@5.51.4)
	node --test web/test/

# The demo pages and the admin dashboard in a real headless Chromium
# (internal/browsertest, also part of make test): two chat pages and a
# third room, the task flow with the demo backend, a reconnect after the
# gateway is killed and restarted, the dashboard's connection count.
test-browser: guests chromium
	$(GO) test -count=1 -timeout 10m -v -run '^TestBrowser' ./internal/browsertest/

# The screenshots in docs/img (shown in the README), taken by the same tests.
screenshots: guests chromium
	WASMGATE_SCREENSHOTS=docs/img $(GO) test -count=1 -timeout 10m -run '^TestBrowser' ./internal/browsertest/

# Debian's chromium for the browser tests, installed when missing. If it
# cannot be installed, say so loudly: the browser tests then skip with the
# same message (the only case in which they skip).
chromium:
	@command -v chromium >/dev/null || apt-get install -y chromium || \
		{ apt-get update && apt-get install -y chromium; } || \
		echo "*** chromium could not be installed: the browser tests (internal/browsertest) will SKIP ***"

# The cluster-mode tests start private redis-servers (internal/redistest)
# and fail without one: install Debian's when missing.
redis-server:
	@command -v redis-server >/dev/null || apt-get install -y redis-server || \
		{ apt-get update && apt-get install -y redis-server; }

# The nginx test (cmd/wasmgate, docs/DEPLOY.md's proxy config) starts a
# private Debian nginx in front of wasmgate and fails without one.
nginx:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || apt-get install -y nginx || \
		{ apt-get update && apt-get install -y nginx; }

# deploy/wasmgate.service is checked with systemd-analyze verify (the
# systemd package; nothing is started).
systemd-analyze:
	@command -v systemd-analyze >/dev/null || apt-get install -y systemd || \
		{ apt-get update && apt-get install -y systemd; }

# test plus the slow checks: the deadline rewriter against every module of
# wazero's spec corpus, cross-checked with wasm-objdump.
test-long: test
	command -v wasm-objdump >/dev/null || apt-get install -y wabt
	WASMGATE_LONG_TESTS=1 $(GO) test -count=1 ./runtime/internal/stopcheck/

# Micro-benchmarks (host calls per family, event round trip, registry), then
# the load benchmarks (native vs WASM echo, memory per idle connection,
# push), then the machine's own floors under the push targets.
bench: build guests redis-server
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1s ./runtime ./internal/metrics ./internal/registry ./internal/registry/redisreg ./internal/transport
	$(GO) test -run '^$$' -bench 'BenchmarkHandshake$$' -benchtime 2000x ./server
	$(GO) test -run '^$$' -bench 'BenchmarkEdgeBookkeeping' -benchmem ./server
	$(GO) test -run '^$$' -bench 'BenchmarkRecord|BenchmarkScrape' -benchmem ./internal/push
	$(GO) test -run '^$$' -bench 'BenchmarkTraffic' -benchtime 200x ./server
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1s ./runtime ./internal/registry ./internal/registry/redisreg ./internal/kv/rediskv ./internal/transport
	$(GO) run ./cmd/wasmgate-bench
	$(GO) run ./cmd/wasmgate-bench/floor

fuzz: redis-server guests
	$(GO) test ./abi -run '^$$' -fuzz FuzzDecodeList -fuzztime $(FUZZTIME)
	$(GO) test ./internal/registry -run '^$$' -fuzz FuzzUpdateSession -fuzztime $(FUZZTIME)
	$(GO) test ./internal/registry/redisreg -run '^$$' -fuzz FuzzSessionAgainstLocal -fuzztime $(FUZZTIME)
	$(GO) test ./internal/kv/rediskv -run '^$$' -fuzz FuzzIncrAgainstLocal -fuzztime $(FUZZTIME)
	$(GO) test ./server -run '^$$' -fuzz FuzzLoadConfig -fuzztime $(FUZZTIME)
	$(GO) test ./server -run '^$$' -fuzz FuzzASChat -fuzztime $(FUZZTIME)
	$(GO) test ./internal/transport -run '^$$' -fuzz FuzzFrameGuard -fuzztime $(FUZZTIME)
	$(GO) test ./internal/transport -run '^$$' -fuzz FuzzAcceptDeflate -fuzztime $(FUZZTIME)
	$(GO) test ./internal/transport -run '^$$' -fuzz FuzzMsgReader -fuzztime $(FUZZTIME)
	$(GO) test ./internal/wire -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./internal/cluster -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME)
	$(GO) test ./config -run '^$$' -fuzz FuzzClientAddr -fuzztime $(FUZZTIME)
	$(GO) test ./internal/handover -run '^$$' -fuzz FuzzParseFDs -fuzztime $(FUZZTIME)
	$(GO) test ./runtime/internal/stopcheck -run '^$$' -fuzz FuzzInstrument -fuzztime $(FUZZTIME)
	$(GO) test ./runtime -run '^$$' -fuzz FuzzGuestModules -fuzztime $(FUZZTIME)
	$(GO) test ./runtime -run '^$$' -fuzz FuzzDecodeList -fuzztime $(FUZZTIME)
	$(GO) test ./internal/recording -run '^$$' -fuzz FuzzRead -fuzztime $(FUZZTIME)
	$(GO) test ./cmd/wasmgate-bench -run '^$$' -fuzz FuzzWSStream -fuzztime $(FUZZTIME)

# Test fixtures in WAT; the .wasm files are committed so `go test` needs no
# wabt. Regenerate after editing a .wat. A fixture that is invalid on purpose
# says "wat2wasm: --no-check" in its header.
testdata:
	command -v wat2wasm >/dev/null || apt-get install -y wabt
	for f in runtime/testdata/*.wat; do \
		wat2wasm $$(grep -q 'wat2wasm: --no-check' $$f && echo --no-check) $$f -o $${f%.wat}.wasm; done

clean:
	rm -rf bin handlers .wasmgate-cache
