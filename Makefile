# ganlab: two commands from a fresh clone.
#   make repro   creates .venv, installs everything, runs `dvc repro`
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

repro: venv
	$(BIN)/python -m ganlab.views
	$(BIN)/dvc repro

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
