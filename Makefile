# The course's two commands: `make lab` and `make test`. Both create the environment first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8888
LAB_ARGS ?=
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)
NBVAL := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: env lab test unit notebooks-test e2e bench book format-notebooks execute-notebooks lint grade

# Reinstall only when the package's requirements or the pinned set change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

env: $(STAMP)

lab: env
	JUPYTERLAB_SETTINGS_DIR=$(CURDIR)/.jupyter/lab/user-settings \
	$(BIN)/jupyter lab --notebook-dir=notebooks --port=$(PORT) $(ROOT_FLAG) $(LAB_ARGS)

test: env lint unit e2e notebooks-test

lint: env
	$(BIN)/ruff check .

unit: env
	$(BIN)/pytest -n 2 --dist loadfile tests --ignore=tests/e2e

# Browser tests: one JupyterLab and one headless chromium for the session, so no xdist workers.
e2e: env
	$(BIN)/pytest tests/e2e

notebooks-test: env
	$(BIN)/pytest -n 2 --dist loadfile $(NBVAL) notebooks

bench: env
	$(BIN)/python tools/bench.py

# The course website, from the executed notebooks as committed (nothing is re-executed).
book: env
	$(BIN)/sphinx-build -q -b html -c book . _build/book
	@echo "The course website is in _build/book: open _build/book/index.html in a browser."

# Chapters with exercises (a cell tagged "solution"): their student copies,
# notebooks/student/<name>_student.ipynb, are generated from them.
MASTERS = $(shell grep -l '"solution"' notebooks/[0-9][0-9]_*.ipynb)

execute-notebooks: env
	$(BIN)/python tools/notebooks.py execute $(wildcard notebooks/[0-9][0-9]_*.ipynb)
	$(BIN)/python tools/make_student_notebook.py $(MASTERS)

format-notebooks: env
	$(BIN)/python tools/notebooks.py format notebooks/*.ipynb

# Instructors: run every submitted notebook in SUBMISSIONS headless, write grades.csv and grades.md.
grade: env
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=folder"; exit 2; }
	$(BIN)/python tools/grade.py $(SUBMISSIONS)
