SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO        ?= go
STACK     := infra/local/stack.sh
# The stack's cache root (downloads, installs, run/); KP_CACHE_DIR moves it, as it does for infra/local.
KP_CACHE  := $(or $(KP_CACHE_DIR),.cache)
RUN_ENV   := $(KP_CACHE)/run/env
FUNCTIONS := $(notdir $(wildcard functions/*))
# Lambda builds: static, arm64 (Graviton), no net/rpc shim, reproducible paths.
LAMBDA_GOFLAGS := -tags lambda.norpc -trimpath -ldflags='-s -w -buildid='

.PHONY: build test unit lint mod-check local-up local-down clean

# Template checks and SAM targets; local invoke and demo; benchmarks.
-include infra/sam/sam.mk
-include infra/dev.mk
-include infra/bench/bench.mk

## build: an arm64 bootstrap per function under bin/<function>/bootstrap
build: $(FUNCTIONS:%=bin/%/bootstrap)

bin/%/bootstrap: FORCE
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(LAMBDA_GOFLAGS) -o $@ ./functions/$*

## build-<LogicalId>: the targets `sam build` runs (BuildMethod: makefile) into $(ARTIFACTS_DIR)
build-KinesisToPulsarFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(LAMBDA_GOFLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/kinesis-to-pulsar

## test: the template checks, then unit and integration tests against the local stack, which it
## starts and stops (an interrupt stops the tests, not the recipe, so the stack is still stopped)
test: mod-check template-check sam-build
	$(STACK) up
	status=0; trap 'status=130' INT TERM; \
	(set -a; . $(RUN_ENV); set +a; $(GO) test -race -tags integration -count=1 -timeout 30m ./...) || status=$$?; \
	$(STACK) down; exit $$status

## unit: the unit tests only, no servers
unit:
	$(GO) test -race -count=1 ./...

## lint: gofmt, go vet, staticcheck, the module checks and the template checks
lint: mod-check template-check
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	$(GO) tool staticcheck ./...
	$(GO) tool staticcheck -tags integration ./...

## mod-check: go.mod and go.sum are tidy, and the functions import no workshop package (tests/, infra/)
mod-check:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy" >&2; exit 1; }
	@out=$$($(GO) list -deps ./functions/... | grep -E '^github.com/streambridge/kinesis-pulsar/(tests|infra)/' || true); \
	if [ -n "$$out" ]; then echo "a function depends on the workshop: $$out" >&2; exit 1; fi

local-up:
	$(STACK) up

local-down:
	$(STACK) down

clean:
	-$(STACK) down
	rm -rf bin .aws-sam $(KP_CACHE)/run $(KP_CACHE)/bench

FORCE:
