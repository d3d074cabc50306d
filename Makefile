# The two commands of the README. Each sets up .venv (once) and the system tools first.
#   make demo   run egs/synth/run.sh end to end and print its RESULTS.md
#               (make demo RECIPE=synth_zh: the synthetic Mandarin recipe egs/synth_zh)
#   make test   run the test suite (PYTEST_ARGS="-m 'not slow'" skips the end-to-end runs)

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
# The CPU build of torch; an unpinned torch would pull a multi-GB CUDA build.
TORCH := torch==2.13.0
PYTEST_ARGS ?=
# The recipe of `make demo` and `make clean-demo`: egs/$(RECIPE)
RECIPE ?= synth

KENLM := tools/kenlm/bin/lmplz
# KenLM's source distribution: lmplz is built from it, and setup.py compiles its query library
# into the beam search
KENLM_SRC := tools/kenlm/download/kenlm-0.3.0.tar.gz

.PHONY: setup demo test clean-demo

# System packages first (the Python `kenlm` module and KenLM's tools compile with g++), then the
# venv; then pip's installs and the KenLM build run side by side (about a minute saved on 2 cores).
setup:
	@bash tools/install_system_deps.sh
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@# install_kenlm.sh's `pip download` of the KenLM source prepares its metadata with these
	@$(VENV)/bin/python -c "import setuptools, wheel" 2>/dev/null || \
	  $(VENV)/bin/pip install -q --disable-pip-version-check setuptools wheel
	@$(MAKE) --no-print-directory -j2 $(STAMP) $(KENLM)

# setup.py and the C++ source: `pip install -e .` compiles the beam search (ds2/decode/_prefix_beam.cpp)
# with KenLM's query library from $(KENLM_SRC), fetched before the two rules run side by side
$(STAMP): pyproject.toml setup.py ds2/decode/_prefix_beam.cpp | $(KENLM_SRC)
	@test -x $(VENV)/bin/python || { echo "run 'make setup'" >&2; exit 1; }
	$(VENV)/bin/pip install -q --disable-pip-version-check $(TORCH)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[dev,zh]'
	@touch $(STAMP)

# KenLM's lmplz and build_binary, built from the source distribution on PyPI (about a minute);
# the venv's pip fetches the source.
$(KENLM): tools/install_kenlm.sh | $(KENLM_SRC)
	@test -x $(VENV)/bin/python || { echo "run 'make setup'" >&2; exit 1; }
	PYTHON=$(VENV)/bin/python bash tools/install_kenlm.sh

$(KENLM_SRC):
	@test -x $(VENV)/bin/python || { echo "run 'make setup'" >&2; exit 1; }
	PYTHON=$(VENV)/bin/python bash tools/install_kenlm.sh --download-only

demo: setup
	cd egs/$(RECIPE) && ./run.sh

test: setup
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

clean-demo:
	rm -rf egs/$(RECIPE)/data egs/$(RECIPE)/exp
