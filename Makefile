# Everyday commands. `make test` is what CI runs (.ci/run); `make setup` prepares ./venv, which is also the
# virtualenv Pulumi.yaml names, so `pulumi` and the tests share one environment.
VENV ?= venv
PYTHON ?= python3
BIN := $(VENV)/bin
STACK ?= kind-dev

.PHONY: setup test-tools test lint bench up preview plan survey verify drift e2e

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

setup: $(BIN)/.installed

# The real dnsmasq, OpenSSH server, dig and shellcheck the tests drive (Debian/Ubuntu packages).
test-tools:
	bash scripts/install-test-tools.sh

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

test: lint
	$(BIN)/pytest

bench: setup
	$(BIN)/python -m bench.program_bench
	$(BIN)/python -m bench.fleet_bench
	$(BIN)/python -m bench.verify_bench

preview: setup
	pulumi preview --stack $(STACK)

up: setup
	pulumi stack select --create $(STACK)
	pulumi up --stack $(STACK)

# The fleet's address plan: every stack's ranges, the reservations, the free ranges (PLAN_ARGS=--json).
plan: setup
	$(BIN)/python -m tools.fleet plan $(PLAN_ARGS)

# Read-only: what MetalLB the stack's cluster runs and what `up` would do with it. Exit 0 go, 1 refuse.
survey: setup
	$(BIN)/python -m tools.survey --stack $(STACK)

# make verify STACK=kind-dev VERIFY_ARGS="--resolver 192.168.129.3"; without STACK, every stack in one table.
verify: setup
	$(BIN)/python -m tools.verify $(if $(filter command line environment,$(origin STACK)),--stack $(STACK),--all) $(VERIFY_ARGS)

STACKS ?=

# make drift [STACKS="beam00 beam01"]: exit 0 in sync, 1 drift, 2 a check could not be made, 3 unhealthy.
drift: setup
	$(BIN)/python -m tools.drift $(STACKS)

# Deploy, verify, drift-check and destroy on a throwaway KinD cluster (needs docker, kind, kubectl, pulumi).
e2e: setup
	bash scripts/e2e-kind.sh
