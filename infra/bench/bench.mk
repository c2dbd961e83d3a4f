# Benchmarks, included by the Makefile (`-include infra/bench/bench.mk`):
#   bench   the function built as Lambda builds it (arm64 by `build`, for its size; and for this host, to
#           run it), then infra/bench/cmd/bench against the local Pulsar: throughput beside the broker's
#           ceiling, cold start, memory, binary size, cost. Writes docs/benchmarks.md and
#           docs/benchmarks.png; raw results and logs go to $(BENCH_OUT)/. A running stack is reused; a
#           server that was not running is started and, at the end, stopped again (stack.sh ensure and
#           release; `up` and `down` on a stack.sh without them). BENCH_FLAGS passes flags
#           (`$(BENCH_OUT)/bench -h` lists them; e.g. BENCH_FLAGS='-wait 30m' for a quiet machine).

BENCH_OUT   ?= $(KP_CACHE)/bench
BENCH_FLAGS ?=

.PHONY: bench

## bench: benchmarks against the local stack; writes docs/benchmarks.md and docs/benchmarks.png
bench: build
	CGO_ENABLED=0 $(GO) build $(LAMBDA_GOFLAGS) -o $(BENCH_OUT)/host/bootstrap ./functions/kinesis-to-pulsar
	$(GO) build -o $(BENCH_OUT)/bench ./infra/bench/cmd/bench
	@if grep -q 'ensure) cmd_ensure' $(STACK); then \
		started=$$($(STACK) ensure pulsar) || exit $$?; release="$(STACK) release $$started"; \
	elif $(STACK) status | grep -q '^pulsar\[default\] *running' && [ -f $(RUN_ENV) ]; then \
		release=:; \
	else \
		$(STACK) up || exit $$?; release="$(STACK) down"; \
	fi; \
	status=0; trap 'status=130' INT TERM; \
	(set -a; . $(RUN_ENV); set +a; $(BENCH_OUT)/bench -bootstrap $(BENCH_OUT)/host/bootstrap \
		-lambda-bootstrap bin/kinesis-to-pulsar/bootstrap -scratch $(BENCH_OUT) \
		-command 'make bench$(if $(BENCH_FLAGS), BENCH_FLAGS="$(BENCH_FLAGS)")' $(BENCH_FLAGS)) || status=$$?; \
	$$release || { [ $$status -ne 0 ] || status=1; }; \
	exit $$status
