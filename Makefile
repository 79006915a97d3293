# agw — the two commands that matter: `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
GOTESTFLAGS ?= -count=1 -timeout 12m

.PHONY: all build demo test test-deps proto bench vet fmt clean image

all: build

# bin/agw has every subcommand; bin/agw-sidecar (build tag agwsidecar) only
# sidecar, pub and sub: it links neither the control plane nor the injector,
# which keeps the injected container's idle memory down.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w" -o bin/agw ./cmd/agw
	CGO_ENABLED=0 $(GO) build -tags agwsidecar -trimpath -ldflags="-s -w" -o bin/agw-sidecar ./cmd/agw

demo: build
	./bin/agw demo

# Everything `make test` needs is installed here: Go modules and the npm
# packages of the cross-implementation tests.
test-deps:
	$(GO) mod download
	@if [ -f test/package-lock.json ]; then \
	  command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }; \
	  cd test && npm ci --no-audit --no-fund --loglevel=error; \
	fi

# Every package under the race detector; the MLS vectors there in -short mode
# (suite 1), then every MLS vector of every suite without -race (pure
# computation, ten times faster).
test: test-deps vet
	$(GO) test -race -short $(GOTESTFLAGS) ./...
	set -o pipefail; $(GO) test $(GOTESTFLAGS) -v ./mls/... 2>&1 | grep -E '^(mls vectors:|ok|FAIL|--- FAIL|panic:|\s+\S+_test.go:[0-9]+:)'


vet:
	$(GO) vet ./...

# Regenerate the committed protobuf code (needs Debian's protobuf-compiler).
proto:
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler"; exit 1; }
	protoc -I api \
	  --plugin=protoc-gen-go=$$($(GO) tool -n protoc-gen-go) \
	  --plugin=protoc-gen-go-grpc=$$($(GO) tool -n protoc-gen-go-grpc) \
	  --go_out=. --go_opt=module=github.com/agwproject/agw \
	  --go-grpc_out=. --go-grpc_opt=module=github.com/agwproject/agw \
	  $$(find api -name "*.proto" | sort)

bench: build
	./bin/agw bench

fmt:
	gofmt -w $$(git ls-files '*.go' | grep -v '\.pb\.go$$')

clean:
	rm -rf bin

IMAGE ?= agw:dev

# The container image (needs a Docker engine; the build fetches only Go modules).
image:
	@command -v docker >/dev/null || { echo "make image needs a Docker engine (docker build)"; exit 1; }
	docker build $(if $(GOPROXY),--build-arg GOPROXY=$(GOPROXY)) -t $(IMAGE) .
