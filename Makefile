# spate's everyday commands. `make test` is what CI runs (.ci/run).
GO ?= go
PKGS := ./...

.PHONY: build test lint bench bench-compare demo clean

build: ## build bin/spate
	$(GO) build -o bin/spate ./cmd/spate

test: lint ## vet, format check, and every test with the race detector (-tags kafka adds the report package's Kafka sweep)
	$(GO) test -race -count=1 -tags kafka $(PKGS)

lint: ## gofmt and go vet must be clean
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags kafka $(PKGS)

bench: ## benchmarks: harness throughput, tracker cost, pacer accuracy (bench-compare has the comparisons with bare clients)
	$(GO) test -run '^$$' -bench . -skip '^BenchmarkCompare$$' -benchmem $(PKGS)

bench-compare: ## spate against each driver's bare client, interleaved pairs, one table of msgs/s and ratios (ARGS='-drivers kafka -rounds 3')
	$(GO) run ./internal/benchcompare/cmd/bench-compare $(ARGS)

demo: ## run the quickstart scenario
	$(GO) run ./cmd/spate run examples/quickstart.yaml

clean:
	rm -rf bin spate-results
