# spate's everyday commands. `make test` is what CI runs (.ci/run).
GO ?= go
PKGS := ./...
# Per test binary. drivers/rabbitmq runs a 3-node RabbitMQ cluster through
# node kills, pauses and partitions: about 9 minutes on a busy 2-core
# machine, against go test's default of 10.
TEST_TIMEOUT ?= 20m

.PHONY: build test lint bench demo clean

build: ## build bin/spate
	$(GO) build -o bin/spate ./cmd/spate

test: lint ## vet, format check, and every test with the race detector (-tags kafka adds the report package's Kafka sweep)
	$(GO) test -race -count=1 -tags kafka -timeout $(TEST_TIMEOUT) $(PKGS)

lint: ## gofmt and go vet must be clean
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags kafka $(PKGS)

bench: ## benchmarks: harness throughput, tracker cost, pacer accuracy
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

demo: ## run the quickstart scenario
	$(GO) run ./cmd/spate run examples/quickstart.yaml

clean:
	rm -rf bin spate-results
