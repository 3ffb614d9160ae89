# Tributary. Quick start: `make run` (the main job) and `make test`.
GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# Test budget: the whole `make test` must stay under 20 minutes on 2 cores.
TEST_TIMEOUT ?= 15m

.PHONY: all build run test test-deps vet unit bench bench-broker bench-connect bench-cluster bench-postgres bench-sinks bench-pipeline generate fuzz clean

all: build

# tributary and every plugin binary (tributary-connector-*) into ./bin; a
# worker's default plugin.path is the folder of its own executable.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

# The main job: the embedded broker (Kafka on 127.0.0.1:9092, metrics on :9100)
# and one worker (REST on 127.0.0.1:8083), data in ./data.
run: build
	./$(BIN)/tributary dev --data-dir ./data

# Installs what the tests need (Debian packages: kcat), then vets and tests.
test: test-deps build vet unit

test-deps:
	bash scripts/install-test-deps.sh

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo 'gofmt: files above need formatting'; exit 1; }

unit:
	TRIBUTARY_BIN=$(CURDIR)/$(BIN)/tributary $(GO) test -timeout $(TEST_TIMEOUT) -count=1 ./...
	$(GO) test -race -timeout $(TEST_TIMEOUT) -count=1 ./broker/groups/ ./broker/commitlog/ ./broker/records/

# Benchmarks print tables; compare ratios within one run (the machine is noisy).
bench: bench-broker bench-connect bench-cluster bench-postgres bench-sinks bench-pipeline

# BENCH_FLAGS e.g. "--runs 3 --brokers tributary,kfake,kfake-fsync --out bench.md".
bench-broker: build
	$(GO) run ./bench/brokerbench --tributary ./$(BIN)/tributary $(BENCH_FLAGS)

# Connect throughput end to end and the plugin boundary's cost.
# CONNECT_BENCH_FLAGS e.g. "--records 2000000 --runs 2 --out connect.md".
bench-connect: build
	$(GO) run ./bench/connectbench --tributary ./$(BIN)/tributary $(CONNECT_BENCH_FLAGS)

# Worker cluster: settle time after creating 100 connectors, kill -9 failover.
# CLUSTER_BENCH_FLAGS e.g. "--runs 5 --connectors 200 --out cluster.md".
bench-cluster: build
	$(GO) run ./bench/clusterbench --tributary ./$(BIN)/tributary $(CLUSTER_BENCH_FLAGS)

# Postgres CDC source end to end into the broker: snapshot of 1M rows, then
# 500k streamed inserts; worker and plugin memory. Needs PostgreSQL
# (`make test-deps`). CDC_BENCH_FLAGS e.g. "--rows 2000000 --runs 3 --out cdc.md".
bench-postgres: build
	$(GO) run ./bench/cdcbench --tributary ./$(BIN)/tributary $(CDC_BENCH_FLAGS)

# ClickHouse and Redis sinks end to end from the broker: 1M preloaded records
# of ~100 bytes of JSON; rows/s, ops/s, worker and plugin memory. Needs
# ClickHouse and Redis (`make test-deps`). SINK_BENCH_FLAGS e.g.
# "--records 2000000 --runs 3 --sinks clickhouse --out sinks.md".
bench-sinks: build
	$(GO) run ./bench/sinkbench --tributary ./$(BIN)/tributary $(SINK_BENCH_FLAGS)

# The whole pipeline: Postgres commits -> CDC source -> broker -> ClickHouse
# sink (upsert): rows/s of 300k inserts, and commit-to-visible freshness at
# saturation and paced below capacity (5,000 rows/s for 20 s); worker and
# plugin memory, CPU by process. Needs PostgreSQL and ClickHouse (`make
# test-deps`). PIPELINE_BENCH_FLAGS e.g. "--rows 500000 --rate 5000 --runs 3 --out pipeline.md".
bench-pipeline: build
	$(GO) run ./bench/pipelinebench --tributary ./$(BIN)/tributary $(PIPELINE_BENCH_FLAGS)

# Regenerates the committed gRPC code of the plugin boundary (plugins/pluginpb).
generate:
	bash scripts/generate.sh

# Short fuzzing runs of every fuzz target (the seed corpora run in `make test`).
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./broker/records/ -run '^$$' -fuzz '^FuzzSplitProduce$$' -fuzztime $(FUZZTIME)
	$(GO) test ./broker/records/ -run '^$$' -fuzz '^FuzzRecords$$' -fuzztime $(FUZZTIME)
	$(GO) test ./broker/records/ -run '^$$' -fuzz '^FuzzDownConvert$$' -fuzztime $(FUZZTIME)
	$(GO) test ./broker/commitlog/ -run '^$$' -fuzz '^FuzzRecoverSegment$$' -fuzztime $(FUZZTIME)
	$(GO) test ./broker/ -run '^$$' -fuzz '^FuzzParseRequest$$' -fuzztime $(FUZZTIME)

clean:
	rm -rf $(BIN)
