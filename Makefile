# The two commands: `make run` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
HOST ?= 127.0.0.1
PORT ?= 8000
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_WORKERS ?= 2
# The architecture contracts in pyproject.toml; the import graph is cached under var/.
LINT_IMPORTS := $(BIN)/lint-imports --cache-dir var/import-linter

# Debian's packages the application itself needs wherever it renders invoice PDFs (weasyprint):
# Pango, HarfBuzz's subsetting library (without it weasyprint subsets the embedded fonts with
# fontTools, several times slower, and warns) and the fonts the PDF is set in.
SYSTEM_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-liberation
# The browser suite drives Debian's Chromium, and the invoice tests read PDFs with poppler's
# pdftotext and pdftoppm.
TEST_PACKAGES := chromium poppler-utils

# Installs those of the Debian packages $(1) that are missing, saying what for ($(2)): a single
# dpkg-query when every one is there.
define install_missing_debian_packages
	@installed=" $$(dpkg-query --show --showformat='$${db:Status-Abbrev} $${Package}\n' $(1) \
			2>/dev/null | awk '$$1 == "ii" { printf "%s ", $$2 }')"; \
		missing=""; \
		for package in $(1); do \
			case "$$installed" in *" $$package "*) ;; *) missing="$$missing $$package";; esac; \
		done; \
		[ -z "$$missing" ] || { \
			echo "Installing Debian's$$missing $(2)..."; \
			$(SUDO) apt-get update -qq && \
			$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; }
endef

.PHONY: run test bench bench-smoke lint format install system-packages test-tools clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

.env:
	cp .env.example .env

install: $(VENV)/.installed .env system-packages

system-packages:
	$(call install_missing_debian_packages,$(SYSTEM_PACKAGES),for rendering invoice PDFs)

test-tools:
	$(call install_missing_debian_packages,$(TEST_PACKAGES),for the test suite)

# The task queue runs in a session of its own: a signal to the whole process group (Ctrl-C,
# or SIGTERM from a supervisor) would reach django-q2's workers too, and SIGTERM kills them
# mid-task. Its main process is told instead, and stops them once their task is done.
run: install
	$(MANAGE) migrate --noinput
	$(MANAGE) seed_demo
	@echo
	@echo "  Billing pages:  http://$(HOST):$(PORT)/billing/"
	@echo "  Support admin:  http://$(HOST):$(PORT)/admin/   (sign in as staff; its code: $(MANAGE) demo_totp_code)"
	@echo "  Task queue:     django-q2 cluster running beside the web server"
	@echo
	@setsid $(MANAGE) qcluster & QCLUSTER=$$!; \
		trap 'kill -TERM $$QCLUSTER 2>/dev/null; wait $$QCLUSTER' EXIT; \
		trap exit INT TERM; \
		$(MANAGE) runserver $(HOST):$(PORT)

# Each worker imports the project and rewrites the tests' assertions: their byte code is kept
# under __pycache__/ (ignored by git) even where PYTHONDONTWRITEBYTECODE says not to, or every
# worker of every run compiles them again, seconds of CPU each. Work-stealing: a worker that
# runs out of tests takes half of what the other still has queued, so neither idles at the end.
test: install test-tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(LINT_IMPORTS)
	$(BIN)/python manage.py makemigrations --check --dry-run
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal

# PostgreSQL by default (`make bench BENCH_DATABASE_URL=` for SQLite); the name must say "bench".
bench: export BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/bench
bench: install
	$(BIN)/python bench/run.py

# Every benchmark at a tiny size, in seconds: proves each still runs (verdicts mean nothing).
# SQLite unless BENCH_DATABASE_URL is set.
bench-smoke: install
	$(BIN)/python bench/run.py --smoke

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(LINT_IMPORTS)
	$(BIN)/python manage.py makemigrations --check --dry-run

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var
