# Boissipay: `make run` serves everything on embedded defaults; `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Where `make run` serves: BOISSIPAY_BASE_URL (environment or .env), http://127.0.0.1:8000
# by default. `make run PORT=8001` serves elsewhere for this run only; put
# BOISSIPAY_BASE_URL in .env so that the operators' commands know it too.
ifneq ($(HOST)$(PORT),)
export BOISSIPAY_BASE_URL = http://$(or $(HOST),127.0.0.1):$(or $(PORT),8000)
endif

export BOISSIPAY_ALLOW_DEV_SECRET ?= 1

.PHONY: install run test test-dates lint check-types audit lock stop clean

$(STAMP): requirements.txt
	@# faketime runs the suite again under shifted clocks. (The EN 16931 schematron runs in
	@# process, with the saxonche wheel: no Java.)
	@command -v faketime >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime; }
	@# Debian's Chromium: the back office's real-browser tests (Playwright drives it; no download).
	@command -v chromium >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

## run: install, migrate, create the admin and a demo API key, serve until Ctrl-C (which stops everything it started)
run: install
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py bootstrap_local
	DEBUG=1 $(BIN)/python manage.py run_local

# Branch coverage of the production packages (pyproject.toml), measured at 89.8% when the
# floor was set (issue 14): the run fails under it.
COVERAGE_FLOOR ?= 89

# The whole suite runs on two pytest-xdist workers (the machine's two cores; most slow tests
# wait on processes and Kafka), a file's tests on one worker, each worker with its own
# embedded PostgreSQL, broker and files (config/settings_test.py). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2

## test: install, lint (ruff, import-linter), types (mypy), dependency audit, the suite under shifted clocks, then the whole suite with coverage, on real PostgreSQL and Kafka
test: install lint check-types audit test-dates
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --cov --cov-report=term --cov-fail-under=$(COVERAGE_FLOOR)

## test-dates: the suite (less the slow fault tests) at 31 December 23:59 Paris of next year and on 29 February 2028
test-dates: install
	@command -v faketime >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime; }
	TEST_WORKERS=$(TEST_WORKERS) $(BIN)/python -m tests.shifted_clock

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check --quiet .
	$(BIN)/lint-imports --no-cache

## check-types: mypy with django-stubs over the kernel and the contexts' services, selectors and handlers
# (the Django plugin loads the settings: a local run's, without connecting to any database)
check-types: install
	DEBUG=1 DATABASE_URL=postgres://mypy@127.0.0.1:1/mypy $(BIN)/mypy

## audit: the pinned requirements against known vulnerabilities (pip-audit; offline against a PyPA snapshot when unreachable)
audit: install
	$(BIN)/python -m devtools.audit

## lock: pin requirements/*.in into requirements/*.txt with hashes (after editing a .in file)
lock: install
	cd requirements && ../$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --output-file=prod.txt prod.in
	cd requirements && ../$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --output-file=../requirements.txt dev.in

## stop: stop the embedded PostgreSQL and Kafka broker that other commands (make test, manage.py) left running
stop: install
	$(BIN)/python -m devtools.embedded.stop

clean: stop
	rm -rf .local $(VENV)
