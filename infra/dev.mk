# Local runs of the function without Docker or an AWS account (docs/local.md), included by the Makefile:
#   make invoke EVENT=events/<file>.json   one sample event through the real bootstrap under the Lambda
#                                          Runtime Interface Emulator; prints the response and what
#                                          reached Pulsar
#   make demo                              a Kinesis stream in moto, a KPL-style producer, a local poller
#                                          that behaves like the event source mapping, the bootstrap,
#                                          Pulsar; then the round trip Pulsar -> sink -> Kinesis ->
#                                          source -> Pulsar (infra/cmd/roundtrip)
# Both start only the servers of the local stack that are not running (stack.sh ensure: INVOKE_STACK,
# DEMO_STACK) and stop, at the end, only those (stack.sh release). INVOKE_ARGS and DEMO_ARGS pass flags
# to the programs (bin/host/invoke -h, bin/host/demo -h).

HOST_BIN       := bin/host
HOST_BOOTSTRAP := $(HOST_BIN)/kinesis-to-pulsar/bootstrap
HOST_SINK_BOOTSTRAP := $(HOST_BIN)/pulsar-to-kinesis/bootstrap
# Evaluated only when a host build runs.
HOST_GOARCH     = $(shell $(GO) env GOARCH)
EVENT_ENV      ?= events/env.json
INVOKE_STACK   ?= pulsar
DEMO_STACK     ?= pulsar moto
INVOKE_ARGS    ?=
DEMO_ARGS      ?=
ROUNDTRIP_ARGS ?=

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

# The sink and the round trip (issue 16): Pulsar topic -> sink -> Kinesis -> source -> another topic.
$(HOST_SINK_BOOTSTRAP): FORCE | host-go
	CGO_ENABLED=0 GOOS=linux GOARCH=$(HOST_GOARCH) $(GO) build $(LAMBDA_GOFLAGS) -o $@ ./functions/pulsar-to-kinesis

$(HOST_BIN)/roundtrip: FORCE | host-go
	$(GO) build -o $@ ./infra/cmd/roundtrip

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

## demo: stream, KPL producer, local event source mapping, bootstrap, Pulsar; then the round trip
## through the sink and back (ROUNDTRIP_ARGS: bin/host/roundtrip -h); stops what it started
demo: $(HOST_BOOTSTRAP) $(HOST_BIN)/demo $(HOST_SINK_BOOTSTRAP) $(HOST_BIN)/roundtrip
	$(call run_on_stack,$(DEMO_STACK),$(HOST_BIN)/demo -env-vars '$(EVENT_ENV)' -bootstrap $(HOST_BOOTSTRAP) $(DEMO_ARGS) && \
		$(HOST_BIN)/roundtrip -sink-bootstrap $(HOST_SINK_BOOTSTRAP) -source-bootstrap $(HOST_BOOTSTRAP) $(ROUNDTRIP_ARGS))
