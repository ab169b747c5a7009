# spate's everyday commands. `make test` is what CI runs (.ci/run).
GO ?= go
PKGS := ./...
# Each fuzz target's time in `make fuzz` (CI: 4 targets × 15s).
FUZZTIME ?= 15s
# Per test binary. drivers/rabbitmq runs a 3-node RabbitMQ cluster through
# node kills, pauses and partitions: about 9 minutes on a busy 2-core
# machine, against go test's default of 10.
TEST_TIMEOUT ?= 20m

.PHONY: build setup test lint fuzz bench bench-compare demo image clean

build: ## build bin/spate
	$(GO) build -o bin/spate ./cmd/spate

setup: ## install what the tests need when missing (rabbitmq-server, Chromium: root or sudo) and build kumo; idempotent
	.ci/setup.sh

test: setup lint ## set up, vet, format check, and every test with the race detector (-tags kafka adds the report package's Kafka sweep)
	$(GO) test -race -count=1 -tags kafka -timeout $(TEST_TIMEOUT) $(PKGS)

lint: ## gofmt and go vet must be clean
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags kafka $(PKGS)

fuzz: ## run each fuzz target (every YAML and JSON input spate reads) for FUZZTIME, bounded in time and memory
	.ci/fuzz.sh $(FUZZTIME)

bench: ## benchmarks: harness throughput, tracker cost, pacer accuracy (bench-compare has the comparisons with bare clients)
	$(GO) test -run '^$$' -bench . -skip '^BenchmarkCompare$$' -benchmem $(PKGS)

bench-compare: ## spate against each driver's bare client, interleaved pairs, one table of msgs/s and ratios (ARGS='-drivers kafka -rounds 3')
	$(GO) run ./internal/benchcompare/cmd/bench-compare $(ARGS)

demo: ## run the quickstart scenario
	$(GO) run ./cmd/spate run examples/quickstart.yaml

IMAGE ?= spate:dev
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
image: ## container image for spate kubernetes (needs Docker): make image IMAGE=registry.example.com/spate:v1
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

clean:
	rm -rf bin spate-results
