# SAM targets, included by the Makefile (`-include infra/sam/sam.mk`):
#   template-check  cfn-lint, `sam validate --lint` and the SAM translator on template.yaml
#   sam-build       `sam build` on the host, then check the bootstrap is a static arm64 ELF
# Both run offline and without Docker, with the tools of the project venv (infra/local/stack.sh
# install; infra/local/requirements.txt pins aws-sam-cli and cfn-lint). The Go checks of the template's
# wiring are plain unit tests (infra/sam/*_test.go), run by `go test`; TestTemplateDeploysInMoto (an
# integration test, so in `make test`) translates the template and creates it in moto's CloudFormation
# for several parameter combinations (infra/sam/deploycheck.py).

KP_VENV      ?= $(KP_CACHE)/venv
SAM_REGION   ?= us-east-1
SAM_TEMPLATE := template.yaml
SAM_BOOTSTRAP := .aws-sam/build/KinesisToPulsarFunction/bootstrap
# The sink (issue 16): sam build builds it whatever SinkEnabled says.
SAM_SINK_BOOTSTRAP := .aws-sam/build/PulsarToKinesisFunction/bootstrap
# SAM CLI keeps its state (installation id, time of the last version check) here, not in ~/.aws-sam.
SAM_STATE    := $(CURDIR)/.cache/sam-cli

# What keeps the SAM CLI off the network:
# - SAM_CLI_TELEMETRY=0: no usage metrics.
# - a region: the translator builds ARNs with it; no request goes there.
# - AWS_ENDPOINT_URL_IAM: without --lint, `sam validate` asks IAM (ListPolicies) for the ARN of any AWS
#   managed policy named in a function's Policies. The template names none (the role is explicit);
#   should one appear, the call fails at once (one attempt) against a closed local port instead of
#   leaving.
# - a fresh lastVersionCheck (a float: sam ignores an integer) in the state file (sam-state):
#   otherwise sam asks PyPI for a newer release once a week, after the command.
SAM_ENV = SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$(SAM_REGION) AWS_REGION=$(SAM_REGION) \
	AWS_ENDPOINT_URL_IAM=http://127.0.0.1:9 AWS_MAX_ATTEMPTS=1 __SAM_CLI_APP_DIR=$(SAM_STATE)
SAM      = $(SAM_ENV) $(KP_VENV)/bin/sam
CFN_LINT = $(SAM_ENV) $(KP_VENV)/bin/cfn-lint

.PHONY: template-check sam-build sam-tools sam-state

## template-check: lint template.yaml (cfn-lint, sam validate --lint) and translate it (sam validate)
template-check: sam-tools sam-state
	$(CFN_LINT) $(SAM_TEMPLATE)
	$(SAM) validate --lint --template-file $(SAM_TEMPLATE)
	@# samconfig.toml turns lint on for `sam validate`; an empty config file lets the translator run.
	$(SAM) validate --template-file $(SAM_TEMPLATE) --config-file $(SAM_STATE)/no-config.toml

## sam-build: sam build (BuildMethod makefile, on the host), then check the bootstrap it wrote
sam-build: sam-tools sam-state
	rm -rf .aws-sam/build
	@# --build-in-source: no copy of the repository (and its .cache) to a scratch directory.
	$(SAM) build --template-file $(SAM_TEMPLATE) --build-in-source --config-file $(SAM_STATE)/no-config.toml
	$(GO) run ./infra/sam/cmd/elfcheck $(SAM_BOOTSTRAP) $(SAM_SINK_BOOTSTRAP)

## sam-tools: install sam and cfn-lint into the venv if missing (stack.sh install); used by the two above
sam-tools:
	@if [ ! -x $(KP_VENV)/bin/sam ] || [ ! -x $(KP_VENV)/bin/cfn-lint ]; then \
		echo "sam or cfn-lint missing from $(KP_VENV): running $(STACK) install"; \
		$(STACK) install; \
	fi
	@test -x $(KP_VENV)/bin/sam && test -x $(KP_VENV)/bin/cfn-lint || \
		{ echo "$(KP_VENV) has no sam or cfn-lint: see infra/local/requirements.txt" >&2; exit 1; }

## sam-state: SAM CLI state under .cache/sam-cli that keeps it offline; used by the targets above
sam-state:
	@mkdir -p $(SAM_STATE)
	@: > $(SAM_STATE)/no-config.toml
	@printf '{"telemetryEnabled": false, "lastVersionCheck": %s.0}\n' "$$(date +%s)" > $(SAM_STATE)/metadata.json
