# Two set-up commands: `make demo` and `make test`. Both create .venv and install everything first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

# torch is pinned first so that nothing pulls a CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/ssehub demo

# The browser tests drive Debian's chromium; where it cannot be installed they skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	  || echo "chromium could not be installed: the browser tests will skip"

test: install browser
	$(BIN)/python -m pytest -q -ra

# The load test drives wrk (Debian's package) when it is there: the Python fallback client takes the server's CPU.
bench: install
	@command -v wrk >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk) \
	  || echo "wrk could not be installed: the load test uses the Python client (a lower bound on 2 cores)"
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data .pytest_cache
