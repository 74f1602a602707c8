# The two commands of the README: `make demo` and `make test`. Each sets up its own virtualenv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
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
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
