# Two commands do all the set-up: `make dev` runs the whole stack, `make test` runs the tests.
# Both create .venv and install what they need from the locks in requirements/ (hashed,
# exact versions), then the project itself without dependencies.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# One stamp per lock: editing pyproject.toml or a lock reinstalls. STAMP is the full
# environment (tests, lint, typecheck, bench); DEV_STAMP only what `finops dev` needs.
STAMP := $(VENV)/.installed-test
DEV_STAMP := $(VENV)/.installed-dev
# The lock tool, pinned so that `make lock` writes the same files everywhere.
UV_VERSION := 0.13.10
LOCK_FLAGS ?=

.PHONY: dev test lint typecheck bench lock clean browser promtool plugin-check plugin-test contract test-servers

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# pip check: the lock and pyproject.toml agree (a dependency added to pyproject.toml
# without `make lock` fails here rather than in a test).
$(STAMP): pyproject.toml requirements/test.txt | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements/test.txt
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	touch $(STAMP)

$(DEV_STAMP): pyproject.toml requirements/dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	touch $(DEV_STAMP)

dev: $(DEV_STAMP)
	$(BIN)/finops dev

# Regenerates requirements/*.txt from pyproject.toml for Python 3.11+ on every platform.
# test.txt first; dev.txt and image.txt are constrained by it, so `make dev` and the image
# run exactly the versions the tests ran. Pins already in the files are kept unless
# LOCK_FLAGS says otherwise: `make lock LOCK_FLAGS=--upgrade` (everything) or
# `make lock LOCK_FLAGS='--upgrade-package dagster'`.
lock: | $(BIN)/python
	$(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	  --custom-compile-command 'make lock' $(LOCK_FLAGS) \
	  pyproject.toml --extra test --extra lint -o requirements/test.txt
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	  --custom-compile-command 'make lock' $(LOCK_FLAGS) -c requirements/test.txt \
	  pyproject.toml --extra dev -o requirements/dev.txt
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	  --custom-compile-command 'make lock' $(LOCK_FLAGS) -c requirements/test.txt \
	  pyproject.toml --extra k8s -o requirements/image.txt

# Headless Chromium (Debian package) for the browser tests of the built-in UI.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "browser tests need Chromium: sudo apt-get install chromium" >&2; \
	  fi; }

# promtool (Debian package prometheus, no recommends) for the alert-rule tests of
# deploy/prometheus. Installed as root only; without it the deploy tests fail in CI.
promtool:
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else \
	    echo "the alert-rule tests need promtool: sudo apt-get install --no-install-recommends prometheus" >&2; \
	    exit 1; \
	  fi; }

# The storage servers the sources' tests start that are not Python packages: Azurite (Azure
# Blob), from tests/servers/package-lock.json. Needs Node.js and npm (as plugin-check does).
test-servers: tests/servers/node_modules/.package-lock.json

tests/servers/node_modules/.package-lock.json: tests/servers/package.json tests/servers/package-lock.json
	cd tests/servers && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: $(STAMP) browser promtool lint typecheck plugin-check test-servers
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy finops_pipeline finops_admin_plugin finops_cli

# The Backstage plugin (backstage-plugin/): npm ci, tsc, lint, jest, build. Needs Node.js >= 20.19.
plugin-check:
	backstage-plugin/scripts/check.sh

# Only the plugin's jest suites (after plugin-check has installed node_modules).
plugin-test:
	cd backstage-plugin && CI=true npx backstage-cli package test --ci --watchAll=false

# The HTTP contract, written once in the API's pydantic models: their OpenAPI document
# (docs/openapi.json) and the plugin's TypeScript types generated from it
# (backstage-plugin/src/api/schema.generated.ts). Run after changing a model; the contract
# test fails until both files match the code.
contract: $(STAMP)
	$(BIN)/python -c 'import json, pathlib; from finops_admin_plugin.app import openapi_document; \
	  text = json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"; \
	  pathlib.Path("docs/openapi.json").write_text(text, encoding="utf-8")'
	cd backstage-plugin && { [ -d node_modules/openapi-typescript ] || npm ci --no-audit --no-fund --loglevel=error; } \
	  && node scripts/generate-api-types.mjs ../docs/openapi.json src/api/schema.generated.ts

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/logs.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/anomalies.py

clean:
	rm -rf $(VENV) .finops .pytest_cache .ruff_cache .mypy_cache tests/servers/node_modules backstage-plugin/node_modules backstage-plugin/dist backstage-plugin/dist-types backstage-plugin/dev/dist
