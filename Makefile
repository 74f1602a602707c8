# The two commands of the README: `make demo` and `make test`. Both use one virtualenv, .venv.
# `make demo` installs only what the demo needs (omnisend and its runtime dependencies);
# `make test` adds the rest (test tools, linters, the optional extras) on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check --quiet
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.demo-installed

.PHONY: demo test lint typecheck unit docs bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Runtime only (no pip upgrade, no dev tools): the fast first run. Skipped when the full
# development install is already there and current.
$(DEMO_STAMP): pyproject.toml | $(PY)
	@if [ -f $(STAMP) ] && [ $(STAMP) -nt pyproject.toml ]; then :; else $(PIP) install -e .; fi
	touch $(DEMO_STAMP)

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --upgrade pip
	$(PIP) install -e '.[dev]'
	touch $(STAMP)

demo: $(DEMO_STAMP)
	$(VENV)/bin/omnisend demo

test: lint typecheck unit

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests examples benchmarks
	$(VENV)/bin/ruff format --check src

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict src

# The Redis/Celery tests start their own redis-server and workers; without redis-server they are
# skipped (one line says so), and under CI=true that is a failure.
REDIS_HINT := redis-server not found: the Redis/Celery tests are skipped (install: apt-get install -y --no-install-recommends redis-server)

unit: $(STAMP)
	@command -v redis-server >/dev/null 2>&1 || { echo "$(REDIS_HINT)"; [ "$$CI" != "true" ] || exit 1; }
	$(PY) -m pytest -q

docs: $(STAMP)
	$(PY) -m omnisend._docs docs/providers

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(PIP) install -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
