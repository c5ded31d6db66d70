# Flotilla: the two commands are `make run` and `make test`.
# Works on a fresh machine with Python 3.11+ and make: uv is bootstrapped into .tools/.

SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
RUN := $(UV) run --frozen

.PHONY: run demo test containers lint fmt bench sync generate docs screenshots signing-key clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv

.venv/.synced: uv.lock pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml | $(UV)
	$(UV) sync --frozen
	@touch $@

sync: .venv/.synced ## install the workspace from the lock file

run: sync ## the whole shop: services, relays, worker, nginx in front; Ctrl-C stops it
	$(RUN) python scripts/run.py $(RUN_ARGS)

demo: sync ## against a running `make run`: an account, an order, a cancel, the e-mails
	$(RUN) python scripts/demo.py

# Two test processes (pytest-xdist), each taking a whole file at a time, so a file's fixtures
# stay in one process. The end-to-end tests spend much of their time waiting for the servers
# they start, so two of them share two cores well: on a 2-core machine the suite took 18.5
# minutes instead of 26.5. `.venv/bin/pytest PATH` runs a part in one process.
test: sync ## every test, against real PostgreSQL and SQLite
	$(RUN) pytest --numprocesses=2 --dist=loadfile

containers: sync ## build every image (bases, infrastructure from Debian's packages), run the compose stack, test it all with podman
	@started=$$(date +%s); \
	$(RUN) python scripts/containers.py && $(RUN) pytest tests/containers; status=$$?; \
	echo "make containers: $$(( $$(date +%s) - started )) s"; exit $$status

lint: sync ## ruff and mypy --strict
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) python scripts/nginx.py check

fmt: sync ## format and fix what ruff can
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

bench: sync ## the system as make run starts it, against baselines; figures go to bench/RESULTS.md
	$(RUN) python bench/benchmark.py $(BENCH_ARGS)

signing-key: sync ## print a new Ed25519 token signing key (PEM) for AUTH_SIGNING_KEY
	@$(RUN) python -m flotilla.auth generate-key

generate: sync ## rewrite what system.toml and the settings classes derive: nginx routes, docs tables
	$(RUN) python scripts/generate.py --write
	$(RUN) python scripts/settings_doc.py --write

docs: generate

screenshots: sync ## the console's browser tests, writing the README's screenshots to docs/screenshots
	FLOTILLA_SCREENSHOTS=docs/screenshots $(RUN) pytest tests/e2e/console

clean:
	rm -rf .venv .tools var .mypy_cache .ruff_cache .pytest_cache
