# Two entry points for a fresh Debian machine: `make demo` and `make test`.
# Each installs what it needs: a .venv with the package and its test tools, and,
# when run as root, the Debian packages the tests start (RabbitMQ for the Globus
# Compute stand-in, Chromium to check that run reports render, Redis for data
# stores) and a C compiler for the thread-safe libfaketime that clock tests step.
PYTHON ?= python3
DEBIAN_PACKAGES := rabbitmq-server chromium redis-server gcc libc6-dev make
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FAKETIME_MT := $(VENV)/lib/libfaketimeMT.so.1

.PHONY: demo test lint bench bench-payloads bench-failover clean debian-packages

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m examples.interleaved_optimizer.run

# Installs only what is missing, so a prepared machine does not touch the network.
debian-packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do \
	    dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	    echo "missing Debian packages: $$missing (install them, or run as root)"; \
	    exit 0; fi; \
	DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $$missing

# libfaketime's own thread-safe variant, from the source its PyPI package vendors
# (testing/faketime.py says why the stock one will not do for a stepped clock).
$(FAKETIME_MT): $(STAMP) | debian-packages
	$(BIN)/python -m testing.faketime --build

# Lint and type checks come first: they take seconds and fail the run on any error.
# pytest's exit status passes through, so "no tests collected" (5) fails too.
test: $(STAMP) debian-packages $(FAKETIME_MT)
	$(BIN)/ruff check .
	$(BIN)/mypy
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/overhead.py

bench-payloads: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/payloads.py

bench-failover: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/failover.py

clean:
	rm -rf $(VENV) runs .pytest_cache
