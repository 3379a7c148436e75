# Mesher. `make run` starts a node; `make test` runs every test.
GO        ?= go
BUILD     := build
BIN       := $(BUILD)/mesher
PLUGINS   := $(patsubst plugins/%/manifest.json,%,$(wildcard plugins/*/manifest.json))
WASM      := $(PLUGINS:%=$(BUILD)/plugins/%.wasm)
# Tests share one compilation cache so each module compiles once per run.
export MESHER_TEST_CACHE ?= $(CURDIR)/$(BUILD)/test-cache

.PHONY: all build plugins run test race short bench check fmt tidy clean $(BIN) $(WASM)

all: build plugins

build: $(BIN)

$(BIN):
	$(GO) build -o $(BIN) ./cmd/mesher

plugins: $(WASM)

# Each plugin is a standard Go wasip1 reactor with its manifest embedded.
$(WASM): $(BUILD)/plugins/%.wasm: $(BIN)
	@mkdir -p $(BUILD)/plugins
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -o $@ ./plugins/$*
	$(BIN) manifest set $@ plugins/$*/manifest.json

run: build plugins
	$(BIN) serve

test: plugins
	$(GO) test -race -count=1 -timeout 45m ./...

short: plugins
	$(GO) test -count=1 -short ./...

bench: plugins
	$(GO) run ./internal/cmd/benchreport -out BENCHMARKS.md

check:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1)
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) build -o /dev/null ./abi/... ./plugins/...
	@cp go.mod /tmp/mesher-go.mod.bak && cp go.sum /tmp/mesher-go.sum.bak
	$(GO) mod tidy
	@git diff --quiet -- go.mod go.sum || (echo "go mod tidy changed go.mod/go.sum"; cp /tmp/mesher-go.mod.bak go.mod; cp /tmp/mesher-go.sum.bak go.sum; exit 1)

clean:
	rm -rf $(BUILD)
