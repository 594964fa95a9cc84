# Youth Voice Casework — the two commands of the quick start, and a few helpers.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: venv demo test lint format clean background workers prod-smoke

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

## make demo: install, migrate the embedded SQLite database, seed the demo, serve on :8000
demo: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo "Serving http://$(HOST):$(PORT)/ with background delivery and SLA sweeps running (Ctrl-C stops both)."
	$(PY) manage.py run_background & BG=$$!; trap 'kill $$BG 2>/dev/null' EXIT INT TERM; \
		$(PY) manage.py runserver $(HOST):$(PORT)

## make test: the whole test suite (SQLite by default; PostgreSQL and a broker when
## DATABASE_URL and CELERY_BROKER_URL are set, as CI does)
test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

## make prod-smoke: the Procfile's production stack (gunicorn, a Celery worker per queue,
## beat) on a fresh PostgreSQL database of its own and local Redis, driven end to end
## through HTTP, checked in the database, then stopped and dropped (scripts/prod_smoke.py)
prod-smoke: venv
	$(PY) scripts/prod_smoke.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles

## make background: the relay and the sweeps in-process, beside runserver (embedded, no broker)
background: venv
	$(PY) manage.py run_background

## make workers: one Celery worker with beat on every queue, against CELERY_BROKER_URL
workers: venv
	$(VENV)/bin/celery -A config worker -B -Q notifications,sweeps,default --loglevel INFO
