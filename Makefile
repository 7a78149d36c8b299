# The course's two commands: `make lab` and `make test`. Both create the environment first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8888
LAB_ARGS ?=
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)
NBVAL := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

UNIT_ARGS := -n 2 --dist loadfile tests --ignore=tests/e2e
NOTEBOOK_ARGS := -n 2 --dist loadfile $(NBVAL) notebooks
# The latest-versions leg: newest releases within pyproject.toml's ranges, no constraints.txt.
LATEST := .venv-latest
LATEST_BIN := $(LATEST)/bin
TORCHAUDIO_CHECK := from course_lib.env import load_torchaudio; \
	module, why = load_torchaudio(); print(why); raise SystemExit(module is None)

.PHONY: env lab test unit notebooks-test e2e bench book format-notebooks execute-notebooks lint \
	grade latest-env test-latest

# Reinstall only when the package's requirements or the pinned set change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c "import sys; sys.exit(sys.version_info < (3, 11))" || { \
		echo "The pinned set (constraints.txt) needs Python 3.11 or newer (NumPy 2.4, SciPy 1.17"; \
		echo "and IPython 9 have no Python 3.10 builds): rm -rf $(VENV) and rerun with"; \
		echo "PYTHON=python3.11 (or newer), or use 'make test-latest', which installs the newest"; \
		echo "releases that support your Python."; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

env: $(STAMP)

lab: env
	JUPYTERLAB_SETTINGS_DIR=$(CURDIR)/.jupyter/lab/user-settings \
	$(BIN)/jupyter lab --notebook-dir=notebooks --port=$(PORT) $(ROOT_FLAG) $(LAB_ARGS)

# Every part runs even when an earlier one fails (a missing browser must not hide the unit and
# notebook results); the run fails at the end, naming the parts that failed.
TEST_PARTS := lint unit e2e notebooks-test

test: env
	@failed=""; \
	for part in $(TEST_PARTS); do \
		$(MAKE) --no-print-directory $$part || failed="$$failed $$part"; \
	done; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed (the other parts passed)"; exit 1; fi; \
	echo "make test: all passed ($(TEST_PARTS))"

lint: env
	$(BIN)/ruff check .

unit: env
	$(BIN)/pytest $(UNIT_ARGS)

# Browser tests: one JupyterLab and one headless chromium for the session, so no xdist workers.
# tools/find_browser.py finds or installs Chromium first, printing one line per attempt.
e2e: env
	@browser="$$($(BIN)/python tools/find_browser.py)" || exit 1; \
	COURSE_CHROMIUM="$$browser" $(BIN)/pytest tests/e2e

notebooks-test: env
	$(BIN)/pytest $(NOTEBOOK_ARGS)

# Upgrades to the newest allowed releases on every run; torchaudio is removed when it does not
# load with the torch that came (its releases lag torch's), which the course allows.
latest-env:
	test -x $(LATEST_BIN)/python || $(PYTHON) -m venv $(LATEST)
	$(LATEST_BIN)/python -m pip install --quiet --upgrade pip
	$(LATEST_BIN)/python -m pip install --quiet --upgrade --upgrade-strategy eager -e ".[dev]"
	$(LATEST_BIN)/python -c "$(TORCHAUDIO_CHECK)" || \
		$(LATEST_BIN)/python -m pip uninstall --quiet --yes torchaudio
	$(LATEST_BIN)/python -m pip list --format=freeze > $(LATEST)/versions.txt
	@grep -iE '^(torch|torchaudio|numpy|plotly|ipywidgets|jupyterlab|matplotlib)==' \
		$(LATEST)/versions.txt | tr '\n' ' '; echo

# The unit tests and every notebook on the newest stack; both run, the leg fails at the end.
test-latest: latest-env
	@failed=""; \
	$(LATEST_BIN)/pytest $(UNIT_ARGS) || failed="$$failed unit"; \
	$(LATEST_BIN)/pytest $(NOTEBOOK_ARGS) || failed="$$failed notebooks"; \
	if [ -n "$$failed" ]; then echo "make test-latest: FAILED:$$failed"; exit 1; fi; \
	echo "make test-latest: passed"

bench: env
	$(BIN)/python tools/bench.py

# The course website, from the executed notebooks as committed (nothing is re-executed).
book: env
	$(BIN)/sphinx-build -q -b html -c book . _build/book
	@echo "The course website is in _build/book: open _build/book/index.html in a browser."

# Chapters with exercises (a cell tagged "solution"): their student copies,
# notebooks/student/<name>_student.ipynb, are generated from them.
MASTERS = $(shell grep -l '"solution"' notebooks/[0-9][0-9]*_*.ipynb)

execute-notebooks: env
	$(BIN)/python tools/notebooks.py execute $(wildcard notebooks/[0-9][0-9]*_*.ipynb)
	$(BIN)/python tools/make_student_notebook.py $(MASTERS)

format-notebooks: env
	$(BIN)/python tools/notebooks.py format notebooks/*.ipynb

# Instructors: run every submitted notebook in SUBMISSIONS headless, write grades.csv and grades.md.
grade: env
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=folder"; exit 2; }
	$(BIN)/python tools/grade.py $(SUBMISSIONS)
