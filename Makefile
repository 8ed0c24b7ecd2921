# Every target that needs the virtualenv depends on it, so a fresh clone works
# with one command.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The Go package (go/) is tested and linted when Go is installed; its tests
# start the Kong emulator with this Python.
GO_TEST := cd go && KONG_BRIDGE_PYTHON=$(CURDIR)/$(BIN)/python go test -count=1 ./...
HAS_GO  := command -v go >/dev/null 2>&1

.PHONY: install test demo bench lint compose-up compose-down clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,lint,emulators]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/pytest -q
	@if $(HAS_GO); then $(GO_TEST); else echo "go not found: skipping the Go package's tests"; fi

demo: $(STAMP)
	$(BIN)/kong-bridge demo

bench: $(STAMP)
	$(BIN)/python bench/run.py --out bench/results.json

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	@if $(HAS_GO); then \
	  unformatted="$$(gofmt -l go)"; \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi; \
	  (cd go && go vet ./...); \
	else echo "go not found: skipping gofmt and go vet"; fi

# `docker compose` (v2) where present, else Debian's docker-compose (1.29).
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
COMPOSE_FILES := -f compose/docker-compose.yml $(if $(DBLESS),-f compose/docker-compose.dbless.yml)

compose-up:  ## DBLESS=1 for Kong with database=off
	$(COMPOSE) $(COMPOSE_FILES) up -d --build

compose-down:
	$(COMPOSE) $(COMPOSE_FILES) down -v

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
