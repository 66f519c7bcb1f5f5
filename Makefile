# Every target installs what it needs into $(VENV) first; `make book` and `make test` are the README's set-up.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build of torch, installed before the project so that pip keeps it (pyproject asks for torch>=2.3).
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: help install browser book book-stored test lab execute bench slides student notebooks grade clean

help:
	@echo "make book     install, execute every lab and build the HTML book into _build/html"
	@echo "make test     install and run every test: lint (ruff), library, labs (nbval, on two numeric paths), book, browser"
	@echo "make lab      open JupyterLab on labs/"
	@echo "make execute  re-run every lab in place and store its outputs"
	@echo "make bench    run the benchmarks"
	@echo "make slides   build one slide deck per course week into _build/slides (offline HTML)"
	@echo "make student  write the student edition (solutions removed) into _build/student"
	@echo "make notebooks  write the labs for plain notebook viewers (Colab, GitHub) into _build/notebooks"
	@echo "make grade SUBMISSIONS=dir  grade dir/<student>/<lab>.ipynb with nbgrader into dir/grades.csv"

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install "$(TORCH_SPEC)"
	$(PY) -m pip install -e ".[lab,book,dev,scale,course]"
	# nbgrader (the course extra) is the instructor's command-line tool here; its JupyterLab panels and server
	# extensions stay off in the readers' JupyterLab (`make lab`).
	$(VENV)/bin/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader >/dev/null
	for e in formgrader validate_assignment assignment_list course_list; do \
	  $(VENV)/bin/jupyter server extension disable --sys-prefix nbgrader.server_extensions.$$e >/dev/null 2>&1; done
	touch $@

# Headless Chromium for the browser test (Debian's package; Playwright must not download its own).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

book: install
	$(VENV)/bin/jupyter-book build . -W -n --keep-going --all

# The book from the stored lab outputs (no execution); what `make test` checks in the browser.
book-stored: install
	$(PY) -m tests.book_build

# The labs run twice: natively, then under a second numeric code path (tests/numeric_paths.py: torch's scalar
# kernels, oneDNN and MKL held to SSE4), which is what another CPU does to them; their stored outputs must
# reproduce under both. COLLAB_STRICT_CLAIMS=1 turns a claim the text draws from a lab that does not hold
# into a failure (in a learner's notebook it prints a note; collab_lib/claims.py).
test: install browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check labs
	COLLAB_STRICT_CLAIMS=1 $(PY) -m pytest --nbval --nbval-current-env tests labs
	COLLAB_STRICT_CLAIMS=1 $(PY) -m tests.numeric_paths $(PY) -m pytest --nbval --nbval-current-env labs

# JupyterLab refuses to start as root without --allow-root, which is how containers run it.
lab: install
	$(VENV)/bin/jupyter lab labs/ $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

execute: install
	$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.record_timing=False labs/*/*.ipynb
	$(PY) scripts/strip_widgets.py labs/*/*.ipynb

# The student edition: every lab without its solutions, fill-in and check outputs cleared (scripts/course.py).
student: install
	$(PY) scripts/course.py student _build/student

# The labs with their MyST resolved (citations, glued values, links, exercises, folded solutions) for viewers
# that render plain Markdown only, as Colab does (scripts/notebook_edition.py).
notebooks: install
	rm -rf _build/notebooks
	$(PY) scripts/notebook_edition.py _build/notebooks >/dev/null

# Grade submitted labs, SUBMISSIONS/<student id>/<lab>.ipynb, with nbgrader and the checks' hidden cases.
grade: install
	@[ -n "$(SUBMISSIONS)" ] || { echo "usage: make grade SUBMISSIONS=path/to/folder"; exit 2; }
	$(PY) scripts/course.py grade "$(SUBMISSIONS)"

bench: install
	@for f in benchmarks/*.py; do [ "$$f" = benchmarks/timing.py ] || { echo "== $$f"; $(PY) $$f || exit 1; }; done

# One deck per week of the course guide, from the chapters and the labs' stored figures (scripts/slides.py).
slides: install
	$(PY) scripts/slides.py

clean:
	rm -rf _build
