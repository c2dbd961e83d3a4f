# Local runs of the function without Docker or an AWS account (docs/local.md), included by the Makefile:
#   make invoke EVENT=events/<file>.json   one sample event through the real bootstrap under the Lambda
#                                          Runtime Interface Emulator; prints the response and what
#                                          reached Pulsar
#   make demo                              a Kinesis stream in moto, a KPL-style producer, a local poller
#                                          that behaves like the event source mapping, the bootstrap,
#                                          Pulsar
# Both start only the servers of the local stack that are not running (stack.sh ensure: INVOKE_STACK,
# DEMO_STACK) and stop, at the end, only those (stack.sh release). INVOKE_ARGS and DEMO_ARGS pass flags
# to the programs (bin/host/invoke -h, bin/host/demo -h).

HOST_BIN       := bin/host
HOST_BOOTSTRAP := $(HOST_BIN)/kinesis-to-pulsar/bootstrap
# Evaluated only when a host build runs.
HOST_GOARCH     = $(shell $(GO) env GOARCH)
EVENT_ENV      ?= events/env.json
INVOKE_STACK   ?= pulsar
DEMO_STACK     ?= pulsar moto
INVOKE_ARGS    ?=
DEMO_ARGS      ?=

.PHONY: invoke invoke-event demo host-bootstrap host-go

## host-go: stop with a clear message when Go is not on PATH; used by the host builds
host-go:
	@command -v $(GO) >/dev/null 2>&1 || { echo "make: $(GO) not found on PATH; install Go $$(sed -n 's/^go //p' go.mod) or newer (https://go.dev/dl/)" >&2; exit 1; }

## host-bootstrap: the function built for this host (the RIE runs it here; Lambda's build is arm64)
host-bootstrap: $(HOST_BOOTSTRAP)

$(HOST_BOOTSTRAP): FORCE | host-go
	CGO_ENABLED=0 GOOS=linux GOARCH=$(HOST_GOARCH) $(GO) build $(LAMBDA_GOFLAGS) -o $@ ./functions/kinesis-to-pulsar

$(HOST_BIN)/invoke $(HOST_BIN)/demo: FORCE | host-go
	$(GO) build -o $@ ./infra/cmd/$(@F)

# run_on_stack SERVERS, COMMAND: ensure SERVERS, run COMMAND with the stack's env file exported, release
# what ensure started, whatever COMMAND did. An interrupt stops COMMAND, not the recipe, so the release
# still runs.
define run_on_stack
	@started=$$($(STACK) ensure $(1)) || exit $$?; \
	status=0; trap 'status=130' INT TERM; \
	(set -a; . $(RUN_ENV); set +a; $(2)) || status=$$?; \
	$(STACK) release $$started || { [ $$status -ne 0 ] || status=1; }; \
	exit $$status
endef

## invoke-event: check EVENT before anything is built; used by invoke
invoke-event:
	@if [ -z "$(EVENT)" ]; then echo "make invoke: set EVENT, e.g. make invoke EVENT=events/quickstart-kpl.json (or one of: $$(ls events/*.json | grep -v '^events/env' | tr '\n' ' '))" >&2; exit 2; fi
	@if [ ! -f "$(EVENT)" ]; then echo "make invoke: EVENT=$(EVENT): no such file" >&2; exit 2; fi

## invoke: EVENT=events/<file>.json through the real bootstrap under the RIE, against the local stack
invoke: invoke-event $(HOST_BOOTSTRAP) $(HOST_BIN)/invoke
	$(call run_on_stack,$(INVOKE_STACK),$(HOST_BIN)/invoke -event '$(EVENT)' -env-vars '$(EVENT_ENV)' -bootstrap $(HOST_BOOTSTRAP) $(INVOKE_ARGS))

## demo: stream, KPL producer, local event source mapping, bootstrap, Pulsar; stops what it started
demo: $(HOST_BOOTSTRAP) $(HOST_BIN)/demo
	$(call run_on_stack,$(DEMO_STACK),$(HOST_BIN)/demo -env-vars '$(EVENT_ENV)' -bootstrap $(HOST_BOOTSTRAP) $(DEMO_ARGS))
