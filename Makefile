# ganlab: two commands from a fresh clone.
#   make repro   creates .venv, installs everything, runs `dvc repro` with independent stages side by side
#                (python -m ganlab.repro; JOBS=1 for plain `dvc repro`)
#   make test    creates .venv if needed, runs the test suite
#   make ui      the MLflow UI on http://127.0.0.1:5000, with its saved views (ganlab.views)
VENV ?= .venv
PYTHON ?= python3
# torch is pinned to the release this project is tested with; override for another CUDA build, e.g.
#   make repro TORCH_SPEC="torch torchvision --index-url https://download.pytorch.org/whl/cu126"
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: venv repro paper test test-fast ui bench clean-venv

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# stages at once (one thread each on a CPU); empty = the CPU's cores (ganlab.repro.default_jobs)
JOBS ?=
repro: venv
	$(BIN)/python -m ganlab.views
	$(BIN)/python -m ganlab.repro $(if $(JOBS),--jobs $(JOBS))

# The same DAG at the source reports' scale (epochs, sample counts); meant for a GPU.
paper: venv
	$(BIN)/python -m ganlab.views
	$(BIN)/dvc exp run -S scale=paper

test: venv
	$(BIN)/python -m pytest

test-fast: venv
	$(BIN)/python -m pytest -m "not slow"

ui: venv
	$(BIN)/python -m ganlab.views
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port 5000

bench: venv
	$(BIN)/python -m benchmarks.metrics

clean-venv:
	rm -rf $(VENV)
