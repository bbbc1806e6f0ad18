# Two entry points (README): `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# sam2 is an sdist whose optional CUDA extension we never need (we use only the Hiera trunk).
export SAM2_BUILD_CUDA := 0

.PHONY: demo test venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "setuptools>=68" wheel "torch>=2.5.1" "torchvision>=0.20.1"
	$(BIN)/pip install -q --no-build-isolation "sam2>=1.1.0"
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

demo: venv
	$(BIN)/sam2ms demo -o demo_run

test: venv
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) demo_run
