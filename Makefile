# The two commands of the README. Each sets up .venv (once) and the system tools first.
#   make demo   run egs/synth/run.sh end to end and print its RESULTS.md
#   make test   run the test suite (PYTEST_ARGS="-m 'not slow'" skips the end-to-end runs)

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
# The CPU build of torch; an unpinned torch would pull a multi-GB CUDA build.
TORCH := torch==2.13.0
PYTEST_ARGS ?=

.PHONY: setup demo test clean-demo

setup: $(STAMP)
	@bash tools/install_system_deps.sh

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check $(TORCH)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: setup
	cd egs/synth && ./run.sh

test: setup
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

clean-demo:
	rm -rf egs/synth/data egs/synth/exp
